"""The executor: runs the receiver's jobs one at a time, on the engine's components.

Each job is decoded from registers a cycle after it is taken (the opcode as one flag per
command). Settings commands write the registers (:mod:`molxbar.hdl.registers`) in that
cycle; single cells take a read of their bank (three cycles) and then answer, pulse or write;
whole rows go one column per two cycles; a rank-1 update takes each cell through the
:class:`~molxbar.hdl.rank1.Rank1Unit`; a VMM issues its rows, group after group, to the
datapath and is done once the last group is issued, while its sums and bytes finish in the
datapath. Noisy operations first make their words (:class:`~molxbar.hdl.noise_words.NoiseWords`).

Only the next vector of a batch may start before the last VMM's response is out; every other
job waits for the datapath to drain, and then answers through the
:class:`~molxbar.hdl.sender.ResponseSender`.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol import spec

from .banks import LEVEL_LATENCY, cell_port_signature
from .datapath import adc_output_width, issue_signature
from .jobs import JOB_LAYOUT, Opcode, buffer_shapes, fields_layout, input_slot_bits
from .noise_words import noise_port_signature
from .rank1 import rank1_port_signature
from .registers import register_port_signature, status_length
from .sender import response_bytes, sender_port_signature
from .write_error import WriteError

__all__ = ["Executor", "short_response_bytes"]

#: Commands answered with their header alone once their registers are set.
_SETTINGS = (
    Opcode.SYNC,
    Opcode.SET_ADC,
    Opcode.SET_RECT,
    Opcode.SET_UPDATE_SHIFT,
    Opcode.SET_NOISE,
    Opcode.SET_SIGMA,
    Opcode.SEED,
    Opcode.LOAD_INPUT,
)
#: Responses the sender does not hold whole: STATUS (sent from its image) and the row and
#: VMM responses (sent piece by piece).
_LONG_RESPONSES = (spec.Opcode.STATUS, spec.Opcode.READ_ROW, spec.Opcode.RUN_VMM,
                   spec.Opcode.RUN_BATCH)  # fmt: skip


def short_response_bytes(config: CrossbarConfig) -> int:
    """The longest response the sender holds whole."""
    layout = spec.Layout(config)
    return max(layout.response_length(op) for op in spec.Opcode if op not in _LONG_RESPONSES)


class Executor(wiring.Component):
    """Runs jobs on the banks, the registers, the rank-1 unit, the noise words and the
    datapath, and answers them through the sender (each a port of this component).

    Members
    -------
    job : ``In(stream.Signature(JOB_LAYOUT))``
        Jobs from the receiver; ``fields`` and the buffers hold still until the next one.
    fields : ``In(fields_layout())``
        The job's scalar fields.
    exec_idle : ``Out(1)``
        Every job is finished and none is offered.
    registers, banks, sender, rank1, noise, datapath : ``Out(...)``
        The ports on the components (their ``*_signature`` functions).
    row_buf, a_buf, b_buf, in_buf : ``In(ReadPort.Signature(...))``
        Read ports of the buffers the receiver fills (rows, rank-1 factors, input slots).
    """

    def __init__(
        self, config: CrossbarConfig, chunk_bytes: int, *, noise_multiplier: bool = False
    ) -> None:
        self.config = config
        self.noise_multiplier = noise_multiplier
        c = config
        super().__init__(
            {
                "job": In(stream.Signature(JOB_LAYOUT)),
                "fields": In(fields_layout()),
                "exec_idle": Out(1),
                "registers": Out(register_port_signature(c)),
                "banks": Out(cell_port_signature(c)),
                "sender": Out(
                    sender_port_signature(
                        max(chunk_bytes, short_response_bytes(c)), status_length(c)
                    )
                ),
                "rank1": Out(rank1_port_signature(c)),
                "noise": Out(noise_port_signature(c)),
                "datapath": Out(issue_signature(c)),
                **{
                    name: In(ReadPort.Signature(addr_width=ceil_log2(depth), shape=shape))
                    for name, (shape, depth) in buffer_shapes(c).items()
                },
            }
        )

    def elaborate(self, platform) -> Module:
        c = self.config
        m = Module()
        s = self._signals(m)
        s.write_error = self._write_error(m, s)
        with m.FSM(name="executor"):
            self._take_and_decode(m, s)
            self._answer(m, s)
            self._cells(m, s)
            self._rows(m, s)
            self._rank1(m, s)
            self._vmm(m, s)
        m.d.comb += [
            self.banks.row.eq(s.cell_row),
            self.banks.col.eq(s.cell_col),
            self.registers.job.eq(s.job),
            self.datapath.header_op.eq(s.job.opcode),
        ]
        # The memories answer one cycle after the address: so do the term flags.
        m.d.sync += [
            self.datapath.term_valid.eq(s.issue),
            self.datapath.term_first.eq(s.cell_row == 0),
            self.datapath.term_last.eq(s.cell_row == c.rows - 1),
        ]
        return m

    def _signals(self, m: Module) -> SimpleNamespace:
        """The executor's registers and the shorthands its states share."""
        c = self.config
        lane_bits = exact_log2(c.lanes)
        s = SimpleNamespace()
        s.job = Signal(JOB_LAYOUT)
        s.job_is = {op: Signal(name=f"job_is_{op.name.lower()}") for op in Opcode}
        s.row = self.fields.row[: max(1, ceil_log2(c.rows))]
        # The cell (for a VMM, the row and the first column of the group being issued): the
        # banks' address, straight from these registers.
        s.cell_row = Signal(range(max(2, c.rows)))
        s.cell_col = Signal(range(max(2, c.cols)))
        s.cell_group = s.cell_col >> lane_bits
        s.cell_bank = s.cell_col[:lane_bits] if lane_bits else Const(0, 1)
        s.vmm_slot = Signal(2)
        s.issue = Signal()
        # A cell's level plus its change (a pulse count or a rank-1 delta), registered before
        # it is clamped and written: the sum and the clamp are a carry chain each.
        s.level_sum = Signal(
            signed(max(len(self.rank1.delta), 8 * spec.Layout(c).pulse_bytes, c.g_bits + 1) + 1)
        )
        return s

    # Sending ------------------------------------------------------------------------------------

    def _load(self, m: Module, *parts) -> None:
        """Queue a short response: ``parts`` (values with their byte counts, little-endian)."""
        m.d.comb += [
            self.sender.load.eq(1),
            self.sender.data.eq(response_bytes(*parts)),
            self.sender.length.eq(sum(n for _, n in parts)),
        ]

    def _send(self, m: Module, next_state: str) -> None:
        """Send the next chunk of the response; go to ``next_state`` after the last."""
        m.d.comb += self.sender.send.eq(1)
        with m.If(self.sender.taken & self.sender.last):
            m.next = next_state

    def _ok_header(self, op: Opcode) -> list[tuple[int, int]]:
        return [(op.value, 1), (spec.Status.OK, 1)]

    def _write_cell(self, m: Module, level) -> None:
        """Store ``level`` in the cell, in the next cycle."""
        m.d.comb += [self.banks.new_level.eq(level), self.banks.write.eq(1)]

    def _clamp(self, value):
        """``value`` cut to the level range."""
        g_max = self.config.g_max
        return Mux(value < 0, 0, Mux(value > g_max, g_max, value))[: self.config.g_bits]

    def _write_error(self, m: Module, s: SimpleNamespace) -> WriteError | None:
        """The write-error pipeline of direct writes (with noise hardware): the cell's noise
        word comes from the noise words' read ports, a cycle after the cell's address."""
        if not self.config.noise_hardware:
            return None
        m.submodules.write_error = unit = WriteError(
            self.config, multiplier=self.noise_multiplier
        )
        m.d.comb += [
            unit.word.eq(self.noise.row_word ^ self.noise.col_words.word_select(s.cell_bank, 64)),
            unit.noise_en.eq(self.registers.write_noise),
            unit.table.eq(self.registers.write_table),
        ]
        return unit

    def _direct_write(self, m: Module, s: SimpleNamespace, level, written_state: str) -> None:
        """Write ``level`` to the cell (with noise hardware: start its write error and go to
        ``written_state``, which waits for it with :meth:`_written`)."""
        if s.write_error is None:
            self._write_cell(m, level)
        else:
            m.d.comb += [s.write_error.start.eq(1), s.write_error.level.eq(level)]
            m.next = written_state

    def _written(self, m: Module, s: SimpleNamespace):
        """The cycle a direct write's level with its error is known: store it there."""
        with m.If(s.write_error.done):
            self._write_cell(m, s.write_error.written)
        return s.write_error.done

    def _noise_words(self, m: Module, next_state: str) -> None:
        """Wait for the words of one noise operation, then go to ``next_state``."""
        with m.If(self.noise.done):
            m.d.comb += self.registers.advance.eq(1)
            m.next = next_state

    # States -------------------------------------------------------------------------------------

    def _take_and_decode(self, m: Module, s: SimpleNamespace) -> None:
        job, regs = self.job, self.registers
        with m.State("IDLE"):
            # Only the next vector of a batch may start before the last VMM's response is
            # out; everything else answers after it.
            drained = self.datapath.drained
            overlap = job.payload.vector & job.payload.ok
            m.d.comb += [
                self.exec_idle.eq(~job.valid),
                job.ready.eq(drained | overlap),
            ]
            with m.If(job.valid & (drained | overlap)):
                m.d.sync += s.job.eq(job.payload)
                m.d.sync += [flag.eq(job.payload.opcode == op) for op, flag in s.job_is.items()]
                with m.If(overlap):
                    m.d.sync += s.vmm_slot.eq(job.payload.slot)
                    m.next = "VMM"
                with m.Else():
                    m.next = "DECODE"

        # Every job but a batch vector is decoded from registers a cycle later. The sender is
        # loaded with the response header (opcode and status), and SYNC's value (or SET_ADC's
        # output width) after it, whatever the command; the commands that answer with more
        # load it again before they send.
        with m.State("DECODE"):
            ok, job_is = s.job.ok, s.job_is
            # SYNC echoes its value; SET_ADC answers the outputs' width from now on.
            width = adc_output_width(self.fields.bits, spec.Layout(self.config).output_bytes)
            third = Mux(job_is[Opcode.SET_ADC], width, self.fields.value[:8])
            three = ok & (job_is[Opcode.SYNC] | job_is[Opcode.SET_ADC])
            m.d.comb += [
                self.sender.load.eq(1),
                self.sender.data.eq(Cat(s.job.opcode, s.job.status, third)),
                self.sender.length.eq(Mux(three, 3, 2)),
                regs.write.eq(ok),
            ]
            with m.If(~ok):
                m.next = "SEND_DONE"
            for op in _SETTINGS:
                with m.If(ok & job_is[op]):
                    m.next = "SEND_DONE"
            with m.If(ok & job_is[Opcode.STATUS]):
                m.d.comb += self.sender.load_long.eq(1)
                m.next = "STATUS_LOAD"
            with m.If(ok & job_is[Opcode.RUN_VMM]):
                m.d.sync += s.vmm_slot.eq(regs.loaded_slot)
                m.next = "VMM"
            # The cell: the row and column of the command (row 0 and column 0 for whole-array
            # and whole-row commands).
            single = job_is[Opcode.READ_CELL] | job_is[Opcode.PULSE_CELL]
            single = single | job_is[Opcode.WRITE_CELL]
            whole_row = job_is[Opcode.WRITE_ROW] | job_is[Opcode.READ_ROW]
            m.d.sync += [
                s.cell_row.eq(Mux(single | whole_row, s.row, 0)),
                s.cell_col.eq(Mux(single, self.fields.col, 0)),
            ]
            with m.If(ok & (job_is[Opcode.READ_CELL] | job_is[Opcode.PULSE_CELL])):
                m.next = "CELL_READ"
            with m.If(ok & (job_is[Opcode.WRITE_CELL] | job_is[Opcode.WRITE_ROW])):
                with m.If(regs.write_noise):
                    m.d.comb += self.noise.start.eq(1)
                    m.next = "WRITE_NOISE"
                with m.Elif(job_is[Opcode.WRITE_CELL]):
                    m.next = "WRITE_CELL"
                with m.Else():
                    m.next = "ROW_READ"
            with m.If(ok & job_is[Opcode.READ_ROW]):
                m.next = "READ_ROW_HEADER"
            with m.If(ok & job_is[Opcode.UPDATE_RANK1]):
                m.next = "R1_READ"
            with m.If(ok & job_is[Opcode.RUN_BATCH]):  # its vectors follow as jobs
                m.next = "IDLE"

    def _answer(self, m: Module, s: SimpleNamespace) -> None:
        with m.State("SEND_DONE"):
            self._send(m, "IDLE")
        # STATUS: each chunk is taken from the registers' image, then sent.
        with m.State("STATUS_LOAD"):
            m.d.comb += self.sender.next_long.eq(1)
            m.next = "STATUS_SEND"
        with m.State("STATUS_SEND"):
            self._send(m, "IDLE")
            with m.If(self.sender.taken & ~self.sender.last):
                m.next = "STATUS_LOAD"

    @staticmethod
    def _level_wait(m: Module, first: str, then: str) -> None:
        """States from ``first`` (its cycle puts the cell's address on the banks) to ``then``,
        whose cycle has the cell's level: :data:`~molxbar.hdl.banks.LEVEL_LATENCY` cycles."""
        names = [first] + [f"{first}_WAIT{k}" for k in range(1, LEVEL_LATENCY)]
        for name, following in zip(names, [*names[1:], then], strict=True):
            with m.State(name):
                m.next = following

    def _cells(self, m: Module, s: SimpleNamespace) -> None:
        """Single cells: read (:data:`~molxbar.hdl.banks.LEVEL_LATENCY` cycles), then respond,
        pulse or write."""
        c, layout = self.config, spec.Layout(self.config)
        self._level_wait(m, "CELL_READ", "CELL_USE")
        with m.State("CELL_USE"):
            with m.If(s.job_is[Opcode.READ_CELL]):
                self._load(m, *self._ok_header(Opcode.READ_CELL),
                           (self.banks.level, layout.level_bytes))  # fmt: skip
                m.next = "SEND_DONE"
            with m.Else():
                pulse = self.fields.count[: layout.pulse_bytes * 8].as_signed()
                m.d.sync += s.level_sum.eq(self.banks.level + pulse)
                m.next = "PULSE_WRITE"
        with m.State("PULSE_WRITE"):
            self._write_cell(m, self._clamp(s.level_sum))
            self._load(m, *self._ok_header(Opcode.PULSE_CELL))
            m.next = "SEND_DONE"

        with m.State("WRITE_NOISE"):
            with m.If(s.job_is[Opcode.WRITE_CELL]):
                self._noise_words(m, "WRITE_CELL_WORD")
            with m.Else():
                self._noise_words(m, "ROW_READ")
        # The cell's column word is read in the cycle after the last word is stored.
        with m.State("WRITE_CELL_WORD"):
            m.next = "WRITE_CELL"
        with m.State("WRITE_CELL"):
            self._direct_write(m, s, self.fields.level[: c.g_bits], "WRITE_CELL_ERROR")
            if s.write_error is None:
                self._load(m, *self._ok_header(Opcode.WRITE_CELL))
                m.next = "SEND_DONE"
        if s.write_error is not None:
            with m.State("WRITE_CELL_ERROR"):
                with m.If(self._written(m, s)):
                    self._load(m, *self._ok_header(Opcode.WRITE_CELL))
                    m.next = "SEND_DONE"

    def _rows(self, m: Module, s: SimpleNamespace) -> None:
        """Whole rows: a write takes one column per two cycles (buffer read, then write; with
        noise hardware, the write error's pipeline between); a read sends each level as it
        comes."""
        c, layout = self.config, spec.Layout(self.config)

        def next_column() -> None:
            with m.If(s.cell_col == c.cols - 1):
                self._load(m, *self._ok_header(Opcode.WRITE_ROW))
                m.next = "SEND_DONE"
            with m.Else():
                m.d.sync += s.cell_col.eq(s.cell_col + 1)
                m.next = "ROW_READ"

        with m.State("ROW_READ"):
            m.d.comb += self.row_buf.addr.eq(s.cell_col)
            m.next = "ROW_WRITE"
        with m.State("ROW_WRITE"):
            self._direct_write(m, s, self.row_buf.data, "ROW_ERROR")
            if s.write_error is None:
                next_column()
        if s.write_error is not None:
            with m.State("ROW_ERROR"):
                with m.If(self._written(m, s)):
                    next_column()

        with m.State("READ_ROW_HEADER"):
            self._send(m, "READ_ROW_READ")
        self._level_wait(m, "READ_ROW_READ", "READ_ROW_LOAD")
        with m.State("READ_ROW_LOAD"):
            self._load(m, (self.banks.level, layout.level_bytes))
            m.next = "READ_ROW_SEND"
        with m.State("READ_ROW_SEND"):
            with m.If(s.cell_col == c.cols - 1):
                self._send(m, "IDLE")
            with m.Else():
                self._send(m, "READ_ROW_NEXT")
        with m.State("READ_ROW_NEXT"):
            m.d.sync += s.cell_col.eq(s.cell_col + 1)
            m.next = "READ_ROW_READ"

    def _rank1(self, m: Module, s: SimpleNamespace) -> None:
        """Rank-1 update, one cell at a time: read the factors and the level, compute the
        change (:class:`~molxbar.hdl.rank1.Rank1Unit`), add, clamp and write."""
        c = self.config
        with m.State("R1_READ"):
            m.d.comb += [self.a_buf.addr.eq(s.cell_row), self.b_buf.addr.eq(s.cell_col)]
            m.next = "R1_START"
        with m.State("R1_START"):
            m.d.comb += self.rank1.start.eq(1)
            m.next = "R1_CHANGE"
        with m.State("R1_CHANGE"):
            with m.If(self.rank1.done):
                m.next = "R1_ADD"
        with m.State("R1_ADD"):
            m.d.sync += s.level_sum.eq(self.banks.level + self.rank1.delta)
            m.next = "R1_WRITE"
        with m.State("R1_WRITE"):
            self._write_cell(m, self._clamp(s.level_sum))
            with m.If(s.cell_col == c.cols - 1):
                m.d.sync += [s.cell_col.eq(0), s.cell_row.eq(s.cell_row + 1)]
                with m.If(s.cell_row == c.rows - 1):
                    self._load(m, *self._ok_header(Opcode.UPDATE_RANK1))
                    m.next = "SEND_DONE"
                with m.Else():
                    m.next = "R1_READ"
            with m.Else():
                m.d.sync += s.cell_col.eq(s.cell_col + 1)
                m.next = "R1_READ"

    def _vmm(self, m: Module, s: SimpleNamespace) -> None:
        """VMM: noise words (if on), then the groups; the executor is free again once the
        last group is issued, while its sums and bytes finish in the datapath."""
        c, dp = self.config, self.datapath
        lanes, groups = c.lanes, c.cols // c.lanes
        # The input is read a cycle ahead, the row issued next (row 0 unless the issue goes
        # on within a group), and registered: the lanes take it from a flip-flop, not from a
        # block RAM's slow output.
        next_row = Signal.like(s.cell_row)
        m.d.comb += self.in_buf.addr.eq((s.vmm_slot << input_slot_bits(c)) | next_row)
        m.d.sync += dp.x.eq(self.in_buf.data)
        with m.State("VMM"):
            with m.If(self.registers.read_noise):
                m.d.comb += self.noise.start.eq(1)
                m.next = "VMM_NOISE"
            with m.Else():
                m.next = "VMM_START"
        with m.State("VMM_NOISE"):
            self._noise_words(m, "VMM_START")
        with m.State("VMM_START"):
            # A VMM starts only while its header has a place in the datapath's queue.
            with m.If(dp.can_start & dp.vmm_room):
                m.d.comb += dp.start_vmm.eq(1)
                m.d.sync += [s.cell_row.eq(0), s.cell_col.eq(0)]
                m.next = "VMM_ISSUE"
        with m.State("VMM_ISSUE"):
            m.d.comb += s.issue.eq(1)
            # Straight on to the next group when nothing else is in flight and the latch is
            # free: this group's sums will find it empty.
            go_on = (s.cell_group != groups - 1) & dp.free
            with m.If(s.cell_row == c.rows - 1):
                m.d.comb += dp.group_issued.eq(1)
                m.d.sync += s.cell_row.eq(0)
                with m.If(go_on):
                    m.d.sync += s.cell_col.eq(s.cell_col + lanes)
                with m.Else():
                    m.next = "VMM_NEXT"
            with m.Else():
                m.d.comb += next_row.eq(s.cell_row + 1)
                m.d.sync += s.cell_row.eq(s.cell_row + 1)
        with m.State("VMM_NEXT"):
            with m.If(s.cell_group == groups - 1):
                m.d.comb += dp.last_group.eq(1)
                m.next = "IDLE"
            with m.Elif(dp.can_start):
                m.d.sync += s.cell_col.eq(s.cell_col + lanes)
                m.next = "VMM_ISSUE"
