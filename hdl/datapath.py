"""The VMM datapath: MAC lanes, their read noise, the result FIFO, the ADC and the output bytes.

The engine issues one row per cycle to all ``lanes``; this block turns each group of
``lanes`` columns into output bytes:

* per lane, a :class:`~molxbar.hdl.mac.MacLane` takes the row's input, the cell's level and
  its noise word ``R_i XOR C_j``, from which it makes the read noise
  ``n = (popcount(R_i XOR C_j) - 32) * s[g >> segment_shift]`` (:mod:`molxbar.emulator.noise`);
* a finished group's sums move to a latch in one cycle (or, if the latch is still full, stay
  in the lanes: *held*, and no new group may start), then drain one per cycle into a FIFO
  that holds two vectors;
* the shared :class:`~molxbar.hdl.mac.AdcStage` reads the FIFO; each output leaves as
  ``output_width`` little-endian bytes (the bytes the ADC width register needs, or all
  ``output_bytes`` with the ADC off), after its vector's header (opcode, OK), one output a
  cycle when the response chunks are that wide.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from molxbar.emulator.config import SIGMA_SCALE_BITS, SIGMA_SEGMENTS, CrossbarConfig
from molxbar.protocol.spec import Layout, Status

from .beats import beat_layout
from .mac import AdcStage, MacLane, adc_input_layout, shift_bits

__all__ = [
    "HEADERS_QUEUED",
    "VmmDatapath",
    "adc_output_width",
    "issue_signature",
    "settings_layout",
]

#: Started VMMs that may wait for their response header at once. The result FIFO, the ADC and
#: the outputs FIFO hold several vectors' sums when the array has few columns, so the start of
#: a VMM is what bounds this count, not the buffers behind it.
HEADERS_QUEUED = 2


def adc_output_width(adc_bits, output_bytes: int):
    """Bytes of each output at the ADC width register ``adc_bits``
    (:func:`~molxbar.protocol.spec.output_width`): ``output_bytes`` with the ADC off (0),
    else ``ceil(adc_bits / 8)``, at most ``output_bytes``."""
    adc_bytes = (adc_bits + 7) >> 3
    return Mux((adc_bits == 0) | (adc_bytes > output_bytes), output_bytes, adc_bytes)


def issue_signature(config: CrossbarConfig) -> wiring.Signature:
    """The executor's port on the datapath (members from the executor's side).

    ``start_vmm`` with ``header_op``: a VMM starts, queue its header ``(header_op, OK)``.
    ``term_valid``, ``term_first``, ``term_last``, ``x``: a row's term for every lane this
    cycle (the first and last row of a group), with the row's input code. ``group_issued``:
    the last row of a group was issued this cycle. ``last_group``: the VMM's last group is
    issued (ends the ``vmm_cycles`` count at its sums).

    ``free``: nothing in flight and the latch empty, a new group may start right after this
    one. ``can_start``: a group may start now, any group still in flight will find the latch
    empty. ``vmm_room``: a VMM may start now, fewer than :data:`HEADERS_QUEUED` started VMMs
    wait for their response header (registered, from the count as it will be after this
    cycle). ``drained``: every started VMM has sent its whole response (registered: one cycle
    late in turning high).
    """
    return wiring.Signature(
        {
            "start_vmm": Out(1),
            "header_op": Out(8),
            "term_valid": Out(1),
            "term_first": Out(1),
            "term_last": Out(1),
            "x": Out(signed(config.x_bits)),
            "group_issued": Out(1),
            "last_group": Out(1),
            "free": In(1),
            "can_start": In(1),
            "vmm_room": In(1, init=1),
            "drained": In(1),
        }
    )


def settings_layout(config: CrossbarConfig) -> data.StructLayout:
    """The engine's registers that a VMM uses (:mod:`molxbar.hdl.registers`)."""
    return data.StructLayout(
        {
            "read_noise": 1,
            "read_table": data.ArrayLayout(unsigned(SIGMA_SCALE_BITS), SIGMA_SEGMENTS),
            "rect_ideal": 1,
            "rect_shift": shift_bits(config),
            "adc_shift": shift_bits(config),
            "adc_bits": shift_bits(config),
        }
    )


