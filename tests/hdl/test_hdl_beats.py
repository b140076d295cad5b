"""The beat adapters: any chunking of a byte stream, through packer and unpacker, under stalls."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from molxbar.hdl.beats import BeatPacker, BeatUnpacker
from molxbar.protocol.beats import pack_beats, unpack_beats


def _chunks(rng, data: bytes, most: int):
    pos = 0
    while pos < len(data):
        n = int(rng.integers(1, most + 1))
        yield data[pos : pos + n]
        pos += n


@pytest.mark.parametrize(("chunk_bytes", "beat_bytes"), [(1, 1), (1, 4), (2, 2), (3, 8), (6, 8)])
def test_packer_keeps_every_byte_in_order(chunk_bytes, beat_bytes):
    rng = np.random.default_rng(chunk_bytes * 31 + beat_bytes)
    data = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    chunks = list(_chunks(rng, data, chunk_bytes))
    dut = BeatPacker(chunk_bytes, beat_bytes)
    beats = []

    async def bench(ctx):
        k = 0
        for _ in range(4000):
            offer = k < len(chunks) and rng.random() < 0.7
            ready = rng.random() < 0.6
            ctx.set(dut.i.valid, offer)
            if offer:
                # Bytes past the count are garbage the packer must drop.
                garbage = bytes(rng.integers(0, 256, chunk_bytes, dtype=np.uint8))
                raw = chunks[k] + garbage[len(chunks[k]) :]
                ctx.set(
                    dut.i.payload, {"data": int.from_bytes(raw, "little"), "count": len(chunks[k])}
                )
            ctx.set(dut.o.ready, ready)
            _, _, took, valid, beat = await ctx.tick().sample(
                dut.i.ready, dut.o.valid, dut.o.payload
            )
            if offer and took:
                k += 1
            if ready and valid:
                assert 1 <= beat.count <= beat_bytes
                beats.append(beat.data | beat.count << 8 * beat_bytes)
        assert ctx.get(dut.empty)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert unpack_beats(beats, beat_bytes) == data


@pytest.mark.parametrize(("beat_bytes", "window_bytes"), [(1, 1), (2, 2), (8, 2), (8, 4), (3, 3)])
def test_unpacker_window_follows_the_stream(beat_bytes, window_bytes):
    rng = np.random.default_rng(beat_bytes * 7 + window_bytes)
    data = rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    # Full beats, some partial ones, and empty ones.
    beats = []
    for chunk in _chunks(rng, data, beat_bytes):
        beats.extend(pack_beats(chunk, beat_bytes))
        if rng.random() < 0.1:
            beats.append(0)
    m = Module()
    m.submodules.dut = dut = BeatUnpacker(beat_bytes, window_bytes)
    out = bytearray()

    async def bench(ctx):
        k = 0
        for _ in range(4000):
            offer = k < len(beats) and rng.random() < 0.7
            ctx.set(dut.i.valid, offer)
            if offer:
                ctx.set(dut.i.payload.as_value(), beats[k])
            window, avail = ctx.get(dut.window), ctx.get(dut.avail)
            assert window >> 8 * avail == 0
            take = int(rng.integers(0, avail + 1))
            ctx.set(dut.take, take)
            out.extend(window.to_bytes(window_bytes, "little")[:take])
            _, _, took = await ctx.tick().sample(dut.i.ready)
            k += bool(offer and took)
        assert ctx.get(dut.empty)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert bytes(out) == data
