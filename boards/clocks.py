"""Engine clocks from a board oscillator: PLL settings and the ``sync`` domain with its reset.

The solvers search the same parameter space as Project IceStorm's ``icepll`` and Project
Trellis' ``ecppll`` and return the setting whose output is nearest the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from molxbar.hdl.construction import checking_arguments

__all__ = [
    "ICE40PLL",
    "ECP5PLL",
    "ice40_pll",
    "ecp5_pll",
    "PLLDomain",
    "POWER_ON_RESET_S",
]

#: How long the ``sync`` reset is held after the PLL locks. iCE40 block RAMs read as zero for
#: about 3 us after configuration; this covers it five times over, and is harmless on ECP5.
POWER_ON_RESET_S = 15e-6


#: Largest relative distance between a requested PLL output and the nearest setting.
MAX_PLL_ERROR = 0.05


def _checked(best, f_in: float, f_out: float, family: str):
    if best is None or abs(best.f_out - f_out) > MAX_PLL_ERROR * f_out:
        nearest = "" if best is None else f" (nearest: {best.f_out / 1e6:.4g} MHz)"
        raise ValueError(
            f"no {family} PLL setting makes {f_out / 1e6:g} MHz from {f_in / 1e6:g} MHz{nearest}"
        )
    return best


@dataclass(frozen=True)
class ICE40PLL:
    """``SB_PLL40`` settings, simple feedback:
    ``f_out = f_in * (divf+1) / ((divr+1) * 2**divq)``."""

    f_in: float
    divr: int
    divf: int
    divq: int
    filter_range: int

    @property
    def f_pfd(self) -> float:
        return self.f_in / (self.divr + 1)

    @property
    def f_vco(self) -> float:
        return self.f_pfd * (self.divf + 1)

    @property
    def f_out(self) -> float:
        return self.f_vco / (1 << self.divq)


def ice40_pll(f_in: float, f_out: float) -> ICE40PLL:
    """The ``SB_PLL40`` setting nearest ``f_out`` (Hz) from ``f_in`` (PFD 10-133 MHz, VCO
    533-1066 MHz, output 16-275 MHz, as ``icepll`` checks)."""
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10e6 <= f_pfd <= 133e6:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533e6 <= f_vco <= 1066e6:
                continue
            for divq in range(1, 7):
                out = f_vco / (1 << divq)
                if not 16e6 <= out <= 275e6:
                    continue
                if best is None or abs(out - f_out) < abs(best.f_out - f_out):
                    filter_range = next(
                        (
                            k
                            for k, top in enumerate((17e6, 26e6, 44e6, 66e6, 101e6), 1)
                            if f_pfd < top
                        ),
                        6,
                    )
                    best = ICE40PLL(f_in, divr, divf, divq, filter_range)
    return _checked(best, f_in, f_out, "iCE40")


@dataclass(frozen=True)
class ECP5PLL:
    """``EHXPLLL`` settings, ``CLKOP`` fed back: ``f_out = f_in * clkfb_div / clki_div``."""

    f_in: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    @property
    def f_out(self) -> float:
        return self.f_in * self.clkfb_div / self.clki_div

    @property
    def f_vco(self) -> float:
        return self.f_out * self.clkop_div


def ecp5_pll(f_in: float, f_out: float) -> ECP5PLL:
    """The ``EHXPLLL`` setting nearest ``f_out`` (Hz) from ``f_in`` (PFD 3.125-400 MHz, VCO
    400-800 MHz, as ``ecppll`` checks), its VCO nearest the middle of its range."""
    best = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125e6 <= f_pfd <= 400e6:
            continue
        for clkfb_div in range(1, 81):
            out = f_pfd * clkfb_div
            if not 3.125e6 <= out <= 400e6:
                continue
            dividers = [d for d in range(1, 129) if 400e6 <= out * d <= 800e6]
            if not dividers:
                continue
            clkop_div = min(dividers, key=lambda d: abs(out * d - 600e6))
            if best is None or abs(out - f_out) < abs(best.f_out - f_out):
                best = ECP5PLL(f_in, clki_div, clkfb_div, clkop_div)
    return _checked(best, f_in, f_out, "ECP5")


class PLLDomain(Elaboratable):
    """Clock and reset of the ``sync`` domain (which the parent defines): a PLL from the
    board's default clock, or the oscillator itself when ``pll`` is ``None``.

    With ``uart_clock_ratio`` 2 (an iCE40 PLL only) the PLL's output clocks the ``uart``
    domain (which the parent defines too) and its half, from the PLL's second port, clocks
    ``sync``: a UART clock fast enough for the line beside an engine clock the logic meets.

    Reset is held until the PLL has locked and :data:`POWER_ON_RESET_S` more have passed,
    and again whenever the PLL loses lock. ``locked`` is the PLL's lock output (1 without a
    PLL).
    """

    def __init__(self, pll: ICE40PLL | ECP5PLL | None, *, uart_clock_ratio: int = 1) -> None:
        with checking_arguments(self):
            if uart_clock_ratio not in (1, 2):
                raise ValueError(f"uart_clock_ratio = {uart_clock_ratio} must be 1 or 2")
            if uart_clock_ratio != 1 and not isinstance(pll, ICE40PLL):
                raise ValueError("a UART clock of its own needs an iCE40 PLL (its second port)")
        self.pll = pll
        self.uart_clock_ratio = uart_clock_ratio
        self.locked = Signal()

    @property
    def frequency(self) -> float | None:
        return None if self.pll is None else self.pll.f_out / self.uart_clock_ratio

    def elaborate(self, platform) -> Module:
        m = Module()
        pll = self.pll
        clk = Signal(name="engine_clk", attrs={"keep": 1})  # named in the timing constraint
        m.d.comb += ClockSignal("sync").eq(clk)
        if pll is None:
            m.submodules.clk_pin = pin = io.Buffer(
                "i", platform.request(platform.default_clk, dir="-")
            )
            m.d.comb += [clk.eq(pin.i), self.locked.eq(1)]
            f_out = platform.default_clk_frequency
        elif isinstance(pll, ICE40PLL):
            # The PLL takes the clock straight from its pad (the iCEBreaker's 12 MHz pin).
            pad = platform.request(platform.default_clk, dir="-")
            settings = dict(
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=pll.divr,
                p_DIVF=pll.divf,
                p_DIVQ=pll.divq,
                p_FILTER_RANGE=pll.filter_range,
                i_PACKAGEPIN=pad.io,
                i_RESETB=1,
                i_BYPASS=0,
                o_LOCK=self.locked,
            )
            if self.uart_clock_ratio == 1:
                m.submodules.pll = Instance("SB_PLL40_PAD", **settings, o_PLLOUTGLOBAL=clk)
                f_out = pll.f_out
            else:
                # Port A: the UART clock; port B: its half, the engine's.
                uart_clk = Signal(name="line_clk", attrs={"keep": 1})  # in the constraint
                m.d.comb += ClockSignal("uart").eq(uart_clk)
                m.submodules.pll = Instance(
                    "SB_PLL40_2F_PAD",
                    **settings,
                    p_PLLOUT_SELECT_PORTA="GENCLK",
                    p_PLLOUT_SELECT_PORTB="GENCLK_HALF",
                    o_PLLOUTGLOBALA=uart_clk,
                    o_PLLOUTGLOBALB=clk,
                )
                platform.add_clock_constraint(uart_clk, pll.f_out)
                f_out = pll.f_out / 2
        else:
            m.submodules.clk_pin = pin = io.Buffer(
                "i", platform.request(platform.default_clk, dir="-")
            )
            clk_in = pin.i
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{pll.f_in / 1e6:g}",
                a_FREQUENCY_PIN_CLKOP=f"{pll.f_out / 1e6:g}",
                a_ICP_CURRENT="12",
                a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA",
                p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC",
                p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=pll.clki_div,
                p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_DIV=pll.clkop_div,
                p_CLKOP_CPHASE=(pll.clkop_div - 1) // 2,
                p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP",
                p_CLKFB_DIV=pll.clkfb_div,
                i_RST=0,
                i_STDBY=0,
                i_CLKI=clk_in,
                o_CLKOP=clk,
                i_CLKFB=clk,
                i_PHASESEL0=0,
                i_PHASESEL1=0,
                i_PHASEDIR=1,
                i_PHASESTEP=1,
                i_PHASELOADREG=1,
                i_PLLWAKESYNC=0,
                i_ENCLKOP=0,
                o_LOCK=self.locked,
            )
            f_out = pll.f_out
        platform.add_clock_constraint(clk, f_out)

        # Power-on reset: count from lock (flip-flops start at zero after configuration).
        delay = max(2, int(POWER_ON_RESET_S * f_out))
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += ClockSignal("por").eq(clk)
        timer = Signal(range(delay + 1))
        with m.If(~self.locked):
            m.d.por += timer.eq(0)
        with m.Elif(timer != delay):
            m.d.por += timer.eq(timer + 1)
        m.submodules.reset_sync = ResetSynchronizer(timer != delay, domain="sync")
        if self.uart_clock_ratio != 1:
            m.submodules.uart_reset_sync = ResetSynchronizer(timer != delay, domain="uart")
        return m
