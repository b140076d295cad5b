"""The command receiver: parses the protocol byte stream into jobs for the engine.

The receiver's fields are generated from the protocol definition
(:mod:`molxbar.protocol.spec`): the field being received is one bit of a one-hot
register, and each element of it is collected (little-endian) from a window on the byte
stream, a whole element per cycle when its bytes are there. A cycle later the element is
checked against the field's valid ranges and stored in a field register or a buffer memory;
the verdict reaches the status a cycle after that. The state is one-hot, and what each step
depends on (the element is the last of its field, the field the last of its command, its
width) is kept in registers loaded with the field, so that the decisions start at flip-flops.
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
from molxbar.protocol.spec import (
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
    job_ok : ``Out(1)``
        ``job_status`` is OK.
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
                "job_ok": Out(1),
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

    def elaborate(self, platform) -> Module:  # noqa: C901 - one state machine, read in order
        c, layout = self.config, self.layout
        m = Module()
        slot_bits = input_slot_bits(c)
        w = self.window_bytes

        byte = self.window[:8]
        elem = Signal(32)  # the bytes of the element received so far
        byte_idx = Signal(range(4))
        elem_idx = Signal(range(max(c.rows, c.cols, SIGMA_SEGMENTS) + 1))
        # The element with the window's bytes in place; the window is zero past ``avail``,
        # and bytes past the element's width are cut off below.
        full = Signal(32)
        m.d.comb += full.eq(elem | (self.window << Cat(Const(0, 3), byte_idx)))

        opcode = Signal(8)
        # One flag per opcode, registered with ``opcode``: the decode starts at flip-flops.
        opcode_is = {op: Signal(name=f"opcode_is_{op.name.lower()}") for op in Opcode}
        opcode_known = Signal()
        opcode_has_fields = Signal()
        status = Signal(8)
        status_ok = Signal(init=1)  # ``status == Status.OK``, kept beside it
        vector_status = Signal(8)
        vectors_left = Signal(16)
        last_vector = Signal()  # the vector whose job is offered is the batch's last
        batch_slot = Signal()
        sigma_regs = [Signal(SIGMA_SCALE_BITS, name=f"sigma{k}") for k in range(SIGMA_SEGMENTS)]
        sigma = Array(sigma_regs)
        m.d.comb += self.sigma.eq(Cat(*sigma_regs))
        m.d.comb += [self.job_opcode.eq(opcode)]

        # The state, one flip-flop each (one-hot), so that every decision below starts at a
        # flip-flop rather than at a decoder of a state number:
        # OPCODE   waits for the opcode byte (and for the executor to be idle);
        # DECODE   loads the first field of the opcode (a cycle, from the opcode register);
        # FIELDS   receives the fields, and the vector of a batch;
        # DISPATCH, BATCH_DISPATCH offer the job of the command, or of a batch vector.
        st_opcode = Signal(init=1)
        st_decode = Signal()
        st_fields = Signal()
        st_dispatch = Signal()
        st_batch_dispatch = Signal()
        states = [st_opcode, st_decode, st_fields, st_dispatch, st_batch_dispatch]
        # Registered: a cycle late in turning high, never in turning low (the executor only
        # leaves its idle state by taking a job, while this receiver offers it).
        exec_idle = Signal()
        m.d.sync += exec_idle.eq(self.exec_idle)

        def goto(state):
            m.d.sync += [s.eq(s is state) for s in states]

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

        def count_of(k):
            return layout.count(fields[k][1])

        # Bytes of the current element still to come, loaded with each element's width.
        need = Signal(range(5))
        if w == 1:
            # ``avail >= need`` written out as one LUT of ``need`` and the byte flag (``avail``
            # is 0 or 1): every decision of stage 1 waits for it.
            complete = (need == 0) | ((need == 1) & self.avail[0])
        else:
            complete = self.avail >= need
        # What the steps from one element to the next depend on, kept in registers beside
        # ``hot`` and loaded with each field, so that those steps do not decode ``hot``:
        # ``last_elem``, the element being received is the last of its field; ``last_of_cmd``,
        # the field is the last of its command (or the batch vector); ``elem_width``, the
        # field's element width; ``of_count[c]``, the field has ``c`` elements.
        last_elem = Signal()
        last_of_cmd = Signal()
        elem_width = Signal.like(need)
        last_field = [k for k, f in enumerate(fields) if f[3]]
        by_count = {}
        for k in range(len(fields)):
            by_count.setdefault(count_of(k), []).append(k)
        of_count = {count: Signal(name=f"of_count{count}") for count in by_count}

        # The element width of the field after the hot one (0 after a command's last field).
        next_width = Signal.like(need)

        def width_after(k):
            return 0 if k in last_field else width_of(k + 1)

        def width_after_next():
            """``next_width`` once the field after the hot one is entered: an AND-OR over
            ``hot`` (the hot field is not the last of its command)."""
            value = 0
            for k in range(len(fields)):
                if k not in last_field and width_after(k + 1):
                    value = value | Mux(hot[k], width_after(k + 1), 0)
            return value

        def enter_field(choice):
            """The first element of a field comes next: of field ``choice``, or, for a dict
            ``{k: flag}``, of the field whose flag is high (one at most; an AND-OR)."""
            if isinstance(choice, int):
                choice = {choice: Const(1)}

            def pick(value_of):
                value = 0
                for k, flag in choice.items():
                    value = value | Mux(flag, value_of(k), 0)
                return value

            m.d.sync += [
                next_width.eq(pick(width_after)),
                hot.eq(pick(lambda k: 1 << k)),
                need.eq(pick(width_of)),
                elem_width.eq(pick(width_of)),
                last_elem.eq(pick(lambda k: count_of(k) == 1)),
                last_of_cmd.eq(pick(lambda k: k in last_field)),
            ]
            m.d.sync += [
                flag.eq(pick(lambda k, n=count: count_of(k) == n))
                for count, flag in of_count.items()
            ]

        def next_field_is(predicate):
            """Whether the field after the hot one (of the same command) has ``predicate``."""
            return any_hot(
                [k for k in range(len(fields)) if k not in last_field and predicate(k + 1)]
            )

        # Two stages: the first assembles each element from the stream and walks the fields;
        # the second, a cycle later, checks the element and stores it (``el_*`` registers).
        el_valid = Signal()
        el_value = Signal(32)
        el_hot = Signal(len(fields))
        el_idx = Signal.like(elem_idx)

        def any_el_hot(indices):
            return Cat(el_hot[k] for k in indices).any() if indices else Const(0)

        # The element's value for each field; its checks, one per distinct (width, signedness,
        # valid ranges), each enabled by a flag that stage 1 registers with the element.
        values, checks = {}, {}
        fail_cmd = 0
        for k, (op, field, batch, _) in enumerate(fields):
            value = el_value[: 8 * width_of(k)]
            if Layout.signed(field.kind):
                value = value.as_signed()
            values[k] = value
            ranges, fail = layout.check(op, field)
            if fail is Status.OK:
                continue
            key = (batch, width_of(k), Layout.signed(field.kind), ranges)
            checks.setdefault(key, []).append(k)
            if batch:
                fail_vec = fail
            else:
                fail_cmd = fail_cmd | Mux(el_hot[k], fail, 0)
        bad_cmd, bad_vec = [], []
        for (batch, width, is_signed, ranges), indices in checks.items():
            checked = Signal(name=f"el_check{len(bad_cmd) + len(bad_vec)}")
            with m.If(st_fields & complete):
                m.d.sync += checked.eq(any_hot(indices))
            ok = 0
            for low, high in ranges:
                ok = ok | _within(el_value[: 8 * width], is_signed, low, high)
            (bad_vec if batch else bad_cmd).append(checked & ~ok)

        # ``last_elem`` for the next element of this field, whose index is one more.
        last_next_in_field = 0
        for count, flag in of_count.items():
            last_next_in_field = last_next_in_field | (flag & (elem_idx == count - 2))

        m.d.sync += el_valid.eq(0)  # (unless stage 1 completes an element this cycle)

        # Stage 1: every field but the opcode. ``take`` is the rest of the current element, or
        # what there is of it; with a one-byte window that is simply the byte, if there is one.
        if w == 1:
            m.d.comb += self.take.eq(self.avail & (st_fields | (st_opcode & exec_idle)))
        with m.If(st_fields):
            if w > 1:
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
                    m.d.sync += [
                        elem_idx.eq(0),
                        hot.eq((hot & not_last) << 1),
                        need.eq(next_width),
                        elem_width.eq(next_width),
                        next_width.eq(width_after_next()),
                        last_elem.eq(next_field_is(lambda k: count_of(k) == 1)),
                        last_of_cmd.eq(next_field_is(lambda k: k in last_field)),
                    ]
                    for count, flag in of_count.items():
                        m.d.sync += flag.eq(next_field_is(lambda k, n=count: count_of(k) == n))
                    with m.If(last_of_cmd):
                        with m.If(hot[batch_x]):
                            goto(st_batch_dispatch)
                        with m.Else():
                            goto(st_dispatch)
                with m.Else():
                    m.d.sync += [
                        elem_idx.eq(elem_idx + 1),
                        need.eq(elem_width),
                        last_elem.eq(last_next_in_field),
                    ]
            with m.Else():
                m.d.sync += [
                    elem.eq(full),
                    byte_idx.eq(byte_idx + self.avail),
                    need.eq(need - self.avail),
                ]

        # Stage 2: the check, the field registers and the buffers.
        # The checks' verdict is registered, and applied to the status a cycle later (stage
        # 3); a job offered meanwhile takes the status as it will be (``status_now``).
        cmd_bad = Signal()
        cmd_fail = Signal.like(status)
        vec_bad = Signal()
        m.d.sync += [
            cmd_bad.eq(el_valid & Cat(bad_cmd).any()),
            cmd_fail.eq(fail_cmd),
            vec_bad.eq(el_valid & Cat(bad_vec).any()),
        ]
        fail_now = cmd_bad & status_ok
        status_now = Mux(fail_now, cmd_fail, status)
        ok_now = status_ok & ~cmd_bad
        with m.If(fail_now):
            m.d.sync += [status.eq(cmd_fail), status_ok.eq(0)]
        # (``fail_vec`` is the only status a vector can fail with.)
        vector_status_now = Mux(vec_bad, fail_vec, vector_status) if bad_vec else vector_status
        m.d.sync += vector_status.eq(vector_status_now)
        with m.If(el_valid):
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

        m.d.comb += self.waiting.eq(st_opcode)
        with m.If(st_opcode):
            is_op = {op: byte == op for op in Opcode}
            with m.If((self.avail != 0) & exec_idle):
                if w > 1:
                    m.d.comb += self.take.eq(1)
                m.d.sync += [
                    opcode.eq(byte),
                    *(flag.eq(is_op[op]) for op, flag in opcode_is.items()),
                    opcode_known.eq(Cat(is_op.values()).any()),
                    opcode_has_fields.eq(Cat(is_op[op] for op in first_field).any()),
                    status.eq(Status.OK),
                    status_ok.eq(1),
                    elem.eq(0),
                    byte_idx.eq(0),
                    elem_idx.eq(0),
                    self.load_slot.eq(self.loaded_slot ^ 1),
                ]
                goto(st_decode)
        with m.If(st_decode):  # (from the opcode flags: a cycle, and a short path)
            with m.If(opcode_has_fields):
                enter_field({k: opcode_is[op] for op, k in first_field.items()})
                goto(st_fields)
            with m.Else():
                with m.If(~opcode_known):
                    m.d.sync += [status.eq(Status.UNKNOWN_OPCODE), status_ok.eq(0)]
                goto(st_dispatch)
        # The job is offered from registers, loaded once stage 2 has checked the last element,
        # so that the executor's decisions start at flip-flops; so do this receiver's, on
        # the flags registered with the offer.
        job_valid = Signal()
        batch_next = Signal()  # the job starts a batch whose vectors follow
        m.d.comb += self.job_valid.eq(job_valid)
        # Whatever a batch vector needs next is loaded with the offer (nothing reads it
        # before the job is taken), so that only the state and ``job_valid`` wait for
        # ``job_ready``.
        with m.If(st_dispatch):
            with m.If(~job_valid & ~el_valid):
                m.d.sync += [
                    job_valid.eq(1),
                    self.job_status.eq(status_now),
                    self.job_ok.eq(ok_now),
                    self.job_vector.eq(0),
                    batch_next.eq(opcode_is[Opcode.RUN_BATCH] & ok_now),
                    vectors_left.eq(self.f_count),
                    vector_status.eq(Status.OK),
                ]
                enter_field(batch_x)
            with m.Elif(job_valid & self.job_ready):
                m.d.sync += job_valid.eq(0)
                with m.If(batch_next):
                    goto(st_fields)
                with m.Else():
                    goto(st_opcode)
        with m.If(st_batch_dispatch):
            with m.If(~job_valid & ~el_valid):
                m.d.sync += [
                    job_valid.eq(1),
                    self.job_status.eq(vector_status_now),
                    self.job_ok.eq(vector_status_now == Status.OK),
                    self.job_vector.eq(1),
                    self.job_slot.eq(batch_slot),
                    last_vector.eq(vectors_left == 1),
                    batch_slot.eq(~batch_slot),
                    vectors_left.eq(vectors_left - 1),
                    vector_status.eq(Status.OK),
                ]
                enter_field(batch_x)
            with m.Elif(job_valid & self.job_ready):
                m.d.sync += job_valid.eq(0)
                with m.If(last_vector):
                    goto(st_opcode)
                with m.Else():
                    goto(st_fields)
        return m


def _at_most(bits, bound: int):
    """``bits`` (unsigned) <= the constant ``bound``, as an AND-OR over the bits from the top
    (no carry chain): the bits below a run of ones in ``bound`` drop out."""
    n = len(bits)
    if bound < 0:
        return Const(0)
    if bound >= (1 << n) - 1:
        return Const(1)
    top, rest = bits[n - 1], bits[: n - 1]
    if bound >> (n - 1) & 1:
        return ~top | _at_most(rest, bound - (1 << (n - 1)))
    return ~top & _at_most(rest, bound)


def _within(bits, is_signed: bool, low: int, high: int):
    """``low <= bits <= high``, ``bits`` read as signed if ``is_signed``."""
    if is_signed:  # offset binary: the same order, unsigned
        offset = 1 << (len(bits) - 1)
        bits = Cat(bits[:-1], ~bits[-1])
        low, high = low + offset, high + offset
    return ~_at_most(bits, low - 1) & _at_most(bits, high)
