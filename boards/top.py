"""Board tops: clock, reset, UART pins and status LEDs around the :class:`UARTBridge`.

The top has no ports of its own: everything it touches is a platform resource, requested by
name from the board's ``amaranth-boards`` platform.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.construction import checking_arguments
from molxbar.hdl.options import EngineOptions
from molxbar.hdl.uart import uart_divisor

from .bridge import UARTBridge
from .clocks import ECP5PLL, ICE40PLL, PLLDomain

__all__ = ["BoardTop", "HEARTBEAT_HZ", "LED_STATUS"]

#: Blink rate of the heartbeat LED.
HEARTBEAT_HZ = 1.5
#: What a status LED can show.
LED_STATUS = ("heartbeat", "busy", "error", "busy_or_error", "locked")


class BoardTop(Elaboratable):
    """The crossbar on a board: ``uart`` 0 to the host, the engine clocked by ``pll``.

    Status LEDs, one per name in ``leds`` (the platform's ``led`` 0, 1, ... in order):

    * ``heartbeat``: blinks while the engine clock runs and reset is released;
    * ``busy``: a command is arriving, executing or being answered;
    * ``error``: a UART framing error or overrun, or a refused or timed-out link frame, was
      seen (sticky until reconfiguration; the link recovers by itself, the counters say
      how often);
    * ``busy_or_error``: flickers with activity, steady on an error;
    * ``locked``: the PLL is locked.

    Parameters
    ----------
    config
        The crossbar.
    pll
        PLL setting of the engine clock (:func:`~molxbar.boards.clocks.ice40_pll`,
        :func:`~molxbar.boards.clocks.ecp5_pll`), or ``None`` to run at the oscillator.
    oscillator_hz
        The board's clock, needed when ``pll`` is ``None``.
    baud
        UART bit rate; the divisor is derived from the UART's clock.
    uart_clock_ratio
        The UART's clock in engine cycles: 1, the engine's; 2, twice it, from the PLL
        (:class:`~molxbar.boards.clocks.PLLDomain`), the engine's the PLL's half.
    options
        How the engine is built (:class:`~molxbar.hdl.options.EngineOptions`).
    leds
        The status shown on each LED, by the names above.
    """

    def __init__(
        self,
        config: CrossbarConfig,
        *,
        pll: ICE40PLL | ECP5PLL | None,
        baud: int,
        leds: tuple[str, ...] = ("heartbeat", "busy", "error", "locked"),
        oscillator_hz: float | None = None,
        options: EngineOptions | None = None,
        uart_clock_ratio: int = 1,
    ) -> None:
        with checking_arguments(self):
            self.clocks = PLLDomain(pll, uart_clock_ratio=uart_clock_ratio)
            self.clock_hz = self.clocks.frequency if pll is not None else oscillator_hz
            if self.clock_hz is None:
                raise ValueError("without a PLL the top needs oscillator_hz")
            unknown = set(leds) - set(LED_STATUS)
            if unknown:
                raise ValueError(f"unknown LED status {sorted(unknown)}; choose from {LED_STATUS}")
            # Made here, so that a bad configuration fails before any file is written.
            self.bridge = UARTBridge(
                config,
                divisor=uart_divisor(self.clock_hz * uart_clock_ratio, baud),
                uart_clock_ratio=uart_clock_ratio,
                options=options,
            )
        self.config = config
        self.pll = pll
        self.baud = baud
        self.leds = tuple(leds)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.domains.sync = ClockDomain("sync")
        if self.bridge.uart_domain != "sync":
            m.domains.uart = ClockDomain("uart")
        m.submodules.clocks = clocks = self.clocks
        m.submodules.bridge = bridge = self.bridge
        f_clk = self.clock_hz

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_pin = rx_pin = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_pin = tx_pin = io.Buffer("o", uart.tx)
        m.d.comb += [bridge.rx.eq(rx_pin.i), tx_pin.o.eq(bridge.tx)]

        half_period = max(1, int(f_clk / (2 * HEARTBEAT_HZ)))
        beat_timer = Signal(range(half_period))
        heartbeat = Signal()
        with m.If(beat_timer == half_period - 1):
            m.d.sync += [beat_timer.eq(0), heartbeat.eq(~heartbeat)]
        with m.Else():
            m.d.sync += beat_timer.eq(beat_timer + 1)

        error = bridge.frame_error | bridge.overrun | bridge.link_error
        status = {
            "heartbeat": heartbeat,
            "busy": bridge.busy,
            "error": error,
            "busy_or_error": bridge.busy | error,
            "locked": clocks.locked,
        }
        for index, name in enumerate(self.leds):
            led = io.Buffer("o", platform.request("led", index, dir="-"))
            m.submodules[f"led{index}"] = led
            m.d.comb += led.o.eq(status[name])
        return m
