"""The crossbar engine: command bytes in, response bytes out, bit-exact with the golden engine.

Structure (one concept per submodule):

* :class:`~molxbar.hdl.receiver.CommandReceiver` parses commands into jobs and fills the
  buffers (row levels, rank-1 factors, input vectors, noise table);
* the executor (this module) runs one job at a time: registers, direct writes (with their
  write error), pulses, rank-1 updates, reads, and the row-by-row issue of VMMs;
* ``lanes`` memory banks hold the levels, column ``j`` in bank ``j % lanes`` at address
  ``row << q_bits | j // lanes``;
* :class:`~molxbar.hdl.datapath.VmmDatapath` turns the issued rows into sums, outputs and
  response bytes;
* :class:`~molxbar.hdl.speck.SpeckWords` makes the noise words of noisy operations.

Timing of a VMM (noise off): one row per cycle to all lanes, group after group, so the sums
are complete ``rows * cols / lanes + 6`` cycles after the start (``+ 7`` with two product
stages); the next group starts
without a bubble while the previous group's sums drain into the datapath's FIFO. The next
vector of a batch starts as soon as the last group of the previous one is issued. With read
noise on, the ``rows + cols`` noise words are made first (see
:class:`~molxbar.hdl.speck.SpeckWords`).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from molxbar.emulator.config import (
    NOISE_FRAC_BITS,
    SIGMA_SCALE_BITS,
    SIGMA_SEGMENTS,
    CrossbarConfig,
)
from molxbar.protocol.beats import MAX_STREAM_BYTES
from molxbar.protocol.spec import (
    COMMANDS,
    NOISE_READ,
    NOISE_WRITE,
    PROTOCOL_VERSION,
    RECT_IDEAL,
    TABLE_READ,
    FieldKind,
    Layout,
    Opcode,
    Status,
)

from .beats import BeatPacker, BeatUnpacker, beat_layout
from .construction import checking_arguments
from .datapath import VmmDatapath, deviate
from .mac import shift_bits
from .options import EngineOptions
from .receiver import INPUT_SLOTS, SCALAR_FIELDS, CommandReceiver, input_slot_bits
from .speck import SPECK_WORDS_SIGNATURE, SpeckWords

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


def _round_shift(value, shift, shift_is_zero):
    """Round half away from zero of ``value / 2**shift`` (the overflow-free form of
    :func:`molxbar.emulator.fixedpoint.round_shift`)."""
    inner = shift - 1 if isinstance(shift, int) else (shift - 1)[: len(shift)]
    t = (value - (value < 0)) >> inner
    return Mux(shift_is_zero, value, (t >> 1) + t[0])


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
        No command is partly received, queued or executing, and every response byte is out.

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
        self.stream_bytes = stream_bytes = options.stream_bytes or balanced_stream_bytes(config)
        self.product_stages = product_stages = options.product_stages
        self.datapath = VmmDatapath(
            config, stream_steps(config, stream_bytes)[1], product_stages=product_stages
        )
        super().__init__(
            {
                "cmd": In(stream.Signature(beat_layout(stream_bytes))),
                "rsp": Out(stream.Signature(beat_layout(stream_bytes))),
                "vmm_cycles": Out(32),
                "idle": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:  # noqa: C901 - one state machine, read in order
        c, layout = self.config, self.layout
        m = Module()
        lanes = c.lanes
        lane_bits = exact_log2(lanes)
        groups = c.cols // lanes
        q_bits = ceil_log2(groups)
        slot_bits = input_slot_bits(c)
        level_bytes = layout.level_bytes

        # Submodules and memories ------------------------------------------------------------
        window_bytes, chunk_bytes = stream_steps(c, self.stream_bytes)
        m.submodules.unpacker = unpacker = BeatUnpacker(self.stream_bytes, window_bytes)
        m.submodules.receiver = rx = CommandReceiver(c, window_bytes)
        m.submodules.packer = packer = BeatPacker(chunk_bytes, self.stream_bytes)
        wiring.connect(m, wiring.flipped(self.cmd), unpacker.i)
        wiring.connect(m, packer.o, wiring.flipped(self.rsp))
        m.d.comb += [
            rx.window.eq(unpacker.window),
            rx.avail.eq(unpacker.avail),
            unpacker.take.eq(rx.take),
        ]

        banks = []
        for p in range(lanes):
            bank = Memory(shape=unsigned(c.g_bits), depth=c.rows << q_bits, init=[])
            m.submodules[f"bank{p}"] = bank
            banks.append((bank.read_port(), bank.write_port()))

        def buffer(name, shape, depth, writer):
            mem = Memory(shape=shape, depth=depth, init=[])
            m.submodules[name] = mem
            wiring.connect(m, writer, mem.write_port())
            return mem.read_port()

        row_buf = buffer("row_buf", unsigned(c.g_bits), c.cols, rx.row_buf)
        a_buf = buffer("a_buf", signed(c.x_bits), c.rows, rx.a_buf)
        b_buf = buffer("b_buf", signed(c.x_bits), c.cols, rx.b_buf)
        in_buf = buffer("in_buf", signed(c.x_bits), INPUT_SLOTS << slot_bits, rx.in_buf)

        if c.noise_hardware:
            row_words_mem = Memory(shape=64, depth=c.rows, init=[])
            col_words_mem = Memory(shape=64 * lanes, depth=groups, init=[])
            m.submodules.row_words = row_words_mem
            m.submodules.col_words = col_words_mem
            row_words, row_words_w = row_words_mem.read_port(), row_words_mem.write_port()
            col_words = col_words_mem.read_port()
            col_words_w = col_words_mem.write_port(granularity=64)
            speck = SpeckWords(rows=c.rows, cols=c.cols, unroll=self.speck_unroll)
            m.submodules.speck = speck
        else:
            # No noise hardware: undriven stand-ins, which read as zero. The noise states are
            # never entered (the noise flags stay 0), and synthesis removes what they feed.
            row_words = ReadPort.Signature(addr_width=ceil_log2(c.rows), shape=64).create()
            col_words = ReadPort.Signature(addr_width=q_bits, shape=64 * lanes).create()
            row_words_w = WritePort.Signature(addr_width=ceil_log2(c.rows), shape=64).create()
            col_words_w = WritePort.Signature(
                addr_width=q_bits, shape=64 * lanes, granularity=64
            ).create()
            speck = SPECK_WORDS_SIGNATURE.create()
        m.submodules.datapath = dp = self.datapath

        # Registers ----------------------------------------------------------------------------
        table_init = (c.read_sigma_table, c.write_sigma_table)
        tables = [
            Array(
                Signal(SIGMA_SCALE_BITS, init=v, name=f"{kind}_sigma{k}") for k, v in enumerate(t)
            )
            for kind, t in zip(("read", "write"), table_init, strict=True)
        ]
        read_table, write_table = tables
        adc_bits = Signal(shift_bits(c), init=c.adc_bits or 0)
        adc_shift = Signal(shift_bits(c), init=c.adc_shift)
        rect_ideal = Signal(init=c.rect_shift is None)
        rect_shift = Signal(shift_bits(c), init=c.rect_shift or 0)
        update_shift = Signal(shift_bits(c), init=c.update_shift)
        read_noise = Signal(init=c.read_noise)
        write_noise = Signal(init=c.write_noise)
        seed = Signal(32, init=c.seed)
        counter = Signal(32)
        loaded_slot = Signal(2, init=2)
        m.d.comb += rx.loaded_slot.eq(loaded_slot)

        job_op = Signal(8)
        job_status = Signal(8)
        job_ok = Signal()  # job_status == OK
        job_is = {op: Signal(name=f"job_is_{op.name.lower()}") for op in Opcode}
        f = {name: getattr(rx, f"f_{name}") for name in SCALAR_FIELDS}
        row = f["row"][: max(1, ceil_log2(c.rows))]

        # Response sender: a short response is loaded into ``tx`` and shifted out a chunk at a
        # time; STATUS, the long one, is loaded a chunk at a time from the registers it reports
        # (they hold still while it is sent), so that ``tx`` stays a few bytes wide.
        tx_width = 8 * max(
            chunk_bytes,
            *(
                layout.response_length(op)
                for op in Opcode
                if op not in (Opcode.STATUS, Opcode.READ_ROW, Opcode.RUN_VMM, Opcode.RUN_BATCH)
            ),
        )
        tx = Signal(tx_width)
        tx_left = Signal(range(max(tx_width // 8, layout.response_length(Opcode.STATUS)) + 1))
        tx_chunk = Signal(range(-(-layout.response_length(Opcode.STATUS) // chunk_bytes)))

        def response_bytes(*parts):
            """``parts`` (values with their byte counts) as little-endian bytes."""
            fields = []
            for value, n in parts:
                if isinstance(value, int):
                    fields.append(Const(value, 8 * n))
                elif len(value) >= 8 * n:
                    fields.append(value[: 8 * n])
                else:
                    fields.append(Cat(value, Const(0, 8 * n - len(value))))
            return Cat(*fields)

        def load_tx(*parts):
            """Queue ``parts`` (values with their byte counts, little-endian) for sending."""
            m.d.sync += [tx.eq(response_bytes(*parts)), tx_left.eq(sum(n for _, n in parts))]

        def send_chunk(data, next_state):
            """Offer the next chunk (``data``) of the ``tx_left`` bytes still to send (at least
            one: every response has a header)."""
            n = 1 if chunk_bytes == 1 else Mux(tx_left > chunk_bytes, chunk_bytes, tx_left)
            m.d.comb += [
                packer.i.valid.eq(1),
                packer.i.payload.data.eq(data),
                packer.i.payload.count.eq(n),
            ]
            with m.If(packer.i.ready):
                m.d.sync += tx_left.eq(tx_left - n)
                with m.If(tx_left <= chunk_bytes):
                    m.next = next_state

        def send(next_state):
            send_chunk(tx[: 8 * chunk_bytes], next_state)
            with m.If(packer.i.ready):
                m.d.sync += tx.eq(tx >> (8 * chunk_bytes))

        # Cell addressing, for every operation: the banks' address comes straight from the
        # ``cell_row`` and ``cell_col`` registers (a VMM walks the rows and the groups of
        # ``lanes`` columns with them). The level read from the cell's bank is registered
        # (``cell_level``, two cycles after the address), and so is the write: ``new_level``
        # with ``write_cell`` is stored in the cycle after.
        cell_col = Signal(range(max(2, c.cols)))
        cell_row = Signal(range(max(2, c.rows)))
        cell_group = cell_col >> lane_bits
        cell_bank = cell_col[:lane_bits] if lane_bits else Const(0, 1)
        cell_addr = (cell_row << q_bits) | cell_group
        cell_level = Signal(c.g_bits)
        m.d.sync += cell_level.eq(Array(rp.data for rp, _ in banks)[cell_bank])
        new_level = Signal(c.g_bits)
        write_cell = Signal()
        for p, (_, wp) in enumerate(banks):
            m.d.sync += [
                wp.addr.eq(cell_addr),
                wp.data.eq(new_level),
                wp.en.eq(write_cell & (cell_bank == p)),
            ]

        def clamp_level(value):
            return Mux(value < 0, 0, Mux(value > c.g_max, c.g_max, value))[: c.g_bits]

        # Noise words: R of the cell's row is captured, all column words stored.
        r_word = Signal(64)
        words = speck.words.payload
        m.d.comb += [speck.seed.eq(seed), speck.counter.eq(counter)]
        m.d.comb += [
            row_words_w.addr.eq(words.index),
            row_words_w.data.eq(words.word),
            col_words_w.addr.eq(words.index >> lane_bits),
            col_words_w.data.eq(words.word.replicate(lanes)),
        ]
        word_lane = words.index[:lane_bits] if lane_bits else Const(0, 1)

        def noise_words_state(next_state):
            """Collect the words of one noise operation, then go to ``next_state``."""
            m.d.comb += speck.words.ready.eq(1)
            with m.If(speck.words.valid):
                with m.If(words.axis == 0):
                    m.d.comb += row_words_w.en.eq(1)
                    with m.If(words.index == row):
                        m.d.sync += r_word.eq(words.word)
                with m.Else():
                    m.d.comb += col_words_w.en.eq(1 << word_lane)
                    with m.If(words.index == c.cols - 1):
                        m.d.sync += counter.eq(counter + 1)
                        m.next = next_state

        col_word_of_cell = col_words.data.word_select(cell_bank, 64)

        def written_level(level, z):
            """A direct write's stored level: the level plus its write error, clamped."""
            scale = write_table[level >> c.segment_shift]
            error = _round_shift((z * scale).as_signed(), NOISE_FRAC_BITS, Const(0))
            noisy = clamp_level(level + error)
            return Mux(write_noise, noisy, level)

        # VMM: the executor issues rows; the datapath does the rest.
        issue = Signal()
        vmm_slot = Signal(2)
        group_issued = Signal()
        start_vmm = Signal()
        last_group = Signal()
        for rp, _ in banks:
            m.d.comb += rp.addr.eq(cell_addr)
        # The input is read a cycle ahead, the row issued next (row 0 unless the issue goes
        # on within a group), and registered: the lanes take it from a flip-flop, not from a
        # block RAM's slow output.
        next_row = Signal.like(cell_row)
        x = Signal(signed(c.x_bits))
        m.d.sync += x.eq(in_buf.data)
        m.d.comb += [
            in_buf.addr.eq((vmm_slot << slot_bits) | next_row),
            row_words.addr.eq(cell_row),
        ]
        # The memories answer one cycle after the address: so do the term flags.
        m.d.sync += [
            dp.term_valid.eq(issue),
            dp.term_first.eq(cell_row == 0),
            dp.term_last.eq(cell_row == c.rows - 1),
        ]
        m.d.comb += [
            dp.x.eq(x),
            dp.levels.eq(Cat(rp.data for rp, _ in banks)),
            dp.row_word.eq(row_words.data),
            dp.col_words.eq(col_words.data),
            dp.read_noise.eq(read_noise),
            dp.read_table.eq(Cat(*read_table)),
            dp.rect_ideal.eq(rect_ideal),
            dp.rect_shift.eq(rect_shift),
            dp.adc_shift.eq(adc_shift),
            dp.adc_bits.eq(adc_bits),
            dp.group_issued.eq(group_issued),
            dp.start_vmm.eq(start_vmm),
            dp.header_op.eq(job_op),
            dp.last_group.eq(last_group),
            self.vmm_cycles.eq(dp.vmm_cycles),
        ]
        drained = dp.drained

        # Rank-1 update datapath: a shift-and-add multiplier (one bit of ``a`` per cycle, so
        # that the lanes keep every DSP block), then one carry chain or shifter per stage.
        mul_hi = Signal(signed(c.x_bits + 1))
        mul_lo = Signal(c.x_bits)
        mul_b = Signal(signed(c.x_bits + 1))
        mul_minus_b = Signal(signed(c.x_bits + 1))
        mul_step = Signal(range(c.x_bits))
        product = Cat(mul_lo, mul_hi).as_signed()
        r1_t = Signal(signed(2 * c.x_bits + 1))
        r1_t_low = Signal.like(r1_t)  # (shifted by the low bits: each step has its register)
        r1_delta = Signal(signed(2 * c.x_bits + 1))
        # A cell's level plus its change (a pulse count or a rank-1 delta), registered before
        # it is clamped and written: the sum and the clamp are a carry chain each.
        level_sum = Signal(signed(max(len(r1_delta), 8 * layout.pulse_bytes, c.g_bits + 1) + 1))

        # Executor ---------------------------------------------------------------------------
        status_fields = {
            "version": PROTOCOL_VERSION,
            "rows": c.rows,
            "cols": c.cols,
            "lanes": c.lanes,
            "g_bits": c.g_bits,
            "x_bits": c.x_bits,
            "levels": c.levels,
            "adc_bits": adc_bits,
            "adc_shift": adc_shift,
            "rect_shift": Mux(rect_ideal, RECT_IDEAL, rect_shift),
            "update_shift": update_shift,
            "noise": Cat(read_noise, write_noise),
            "seed": seed,
            "counter": counter,
        }

        def ok_header(op):
            return [(op, 1), (Status.OK, 1)]

        with m.FSM(name="executor"):
            with m.State("IDLE"):
                # Only the next vector of a batch may start before the last VMM's response
                # is out; everything else answers after it.
                overlap = rx.job_vector & rx.job_ok
                m.d.comb += [
                    rx.exec_idle.eq(~rx.job_valid),
                    rx.job_ready.eq(drained | overlap),
                    self.idle.eq(
                        rx.waiting & ~rx.job_valid & drained & unpacker.empty & packer.empty
                    ),
                ]
                with m.If(rx.job_valid & (drained | overlap)):
                    m.d.sync += [
                        job_op.eq(rx.job_opcode),
                        job_status.eq(rx.job_status),
                        job_ok.eq(rx.job_ok),
                    ]
                    m.d.sync += [job_is[op].eq(rx.job_opcode == op) for op in Opcode]
                    with m.If(overlap):
                        m.d.sync += vmm_slot.eq(rx.job_slot)
                        m.next = "VMM"
                    with m.Else():
                        m.next = "DECODE"

            # Every job but a batch vector is decoded from registers a cycle later: the opcode
            # as one flag per command. The response register is loaded with the response
            # header (opcode and status), and SYNC's value after it, whatever the command;
            # the commands that answer with more overwrite it before they send.
            with m.State("DECODE"):
                m.d.sync += [
                    tx.eq(Cat(job_op, job_status, f["value"][:8])),
                    tx_left.eq(Mux(job_is[Opcode.SYNC] & job_ok, 3, 2)),
                ]
                with m.If(~job_ok):
                    m.next = "SEND_DONE"
                for op in (
                    Opcode.SYNC,
                    Opcode.SET_ADC,
                    Opcode.SET_RECT,
                    Opcode.SET_UPDATE_SHIFT,
                    Opcode.SET_NOISE,
                    Opcode.SET_SIGMA,
                    Opcode.SEED,
                    Opcode.LOAD_INPUT,
                ):
                    with m.If(job_ok & job_is[op]):
                        m.next = "SEND_DONE"
                with m.If(job_ok & job_is[Opcode.SET_ADC]):
                    m.d.sync += [adc_bits.eq(f["bits"]), adc_shift.eq(f["shift"])]
                if c.leakage_hardware:  # otherwise only RECT_IDEAL passes
                    with m.If(job_ok & job_is[Opcode.SET_RECT]):
                        m.d.sync += [
                            rect_ideal.eq(f["shift"] == RECT_IDEAL),
                            rect_shift.eq(f["shift"]),
                        ]
                with m.If(job_ok & job_is[Opcode.SET_UPDATE_SHIFT]):
                    m.d.sync += update_shift.eq(f["shift"])
                if c.noise_hardware:  # otherwise only 0 passes the check
                    with m.If(job_ok & job_is[Opcode.SET_NOISE]):
                        m.d.sync += [
                            read_noise.eq((f["flags"] & NOISE_READ) != 0),
                            write_noise.eq((f["flags"] & NOISE_WRITE) != 0),
                        ]
                with m.If(job_ok & job_is[Opcode.SET_SIGMA]):
                    for k in range(SIGMA_SEGMENTS):
                        value = rx.sigma.word_select(k, SIGMA_SCALE_BITS)
                        with m.If(f["table"] == TABLE_READ):
                            m.d.sync += read_table[k].eq(value)
                        with m.Else():
                            m.d.sync += write_table[k].eq(value)
                with m.If(job_ok & job_is[Opcode.SEED]):
                    m.d.sync += [seed.eq(f["seed"]), counter.eq(0)]
                with m.If(job_ok & job_is[Opcode.LOAD_INPUT]):
                    m.d.sync += loaded_slot.eq(rx.load_slot)
                with m.If(job_ok & job_is[Opcode.STATUS]):
                    m.d.sync += [
                        tx_chunk.eq(0),
                        tx_left.eq(layout.response_length(Opcode.STATUS)),
                    ]
                    m.next = "STATUS_LOAD"
                with m.If(job_ok & job_is[Opcode.RUN_VMM]):
                    m.d.sync += vmm_slot.eq(loaded_slot)
                    m.next = "VMM"
                # Cell addressing: the row and column of the command (row 0 and column 0
                # for whole-array and whole-row commands).
                single = job_is[Opcode.READ_CELL] | job_is[Opcode.PULSE_CELL]
                single = single | job_is[Opcode.WRITE_CELL]
                whole_row = job_is[Opcode.WRITE_ROW] | job_is[Opcode.READ_ROW]
                m.d.sync += [
                    cell_row.eq(Mux(single | whole_row, row, 0)),
                    cell_col.eq(Mux(single, f["col"], 0)),
                ]
                with m.If(job_ok & (job_is[Opcode.READ_CELL] | job_is[Opcode.PULSE_CELL])):
                    m.next = "CELL_READ"
                with m.If(job_ok & (job_is[Opcode.WRITE_CELL] | job_is[Opcode.WRITE_ROW])):
                    with m.If(write_noise):
                        m.d.comb += speck.start.eq(1)
                        m.next = "WRITE_NOISE"
                    with m.Elif(job_is[Opcode.WRITE_CELL]):
                        m.next = "WRITE_CELL"
                    with m.Else():
                        m.next = "ROW_READ"
                with m.If(job_ok & job_is[Opcode.READ_ROW]):
                    m.next = "READ_ROW_HEADER"
                with m.If(job_ok & job_is[Opcode.UPDATE_RANK1]):
                    m.next = "R1_READ"
                with m.If(job_ok & job_is[Opcode.RUN_BATCH]):  # its vectors follow as jobs
                    m.next = "IDLE"

            with m.State("SEND_DONE"):
                send("IDLE")
            # STATUS: each chunk is selected into ``tx``, then sent.
            with m.State("STATUS_LOAD"):
                parts = ok_header(Opcode.STATUS)
                for field in COMMANDS[Opcode.STATUS].response:
                    parts.append((status_fields[field.name], layout.width(field.kind)))
                status = response_bytes(*parts)
                status_chunks = Array(
                    status[k : k + 8 * chunk_bytes] for k in range(0, len(status), 8 * chunk_bytes)
                )
                m.d.sync += [tx.eq(status_chunks[tx_chunk]), tx_chunk.eq(tx_chunk + 1)]
                m.next = "STATUS_SEND"
            with m.State("STATUS_SEND"):
                send_chunk(tx[: 8 * chunk_bytes], "IDLE")
                with m.If(packer.i.ready & (tx_left > chunk_bytes)):
                    m.next = "STATUS_LOAD"

            # Single cells: read (one cycle), then respond, pulse or write.
            with m.State("CELL_READ"):
                m.next = "CELL_WAIT"
            with m.State("CELL_WAIT"):
                m.next = "CELL_USE"
            with m.State("CELL_USE"):
                with m.If(job_op == Opcode.READ_CELL):
                    load_tx(*ok_header(Opcode.READ_CELL), (cell_level, level_bytes))
                    m.next = "SEND_DONE"
                with m.Else():
                    pulse = f["count"][: layout.pulse_bytes * 8].as_signed()
                    m.d.sync += level_sum.eq(cell_level + pulse)
                    m.next = "PULSE_WRITE"
            with m.State("PULSE_WRITE"):
                m.d.comb += [new_level.eq(clamp_level(level_sum)), write_cell.eq(1)]
                load_tx(*ok_header(Opcode.PULSE_CELL))
                m.next = "SEND_DONE"

            with m.State("WRITE_NOISE"):
                with m.If(job_op == Opcode.WRITE_CELL):
                    noise_words_state("WRITE_CELL_WORD")
                with m.Else():
                    noise_words_state("ROW_READ")
            with m.State("WRITE_CELL_WORD"):
                m.d.comb += col_words.addr.eq(cell_col >> lane_bits)
                m.next = "WRITE_CELL"
            with m.State("WRITE_CELL"):
                m.d.comb += col_words.addr.eq(cell_col >> lane_bits)
                level = f["level"][: c.g_bits]
                m.d.comb += [
                    new_level.eq(written_level(level, deviate(r_word, col_word_of_cell))),
                    write_cell.eq(1),
                ]
                load_tx(*ok_header(Opcode.WRITE_CELL))
                m.next = "SEND_DONE"

            # Whole rows: one column per two cycles (buffer and word read, then write).
            with m.State("ROW_READ"):
                m.d.comb += [row_buf.addr.eq(cell_col), col_words.addr.eq(cell_col >> lane_bits)]
                m.next = "ROW_WRITE"
            with m.State("ROW_WRITE"):
                m.d.comb += col_words.addr.eq(cell_col >> lane_bits)
                m.d.comb += [
                    new_level.eq(written_level(row_buf.data, deviate(r_word, col_word_of_cell))),
                    write_cell.eq(1),
                ]
                with m.If(cell_col == c.cols - 1):
                    load_tx(*ok_header(Opcode.WRITE_ROW))
                    m.next = "SEND_DONE"
                with m.Else():
                    m.d.sync += cell_col.eq(cell_col + 1)
                    m.next = "ROW_READ"

            with m.State("READ_ROW_HEADER"):
                send("READ_ROW_READ")
            with m.State("READ_ROW_READ"):
                m.next = "READ_ROW_WAIT"
            with m.State("READ_ROW_WAIT"):
                m.next = "READ_ROW_LOAD"
            with m.State("READ_ROW_LOAD"):
                load_tx((cell_level, level_bytes))
                m.next = "READ_ROW_SEND"
            with m.State("READ_ROW_SEND"):
                with m.If(cell_col == c.cols - 1):
                    send("IDLE")
                with m.Else():
                    send("READ_ROW_NEXT")
            with m.State("READ_ROW_NEXT"):
                m.d.sync += cell_col.eq(cell_col + 1)
                m.next = "READ_ROW_READ"

            # Rank-1 update, one cell at a time: read the factors and the level, multiply
            # (x_bits cycles), round (four stages), add, clamp and write.
            with m.State("R1_READ"):
                m.d.comb += [a_buf.addr.eq(cell_row), b_buf.addr.eq(cell_col)]
                m.next = "R1_LOAD"
            with m.State("R1_LOAD"):
                m.d.sync += [
                    mul_hi.eq(0),
                    mul_lo.eq(a_buf.data),
                    mul_b.eq(b_buf.data),
                    mul_minus_b.eq(-b_buf.data),
                    mul_step.eq(0),
                ]
                m.next = "R1_MULTIPLY"
            with m.State("R1_MULTIPLY"):
                # Bit k of a adds b * 2**k (the sign bit subtracts it); the sum shifts right.
                last_bit = mul_step == c.x_bits - 1
                addend = Mux(mul_lo[0], Mux(last_bit, mul_minus_b, mul_b), 0)
                total = mul_hi + addend
                m.d.sync += [
                    mul_hi.eq(total >> 1),
                    mul_lo.eq(Cat(mul_lo[1:], total[0])),
                    mul_step.eq(mul_step + 1),
                ]
                with m.If(last_bit):
                    m.next = "R1_DECREMENT"
            # round(p / 2**s) = (t >> 1) + t[0] with t = (p - (p < 0)) >> (s - 1).
            # The shift by s - 1 in two steps, by its low three bits and then by the rest (two
            # arithmetic shifts compose), each a few levels of logic from a register.
            r1_shift = Signal.like(update_shift)
            with m.State("R1_DECREMENT"):
                m.d.sync += [
                    r1_t.eq(product - (product < 0)),
                    r1_shift.eq(update_shift - 1),
                ]
                m.next = "R1_SHIFT"
            with m.State("R1_SHIFT"):
                m.d.sync += r1_t_low.eq(r1_t >> r1_shift[:3])
                m.next = "R1_SHIFT_HIGH"
            with m.State("R1_SHIFT_HIGH"):
                m.d.sync += r1_t.eq(r1_t_low >> Cat(Const(0, 3), r1_shift[3:]))
                m.next = "R1_ROUND"
            with m.State("R1_ROUND"):
                rounded = (r1_t >> 1) + r1_t[0]
                m.d.sync += r1_delta.eq(Mux(update_shift == 0, product, rounded))
                m.next = "R1_ADD"
            with m.State("R1_ADD"):
                m.d.sync += level_sum.eq(cell_level + r1_delta)
                m.next = "R1_WRITE"
            with m.State("R1_WRITE"):
                m.d.comb += [
                    new_level.eq(clamp_level(level_sum)),
                    write_cell.eq(1),
                ]
                with m.If(cell_col == c.cols - 1):
                    m.d.sync += [cell_col.eq(0), cell_row.eq(cell_row + 1)]
                    with m.If(cell_row == c.rows - 1):
                        load_tx(*ok_header(Opcode.UPDATE_RANK1))
                        m.next = "SEND_DONE"
                    with m.Else():
                        m.next = "R1_READ"
                with m.Else():
                    m.d.sync += cell_col.eq(cell_col + 1)
                    m.next = "R1_READ"

            # VMM: noise words (if on), then the groups; the executor is free again once the
            # last group is issued, while its sums and bytes finish in the background.
            can_start = dp.can_start
            with m.State("VMM"):
                with m.If(read_noise):
                    m.d.comb += speck.start.eq(1)
                    m.next = "VMM_NOISE"
                with m.Else():
                    m.next = "VMM_START"
            with m.State("VMM_NOISE"):
                noise_words_state("VMM_START")
            with m.State("VMM_START"):
                # A VMM starts only while its header has a place in the datapath's queue.
                with m.If(can_start & dp.vmm_room):
                    m.d.comb += start_vmm.eq(1)
                    m.d.sync += [cell_row.eq(0), cell_col.eq(0)]
                    m.next = "VMM_ISSUE"
            with m.State("VMM_ISSUE"):
                m.d.comb += [issue.eq(1), col_words.addr.eq(cell_group)]
                # Straight on to the next group when nothing else is in flight and the latch
                # is free: this group's sums will find it empty.
                go_on = (cell_group != groups - 1) & dp.free
                with m.If(cell_row == c.rows - 1):
                    m.d.comb += group_issued.eq(1)
                    m.d.sync += cell_row.eq(0)
                    with m.If(go_on):
                        m.d.sync += cell_col.eq(cell_col + lanes)
                    with m.Else():
                        m.next = "VMM_NEXT"
                with m.Else():
                    m.d.comb += next_row.eq(cell_row + 1)
                    m.d.sync += cell_row.eq(cell_row + 1)
            with m.State("VMM_NEXT"):
                m.d.comb += col_words.addr.eq(cell_group)
                with m.If(cell_group == groups - 1):
                    m.d.comb += last_group.eq(1)
                    m.next = "IDLE"
                with m.Elif(can_start):
                    m.d.sync += cell_col.eq(cell_col + lanes)
                    m.next = "VMM_ISSUE"
        # VMM bytes; the executor only sends its own responses while the datapath is drained.
        m.d.comb += dp.rsp.ready.eq(packer.i.ready)
        with m.If(dp.rsp.valid):
            m.d.comb += [packer.i.valid.eq(1), packer.i.payload.eq(dp.rsp.payload)]
        return m
