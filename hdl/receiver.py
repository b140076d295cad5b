"""The command receiver: parses the protocol byte stream into jobs for the engine.

The receiver's fields are generated from the protocol definition
(:mod:`molxbar.firmware.protocol`): the field being received is one bit of a one-hot
register, and each element of it is collected (little-endian) from a window on the byte
stream, a whole element per cycle when its bytes are there. A cycle later the element is
checked against the field's valid ranges and stored in a field register or a buffer memory.
A finished command becomes a *job* (opcode and status) offered to the engine's executor from
registers; the field registers and buffers hold still until the executor is idle again.
During a batch the receiver collects the next input vector while the executor computes the
current one (two input slots, ping-pong).
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

        # Every field of every command, in order, and the batch vector last: the field being
        # received is a bit of the one-hot ``hot`` register, so that each piece of logic
        # below is an AND-OR over those bits rather than a decoder of a state number.
        fields = [
            (op, field, False, k == len(header_fields(op)) - 1)
            for op in Opcode
            for k, field in enumerate(header_fields(op))
        ]
        batch_x = len(fields)
        fields.append((Opcode.RUN_BATCH, COMMANDS[Opcode.RUN_BATCH].fields[1], True, True))
        hot = Signal(len(fields))
        first_field = {}
        for k, (op, _, batch, _) in enumerate(fields):
            if not batch:
                first_field.setdefault(op, k)

        def any_hot(indices):
            return Cat(hot[k] for k in indices).any() if indices else Const(0)

        def width_of(k):
            return layout.width(fields[k][1].kind)

        # Bytes of the current element still to come, loaded with each element's width.
        need = Signal(range(5))
        complete = self.avail >= need
        widths = sorted({width_of(k) for k in range(len(fields))})

        def load_need(indices_of):
            """``need`` becomes the width of field ``indices_of(k)`` for the hot ``k``."""
            choices = {w: [] for w in widths}
            for k in range(len(fields)):
                target = indices_of(k)
                if target is not None:
                    choices[width_of(target)].append(k)
            value = 0
            for w, indices in choices.items():
                value = value | Mux(any_hot(indices), w, 0)
            m.d.sync += need.eq(value)

        # Two stages: the first assembles each element from the stream and walks the fields;
        # the second, a cycle later, checks the element and stores it (``el_*`` registers).
        el_valid = Signal()
        el_value = Signal(32)
        el_hot = Signal(len(fields))
        el_idx = Signal.like(elem_idx)

        def any_el_hot(indices):
            return Cat(el_hot[k] for k in indices).any() if indices else Const(0)

        # The element's value for each field, and its check.
        values, bad_cmd, bad_vec = {}, [], []
        fail_cmd = 0
        for k, (op, field, batch, _) in enumerate(fields):
            value = el_value[: 8 * width_of(k)]
            if Layout.signed(field.kind):
                value = value.as_signed()
            values[k] = value
            ranges, fail = layout.check(op, field)
            if fail is Status.OK:
                continue
            ok = 0
            for low, high in ranges:
                ok = ok | ((value >= low) & (value <= high))
            if batch:
                bad_vec.append(el_hot[k] & ~ok)
                fail_vec = fail
            else:
                bad_cmd.append(el_hot[k] & ~ok)
                fail_cmd = fail_cmd | Mux(el_hot[k], fail, 0)
        by_count = {}
        for k, (_, field, _, _) in enumerate(fields):
            by_count.setdefault(layout.count(field), []).append(k)
        last_elem = 0
        for count, indices in by_count.items():
            last_elem = last_elem | (any_hot(indices) & (elem_idx == count - 1))
        last_field = [k for k, f in enumerate(fields) if f[3]]

        def receive_fields():
            """The body of the state that receives every field but the opcode (stage 1)."""
            m.d.comb += self.take.eq(Mux(complete, need, self.avail))
            with m.If(complete):
                m.d.sync += [
                    byte_idx.eq(0),
                    elem.eq(0),
                    el_valid.eq(1),
                    el_value.eq(full),
                    el_hot.eq(hot),
                    el_idx.eq(elem_idx),
                ]
                with m.If(last_elem):
                    # On to the next field of the command, or the job.
                    not_last = Const(sum(1 << k for k in range(len(fields)) if k not in last_field))
                    m.d.sync += [elem_idx.eq(0), hot.eq((hot & not_last) << 1)]
                    load_need(lambda k: None if k in last_field else k + 1)
                    with m.If(hot[batch_x]):
                        m.next = "BATCH_DISPATCH"
                    with m.Elif(any_hot(last_field)):
                        m.next = "DISPATCH"
                with m.Else():
                    m.d.sync += elem_idx.eq(elem_idx + 1)
                    load_need(lambda k: k)
            with m.Else():
                m.d.sync += [
                    elem.eq(full),
                    byte_idx.eq(byte_idx + self.avail),
                    need.eq(need - self.avail),
                ]

        # Stage 2: the check, the field registers and the buffers.
        m.d.sync += el_valid.eq(0)  # (unless stage 1 completes an element this cycle)
        with m.If(el_valid):
            with m.If(Cat(bad_cmd).any() & (status == Status.OK)):
                m.d.sync += status.eq(fail_cmd)
            with m.If(Cat(bad_vec).any() & (vector_status == Status.OK)):
                m.d.sync += vector_status.eq(fail_vec)
            # Scalar registers, one per field name.
            by_name = {}
            for k, (op, field, _, _) in enumerate(fields):
                if (op, field.name) not in VECTOR_FIELDS:
                    by_name.setdefault(field.name, []).append(k)
            for name, indices in by_name.items():
                data = values[indices[0]]
                if len({(width_of(k), Layout.signed(fields[k][1].kind)) for k in indices}) > 1:
                    data = 0  # (the 32 bits of each, sign-extended where signed)
                    for k in indices:
                        v = values[k]
                        top = v[-1] if Layout.signed(fields[k][1].kind) else Const(0)
                        data = data | Mux(el_hot[k], Cat(v, top.replicate(32 - len(v))), 0)
                with m.If(any_el_hot(indices)):
                    m.d.sync += getattr(self, f"f_{name}").eq(data)
            # Buffers: each one takes the elements of its fields, at their index.
            for target in sorted(set(VECTOR_FIELDS.values())):
                indices = [
                    k
                    for k, (op, field, _, _) in enumerate(fields)
                    if VECTOR_FIELDS.get((op, field.name)) == target
                ]
                with m.If(any_el_hot(indices)):
                    if target == "sigma":
                        m.d.sync += sigma[el_idx].eq(values[indices[0]])
                        continue
                    port = getattr(self, target)
                    addr = el_idx
                    if target == "in_buf":
                        slot = Mux(el_hot[batch_x], batch_slot, self.load_slot)
                        addr = (slot << slot_bits) | el_idx
                    m.d.comb += [port.addr.eq(addr), port.data.eq(el_value), port.en.eq(1)]

        x_width = width_of(batch_x)
        # Registered: a cycle late in turning high, never in turning low (the executor only
        # leaves its idle state by taking a job, while this receiver offers it).
        exec_idle = Signal()
        m.d.sync += exec_idle.eq(self.exec_idle)
        with m.FSM(name="receiver"):
            with m.State("OPCODE"):
                m.d.comb += self.waiting.eq(1)
                with m.If((self.avail != 0) & exec_idle):
                    m.d.comb += self.take.eq(1)
                    m.d.sync += [
                        opcode.eq(byte),
                        status.eq(Status.OK),
                        elem.eq(0),
                        byte_idx.eq(0),
                        elem_idx.eq(0),
                        self.load_slot.eq(self.loaded_slot ^ 1),
                    ]
                    m.next = "DECODE"
            with m.State("DECODE"):  # (from the opcode register: a cycle, and a short path)
                with m.Switch(opcode):
                    for op in Opcode:
                        with m.Case(op):
                            if op in first_field:
                                k = first_field[op]
                                m.d.sync += [hot.eq(1 << k), need.eq(width_of(k))]
                                m.next = "FIELDS"
                            else:
                                m.next = "DISPATCH"
                    with m.Default():
                        m.d.sync += status.eq(Status.UNKNOWN_OPCODE)
                        m.next = "DISPATCH"
            with m.State("FIELDS"):
                receive_fields()
            # The job is offered from registers, loaded once stage 2 has checked the last
            # element, so that the executor's decisions start at flip-flops.
            job_valid = Signal()
            m.d.comb += self.job_valid.eq(job_valid)
            with m.State("DISPATCH"):
                with m.If(~job_valid & ~el_valid):
                    m.d.sync += [
                        job_valid.eq(1),
                        self.job_status.eq(status),
                        self.job_vector.eq(0),
                    ]
                with m.Elif(job_valid & self.job_ready):
                    m.d.sync += job_valid.eq(0)
                    batch = (opcode == Opcode.RUN_BATCH) & (status == Status.OK)
                    with m.If(batch):
                        m.d.sync += [
                            vectors_left.eq(self.f_count),
                            vector_status.eq(Status.OK),
                            hot.eq(1 << batch_x),
                            need.eq(x_width),
                        ]
                        m.next = "FIELDS"
                    with m.Else():
                        m.next = "OPCODE"
            with m.State("BATCH_DISPATCH"):
                with m.If(~job_valid & ~el_valid):
                    m.d.sync += [
                        job_valid.eq(1),
                        self.job_status.eq(vector_status),
                        self.job_vector.eq(1),
                        self.job_slot.eq(batch_slot),
                    ]
                with m.Elif(job_valid & self.job_ready):
                    m.d.sync += [
                        job_valid.eq(0),
                        batch_slot.eq(~batch_slot),
                        vectors_left.eq(vectors_left - 1),
                        vector_status.eq(Status.OK),
                    ]
                    with m.If(vectors_left == 1):
                        m.next = "OPCODE"
                    with m.Else():
                        m.d.sync += [hot.eq(1 << batch_x), need.eq(x_width)]
                        m.next = "FIELDS"
        return m
