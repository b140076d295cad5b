"""The supported boards: platform, default crossbar, engine clock, LEDs, programmer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from molxbar.emulator.config import CrossbarConfig, preset
from molxbar.hdl.options import EngineOptions
from molxbar.hdl.uart import uart_divisor
from molxbar.protocol.link import BOARD_BAUDS

from .clocks import ECP5PLL, ICE40PLL, ecp5_pll, ice40_pll

__all__ = ["Board", "BoardCrossbar", "BOARDS", "CROSSBARS", "board_config"]

#: The crossbars a board can carry (:class:`Board` ``twin`` and ``ideal``).
CROSSBARS = ("twin", "ideal")


@dataclass(frozen=True)
class BoardCrossbar:
    """A crossbar a board's bitstream carries by default: the configuration ``preset``, with
    or without noise hardware and leakage hardware (for the reverse leakage), its MAC
    lanes, and how the engine is built; ``warning``, when set, is what a build of it says
    first (a crossbar known not to fit)."""

    preset: str
    noise_hardware: bool
    leakage_hardware: bool
    lanes: int
    options: EngineOptions = EngineOptions()
    warning: str = ""


@dataclass(frozen=True)
class Board:
    """One FPGA board.

    ``twin`` is the device with its noise; ``ideal`` ideal cells without noise hardware, for
    the fastest clock and the most lanes; ``crossbar`` names the one a build carries unless told
    (``--twin``, ``--ideal``). ``per_lane_registers`` says whether each lane
    keeps its own copy of the input registers all lanes share (on a large die the multipliers
    are far apart; on a small one the copies only cost cells); ``synth_options`` are options
    of Yosys' ``synth_<family>`` command; ``clock_hz`` is the default engine clock: the
    oscillator itself, or the nearest the PLL makes; ``uart_clock_ratio`` is the UART's
    clock in engine cycles (2: its own domain at twice the engine's clock, from the PLL,
    for a line faster than the engine's clock divides);
    ``resources`` maps report names to nextpnr's cell types, ``synthesis_cells`` to the
    prefixes of Yosys' cell types; ``capacity`` is what the device has of each;
    ``multiplier_bits`` is the width of the device's multiplier blocks (signed operands);
    ``multiplier_rows`` are rows of the device's multiplier sites (nextpnr BEL names), in the
    order the lanes take them (empty: nextpnr places the multipliers).
    """

    name: str
    description: str
    platform: type
    family: str
    multiplier_bits: int
    twin: BoardCrossbar
    ideal: BoardCrossbar
    crossbar: str
    per_lane_registers: bool
    synth_options: str
    clock_hz: float
    pll: Callable[[float, float], ICE40PLL | ECP5PLL]
    leds: tuple[str, ...]
    bitstream: str
    loader_board: str
    resources: dict[str, tuple[str, ...]]
    synthesis_cells: dict[str, tuple[str, ...]]
    capacity: dict[str, int]
    multiplier_rows: tuple[tuple[str, ...], ...] = ()
    uart_clock_ratio: int = 1

    def crossbar_named(self, name: str | None = None) -> BoardCrossbar:
        """The crossbar ``name`` (:data:`CROSSBARS`; ``None``: the board's default)."""
        name = name or self.crossbar
        if name not in CROSSBARS:
            raise ValueError(f"crossbar = {name!r} must be one of {', '.join(CROSSBARS)}")
        return getattr(self, name)

    def baud_for(self, clock_hz: float | None = None) -> int:
        """The UART bit rate of the board's bridge at the engine clock ``clock_hz`` (the
        default clock if ``None``): the fastest its USB-serial chip makes that the UART can
        divide its clock to (:data:`~molxbar.protocol.link.BOARD_BAUDS`)."""
        clock_hz = clock_hz or self.clock_hz
        for baud in BOARD_BAUDS[self.name]:
            try:
                uart_divisor(clock_hz * self.uart_clock_ratio, baud)
            except ValueError:
                continue
            return baud
        raise ValueError(
            f"clock_hz = {clock_hz:g}: no bit rate of the {self.name}'s serial chip "
            f"({', '.join(map(str, BOARD_BAUDS[self.name]))}) divides it"
        )

    @property
    def oscillator_hz(self) -> float:
        """Frequency of the board's default clock."""
        return self.platform().default_clk_frequency

    def make_pll(self, clock_hz: float | None = None) -> ICE40PLL | ECP5PLL | None:
        """The PLL setting for the engine clock ``clock_hz`` (the board's default if
        ``None``): the nearest the PLL makes to it (or to the UART's clock, when that is a
        multiple of it); ``None`` when the engine and the UART run at the oscillator's own
        frequency."""
        clock_hz = clock_hz or self.clock_hz
        if clock_hz == self.oscillator_hz and self.uart_clock_ratio == 1:
            return None
        return self.pll(self.oscillator_hz, clock_hz * self.uart_clock_ratio)

    def engine_hz(self, pll: ICE40PLL | ECP5PLL | None) -> float:
        """The engine clock a PLL setting of :meth:`make_pll` gives."""
        return self.oscillator_hz if pll is None else pll.f_out / self.uart_clock_ratio

    @property
    def device(self) -> str:
        return self.platform.device


#: The iCEBreaker's twin, measured with ``molxbar build --board icebreaker --twin``
#: (docs/boards.md).
ICEBREAKER_TWIN_WARNING = (
    "the twin does not fit the iCE40 UP5K: with one noisy lane and the serial link it "
    "synthesises to 4,856 LUT4 and 4,287 flip-flops, which nextpnr packs into about 7,800 "
    "of the 5,280 logic cells (docs/boards.md); the iCEBreaker builds --ideal by default"
)


def _lfe5u_85f_multiplier_rows() -> tuple[tuple[str, ...], ...]:
    """The LFE5U-85F's 18x18 multipliers in the two of its three rows nearest the middle of
    the die (Y34 and Y58), 52 a row: four in each of 13 DSP blocks. The second row runs right
    to left, so that lanes in sequence stay neighbours where the rows meet."""
    blocks = (4, 13, 22, 31, 40, 49, 58, 69, 78, 87, 96, 105, 114)
    sites = [(x + dx, bel) for x in blocks for dx, bel in ((0, 0), (1, 1), (4, 4), (5, 5))]
    return tuple(
        tuple(f"X{x}/Y{y}/MULT18_{bel}" for x, bel in order)
        for y, order in ((34, sites), (58, sites[::-1]))
    )


BOARDS: dict[str, Board] = {
    board.name: board
    for board in (
        Board(
            name="icebreaker",
            description="1BitSquared iCEBreaker, Lattice iCE40 UP5K",
            platform=ICEBreakerPlatform,
            family="ice40",
            multiplier_bits=16,  # SB_MAC16
            # A noisy lane takes four of the 8 DSPs (x*g, x*n in two 16 x 16 blocks, z*s) and
            # a direct write's error one more: logic, not DSPs, runs out first. The levels
            # are in an SPRAM, the Speck generator takes a round a cycle.
            twin=BoardCrossbar(
                "ru_azo_2024",
                noise_hardware=True,
                leakage_hardware=False,
                lanes=1,
                options=EngineOptions(
                    speck_unroll=1, noise_multipliers=True, single_port_banks=True
                ),
                warning=ICEBREAKER_TWIN_WARNING,
            ),
            # Ideal unidirectional cells without the leakage hardware, 4 lanes: 23,400 VMM/s
            # at 24 MHz, 2.7 times what the serial link carries at 12 Mbaud with two frames
            # in flight (8 lanes give the link no more and fill the die: 5,263 of the 5,280
            # logic cells, not routed). The engine makes 33 MHz with the link; it runs at 24 MHz,
            # the half of the PLL's 48 MHz, which clocks the UART at 4 cycles per bit at
            # 12 Mbaud, the FT2232H's fastest.
            ideal=BoardCrossbar("ideal14", noise_hardware=False, leakage_hardware=False, lanes=4),
            crossbar="ideal",
            per_lane_registers=False,
            # The DSP blocks, the SPRAMs (for memories that ask for them), and the UltraPlus
            # delays for the timing-driven LUT mapping (the default is the HX series').
            synth_options="-dsp -spram -device u",
            clock_hz=24e6,
            uart_clock_ratio=2,
            pll=ice40_pll,
            # Red (led 0): activity, steady on an error; green (led 1): heartbeat.
            leds=("busy_or_error", "heartbeat"),
            bitstream="bin",
            loader_board="ice40_generic",  # (openFPGALoader has no "icebreaker")
            resources={
                "lut": ("ICESTORM_LC",),
                "dsp": ("ICESTORM_DSP",),
                "bram": ("ICESTORM_RAM",),
                "spram": ("ICESTORM_SPRAM",),
                "pll": ("ICESTORM_PLL",),
            },
            synthesis_cells={
                "lut4": ("SB_LUT4",),
                "ff": ("SB_DFF",),
                "carry": ("SB_CARRY",),
                "dsp": ("SB_MAC16",),
                "bram": ("SB_RAM40_4K",),
                "spram": ("SB_SPRAM256KA",),
            },
            # iCE40 UP5K: 5280 logic cells (LUT4 + flip-flop each), 30 x 4 kbit block RAM,
            # 8 DSPs, 4 x 256 kbit SPRAM.
            capacity={"lut4": 5280, "ff": 5280, "carry": 5280, "dsp": 8, "bram": 30, "spram": 4},
        ),
        Board(
            name="ulx3s-85f",
            description="Radiona ULX3S, Lattice ECP5 LFE5U-85F",
            platform=ULX3S_85F_Platform,
            family="ecp5",
            multiplier_bits=18,  # MULT18X18D
            # Two multipliers a noisy lane (x*g, x*n), placed by nextpnr (a second product
            # register gives each product a cycle to reach its lane); the pipelined noise
            # generator makes the next vector's words while a VMM runs; the level banks
            # (128 deep) stay in LUTs, as the ideal 64 lanes' 64-deep ones. 32 lanes: 64 noisy
            # lanes with leakage synthesise to about 113,000 of the 83,640 LUT4 slots
            # (docs/boards.md). The ideal cells stay the default until the twin's timing at
            # the board's clock is measured.
            twin=BoardCrossbar(
                "ru_azo_2024",
                noise_hardware=True,
                leakage_hardware=True,
                lanes=32,
                options=EngineOptions(speck_pipeline=True, product_stages=2),
            ),
            ideal=BoardCrossbar("ideal14", noise_hardware=False, leakage_hardware=True, lanes=64),
            crossbar="ideal",
            per_lane_registers=True,
            synth_options="",
            # 64 lanes reach 100.5 MHz after place and route at a 100 MHz target; 75 MHz
            # from the PLL leaves a margin for other placements and tool versions and is 25
            # cycles per bit at 3 Mbaud.
            clock_hz=75e6,
            pll=ecp5_pll,
            leds=("heartbeat", "busy", "error", "locked"),
            bitstream="bit",
            loader_board="ulx3s",
            resources={
                "lut": ("TRELLIS_COMB",),
                "ff": ("TRELLIS_FF",),
                "dsp": ("MULT18X18D",),
                "bram": ("DP16KD",),
                "lutram": ("TRELLIS_RAMW",),
                "pll": ("EHXPLLL",),
            },
            synthesis_cells={
                "lut4": ("LUT4",),
                "ff": ("TRELLIS_FF",),
                "carry": ("CCU2C",),
                "dsp": ("MULT18X18D",),
                "bram": ("DP16KD",),
                "lutram": ("TRELLIS_DPR16X4",),
            },
            # LFE5U-85F: 83,640 LUT4 and flip-flops (41,820 two-bit CCU2C carries), 208 x
            # 18 kbit block RAM, 156 18x18 multipliers.
            capacity={
                "lut4": 83_640,
                "ff": 83_640,
                "carry": 41_820,
                "dsp": 156,
                "bram": 208,
            },
            # Each lane's multiplier at a fixed site, spread along two rows: the placer then
            # keeps the lane's registers beside it (left to itself it put some multipliers
            # 40 columns from their lanes: 91-95 MHz at 100).
            multiplier_rows=_lfe5u_85f_multiplier_rows(),
        ),
    )
}


def board_config(
    board: Board, lanes: int | None = None, *, crossbar: str | None = None, **changes
) -> CrossbarConfig:
    """The crossbar a board carries: ``"twin"``, the device (``ru_azo_2024``: 64 x 64, 16,520
    levels, read noise and write error, with their hardware), or ``"ideal"``, the ``ideal14``
    preset without noise hardware (``None``: the board's choice); ``lanes`` MAC lanes (the
    board's default for that crossbar if ``None``) and ``changes`` on top."""
    crossbar = board.crossbar_named(crossbar)
    hardware = {
        "noise_hardware": crossbar.noise_hardware,
        "leakage_hardware": crossbar.leakage_hardware,
    }
    if not crossbar.noise_hardware:
        hardware.update(read_noise=False, write_noise=False)
    return preset(crossbar.preset, lanes=lanes or crossbar.lanes, **{**hardware, **changes})
