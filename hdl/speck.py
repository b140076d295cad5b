"""Speck64/128 gateware: the row and column words of the noise generator.

Bit-exact with :func:`molxbar.emulator.noise.axis_words` (``docs/arithmetic.md``, "Noise").
Three components, one per concept:

* :class:`SpeckKeySchedule` expands a 128-bit key into the 27 round keys and keeps them in a
  small memory, ``unroll`` keys per row;
* :class:`SpeckEncrypt` encrypts a stream of blocks with those round keys, iteratively,
  ``unroll`` rounds per cycle;
* :class:`SpeckWords` keys both with ``(seed, counter)`` and streams the row and column words
  of one operation.

The key schedule is the round function itself with ``(x, y, key) = (l[i], k[i], i)``, so both
share :func:`speck_round`. When ``unroll`` does not divide 27, the last key row holds unused
keys and the encryption bypasses the rounds past the 27th.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory, ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from molxbar.emulator.noise import AXIS_COL, AXIS_ROW, NOISE_KEY_DOMAIN, SPECK64_ROUNDS

__all__ = [
    "SPECK_WORDS_SIGNATURE",
    "SPECK_KEY_LAYOUT",
    "SPECK_BLOCK_LAYOUT",
    "SPECK_RESULT_LAYOUT",
    "AXIS_INDEX_BITS",
    "AXIS_WORD_LAYOUT",
    "speck_round",
    "SpeckKeySchedule",
    "SpeckEncrypt",
    "SpeckWords",
]

#: A Speck64/128 key, named as in the specification: ``(l2, l1, l0, k0)``.
SPECK_KEY_LAYOUT = data.StructLayout({"k0": 32, "l0": 32, "l1": 32, "l2": 32})
#: One 64-bit block ``(x, y)``; a noise word is ``x * 2**32 + y``.
SPECK_BLOCK_LAYOUT = data.StructLayout({"x": 32, "y": 32})
#: An encrypted block, with the plaintext it came from.
SPECK_RESULT_LAYOUT = data.StructLayout(
    {"plaintext": SPECK_BLOCK_LAYOUT, "ciphertext": SPECK_BLOCK_LAYOUT}
)
#: Width of a row or column index on :class:`SpeckWords`' output.
AXIS_INDEX_BITS = 16
#: One output word of :class:`SpeckWords`: ``R_index`` (axis 0) or ``C_index`` (axis 1).
AXIS_WORD_LAYOUT = data.StructLayout({"axis": 1, "index": AXIS_INDEX_BITS, "word": 64})


def _check_unroll(unroll: object) -> int:
    if isinstance(unroll, bool) or not isinstance(unroll, int):
        raise TypeError(f"unroll must be an int, not {unroll!r}")
    if not 1 <= unroll <= SPECK64_ROUNDS:
        raise ValueError(f"unroll = {unroll} is out of range: must be in [1, {SPECK64_ROUNDS}]")
    return unroll


def _iterations(unroll: int) -> int:
    return -(-SPECK64_ROUNDS // unroll)


def _round_key_signature(unroll: int) -> ReadPort.Signature:
    return ReadPort.Signature(
        addr_width=ceil_log2(_iterations(unroll)), shape=data.ArrayLayout(32, unroll)
    )


def speck_round(x: Value, y: Value, key: Value) -> tuple[Value, Value]:
    """One Speck64 round, combinational: ``x' = (ror(x, 8) + y) ^ key``, ``y' = rol(y, 3) ^ x'``.

    All operands are 32-bit (``key`` is zero-extended); the sum wraps modulo ``2**32``.
    """
    x = (x.rotate_right(8) + y)[:32] ^ key
    return x, y.rotate_left(3) ^ x


def _wires(m: Module, prefix: str, x: Value, y: Value) -> tuple[Signal, Signal]:
    # Named intermediate signals keep the simulator's expression trees linear in `unroll`
    # (a round uses each input twice) and the generated netlist readable.
    wires = Signal(32, name=f"{prefix}_x"), Signal(32, name=f"{prefix}_y")
    m.d.comb += [wires[0].eq(x), wires[1].eq(y)]
    return wires


class SpeckKeySchedule(wiring.Component):
    """Speck64/128 key schedule, ``unroll`` round keys per cycle, kept in a memory.

    Parameters
    ----------
    unroll
        Round keys computed (and stored, one memory row) per cycle, in ``[1, 27]``.

    Attributes
    ----------
    start : In(1)
        Sample ``key`` and start; ignored while ``busy``.
    key : In(SPECK_KEY_LAYOUT)
    busy : Out(1)
        High for ``iterations = ceil(27 / unroll)`` cycles from the cycle after ``start``.
        Row ``r`` is written at the end of the ``r``-th busy cycle.
    round_keys : Out(ReadPort.Signature)
        Synchronous read port: row ``r`` holds round keys ``r*unroll .. r*unroll+unroll-1``
        (entries past 26 are don't-care), on ``data`` one cycle after ``addr``. It is
        transparent for the schedule's writes, so a row read while written is the new one.
    """

    def __init__(self, *, unroll: int = 1) -> None:
        self.unroll = _check_unroll(unroll)
        self.iterations = _iterations(self.unroll)
        super().__init__(
            {
                "start": In(1),
                "key": In(SPECK_KEY_LAYOUT),
                "busy": Out(1),
                "round_keys": Out(_round_key_signature(self.unroll)),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        u = self.unroll
        m.submodules.memory = memory = Memory(
            shape=data.ArrayLayout(32, u), depth=self.iterations, init=[]
        )
        write = memory.write_port()
        read = memory.read_port(transparent_for=(write,))
        m.d.comb += [
            read.en.eq(self.round_keys.en),
            read.addr.eq(self.round_keys.addr),
            self.round_keys.data.eq(read.data),
        ]

        k_reg = Signal(32, name="k")  # k[i]
        ls = [Signal(32, name=f"l{n}") for n in range(3)]  # l[i], l[i+1], l[i+2]
        row = Signal(range(self.iterations))
        step = Signal(range(self.iterations * u + 1))  # i = row * unroll
        k = k_reg
        for p in range(u):
            m.d.comb += write.data[p].eq(k)
            new_l, k = _wires(m, f"r{p}", *speck_round(ls[p], k, step + p))
            ls.append(new_l)
        m.d.comb += write.addr.eq(row)

        with m.If(self.busy):
            m.d.comb += write.en.eq(1)
            m.d.sync += [
                k_reg.eq(k),
                *(dst.eq(src) for dst, src in zip(ls[:3], ls[u:], strict=True)),
            ]
            m.d.sync += [row.eq(row + 1), step.eq(step + u)]
            with m.If(row == self.iterations - 1):
                m.d.sync += self.busy.eq(0)
        with m.Elif(self.start):
            m.d.sync += [row.eq(0), step.eq(0), self.busy.eq(1), k_reg.eq(self.key.k0)]
            m.d.sync += [ls[0].eq(self.key.l0), ls[1].eq(self.key.l1), ls[2].eq(self.key.l2)]
        return m


class SpeckEncrypt(wiring.Component):
    """Speck64 encryption of a stream of blocks, ``unroll`` rounds per cycle.

    One block is in flight at a time; it takes ``iterations = ceil(27 / unroll)`` cycles.
    The cycle that accepts a block on ``i`` already applies its first ``unroll`` rounds, and
    the cycle whose ``o`` transfer empties the datapath may accept the next block, so with
    ``o.ready`` high the throughput is one block per ``iterations`` cycles and the latency
    from an ``i`` transfer to ``o.valid`` is ``iterations`` cycles.

    Parameters
    ----------
    unroll
        Rounds per cycle, in ``[1, 27]``; it need not divide 27.

    Attributes
    ----------
    round_keys : In(ReadPort.Signature)
        Reads :class:`SpeckKeySchedule`'s key rows (one-cycle latency). The keys must stay
        constant while ``busy``, and be complete before the first block is offered.
    i : In(stream.Signature(SPECK_BLOCK_LAYOUT))
        Plaintext blocks.
    o : Out(stream.Signature(SPECK_RESULT_LAYOUT))
        Ciphertexts with their plaintexts, in order; held stable while not ready.
    busy : Out(1)
        A block is in the datapath (being encrypted or waiting on ``o``).
    """

    def __init__(self, *, unroll: int = 1) -> None:
        self.unroll = _check_unroll(unroll)
        self.iterations = _iterations(self.unroll)
        super().__init__(
            {
                "round_keys": In(_round_key_signature(self.unroll)),
                "i": In(stream.Signature(SPECK_BLOCK_LAYOUT)),
                "o": Out(stream.Signature(SPECK_RESULT_LAYOUT)),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform) -> Module:
        m = Module()
        u, n = self.unroll, self.iterations
        rounds_in_last = SPECK64_ROUNDS - (n - 1) * u
        block = Signal(SPECK_BLOCK_LAYOUT)  # state after key rows 0 .. row-1
        row = Signal(range(n + 1))  # next key row to apply; n when the block is done
        done = Signal()
        m.d.comb += [
            done.eq(self.busy & (row == n)),
            self.o.valid.eq(done),
            self.o.payload.ciphertext.eq(block),
            self.i.ready.eq(~self.busy | (done & self.o.ready)),
        ]
        load = self.i.valid & self.i.ready
        advance = load | (self.busy & ~done)

        # The key row applied this cycle: 0 for a block being loaded, else `row`.
        applied = Mux(load, 0, row)
        x = Mux(load, self.i.payload.x, block.x)
        y = Mux(load, self.i.payload.y, block.y)
        is_last = applied == n - 1
        for p in range(u):
            new_x, new_y = speck_round(x, y, self.round_keys.data[p])
            if p >= rounds_in_last:  # past round 27 in the last row: bypassed there
                new_x, new_y = Mux(is_last, x, new_x), Mux(is_last, y, new_y)
            x, y = _wires(m, f"r{p}", new_x, new_y)

        with m.If(advance):
            m.d.sync += [block.x.eq(x), block.y.eq(y), row.eq(applied + 1)]
        with m.If(load):
            m.d.sync += [self.o.payload.plaintext.eq(self.i.payload), self.busy.eq(1)]
        with m.Elif(done & self.o.ready):
            m.d.sync += self.busy.eq(0)

        # Read-ahead: address the row the next cycle applies (row 0 unless mid-block).
        busy_next = load | (self.busy & ~(done & self.o.ready))
        row_next = Mux(advance, applied + 1, row)
        mid_block = busy_next & (row_next != n)
        m.d.comb += self.round_keys.addr.eq(Mux(mid_block, row_next, 0))
        return m


#: The ports of :class:`SpeckWords`, whatever its size.
SPECK_WORDS_SIGNATURE = wiring.Signature(
    {
        "start": In(1),
        "seed": In(32),
        "counter": In(32),
        "words": Out(stream.Signature(AXIS_WORD_LAYOUT)),
        "busy": Out(1),
    }
)


class SpeckWords(wiring.Component):
    """The row and column words of one noise operation, bit-exact with ``axis_words``.

    On ``start`` (accepted only while not ``busy``) the component samples ``seed`` and
    ``counter``, keys Speck64/128 with ``(l2, l1, l0, k0) = (0x6D6F6C78, 0, seed, counter)``
    and streams on ``words`` the row words ``R_0 .. R_{rows-1}`` (axis 0) and then the column
    words ``C_0 .. C_{cols-1}`` (axis 1).

    Timing, with ``n = ceil(27 / unroll)`` and ``words.ready`` held high: the key schedule
    takes cycles 1 .. n after the ``start`` cycle 0; word ``w`` (rows first) is valid in cycle
    ``(w + 2) * n + 1``; ``busy`` falls after the last transfer, so a new ``start`` is accepted
    every ``(rows + cols + 1) * n + 2`` cycles (3485 for 64 x 64 at ``unroll = 1``, 1163 at
    ``unroll = 3``, 131 at ``unroll = 27``). Back-pressure only adds the stalled cycles.

    Parameters
    ----------
    rows, cols
        Number of row and column words, each in ``[1, 65536]``.
    unroll
        Speck rounds per cycle, in ``[1, 27]``: area against throughput.

    Attributes
    ----------
    start : In(1)
    seed, counter : In(32)
        Sampled in the cycle ``start`` is accepted.
    words : Out(stream.Signature(AXIS_WORD_LAYOUT))
        ``word`` is ``x' * 2**32 + y'``; held stable while ``valid`` and not ``ready``.
    busy : Out(1)
        High from the cycle after an accepted ``start`` through the cycle of the last
        ``words`` transfer.
    """

    def __init__(self, *, rows: int = 64, cols: int = 64, unroll: int = 1) -> None:
        for name, value in (("rows", rows), ("cols", cols)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if not 1 <= value <= 1 << AXIS_INDEX_BITS:
                raise ValueError(
                    f"{name} = {value} is out of range: must be in [1, {1 << AXIS_INDEX_BITS}]"
                )
        self.rows, self.cols = rows, cols
        self.unroll = _check_unroll(unroll)
        self.iterations = _iterations(self.unroll)
        super().__init__(SPECK_WORDS_SIGNATURE)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.key_schedule = keys = SpeckKeySchedule(unroll=self.unroll)
        m.submodules.encrypt = cipher = SpeckEncrypt(unroll=self.unroll)
        wiring.connect(m, keys.round_keys, cipher.round_keys)

        # Block source: (AXIS_ROW, 0 .. rows-1) then (AXIS_COL, 0 .. cols-1).
        feeding = Signal()
        axis = Signal()
        index = Signal(AXIS_INDEX_BITS)
        accept = self.start & ~self.busy
        m.d.comb += [
            self.busy.eq(feeding | keys.busy | cipher.busy),
            keys.start.eq(accept),
            keys.key.l2.eq(NOISE_KEY_DOMAIN),
            keys.key.l1.eq(0),
            keys.key.l0.eq(self.seed),
            keys.key.k0.eq(self.counter),
            cipher.i.valid.eq(feeding & ~keys.busy),
            cipher.i.payload.x.eq(axis),
            cipher.i.payload.y.eq(index),
        ]
        with m.If(accept):
            m.d.sync += [feeding.eq(1), axis.eq(AXIS_ROW), index.eq(0)]
        with m.Elif(cipher.i.valid & cipher.i.ready):
            last = Mux(axis == AXIS_ROW, self.rows - 1, self.cols - 1)
            with m.If(index != last):
                m.d.sync += index.eq(index + 1)
            with m.Elif(axis == AXIS_ROW):
                m.d.sync += [axis.eq(AXIS_COL), index.eq(0)]
            with m.Else():
                m.d.sync += feeding.eq(0)

        result = cipher.o.payload
        m.d.comb += [
            self.words.valid.eq(cipher.o.valid),
            cipher.o.ready.eq(self.words.ready),
            self.words.payload.axis.eq(result.plaintext.x[0]),
            self.words.payload.index.eq(result.plaintext.y[:AXIS_INDEX_BITS]),
            self.words.payload.word.eq(Cat(result.ciphertext.y, result.ciphertext.x)),
        ]
        return m
