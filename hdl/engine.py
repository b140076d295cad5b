"""The crossbar engine: command bytes in, response bytes out, bit-exact with the golden engine.

Structure (one concept per submodule; :doc:`/architecture` draws it)::

    cmd -> BeatUnpacker -> CommandReceiver --job--> Executor --> LevelBanks, EngineRegisters,
                               |  fields, buffers      |         Rank1Unit, NoiseWords
                               +-----------------------+--issue--> VmmDatapath --+
                                                       +--> ResponseSender <------+
                                                               -> BeatPacker -> rsp

* :class:`~molxbar.hdl.receiver.CommandReceiver` parses commands into jobs and fills the
  buffers (row levels, rank-1 factors, input vectors, noise table);
* :class:`~molxbar.hdl.executor.Executor` runs one job at a time on the other components:
  :class:`~molxbar.hdl.registers.EngineRegisters` (the settings and the STATUS image),
  :class:`~molxbar.hdl.banks.LevelBanks` (a bank of levels per lane),
  :class:`~molxbar.hdl.rank1.Rank1Unit`, :class:`~molxbar.hdl.noise_words.NoiseWords`
  (the noise words of noisy operations) and the row-by-row issue of VMMs;
* :class:`~molxbar.hdl.datapath.VmmDatapath` turns the issued rows into sums, outputs and
  response bytes;
* :class:`~molxbar.hdl.sender.ResponseSender` sends the executor's responses and passes the
  datapath's bytes on.

Timing of a VMM (noise off): one row per cycle to all lanes, group after group, so the sums
are complete ``rows * cols / lanes + 6`` cycles after the start (``+ 11`` with noise
hardware, whose lanes take five more stages; one more with two product stages); the next
group starts without a bubble while the previous group's sums drain into the datapath's
FIFO. The next vector of a batch starts as soon as the last group of the previous one is
issued and the sums of the group before it have left the latch. With read noise on, a VMM
waits for its noise words (:class:`~molxbar.hdl.noise_words.NoiseWords`), which are made
while the previous operation runs.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.beats import MAX_STREAM_BYTES
from molxbar.protocol.spec import FieldKind, Layout

from .banks import LevelBanks
from .beats import BeatPacker, BeatUnpacker, beat_layout
from .construction import checking_arguments
from .datapath import VmmDatapath
from .executor import Executor, short_response_bytes
from .jobs import buffer_shapes
from .noise_words import NoiseWords
from .options import EngineOptions
from .rank1 import Rank1Unit
from .receiver import CommandReceiver
from .registers import EngineRegisters, status_length
from .sender import ResponseSender

__all__ = ["Engine", "balanced_stream_bytes", "stream_steps"]


def stream_steps(config: CrossbarConfig, stream_bytes: int) -> tuple[int, int]:
    """Bytes the receiver takes and the senders give per cycle at most: one whole command
    element (up to four bytes), one whole output, each no wider than a beat."""
    layout = Layout(config)
    element = max(layout.width(kind) for kind in FieldKind if kind is not FieldKind.OUTPUT)
    return min(stream_bytes, element), min(stream_bytes, max(2, layout.output_bytes))


def balanced_stream_bytes(config: CrossbarConfig) -> int:
    """The fewest bytes per beat (a power of two) with which neither stream slows a batch of
    VMMs by more than a tenth: the input vector comes in, and the outputs go out, in about
    the ``rows * cols / lanes`` cycles the vector takes to compute."""
    layout = Layout(config)
    compute = config.rows * config.cols // config.lanes
    stream_bytes = 1
    while stream_bytes < MAX_STREAM_BYTES:
        window, chunk = stream_steps(config, stream_bytes)
        cycles_in = config.rows * -(-layout.input_bytes // window)
        cycles_out = config.cols * -(-layout.output_bytes // chunk) + -(-2 // chunk)
        if 9 * max(cycles_in, cycles_out) <= 10 * compute:
            break
        stream_bytes *= 2
    return stream_bytes


class Engine(wiring.Component):
    """The crossbar engine for one :class:`CrossbarConfig`.

    Parameters
    ----------
    config
        Shape and widths; ``lanes`` must be a power of two.
    options
        How it is built (:class:`~molxbar.hdl.options.EngineOptions`: beat width, noise
        generator unroll, product stages); the defaults when ``None``.
    **changes
        Options to change from ``options`` (``stream_bytes=1``, say).

    Members
    -------
    cmd : ``In(stream.Signature(beat_layout(stream_bytes)))``
        Command beats (:mod:`molxbar.protocol.beats`): the protocol's byte stream,
        ``stream_bytes`` at a time.
    rsp : ``Out(stream.Signature(beat_layout(stream_bytes)))``
        Response beats; the engine waits while ``rsp.ready`` is low and drops nothing.
    vmm_cycles : ``Out(32)``
        Cycles the last VMM spent issuing rows and waiting for its sums (for benchmarks).
    idle : ``Out(1)``
        No command is partly received, queued or executing, and every response byte is out
        (and single-port level banks have been cleared after reset).

    Attributes
    ----------
    datapath : :class:`~molxbar.hdl.datapath.VmmDatapath`
        The engine's VMM datapath (a submodule; its members may be observed in simulation).
    """

    def __init__(
        self, config: CrossbarConfig, options: EngineOptions | None = None, **changes
    ) -> None:
        with checking_arguments(self):
            if not isinstance(config, CrossbarConfig):
                raise TypeError(f"config must be a CrossbarConfig, not {config!r}")
            if config.lanes & (config.lanes - 1):
                raise ValueError(f"lanes = {config.lanes} must be a power of two for the gateware")
            options = (EngineOptions() if options is None else options).replace(**changes)
        self.config = config
        self.options = options
        self.layout = Layout(config)
        self.speck_unroll = options.speck_unroll
        self.speck_pipeline = options.speck_pipeline
        self.distributed_banks = options.distributed_banks
        self.stream_bytes = stream_bytes = options.stream_bytes or balanced_stream_bytes(config)
        self.product_stages = product_stages = options.product_stages
        self.datapath = VmmDatapath(
            config,
            stream_steps(config, stream_bytes)[1],
            product_stages=product_stages,
            noise_multipliers=options.noise_multipliers,
        )
        super().__init__(
            {
                "cmd": In(stream.Signature(beat_layout(stream_bytes))),
                "rsp": Out(stream.Signature(beat_layout(stream_bytes))),
                "vmm_cycles": Out(32),
                "idle": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        c = self.config
        m = Module()
        window_bytes, chunk_bytes = stream_steps(c, self.stream_bytes)
        m.submodules.unpacker = unpacker = BeatUnpacker(self.stream_bytes, window_bytes)
        m.submodules.receiver = rx = CommandReceiver(c, window_bytes)
        m.submodules.executor = executor = Executor(
            c, chunk_bytes, noise_multiplier=self.options.noise_multipliers
        )
        m.submodules.registers = registers = EngineRegisters(c)
        m.submodules.banks = banks = LevelBanks(
            c, distributed=self.distributed_banks, single_port=self.options.single_port_banks
        )
        m.submodules.rank1 = rank1 = Rank1Unit(c)
        m.submodules.noise = noise = NoiseWords(
            c, unroll=self.speck_unroll, pipelined=self.speck_pipeline
        )
        m.submodules.datapath = dp = self.datapath
        m.submodules.sender = sender = ResponseSender(
            chunk_bytes, short_response_bytes(c), status_length(c)
        )
        m.submodules.packer = packer = BeatPacker(chunk_bytes, self.stream_bytes)

        # Command beats to jobs.
        wiring.connect(m, wiring.flipped(self.cmd), unpacker.i)
        m.d.comb += [
            rx.window.eq(unpacker.window),
            rx.avail.eq(unpacker.avail),
            unpacker.take.eq(rx.take),
        ]
        # (Jobs wait while the level banks are not ready: cleared after reset.)
        m.d.comb += [
            executor.job.payload.eq(rx.job.payload),
            executor.job.valid.eq(rx.job.valid & banks.ready),
            rx.job.ready.eq(executor.job.ready & banks.ready),
        ]
        m.d.comb += [
            executor.fields.eq(rx.fields),
            rx.exec_idle.eq(executor.exec_idle),
            rx.loaded_slot.eq(registers.loaded_slot),
        ]

        # The buffers the receiver fills and the executor reads.
        reads = {}
        for name, (shape, depth) in buffer_shapes(c).items():
            m.submodules[name] = buffer = Memory(shape=shape, depth=depth, init=[])
            wiring.connect(m, getattr(rx, name), buffer.write_port())
            reads[name] = buffer.read_port()
            wiring.connect(m, getattr(executor, name), reads[name])

        # The executor's components.
        wiring.connect(m, executor.registers, registers.port)
        m.d.comb += [
            registers.fields.eq(rx.fields),
            registers.sigma.eq(rx.sigma),
            registers.load_slot.eq(rx.load_slot),
        ]
        wiring.connect(m, executor.banks, banks.cell)
        wiring.connect(m, executor.rank1, rank1.port)
        m.d.comb += [
            rank1.a.eq(reads["a_buf"].data),
            rank1.b.eq(reads["b_buf"].data),
            rank1.shift.eq(registers.update_shift),
        ]
        wiring.connect(m, executor.noise, noise.port)
        m.d.comb += [
            noise.seed.eq(registers.seed),
            noise.counter.eq(registers.counter),
            noise.row_addr.eq(executor.banks.row),
            noise.group.eq(executor.banks.col >> exact_log2(c.lanes)),
        ]

        # The datapath: issued rows in, VMM response bytes out.
        wiring.connect(m, executor.datapath, dp.issue)
        m.d.comb += [
            dp.levels.eq(banks.levels),
            dp.row_word.eq(noise.port.row_word),
            dp.col_words.eq(noise.port.col_words),
            self.vmm_cycles.eq(dp.vmm_cycles),
        ]
        m.d.comb += [
            dp.settings[name].eq(getattr(registers, name)) for name in dp.settings.shape().members
        ]

        # Responses to beats.
        wiring.connect(m, executor.sender, sender.port)
        m.d.comb += sender.long.eq(registers.status)
        wiring.connect(m, dp.rsp, sender.vmm)
        wiring.connect(m, sender.o, packer.i)
        wiring.connect(m, packer.o, wiring.flipped(self.rsp))

        m.d.comb += self.idle.eq(
            executor.exec_idle
            & rx.waiting
            & dp.issue.drained
            & unpacker.empty
            & packer.empty
            & banks.ready
        )
        return m
