"""The command receiver: parses the protocol byte stream into jobs for the engine.

The receiver's states are generated from the protocol definition
(:mod:`molxbar.firmware.protocol`): one state per command field, each collecting its
elements (little-endian) from a window on the byte stream, a whole element per cycle when
its bytes are there, checking each element against the field's valid ranges and storing it
in a field register or a buffer memory. A finished command becomes a
*job* (opcode and status) offered to the engine's executor; the field registers and buffers
hold still until the executor is idle again. During a batch the receiver collects the next
input vector while the executor computes the current one (two input slots, ping-pong).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from molxbar.emulator.config import SIGMA_SCALE_BITS, SIGMA_SEGMENTS, CrossbarConfig
from molxbar.firmware.protocol import (
    COMMANDS,
    Layout,
    Opcode,
    Status,
    header_fields,
)

__all__ = ["CommandReceiver", "VECTOR_FIELDS", "SCALAR_FIELDS", "input_slot_bits"]

#: Vector fields and the buffer each one fills.
VECTOR_FIELDS = {
    (Opcode.WRITE_ROW, "levels"): "row_buf",
    (Opcode.UPDATE_RANK1, "a"): "a_buf",
    (Opcode.UPDATE_RANK1, "b"): "b_buf",
    (Opcode.LOAD_INPUT, "x"): "in_buf",
    (Opcode.RUN_BATCH, "x"): "in_buf",
    (Opcode.SET_SIGMA, "scale"): "sigma",
}
#: Names of the scalar field registers (32 bits each, raw two's complement for signed ones).
SCALAR_FIELDS = sorted(
    {
        f.name
        for spec in COMMANDS.values()
        for f in header_fields(spec.opcode)
        if (spec.opcode, f.name) not in VECTOR_FIELDS
    }
)
#: Input slots 0 and 1 take batch vectors; 2 and 3 the loaded vector (one live, one filling).
INPUT_SLOTS = 4


def input_slot_bits(config: CrossbarConfig) -> int:
    """Address bits of one input slot: input memory address = ``slot << bits | row``."""
    return max(1, ceil_log2(config.rows))


class CommandReceiver(wiring.Component):
    """Bytes in, jobs out.

    Members
    -------
    window, avail : ``In(8 * window_bytes)``, ``In(range(window_bytes + 1))``
        The next bytes of the command stream (:class:`~molxbar.hdl.beats.BeatUnpacker`).
    take : ``Out(range(window_bytes + 1))``
        The bytes taken this cycle: the rest of the current element, or what there is of it,
        in every field state; nothing while a job waits, or before a new command while the
        executor is busy.
    job_valid, job_ready : ``Out(1)``, ``In(1)``
        A job is offered; it transfers when both are high.
    job_opcode, job_status : ``Out(8)``
        The command and its status: the first failed field check, or OK.
    job_vector, job_slot : ``Out(1)``, ``Out(2)``
        The job is a batch vector, in input slot ``job_slot``.
    waiting : ``Out(1)``
        Between commands: no command is partly received.
    exec_idle : ``In(1)``
        The executor has finished every job; a new command may overwrite the field
        registers and buffers.
    loaded_slot : ``In(2)``
        The input slot RUN_VMM uses (2 or 3); LOAD_INPUT fills the other one.
    load_slot : ``Out(2)``
        The slot the last LOAD_INPUT filled.
    f_<name> : ``Out(32)``
        One register per scalar field name (:data:`SCALAR_FIELDS`).
    sigma : ``Out(unsigned(12 * 16))``
        The received noise amplitude table of SET_SIGMA.
    row_buf, a_buf, b_buf, in_buf : ``In(WritePort.Signature(...))``
        Drive the write ports of the buffer memories the executor reads.
    """

    def __init__(self, config: CrossbarConfig, window_bytes: int = 1) -> None:
        self.config = config
        self.layout = Layout(config)
        self.window_bytes = window_bytes
        c = config
        slot_bits = input_slot_bits(c)
        super().__init__(
            {
                "window": In(8 * window_bytes),
                "avail": In(range(window_bytes + 1)),
                "take": Out(range(window_bytes + 1)),
                "job_valid": Out(1),
                "job_ready": In(1),
                "job_opcode": Out(8),
                "job_status": Out(8),
                "job_vector": Out(1),
                "job_slot": Out(2),
                "exec_idle": In(1),
                "waiting": Out(1),
                "loaded_slot": In(2),
                "load_slot": Out(2),
                **{f"f_{name}": Out(32) for name in SCALAR_FIELDS},
                "sigma": Out(unsigned(SIGMA_SCALE_BITS * SIGMA_SEGMENTS)),
                "row_buf": In(
                    WritePort.Signature(addr_width=ceil_log2(c.cols), shape=unsigned(c.g_bits))
                ),
                "a_buf": In(
                    WritePort.Signature(addr_width=ceil_log2(c.rows), shape=signed(c.x_bits))
                ),
                "b_buf": In(
                    WritePort.Signature(addr_width=ceil_log2(c.cols), shape=signed(c.x_bits))
                ),
                "in_buf": In(
                    WritePort.Signature(
                        addr_width=slot_bits + ceil_log2(INPUT_SLOTS), shape=signed(c.x_bits)
                    )
                ),
            }
        )

    def elaborate(self, platform) -> Module:
        c, layout = self.config, self.layout
        m = Module()
        slot_bits = input_slot_bits(c)

        byte = self.window[:8]
        elem = Signal(32)  # the bytes of the element received so far
        byte_idx = Signal(range(4))
        elem_idx = Signal(range(max(c.rows, c.cols, SIGMA_SEGMENTS) + 1))
        # The element with the window's bytes in place; the window is zero past ``avail``,
        # and bytes past the element's width are cut off below.
        full = Signal(32)
        m.d.comb += full.eq(elem | (self.window << Cat(Const(0, 3), byte_idx)))

        opcode = Signal(8)
        status = Signal(8)
        vector_status = Signal(8)
        vectors_left = Signal(16)
        batch_slot = Signal()
        sigma_regs = [Signal(SIGMA_SCALE_BITS, name=f"sigma{k}") for k in range(SIGMA_SEGMENTS)]
        sigma = Array(sigma_regs)
        m.d.comb += self.sigma.eq(Cat(*sigma_regs))
        m.d.comb += [self.job_opcode.eq(opcode)]

        # Bytes of the current element still to come: a register, loaded with the width of
        # each field as its state is entered, so that no state compares against a difference.
        need = Signal(range(5))

        def receive_field(op: Opcode, field, next_state: str, next_width: int, batch: bool):
            """The body of the state that receives ``field`` of command ``op``; the element
            after its last is ``next_width`` bytes wide."""
            width = layout.width(field.kind)
            count = layout.count(field)
            ranges, fail = layout.check(op, field)
            value = full[: 8 * width]
            if Layout.signed(field.kind):
                value = value.as_signed()
            ok = 0
            for low, high in ranges:
                ok = ok | ((value >= low) & (value <= high))
            complete = self.avail >= need
            m.d.comb += self.take.eq(Mux(complete, need, self.avail))
            with m.If(complete):
                m.d.sync += [byte_idx.eq(0), elem.eq(0), need.eq(width)]
                track = vector_status if batch else status
                if fail is not Status.OK:
                    with m.If(~ok & (track == Status.OK)):
                        m.d.sync += track.eq(fail)
                target = VECTOR_FIELDS.get((op, field.name))
                if target is None:
                    m.d.sync += getattr(self, f"f_{field.name}").eq(value)
                elif target == "sigma":
                    m.d.sync += sigma[elem_idx].eq(value)
                else:
                    port = getattr(self, target)
                    addr = elem_idx
                    if target == "in_buf":
                        slot = batch_slot if batch else self.load_slot
                        addr = (slot << slot_bits) | elem_idx
                    m.d.sync += [port.addr.eq(addr), port.data.eq(value), port.en.eq(1)]
                with m.If(elem_idx == count - 1):
                    m.d.sync += [elem_idx.eq(0), need.eq(next_width)]
                    m.next = next_state
                with m.Else():
                    m.d.sync += elem_idx.eq(elem_idx + 1)
            with m.Else():
                m.d.sync += [
                    elem.eq(full),
                    byte_idx.eq(byte_idx + self.avail),
                    need.eq(need - self.avail),
                ]

        # The buffers are written a cycle after their element arrives (registered ports).
        for target in sorted(set(VECTOR_FIELDS.values()) - {"sigma"}):
            m.d.sync += getattr(self, target).en.eq(0)

        with m.FSM(name="receiver"):
            with m.State("OPCODE"):
                m.d.comb += self.waiting.eq(1)
                with m.If((self.avail != 0) & self.exec_idle):
                    m.d.comb += self.take.eq(1)
                    m.d.sync += [
                        opcode.eq(byte),
                        status.eq(Status.OK),
                        elem.eq(0),
                        byte_idx.eq(0),
                        elem_idx.eq(0),
                        self.load_slot.eq(self.loaded_slot ^ 1),
                    ]
                    with m.Switch(byte):
                        for op in Opcode:
                            fields = header_fields(op)
                            with m.Case(op):
                                if fields:
                                    m.d.sync += need.eq(layout.width(fields[0].kind))
                                m.next = f"{op.name}_{fields[0].name}" if fields else "DISPATCH"
                        with m.Default():
                            m.d.sync += status.eq(Status.UNKNOWN_OPCODE)
                            m.next = "DISPATCH"
            for op in Opcode:
                fields = header_fields(op)
                for k, field in enumerate(fields):
                    if k + 1 < len(fields):
                        nxt = f"{op.name}_{fields[k + 1].name}"
                        nxt_width = layout.width(fields[k + 1].kind)
                    else:
                        nxt, nxt_width = "DISPATCH", 1
                    with m.State(f"{op.name}_{field.name}"):
                        receive_field(op, field, nxt, nxt_width, batch=False)
            # The job is offered from registers, loaded in the state's first cycle, so that
            # the executor's decisions start at flip-flops.
            job_valid = Signal()
            x_field = COMMANDS[Opcode.RUN_BATCH].fields[1]
            x_width = layout.width(x_field.kind)
            m.d.comb += self.job_valid.eq(job_valid)
            with m.State("DISPATCH"):
                with m.If(~job_valid):
                    m.d.sync += [
                        job_valid.eq(1),
                        self.job_status.eq(status),
                        self.job_vector.eq(0),
                    ]
                with m.Elif(self.job_ready):
                    m.d.sync += job_valid.eq(0)
                    batch = (opcode == Opcode.RUN_BATCH) & (status == Status.OK)
                    with m.If(batch):
                        m.d.sync += [
                            vectors_left.eq(self.f_count),
                            vector_status.eq(Status.OK),
                            need.eq(x_width),
                        ]
                        m.next = "BATCH_X"
                    with m.Else():
                        m.next = "OPCODE"
            with m.State("BATCH_X"):
                receive_field(Opcode.RUN_BATCH, x_field, "BATCH_DISPATCH", 1, batch=True)
            with m.State("BATCH_DISPATCH"):
                with m.If(~job_valid):
                    m.d.sync += [
                        job_valid.eq(1),
                        self.job_status.eq(vector_status),
                        self.job_vector.eq(1),
                        self.job_slot.eq(batch_slot),
                    ]
                with m.Elif(self.job_ready):
                    m.d.sync += [
                        job_valid.eq(0),
                        batch_slot.eq(~batch_slot),
                        vectors_left.eq(vectors_left - 1),
                        vector_status.eq(Status.OK),
                        need.eq(x_width),
                    ]
                    with m.If(vectors_left == 1):
                        m.next = "OPCODE"
                    with m.Else():
                        m.next = "BATCH_X"
        return m
