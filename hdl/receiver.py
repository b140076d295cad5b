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

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
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

from .jobs import (
    JOB_LAYOUT,
    VECTOR_FIELDS,
    buffer_shapes,
    fields_layout,
    input_slot_bits,
)

__all__ = ["CommandReceiver"]


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
    job : ``Out(stream.Signature(JOB_LAYOUT))``
        The jobs (:mod:`molxbar.hdl.jobs`), offered from registers.
    waiting : ``Out(1)``
        Between commands: no command is partly received.
    exec_idle : ``In(1)``
        The executor has finished every job; a new command may overwrite the field
        registers and buffers.
    loaded_slot : ``In(2)``
        The input slot RUN_VMM uses (2 or 3); LOAD_INPUT fills the other one.
    load_slot : ``Out(2)``
        The slot the last LOAD_INPUT filled.
    fields : ``Out(fields_layout())``
        One register per scalar field name (:data:`~molxbar.hdl.jobs.SCALAR_FIELDS`).
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
        super().__init__(
            {
                "window": In(8 * window_bytes),
                "avail": In(range(window_bytes + 1)),
                "take": Out(range(window_bytes + 1)),
                "job": Out(stream.Signature(JOB_LAYOUT)),
                "exec_idle": In(1),
                "waiting": Out(1),
                "loaded_slot": In(2),
                "load_slot": Out(2),
                "fields": Out(fields_layout()),
                "sigma": Out(unsigned(SIGMA_SCALE_BITS * SIGMA_SEGMENTS)),
                **{
                    name: In(WritePort.Signature(addr_width=ceil_log2(depth), shape=shape))
                    for name, (shape, depth) in buffer_shapes(c).items()
                },
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        # What the parts below share: registers, and the helpers that drive them.
        r = SimpleNamespace()
        self._registers(m, r)
        self._field_walk(m, r)
        self._checks(m, r)
        self._assemble(m, r)
        self._check_and_store(m, r)
        self._opcode(m, r)
        self._dispatch(m, r)
        return m

    def _registers(self, m: Module, r: SimpleNamespace) -> None:
        """Registers: the element being received, the opcode and its flags, the status, the
        one-hot state."""
        c = self.config
        r.byte = self.window[:8]
        r.elem = Signal(32)  # the bytes of the element received so far
        r.byte_idx = Signal(range(4))
        r.elem_idx = Signal(range(max(c.rows, c.cols, SIGMA_SEGMENTS) + 1))
        # The element with the window's bytes in place; the window is zero past ``avail``,
        # and bytes past the element's width are cut off below.
        r.full = Signal(32)
        m.d.comb += r.full.eq(r.elem | (self.window << Cat(Const(0, 3), r.byte_idx)))

        r.opcode = Signal(8)
        # One flag per opcode, registered with ``opcode``: the decode starts at flip-flops.
        r.opcode_is = {op: Signal(name=f"opcode_is_{op.name.lower()}") for op in Opcode}
        r.opcode_known = Signal()
        r.opcode_has_fields = Signal()
        r.status = Signal(8)
        r.status_ok = Signal(init=1)  # ``status == Status.OK``, kept beside it
        r.vector_status = Signal(8)
        r.vectors_left = Signal(16)
        r.last_vector = Signal()  # the vector whose job is offered is the batch's last
        r.batch_slot = Signal()
        r.sigma_regs = [Signal(SIGMA_SCALE_BITS, name=f"sigma{k}") for k in range(SIGMA_SEGMENTS)]
        r.sigma = Array(r.sigma_regs)
        m.d.comb += self.sigma.eq(Cat(*r.sigma_regs))
        r.job = self.job.payload
        m.d.comb += [r.job.opcode.eq(r.opcode)]

        # The state, one flip-flop each (one-hot), so that every decision below starts at a
        # flip-flop rather than at a decoder of a state number:
        # OPCODE   waits for the opcode byte (and for the executor to be idle);
        # DECODE   loads the first field of the opcode (a cycle, from the opcode register);
        # FIELDS   receives the fields, and the vector of a batch;
        # DISPATCH, BATCH_DISPATCH offer the job of the command, or of a batch vector.
        r.st_opcode = Signal(init=1)
        r.st_decode = Signal()
        r.st_fields = Signal()
        r.st_dispatch = Signal()
        r.st_batch_dispatch = Signal()
        r.states = [r.st_opcode, r.st_decode, r.st_fields, r.st_dispatch, r.st_batch_dispatch]
        # Registered: a cycle late in turning high, never in turning low (the executor only
        # leaves its idle state by taking a job, while this receiver offers it).
        r.exec_idle = Signal()
        m.d.sync += r.exec_idle.eq(self.exec_idle)

        def goto(state):
            m.d.sync += [s.eq(s is state) for s in r.states]
        r.goto = goto

    def _field_walk(self, m: Module, r: SimpleNamespace) -> None:
        """The walk over the fields: which field is being received, and what its next
        element needs."""
        layout = self.layout
        w = self.window_bytes
        # Every field of every command, in order, and the batch vector last: the field being
        # received is a bit of the one-hot ``hot`` register, so that each piece of logic
        # below is an AND-OR over those bits rather than a decoder of a state number.
        r.fields = [
            (op, field, False, k == len(header_fields(op)) - 1)
            for op in Opcode
            for k, field in enumerate(header_fields(op))
        ]
        r.batch_x = len(r.fields)
        r.fields.append((Opcode.RUN_BATCH, COMMANDS[Opcode.RUN_BATCH].fields[1], True, True))
        r.hot = Signal(len(r.fields))
        r.first_field = {}
        for k, (op, _, batch, _) in enumerate(r.fields):
            if not batch:
                r.first_field.setdefault(op, k)

        def any_hot(indices):
            return Cat(r.hot[k] for k in indices).any() if indices else Const(0)
        r.any_hot = any_hot

        def width_of(k):
            return layout.width(r.fields[k][1].kind)
        r.width_of = width_of

        def count_of(k):
            return layout.count(r.fields[k][1])
        r.count_of = count_of

        # Bytes of the current element still to come, loaded with each element's width.
        r.need = Signal(range(5))
        if w == 1:
            # ``avail >= need`` written out as one LUT of ``need`` and the byte flag (``avail``
            # is 0 or 1): every decision of stage 1 waits for it.
            r.complete = (r.need == 0) | ((r.need == 1) & self.avail[0])
        else:
            r.complete = self.avail >= r.need
        # What the steps from one element to the next depend on, kept in registers beside
        # ``hot`` and loaded with each field, so that those steps do not decode ``hot``:
        # ``last_elem``, the element being received is the last of its field; ``last_of_cmd``,
        # the field is the last of its command (or the batch vector); ``elem_width``, the
        # field's element width; ``of_count[c]``, the field has ``c`` elements.
        r.last_elem = Signal()
        r.last_of_cmd = Signal()
        r.elem_width = Signal.like(r.need)
        r.last_field = [k for k, f in enumerate(r.fields) if f[3]]
        r.by_count = {}
        for k in range(len(r.fields)):
            r.by_count.setdefault(r.count_of(k), []).append(k)
        r.of_count = {count: Signal(name=f"of_count{count}") for count in r.by_count}

        # The element width of the field after the hot one (0 after a command's last field).
        r.next_width = Signal.like(r.need)

        def width_after(k):
            return 0 if k in r.last_field else r.width_of(k + 1)
        r.width_after = width_after

        def width_after_next():
            """``next_width`` once the field after the hot one is entered: an AND-OR over
            ``hot`` (the hot field is not the last of its command)."""
            value = 0
            for k in range(len(r.fields)):
                if k not in r.last_field and r.width_after(k + 1):
                    value = value | Mux(r.hot[k], r.width_after(k + 1), 0)
            return value
        r.width_after_next = width_after_next

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
                r.next_width.eq(pick(r.width_after)),
                r.hot.eq(pick(lambda k: 1 << k)),
                r.need.eq(pick(r.width_of)),
                r.elem_width.eq(pick(r.width_of)),
                r.last_elem.eq(pick(lambda k: r.count_of(k) == 1)),
                r.last_of_cmd.eq(pick(lambda k: k in r.last_field)),
            ]
            m.d.sync += [
                flag.eq(pick(lambda k, n=count: r.count_of(k) == n))
                for count, flag in r.of_count.items()
            ]
        r.enter_field = enter_field

        def next_field_is(predicate):
            """Whether the field after the hot one (of the same command) has ``predicate``."""
            return r.any_hot(
                [k for k in range(len(r.fields)) if k not in r.last_field and predicate(k + 1)]
            )
        r.next_field_is = next_field_is

    def _checks(self, m: Module, r: SimpleNamespace) -> None:
        """Stage 2's registers, and each field's value and checks."""
        layout = self.layout
        # Two stages: the first assembles each element from the stream and walks the fields;
        # the second, a cycle later, checks the element and stores it (``el_*`` registers).
        r.el_valid = Signal()
        r.el_value = Signal(32)
        r.el_hot = Signal(len(r.fields))
        r.el_idx = Signal.like(r.elem_idx)

        def any_el_hot(indices):
            return Cat(r.el_hot[k] for k in indices).any() if indices else Const(0)
        r.any_el_hot = any_el_hot

        # The element's value for each field; its checks, one per distinct (width, signedness,
        # valid ranges), each enabled by a flag that stage 1 registers with the element.
        r.values, r.checks = {}, {}
        r.fail_cmd = 0
        for k, (op, field, batch, _) in enumerate(r.fields):
            value = r.el_value[: 8 * r.width_of(k)]
            if Layout.signed(field.kind):
                value = value.as_signed()
            r.values[k] = value
            ranges, fail = layout.check(op, field)
            if fail is Status.OK:
                continue
            key = (batch, r.width_of(k), Layout.signed(field.kind), ranges)
            r.checks.setdefault(key, []).append(k)
            if batch:
                r.fail_vec = fail
            else:
                r.fail_cmd = r.fail_cmd | Mux(r.el_hot[k], fail, 0)
        r.bad_cmd, r.bad_vec = [], []
        for (batch, width, is_signed, ranges), indices in r.checks.items():
            checked = Signal(name=f"el_check{len(r.bad_cmd) + len(r.bad_vec)}")
            with m.If(r.st_fields & r.complete):
                m.d.sync += checked.eq(r.any_hot(indices))
            ok = 0
            for low, high in ranges:
                ok = ok | _within(r.el_value[: 8 * width], is_signed, low, high)
            (r.bad_vec if batch else r.bad_cmd).append(checked & ~ok)

        # ``last_elem`` for the next element of this field, whose index is one more.
        r.last_next_in_field = 0
        for count, flag in r.of_count.items():
            r.last_next_in_field = r.last_next_in_field | (flag & (r.elem_idx == count - 2))

    def _assemble(self, m: Module, r: SimpleNamespace) -> None:
        """Stage 1: every field but the opcode."""
        w = self.window_bytes
        m.d.sync += r.el_valid.eq(0)  # (unless stage 1 completes an element this cycle)

        # Stage 1: every field but the opcode. ``take`` is the rest of the current element, or
        # what there is of it; with a one-byte window that is simply the byte, if there is one.
        if w == 1:
            m.d.comb += self.take.eq(self.avail & (r.st_fields | (r.st_opcode & r.exec_idle)))
        with m.If(r.st_fields):
            if w > 1:
                m.d.comb += self.take.eq(Mux(r.complete, r.need, self.avail))
            with m.If(r.complete):
                m.d.sync += [
                    r.byte_idx.eq(0),
                    r.elem.eq(0),
                    r.el_valid.eq(1),
                    r.el_value.eq(r.full),
                    r.el_hot.eq(r.hot),
                    r.el_idx.eq(r.elem_idx),
                ]
                with m.If(r.last_elem):
                    # On to the next field of the command, or the job.
                    not_last = Const(
                        sum(1 << k for k in range(len(r.fields)) if k not in r.last_field)
                    )
                    m.d.sync += [
                        r.elem_idx.eq(0),
                        r.hot.eq((r.hot & not_last) << 1),
                        r.need.eq(r.next_width),
                        r.elem_width.eq(r.next_width),
                        r.next_width.eq(r.width_after_next()),
                        r.last_elem.eq(r.next_field_is(lambda k: r.count_of(k) == 1)),
                        r.last_of_cmd.eq(r.next_field_is(lambda k: k in r.last_field)),
                    ]
                    for count, flag in r.of_count.items():
                        m.d.sync += flag.eq(r.next_field_is(lambda k, n=count: r.count_of(k) == n))
                    with m.If(r.last_of_cmd):
                        with m.If(r.hot[r.batch_x]):
                            r.goto(r.st_batch_dispatch)
                        with m.Else():
                            r.goto(r.st_dispatch)
                with m.Else():
                    m.d.sync += [
                        r.elem_idx.eq(r.elem_idx + 1),
                        r.need.eq(r.elem_width),
                        r.last_elem.eq(r.last_next_in_field),
                    ]
            with m.Else():
                m.d.sync += [
                    r.elem.eq(r.full),
                    r.byte_idx.eq(r.byte_idx + self.avail),
                    r.need.eq(r.need - self.avail),
                ]

    def _check_and_store(self, m: Module, r: SimpleNamespace) -> None:
        """Stage 2: the check, the field registers and the buffers."""
        slot_bits = input_slot_bits(self.config)
        # Stage 2: the check, the field registers and the buffers.
        # The checks' verdict is registered, and applied to the status a cycle later (stage
        # 3); a job offered meanwhile takes the status as it will be (``status_now``).
        r.cmd_bad = Signal()
        r.cmd_fail = Signal.like(r.status)
        r.vec_bad = Signal()
        m.d.sync += [
            r.cmd_bad.eq(r.el_valid & Cat(r.bad_cmd).any()),
            r.cmd_fail.eq(r.fail_cmd),
            r.vec_bad.eq(r.el_valid & Cat(r.bad_vec).any()),
        ]
        r.fail_now = r.cmd_bad & r.status_ok
        r.status_now = Mux(r.fail_now, r.cmd_fail, r.status)
        r.ok_now = r.status_ok & ~r.cmd_bad
        with m.If(r.fail_now):
            m.d.sync += [r.status.eq(r.cmd_fail), r.status_ok.eq(0)]
        # (``fail_vec`` is the only status a vector can fail with.)
        r.vector_status_now = r.vector_status
        if r.bad_vec:
            r.vector_status_now = Mux(r.vec_bad, r.fail_vec, r.vector_status)
        m.d.sync += r.vector_status.eq(r.vector_status_now)
        with m.If(r.el_valid):
            # Scalar registers, one per field name.
            by_name = {}
            for k, (op, field, _, _) in enumerate(r.fields):
                if (op, field.name) not in VECTOR_FIELDS:
                    by_name.setdefault(field.name, []).append(k)
            for name, indices in by_name.items():
                data = r.values[indices[0]]
                if len({(r.width_of(k), Layout.signed(r.fields[k][1].kind)) for k in indices}) > 1:
                    data = 0  # (the 32 bits of each, sign-extended where signed)
                    for k in indices:
                        v = r.values[k]
                        top = v[-1] if Layout.signed(r.fields[k][1].kind) else Const(0)
                        data = data | Mux(r.el_hot[k], Cat(v, top.replicate(32 - len(v))), 0)
                with m.If(r.any_el_hot(indices)):
                    m.d.sync += self.fields[name].eq(data)
            # Buffers: each one takes the elements of its fields, at their index.
            for target in sorted(set(VECTOR_FIELDS.values())):
                indices = [
                    k
                    for k, (op, field, _, _) in enumerate(r.fields)
                    if VECTOR_FIELDS.get((op, field.name)) == target
                ]
                with m.If(r.any_el_hot(indices)):
                    if target == "sigma":
                        m.d.sync += r.sigma[r.el_idx].eq(r.values[indices[0]])
                        continue
                    port = getattr(self, target)
                    addr = r.el_idx
                    if target == "in_buf":
                        slot = Mux(r.el_hot[r.batch_x], r.batch_slot, self.load_slot)
                        addr = (slot << slot_bits) | r.el_idx
                    m.d.comb += [port.addr.eq(addr), port.data.eq(r.el_value), port.en.eq(1)]

    def _opcode(self, m: Module, r: SimpleNamespace) -> None:
        """The opcode, and the decode of its first field."""
        w = self.window_bytes
        m.d.comb += self.waiting.eq(r.st_opcode)
        with m.If(r.st_opcode):
            is_op = {op: r.byte == op for op in Opcode}
            with m.If((self.avail != 0) & r.exec_idle):
                if w > 1:
                    m.d.comb += self.take.eq(1)
                m.d.sync += [
                    r.opcode.eq(r.byte),
                    *(flag.eq(is_op[op]) for op, flag in r.opcode_is.items()),
                    r.opcode_known.eq(Cat(is_op.values()).any()),
                    r.opcode_has_fields.eq(Cat(is_op[op] for op in r.first_field).any()),
                    r.status.eq(Status.OK),
                    r.status_ok.eq(1),
                    r.elem.eq(0),
                    r.byte_idx.eq(0),
                    r.elem_idx.eq(0),
                    self.load_slot.eq(self.loaded_slot ^ 1),
                ]
                r.goto(r.st_decode)
        with m.If(r.st_decode):  # (from the opcode flags: a cycle, and a short path)
            with m.If(r.opcode_has_fields):
                r.enter_field({k: r.opcode_is[op] for op, k in r.first_field.items()})
                r.goto(r.st_fields)
            with m.Else():
                with m.If(~r.opcode_known):
                    m.d.sync += [r.status.eq(Status.UNKNOWN_OPCODE), r.status_ok.eq(0)]
                r.goto(r.st_dispatch)

    def _dispatch(self, m: Module, r: SimpleNamespace) -> None:
        """The jobs, offered from registers."""
        # The job is offered from registers, loaded once stage 2 has checked the last element,
        # so that the executor's decisions start at flip-flops; so do this receiver's, on
        # the flags registered with the offer.
        r.job_valid = Signal()
        r.batch_next = Signal()  # the job starts a batch whose vectors follow
        m.d.comb += self.job.valid.eq(r.job_valid)
        # Whatever a batch vector needs next is loaded with the offer (nothing reads it
        # before the job is taken), so that only the state and ``job_valid`` wait for
        # ``job.ready``.
        with m.If(r.st_dispatch):
            with m.If(~r.job_valid & ~r.el_valid):
                m.d.sync += [
                    r.job_valid.eq(1),
                    r.job.status.eq(r.status_now),
                    r.job.ok.eq(r.ok_now),
                    r.job.vector.eq(0),
                    r.batch_next.eq(r.opcode_is[Opcode.RUN_BATCH] & r.ok_now),
                    r.vectors_left.eq(self.fields.count),
                    r.vector_status.eq(Status.OK),
                ]
                r.enter_field(r.batch_x)
            with m.Elif(r.job_valid & self.job.ready):
                m.d.sync += r.job_valid.eq(0)
                with m.If(r.batch_next):
                    r.goto(r.st_fields)
                with m.Else():
                    r.goto(r.st_opcode)
        with m.If(r.st_batch_dispatch):
            with m.If(~r.job_valid & ~r.el_valid):
                m.d.sync += [
                    r.job_valid.eq(1),
                    r.job.status.eq(r.vector_status_now),
                    r.job.ok.eq(r.vector_status_now == Status.OK),
                    r.job.vector.eq(1),
                    r.job.slot.eq(r.batch_slot),
                    r.last_vector.eq(r.vectors_left == 1),
                    r.batch_slot.eq(~r.batch_slot),
                    r.vectors_left.eq(r.vectors_left - 1),
                    r.vector_status.eq(Status.OK),
                ]
                r.enter_field(r.batch_x)
            with m.Elif(r.job_valid & self.job.ready):
                m.d.sync += r.job_valid.eq(0)
                with m.If(r.last_vector):
                    r.goto(r.st_opcode)
                with m.Else():
                    r.goto(r.st_fields)


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
