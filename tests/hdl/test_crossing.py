"""The byte handshake between two clock domains (:mod:`molxbar.hdl.crossing`)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from molxbar.hdl.crossing import StreamCrossing


@pytest.mark.parametrize(
    ("w_period", "r_period", "stall"),
    [(1.0, 2.0, 0.0), (2.0, 1.0, 0.0), (1.0, 2.0, 0.9), (1.7, 1.0, 0.5), (1.0, 3.3, 0.3)],
)
def test_every_payload_crosses_once_in_order(w_period, r_period, stall):
    """Writer and reader at unrelated rates, the reader refusing ``stall`` of its cycles,
    the writer offering in bursts: the reader gets exactly what was written."""
    rng = np.random.default_rng(int(10 * w_period + r_period))
    sent = [int(b) for b in rng.integers(0, 256, 200)]
    got = []
    m = Module()
    m.submodules.dut = dut = StreamCrossing(8, w_domain="write", r_domain="read")

    async def writer(ctx):
        for byte in sent:
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick("write").until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            for _ in range(int(rng.integers(0, 3))):
                await ctx.tick("write")

    async def reader(ctx):
        for _ in range(50 * len(sent)):  # (a crossing that loses payloads fails, not hangs)
            if len(got) == len(sent):
                break
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            if ready and ctx.get(dut.o.valid):  # taken at the coming edge
                got.append(ctx.get(dut.o.payload))
            await ctx.tick("read")
        for _ in range(20):  # and nothing more comes
            ctx.set(dut.o.ready, 1)
            await ctx.tick("read")
            assert not ctx.get(dut.o.valid)

    sim = Simulator(m)
    sim.add_clock(w_period * 1e-8, domain="write")
    sim.add_clock(r_period * 1e-8, domain="read")
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.run()
    assert got == sent
