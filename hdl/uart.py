"""Asynchronous serial (UART) receiver and transmitter: 8 data bits, no parity, 1 stop bit.

Both run at a fixed ``divisor``: clock cycles per bit (``clk_frequency / baud``, see
:func:`uart_divisor`). Bytes travel on :class:`amaranth.lib.stream` interfaces, least
significant bit first on the line, which idles high.

Receiver errors are reported, never hidden in the data:

* a *framing error* (stop bit low: a wrong baud rate, noise, or a break) drops the byte and
  pulses ``frame_error`` for one cycle; the receiver then waits for the line to go high
  before it looks for the next start bit;
* an *overrun* (a byte completes while the previous one is still offered and not taken) drops
  the new byte, keeps the old one and pulses ``overrun`` for one cycle.

A byte that is delivered is therefore always a byte that was sent, in order.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from .construction import checking_arguments

__all__ = ["MIN_DIVISOR", "UARTReceiver", "UARTTransmitter", "check_divisor", "uart_divisor"]

#: Fewest clock cycles per bit: the receiver samples half a bit after the start edge and
#: needs two of those cycles for its input synchronizer.
MIN_DIVISOR = 4
#: Largest baud rate error :func:`uart_divisor` accepts (both ends together may be off by
#: about 4 % before the last sample leaves its bit).
MAX_BAUD_ERROR = 0.02


def check_divisor(divisor: int) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``divisor`` is a usable cycles-per-bit count."""
    if isinstance(divisor, bool) or not isinstance(divisor, int):
        raise TypeError(f"divisor must be an int, not {divisor!r}")
    if divisor < MIN_DIVISOR:
        raise ValueError(f"divisor = {divisor} must be >= {MIN_DIVISOR} clock cycles per bit")


def uart_divisor(clk_frequency: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_frequency`` (Hz), the nearest integer.

    Raises ``ValueError`` when the rounded divisor misses the baud rate by more than 2 %
    or is below :data:`MIN_DIVISOR`.
    """
    if baud <= 0 or clk_frequency <= 0:
        raise ValueError(f"baud = {baud} and clk_frequency = {clk_frequency} must be positive")
    divisor = round(clk_frequency / baud)
    if divisor < MIN_DIVISOR:
        raise ValueError(
            f"baud = {baud} is too fast for a {clk_frequency / 1e6:g} MHz clock: "
            f"{clk_frequency / baud:.2f} cycles per bit, at least {MIN_DIVISOR} needed"
        )
    error = abs(clk_frequency / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(
            f"baud = {baud} at {clk_frequency / 1e6:g} MHz: divisor {divisor} is off by "
            f"{100 * error:.1f} %, more than {100 * MAX_BAUD_ERROR:.0f} %"
        )
    return divisor


class UARTReceiver(wiring.Component):
    """Serial line in, bytes out.

    A byte is offered on ``data`` about ``9.5 * divisor + 3`` cycles after the falling edge
    of its start bit (the middle of its stop bit plus the two-flip-flop input synchronizer),
    and stays offered until taken. The receiver looks for the next start bit right after the
    middle of the stop bit, so a sender may be up to half a bit fast per frame.

    Parameters
    ----------
    divisor
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.

    Members
    -------
    rx : ``In(1)``
        The serial line, asynchronous to the clock (synchronized here); idles high.
    data : ``Out(stream.Signature(8))``
        Received bytes.
    frame_error : ``Out(1)``
        One-cycle pulse: a frame ended in a low stop bit; its byte was dropped.
    overrun : ``Out(1)``
        One-cycle pulse: a byte arrived while ``data`` still offered the previous one; the new
        byte was dropped.
    """

    def __init__(self, divisor: int) -> None:
        with checking_arguments(self):
            check_divisor(divisor)
        self.divisor = divisor
        super().__init__(
            {
                "rx": In(1, init=1),
                "data": Out(stream.Signature(8)),
                "frame_error": Out(1),
                "overrun": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self.divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(d))
        bit = Signal(range(8))
        shreg = Signal(8)

        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                # Middle of the start bit: a line that is high again was a glitch.
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                    with m.If(line):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), shreg.eq(Cat(shreg[1:], line)), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(~line):
                        m.d.comb += self.frame_error.eq(1)
                        m.next = "BREAK"
                    with m.Elif(self.data.valid & ~self.data.ready):
                        m.d.comb += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                        m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """Bytes in, serial line out.

    A byte taken from ``data`` starts its start bit on ``tx`` the next cycle; each bit lasts
    ``divisor`` cycles, and the next byte is taken in the last cycle of the stop bit, so a
    steady stream leaves back to back at ``10 * divisor`` cycles per byte.

    Parameters
    ----------
    divisor
        Clock cycles per bit, at least :data:`MIN_DIVISOR`.

    Members
    -------
    data : ``In(stream.Signature(8))``
        Bytes to send.
    tx : ``Out(1)``
        The serial line, driven straight from a flip-flop; high when idle.
    busy : ``Out(1)``
        A frame is on the line.
    """

    def __init__(self, divisor: int) -> None:
        with checking_arguments(self):
            check_divisor(divisor)
        self.divisor = divisor
        super().__init__(
            {
                "data": In(stream.Signature(8)),
                "tx": Out(1, init=1),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        d = self.divisor
        frame = Signal(10, init=(1 << 10) - 1)  # bit 0 is on the line; ones shift in behind
        left = Signal(range(11))  # bits of the frame still to finish, the current one included
        timer = Signal(range(d))

        # ``ready`` is a register: ``left == 0 | (left == 1 & timer == 0)`` (idle, or the last
        # cycle of the stop bit), made a cycle ahead, so that taking a byte is one gate from
        # flip-flops (on a full iCE40 the UART's 48 MHz loop was long enough without it).
        ready = Signal(init=1)
        load = self.data.valid & ready
        m.d.sync += ready.eq(~load & ((left == 0) | ((left == 1) & (timer <= 1))))
        m.d.comb += [
            self.tx.eq(frame[0]),
            self.busy.eq(left != 0),
            self.data.ready.eq(ready),
        ]
        with m.If(left != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [
                    timer.eq(d - 1),
                    frame.eq(Cat(frame[1:], Const(1, 1))),
                    left.eq(left - 1),
                ]
        with m.If(load):
            m.d.sync += [
                frame.eq(Cat(Const(0, 1), self.data.payload, Const(1, 1))),
                left.eq(10),
                timer.eq(d - 1),
            ]
        return m
