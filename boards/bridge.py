"""The crossbar engine behind a UART: what a board puts between its serial pins.

::

    rx pin -> UARTReceiver -> command FIFO -> Engine -> UARTTransmitter -> tx pin

Each received byte becomes one command beat of the engine (``stream_bytes = 1``: ``data`` the
byte, ``count`` 1); each response beat's byte goes to the transmitter. The engine answers far
faster than a UART carries bytes, so the response line sets the pace: while the transmitter
is busy the engine waits, and while the engine waits it stops taking commands. The command
FIFO absorbs what the host sends meanwhile. A host that never has more than ``fifo_depth``
command bytes *unanswered* (sent, but their responses not yet fully received) can therefore
never overrun the receiver; :func:`molxbar.sim.bridge.simulate_bridge` drives the bridge
that way.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.construction import checking_arguments
from molxbar.hdl.engine import Engine
from molxbar.hdl.options import EngineOptions
from molxbar.hdl.uart import UARTReceiver, UARTTransmitter, check_divisor
from molxbar.protocol.link import COMMAND_BUFFER_BYTES

__all__ = ["UARTBridge", "DEFAULT_FIFO_DEPTH"]

#: Command FIFO depth in bytes (:data:`molxbar.protocol.link.COMMAND_BUFFER_BYTES`).
DEFAULT_FIFO_DEPTH = COMMAND_BUFFER_BYTES


class UARTBridge(wiring.Component):
    """The engine for ``config`` with a UART on each side.

    Parameters
    ----------
    config
        The crossbar (see :class:`~molxbar.hdl.engine.Engine`).
    divisor
        Clock cycles per UART bit (:func:`~molxbar.hdl.uart.uart_divisor`).
    fifo_depth
        Command bytes the bridge holds while the engine is busy.
    options
        How the engine is built (:class:`~molxbar.hdl.options.EngineOptions`); its streams
        are always one byte wide.

    Members
    -------
    rx : ``In(1)``
        Serial line from the host (idles high).
    tx : ``Out(1)``
        Serial line to the host (idles high).
    busy : ``Out(1)``
        A command is being received or executed, or response bytes are still to go out.
    frame_error, overrun : ``Out(1)``
        Sticky until reset: a frame with a low stop bit, or a byte lost because the FIFO was
        full, has been seen. Either means the command stream may be out of step, and nothing
        on this link finds the command boundaries again: the engine must be reset (the
        board reconfigured) before its answers can be trusted.
    """

    def __init__(
        self,
        config: CrossbarConfig,
        *,
        divisor: int,
        fifo_depth: int = DEFAULT_FIFO_DEPTH,
        options: EngineOptions | None = None,
    ) -> None:
        with checking_arguments(self):
            if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) or fifo_depth < 2:
                raise ValueError(f"fifo_depth = {fifo_depth!r} must be an int >= 2")
            check_divisor(divisor)
            self.engine = Engine(config, options, stream_bytes=1)
        self.uart_rx = UARTReceiver(divisor)
        self.uart_tx = UARTTransmitter(divisor)
        self.config = config
        self.divisor = divisor
        self.fifo_depth = fifo_depth
        super().__init__(
            {
                "rx": In(1, init=1),
                "tx": Out(1, init=1),
                "busy": Out(1),
                "frame_error": Out(1),
                "overrun": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.uart_rx = uart_rx = self.uart_rx
        m.submodules.uart_tx = uart_tx = self.uart_tx
        m.submodules.fifo = cmd_fifo = fifo.SyncFIFOBuffered(width=8, depth=self.fifo_depth)

        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]

        # A byte the FIFO cannot take is an overrun of the receiver's one-byte holding
        # register as soon as the next frame completes: the receiver reports it.
        wiring.connect(m, uart_rx.data, cmd_fifo.w_stream)

        # Bytes to command beats and response beats to bytes (stream_bytes = 1). Both pass a
        # one-byte register, so that neither ready chain runs from the engine's state through
        # a FIFO or the transmitter: a byte every other cycle at most, far above the line rate.
        r = cmd_fifo.r_stream
        cmd_byte = Signal(8)
        cmd_full = Signal()
        m.d.comb += [
            r.ready.eq(~cmd_full),
            engine.cmd.valid.eq(cmd_full),
            engine.cmd.payload.data.eq(cmd_byte),
            engine.cmd.payload.count.eq(1),
        ]
        with m.If(r.valid & ~cmd_full):
            m.d.sync += [cmd_byte.eq(r.payload), cmd_full.eq(1)]
        with m.Elif(engine.cmd.ready):
            m.d.sync += cmd_full.eq(0)
        # A response beat with count 0 carries nothing: taken, not sent.
        tx_byte = Signal(8)
        tx_full = Signal()
        m.d.comb += [
            engine.rsp.ready.eq(~tx_full),
            uart_tx.data.valid.eq(tx_full),
            uart_tx.data.payload.eq(tx_byte),
        ]
        with m.If(engine.rsp.valid & ~tx_full & (engine.rsp.payload.count != 0)):
            m.d.sync += [tx_byte.eq(engine.rsp.payload.data[:8]), tx_full.eq(1)]
        with m.Elif(uart_tx.data.ready):
            m.d.sync += tx_full.eq(0)

        frame_error = Signal()
        overrun = Signal()
        m.d.sync += [
            frame_error.eq(frame_error | uart_rx.frame_error),
            overrun.eq(overrun | uart_rx.overrun),
        ]
        m.d.comb += [
            self.frame_error.eq(frame_error),
            self.overrun.eq(overrun),
            self.busy.eq(
                ~engine.idle | r.valid | cmd_full | tx_full | uart_tx.busy | uart_rx.data.valid
            ),
        ]
        return m
