"""The crossbar engine behind a UART and the link layer: what a board puts between its
serial pins.

::

    rx pin -> UARTReceiver -> LinkReceiver -> command buffer -> BufferReader -> Engine
    tx pin <- UARTTransmitter <- SlipEncoder <- LinkTransmitter <-------------- Engine
                                                 (replay buffer, LinkCounters)

The UART may run in a clock domain of its own, ``uart``, a whole multiple of the engine's
clock (``uart_clock_ratio``): a line faster than the engine's clock could divide, such as
the iCEBreaker's 12 Mbaud (4 cycles a bit at 48 MHz beside an engine at 24 MHz). A
handshake (:class:`~molxbar.hdl.crossing.StreamCrossing`) then carries the bytes each way,
a byte at a time, and the UART's error pulses cross with pulse synchronizers.

The host sends the engine's commands in frames (docs/link.md): the link receiver checks
each frame whole (escapes, length, CRC) before any of it reaches the engine, and the link
transmitter answers every frame, good or bad, with a response frame naming its ``seq``.
The engine takes a frame's commands only while that frame is being answered, so the
response frame holds exactly the responses to its commands; it closes when the engine has
taken every byte of the frame and is idle with nothing left to send.

Frames run in order: a frame that is not the one after the last one run is refused
(``OUT_OF_ORDER``), and either of the last two run is answered again from the replay
buffer. Flow control is by credits: each response frame reports the payload bytes the
command buffer takes once that answer is out; the host counts the frames it has sent since
against them, and a frame that does not fit the free buffer is refused whole
(``OVERFLOW``). The UART's own errors (a low stop bit, an overrun of its holding register)
lose a byte, which the CRC then refuses; they are counted, and the counters are read and
cleared with link control frames. A Verilog user who streams commands on-chip uses the
:class:`~molxbar.hdl.engine.Engine` without any of this.
"""

from __future__ import annotations

from amaranth.hdl import DomainRenamer, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer, PulseSynchronizer
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.construction import checking_arguments
from molxbar.hdl.crossing import StreamCrossing
from molxbar.hdl.engine import Engine
from molxbar.hdl.options import EngineOptions
from molxbar.hdl.uart import UARTReceiver, UARTTransmitter, check_divisor
from molxbar.protocol.link import (
    COMMAND_BUFFER_BYTES,
    IDLE_TIMEOUT_BYTES,
    REPLAY_BUFFER_BYTES,
    LinkCounter,
)

from .link import (
    BufferReader,
    LinkCounters,
    LinkReceiver,
    LinkTransmitter,
    SlipEncoder,
    check_buffer_bytes,
)

__all__ = ["UARTBridge", "ENGINE_SETTLE_CYCLES"]

#: Cycles the engine must be idle, with every byte of a frame taken and nothing to send,
#: before the frame's response closes (its idle flag follows a taken byte within a cycle).
ENGINE_SETTLE_CYCLES = 4