class VmmDatapath(wiring.Component):
    """Group sums to response bytes.

    ``product_stages`` and ``noise_multipliers`` are the :class:`~molxbar.hdl.mac.MacLane`
    options of every lane.

    Members
    -------
    issue : ``In(issue_signature(config))``
        The executor's port.
    levels : ``In(unsigned(g_bits * lanes))``
        The row's level for each lane (lane ``p`` in bits ``p*g_bits ...``).
    row_word, col_words : ``In(64)``, ``In(64 * lanes)``
        The row's noise word and the group's column words.
    settings : ``In(settings_layout(config))``
        The engine's registers; they only change while the datapath is drained.
    vmm_cycles : ``Out(32)``
        Cycles from the last VMM's start to its last group's sums.
    rsp : ``Out(stream.Signature(beat_layout(chunk_bytes)))``
        The response bytes of VMMs, up to ``chunk_bytes`` (one output, when that wide) a cycle.
    """

    def __init__(
        self,
        config: CrossbarConfig,
        chunk_bytes: int = 1,
        *,
        product_stages: int = 1,
        noise_multipliers: bool = False,
    ) -> None:
        self.config = config
        self.chunk_bytes = chunk_bytes
        self.product_stages = product_stages
        self.noise_multipliers = noise_multipliers
        c = config
        super().__init__(
            {
                "issue": In(issue_signature(c)),
                "levels": In(unsigned(c.g_bits * c.lanes)),
                "row_word": In(64),
                "col_words": In(64 * c.lanes),
                "settings": In(settings_layout(c)),
                "vmm_cycles": Out(32),
                "rsp": Out(stream.Signature(beat_layout(chunk_bytes))),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        mac_lanes = self._lanes(m)
        outputs, in_flight = self._latch(m, mac_lanes)
        self._response(m, outputs)
        self._count_vmm_cycles(m, mac_lanes[0].done, in_flight)
        return m

    def _lanes(self, m: Module) -> list[MacLane]:
        """The MAC lanes: one term per cycle, with the cells' noise words."""
        c, issue, settings = self.config, self.issue, self.settings
        lanes = c.lanes
        mac_lanes = [
            MacLane(c, product_stages=self.product_stages, noise_multiplier=self.noise_multipliers)
            for _ in range(lanes)
        ]
        for p, lane in enumerate(mac_lanes):
            m.submodules[f"lane{p}"] = lane
            if c.noise_hardware:
                word = self.row_word ^ self.col_words.word_select(p, 64)
                m.d.comb += lane.i.payload.word.eq(word)
            m.d.comb += [
                lane.i.valid.eq(issue.term_valid),
                lane.i.payload.x.eq(issue.x),
                lane.i.payload.g.eq(self.levels.word_select(p, c.g_bits)),
                lane.i.payload.clear.eq(issue.term_first),
                lane.i.payload.last.eq(issue.term_last),
                lane.noise_en.eq(settings.read_noise),
                lane.read_table.eq(settings.read_table),
                lane.rect_ideal.eq(settings.rect_ideal),
                lane.rect_shift.eq(settings.rect_shift),
            ]
        return mac_lanes

    def _latch(self, m: Module, mac_lanes: list[MacLane]) -> tuple[SyncFIFOBuffered, Signal]:
        """The latch and the held sums, the result FIFO, the ADC and the outputs FIFO; returns
        the outputs FIFO and the count of groups in flight."""
        c, issue, settings = self.config, self.issue, self.settings
        lanes = c.lanes
        lanes_done = mac_lanes[0].done  # the lanes run in lockstep

        # Latch and "held" sums. The latch is a shift register: lane 0's sums are at its head.
        # It holds each lane's sums as one ADC input (``acc``, ``noise_acc`` and, with leakage
        # hardware, the leak sums).
        sums = adc_input_layout(c)
        latch = [Signal(sums, name=f"latch{p}") for p in range(lanes)]
        lane_sums = [Cat(*(getattr(lane, name) for name, _ in sums)) for lane in mac_lanes]
        # Every decision below starts at flip-flops: ``latch_full`` (taken, not yet released),
        # ``draining`` (sums left to write), ``left`` (how many), ``held`` (a finished group
        # waits in the lanes for the latch).
        latch_full = Signal()
        draining = Signal()
        left = Signal(range(lanes + 1))
        held = Signal()
        in_flight = Signal(range(3))  # groups issued whose sums are not complete yet
        # What reaches every lane's latch comes straight from flip-flops decided a cycle ahead
        # (below): ``take_lanes`` (the latch takes the lanes' sums), ``write_sum`` (it writes
        # its head and shifts) and ``latch_load`` (either). A take decided from ``draining``
        # in its own cycle put a gate placed among the 64 lanes on the critical path.
        take_lanes = Signal()
        write_sum = Signal()
        latch_load = Signal()
        m.d.sync += in_flight.eq(in_flight + issue.group_issued - lanes_done)
        m.d.comb += [
            issue.free.eq(~held & ~latch_full & (in_flight == 0)),
            issue.can_start.eq(~held & ((in_flight == 0) | ((in_flight == 1) & ~latch_full))),
        ]

        # ``lanes_done`` a cycle ahead: the lanes never stall, so it is the last term's flag
        # one cycle less than their latency later.
        lanes_ending = issue.term_valid & issue.term_last
        for stage in range(mac_lanes[0].latency - 1):
            ending = Signal(name=f"lanes_ending_{stage + 1}")
            m.d.sync += ending.eq(lanes_ending)
            lanes_ending = ending

        # The latch drains one sum per cycle (shifting towards its head) into a FIFO that holds
        # two vectors, so the lanes never wait for the (byte-serial) response while a vector is
        # computed.
        m.submodules.results = results = SyncFIFOBuffered(width=sums.size, depth=2 * c.cols)
        m.submodules.adc = adc = AdcStage(c)
        # The outputs pass a small FIFO: the response's ready ends there instead of running
        # back through the ADC's stall into the result FIFO. (Three entries: with two, its
        # inner one-entry FIFO would pass an output only every other cycle.)
        m.submodules.outputs = outputs = SyncFIFOBuffered(width=c.acc_fine_bits, depth=3)
        wiring.connect(m, adc.o, outputs.w_stream)
        # Room for one more sum, known a cycle ahead (at most one is written per cycle). A sum is
        # written, and the latch shifts, in the cycles ``draining & room`` (``write_sum``).
        room_next = results.level < results.depth - 1
        m.d.comb += [
            results.w_en.eq(write_sum),
            results.w_data.eq(latch[0]),
            adc.noise_en.eq(settings.read_noise),
            adc.adc_shift.eq(settings.adc_shift),
            adc.adc_bits.eq(settings.adc_bits),
            adc.rect_shift.eq(settings.rect_shift),
            adc.i.valid.eq(results.r_rdy),
            adc.i.payload.eq(results.r_data),
            results.r_en.eq(adc.i.ready),
        ]
        with m.If(results.w_en):
            m.d.sync += left.eq(left - 1)
        with m.Elif(take_lanes):
            m.d.sync += left.eq(lanes)

        # The control registers as they will be in the next cycle. A take sets ``latch_full``
        # and ``draining``; the last write clears ``draining``, and ``latch_full`` a cycle
        # later; a group finished while the latch is busy is ``held`` until taken. (A take
        # and the last write never coincide: the latch is full while it drains.) The take
        # waits for the lanes' sums and for a latch that is empty or has drained.
        draining_next = Signal()
        latch_full_next = take_lanes | (latch_full & draining)
        held_next = ~take_lanes & (lanes_done | held)
        take_next = (lanes_ending | held_next) & (~latch_full_next | ~draining_next)
        write_sum_next = draining_next & room_next
        m.d.comb += draining_next.eq(take_lanes | (draining & ~(results.w_en & (left == 1))))
        m.d.sync += [
            draining.eq(draining_next),
            latch_full.eq(latch_full_next),
            held.eq(held_next),
            take_lanes.eq(take_next),
            write_sum.eq(write_sum_next),
            latch_load.eq(take_next | write_sum_next),
        ]
        # ``latch_load`` is each latch register's enable, ``write_sum`` its multiplexer's select.
        for p in range(lanes):
            if p + 1 < lanes:
                with m.If(latch_load):
                    with m.If(write_sum):
                        m.d.sync += latch[p].eq(latch[p + 1])
                    with m.Else():
                        m.d.sync += latch[p].eq(lane_sums[p])
            else:  # (the last lane's sums stay while the latch shifts)
                with m.If(take_lanes):
                    m.d.sync += latch[p].eq(lane_sums[p])
        return outputs, in_flight

    def _response(self, m: Module, outputs: SyncFIFOBuffered) -> None:
        """The response: each VMM's header, then its outputs, ``chunk_bytes`` at a time."""
        c, chunk_bytes, issue = self.config, self.chunk_bytes, self.issue
        out_bytes = Layout(c).output_bytes
        # Response chunks: each started VMM queues a header (opcode, OK); a header goes out
        # once the previous vector's outputs are all sent, then the vector's outputs follow.
        # An item (header or output) leaves ``chunk_bytes`` at a time, and the next one is
        # loaded in the cycle the last chunk of the current one is taken.
        item = Signal(8 * max(2, out_bytes))
        item_left = Signal(range(max(2, out_bytes) + 1))
        headers_due = Signal(range(HEADERS_QUEUED + 1))
        header_op = Signal(8)
        vector_left = Signal(range(c.cols + 1))  # outputs of the vector still to load
        header_sent = Signal()
        # Bytes of each output (:func:`~molxbar.protocol.spec.output_width`): the full width
        # with the ADC off, else ``ceil(adc_bits / 8)``. Registered: SET_ADC runs only while
        # the datapath is drained, many cycles before a following VMM's first output.
        output_width = Signal(range(max(2, out_bytes) + 1), init=Layout(c).output_width)
        m.d.sync += output_width.eq(adc_output_width(self.settings.adc_bits, out_bytes))
        with m.If(issue.start_vmm):
            m.d.sync += header_op.eq(issue.header_op)
        headers_due_next = headers_due + issue.start_vmm - header_sent
        m.d.sync += [
            headers_due.eq(headers_due_next),
            issue.vmm_room.eq(headers_due_next < HEADERS_QUEUED),
        ]
        # Registered: a cycle late in turning high, never late in turning low (a VMM's start
        # is the only way out of the drained state).
        m.d.sync += issue.drained.eq(
            (headers_due == 0) & (vector_left == 0) & (item_left == 0) & ~issue.start_vmm
        )
        n = Mux(item_left > chunk_bytes, chunk_bytes, item_left)
        m.d.comb += [
            self.rsp.valid.eq(item_left != 0),
            self.rsp.payload.data.eq(item[: 8 * chunk_bytes]),
            self.rsp.payload.count.eq(n),
        ]
        finishing = (item_left == 0) | (self.rsp.ready & (item_left <= chunk_bytes))
        with m.If(finishing):
            m.d.sync += item_left.eq(0)
            with m.If(vector_left != 0):
                m.d.comb += outputs.r_en.eq(1)
                with m.If(outputs.r_rdy):
                    m.d.sync += [
                        item.eq(outputs.r_data.as_signed()),
                        item_left.eq(output_width),
                        vector_left.eq(vector_left - 1),
                    ]
            with m.Elif(headers_due != 0):
                m.d.comb += header_sent.eq(1)
                m.d.sync += [
                    item.eq(Cat(header_op, Const(Status.OK, 8))),
                    item_left.eq(2),
                    vector_left.eq(c.cols),
                ]
        with m.Elif(self.rsp.ready):
            m.d.sync += [item.eq(item >> (n * 8)), item_left.eq(item_left - n)]

    def _count_vmm_cycles(self, m: Module, lanes_done: Signal, in_flight: Signal) -> None:
        """Diagnostic: cycles from a VMM's start to its last group's sums."""
        issue = self.issue
        counting = Signal()
        last_group_out = Signal()  # the counted VMM's last group is in flight
        with m.If(issue.start_vmm):
            m.d.sync += [self.vmm_cycles.eq(1), counting.eq(1), last_group_out.eq(0)]
        with m.Elif(counting):
            m.d.sync += self.vmm_cycles.eq(self.vmm_cycles + 1)
            with m.If(issue.last_group):
                m.d.sync += last_group_out.eq(1)
            with m.If(last_group_out & lanes_done & (in_flight == 1)):
                m.d.sync += [counting.eq(0), last_group_out.eq(0)]