class UARTBridge(wiring.Component):
    """The engine for ``config`` with a UART and the link layer on each side.

    Parameters
    ----------
    config
        The crossbar (see :class:`~molxbar.hdl.engine.Engine`).
    divisor
        UART clock cycles per bit (:func:`~molxbar.hdl.uart.uart_divisor`).
    uart_clock_ratio
        The UART's clock in cycles per engine cycle: 1, the UART runs in ``sync``; more, in
        the domain ``uart`` (which the parent defines) at that multiple of ``sync``.
    buffer_bytes
        The command buffer (a power of two): a frame's payload and CRC.
    replay_bytes
        The replay buffer (a power of two): the last two command frames' responses, a
        half each.
    timeout_bytes
        Byte times without a byte after which a partial frame is dropped.
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
        A frame is being received or answered, or the engine is working.
    frame_error, overrun, link_error : ``Out(1)``
        Sticky until reset, for LEDs: a UART frame with a low stop bit, a UART byte lost to
        an overrun, a frame refused or timed out. The link recovers from each by itself;
        the counters say how often.
    """

    def __init__(
        self,
        config: CrossbarConfig,
        *,
        divisor: int,
        buffer_bytes: int = COMMAND_BUFFER_BYTES,
        replay_bytes: int = REPLAY_BUFFER_BYTES,
        timeout_bytes: int = IDLE_TIMEOUT_BYTES,
        uart_clock_ratio: int = 1,
        options: EngineOptions | None = None,
    ) -> None:
        with checking_arguments(self):
            check_divisor(divisor)
            if isinstance(uart_clock_ratio, bool) or not isinstance(uart_clock_ratio, int):
                raise TypeError(f"uart_clock_ratio must be an int, not {uart_clock_ratio!r}")
            if uart_clock_ratio < 1:
                raise ValueError(f"uart_clock_ratio = {uart_clock_ratio} must be >= 1")
            if isinstance(timeout_bytes, bool) or not isinstance(timeout_bytes, int):
                raise TypeError(f"timeout_bytes must be an int, not {timeout_bytes!r}")
            if timeout_bytes < 2:
                raise ValueError(f"timeout_bytes = {timeout_bytes} must be >= 2 byte times")
            check_buffer_bytes("buffer_bytes", buffer_bytes)
            check_buffer_bytes("replay_bytes", replay_bytes)
            # The engine first: it checks the configuration, and nothing else is made yet
            # that a refused one would leave unused.
            self.engine = Engine(config, options, stream_bytes=1)
        self.receiver = LinkReceiver(
            buffer_bytes, max(1, timeout_bytes * 10 * divisor // uart_clock_ratio)
        )
        self.transmitter = LinkTransmitter(buffer_bytes, replay_bytes)
        self.reader = BufferReader(buffer_bytes)
        self.uart_rx = UARTReceiver(divisor)
        self.uart_tx = UARTTransmitter(divisor)
        self.counters = LinkCounters()
        self.encoder = SlipEncoder()
        self.config = config
        self.divisor = divisor
        self.buffer_bytes = buffer_bytes
        self.replay_bytes = replay_bytes
        self.timeout_bytes = timeout_bytes
        self.uart_clock_ratio = uart_clock_ratio
        #: The clock domain of the UART.
        self.uart_domain = "sync" if uart_clock_ratio == 1 else "uart"
        super().__init__(
            {
                "rx": In(1, init=1),
                "tx": Out(1, init=1),
                "busy": Out(1),
                "frame_error": Out(1),
                "overrun": Out(1),
                "link_error": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.engine = engine = self.engine
        uart_rx, uart_tx = self.uart_rx, self.uart_tx
        m.submodules.uart_rx = DomainRenamer(self.uart_domain)(uart_rx)
        m.submodules.uart_tx = DomainRenamer(self.uart_domain)(uart_tx)
        m.submodules.receiver = receiver = self.receiver
        m.submodules.transmitter = transmitter = self.transmitter
        m.submodules.reader = reader = self.reader
        m.submodules.counters = counters = self.counters
        m.submodules.encoder = encoder = self.encoder
        m.submodules.buffer = buffer = Memory(shape=8, depth=self.buffer_bytes, init=[])

        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]

        line_in, line_out, uart_events, uart_busy = self._uart_crossing(m)

        # Line bytes to frames, frames to entries, the payload to the buffer.
        wiring.connect(m, line_in, receiver.data)
        wiring.connect(m, receiver.buffer, buffer.write_port())
        wiring.connect(m, reader.buffer, buffer.read_port())
        # The receiver holds the entry of the last frame while the transmitter answers the
        # one before: two frames in hand, enough for a host that keeps FRAMES_IN_FLIGHT.
        wiring.connect(m, receiver.frames, transmitter.frames)
        m.d.comb += receiver.taken.eq(reader.taken)

        # The frame being answered: its bytes to the engine, one beat each.
        m.d.comb += [
            reader.enable.eq(transmitter.running),
            reader.limit.eq(transmitter.end),
            engine.cmd.valid.eq(reader.cmd.valid),
            engine.cmd.payload.data.eq(reader.cmd.payload),
            engine.cmd.payload.count.eq(1),
            reader.cmd.ready.eq(engine.cmd.ready),
        ]
        # Response beats to bytes through a one-byte register, so that no ready chain runs
        # from the engine's state through the transmitter; a beat with count 0 carries
        # nothing: taken, not sent.
        rsp_byte = Signal(8)
        rsp_full = Signal()
        m.d.comb += [
            engine.rsp.ready.eq(~rsp_full),
            transmitter.rsp.valid.eq(rsp_full),
            transmitter.rsp.payload.eq(rsp_byte),
        ]
        with m.If(engine.rsp.valid & ~rsp_full & (engine.rsp.payload.count != 0)):
            m.d.sync += [rsp_byte.eq(engine.rsp.payload.data[:8]), rsp_full.eq(1)]
        with m.Elif(transmitter.rsp.ready):
            m.d.sync += rsp_full.eq(0)

        settle = Signal(range(ENGINE_SETTLE_CYCLES + 1))
        quiet = transmitter.running & reader.empty & engine.idle & ~engine.rsp.valid & ~rsp_full
        with m.If(~quiet):
            m.d.sync += settle.eq(0)
        with m.Elif(settle != ENGINE_SETTLE_CYCLES):
            m.d.sync += settle.eq(settle + 1)
        m.d.comb += transmitter.engine_done.eq(quiet & (settle == ENGINE_SETTLE_CYCLES))

        m.d.comb += [
            transmitter.counts.eq(counters.counts),
            transmitter.last_seq.eq(receiver.last_seq),
            transmitter.ran.eq(receiver.ran),
            counters.clear.eq(transmitter.clear),
        ]
        # A one-byte register between the transmitter and the encoder, so that the UART's
        # ready does not run through the encoder into the transmitter's state.
        held = Signal.like(transmitter.o.payload)
        held_full = Signal()
        m.d.comb += [
            transmitter.o.ready.eq(~held_full),
            encoder.i.valid.eq(held_full),
            encoder.i.payload.eq(held),
        ]
        with m.If(transmitter.o.valid & ~held_full):
            m.d.sync += [held.eq(transmitter.o.payload), held_full.eq(1)]
        with m.Elif(encoder.i.ready):
            m.d.sync += held_full.eq(0)
        wiring.connect(m, encoder.o, line_out)

        events = Signal(len(LinkCounter))
        m.d.comb += [
            events[LinkCounter.FRAME_ERROR].eq(uart_events["frame_error"]),
            events[LinkCounter.OVERRUN].eq(uart_events["overrun"]),
            events[LinkCounter.BAD_CRC].eq(receiver.bad_crc),
            events[LinkCounter.BAD_FRAME].eq(receiver.bad_frame),
            events[LinkCounter.TIMEOUT].eq(receiver.timeout),
            counters.events.eq(events),
        ]
        sticky = {"frame_error": Signal(), "overrun": Signal(), "link_error": Signal()}
        m.d.sync += [
            sticky["frame_error"].eq(sticky["frame_error"] | uart_events["frame_error"]),
            sticky["overrun"].eq(sticky["overrun"] | uart_events["overrun"]),
            sticky["link_error"].eq(
                sticky["link_error"] | receiver.bad_crc | receiver.bad_frame | receiver.timeout
            ),
        ]
        m.d.comb += [
            self.frame_error.eq(sticky["frame_error"]),
            self.overrun.eq(sticky["overrun"]),
            self.link_error.eq(sticky["link_error"]),
            self.busy.eq(
                ~engine.idle
                | receiver.frames.valid
                | ~transmitter.frames.ready
                | held_full
                | uart_busy
                | line_in.valid
            ),
        ]
        return m

    def _uart_crossing(self, m: Module):
        """The UART's bytes and events in ``sync``: the received bytes (a stream into the
        link), the bytes to send (a stream from the link), the ``frame_error`` and
        ``overrun`` pulses, and whether the transmitter is busy. In ``sync`` already, or
        through handshakes and synchronizers from the ``uart`` domain."""
        uart_rx, uart_tx = self.uart_rx, self.uart_tx
        if self.uart_domain == "sync":
            events = {"frame_error": uart_rx.frame_error, "overrun": uart_rx.overrun}
            return uart_rx.data, uart_tx.data, events, uart_tx.busy
        m.submodules.rx_crossing = rx = StreamCrossing(8, w_domain="uart", r_domain="sync")
        m.submodules.tx_crossing = tx = StreamCrossing(8, w_domain="sync", r_domain="uart")
        wiring.connect(m, uart_rx.data, rx.i)
        wiring.connect(m, tx.o, uart_tx.data)
        events = {}
        for name in ("frame_error", "overrun"):
            m.submodules[f"{name}_sync"] = pulse = PulseSynchronizer("uart", "sync")
            m.d.comb += pulse.i.eq(getattr(uart_rx, name))
            events[name] = pulse.o
        busy = Signal()
        m.submodules.busy_sync = FFSynchronizer(uart_tx.busy | tx.o.valid, busy)
        return rx.o, tx.i, events, busy
