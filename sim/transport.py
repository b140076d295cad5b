"""The engine gateware in the Amaranth simulator as a host transport: one simulation kept
across calls, so that a :class:`~molxbar.host.driver.CrossbarDriver` runs on it as on a board."""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.engine import Engine
from molxbar.host.transports import ResponseBuffer, check_count

from .streams import EngineStreams

__all__ = ["AmaranthTransport"]


class AmaranthTransport(ResponseBuffer):
    """The :class:`~molxbar.hdl.engine.Engine` gateware in the Amaranth simulator.

    One simulation lives as long as the transport: ``send`` queues command bytes, and
    ``receive`` advances the clock until enough response bytes have come out, so the
    engine's state (levels, registers, noise counter) is kept between calls. Bytes travel in
    beats of ``engine.stream_bytes`` bytes (:mod:`molxbar.protocol.beats`) when the engine
    has such streams, else one byte per transfer.

    Parameters
    ----------
    config
        The crossbar; ``lanes`` must be a power of two.
    engine
        A ready-made engine (its keyword options, such as ``stream_bytes``); by default
        ``Engine(config)``.
    idle_in, stall_out, seed
        Probabilities of an idle cycle on the command stream and of a stall on the response
        stream, drawn from ``np.random.default_rng(seed)``: back-pressure for tests.
    vcd
        Write a waveform of the whole session to this file (closed by :meth:`close`).
    """

    def __init__(
        self,
        config: CrossbarConfig | None = None,
        *,
        engine=None,
        idle_in: float = 0.0,
        stall_out: float = 0.0,
        seed: int = 0,
        vcd: str | None = None,
    ) -> None:
        self.config = config if config is not None else CrossbarConfig()
        self.engine = engine if engine is not None else Engine(self.config)
        super().__init__()
        self._streams = EngineStreams(
            self.engine, np.random.default_rng(seed), idle_in=idle_in, stall_out=stall_out
        )
        self.stream_bytes = self._streams.stream_bytes
        self._out = self._streams.responses  # received by ResponseBuffer._take
        self._sim = Simulator(self.engine)
        self._sim.add_clock(1e-8)
        self._sim.add_testbench(self._testbench)
        self._vcd = None
        if vcd is not None:
            self._vcd = self._sim.write_vcd(str(vcd))
            self._vcd.__enter__()

    @property
    def cycles(self) -> int:
        """Clock cycles simulated so far."""
        return self._streams.cycles

    @property
    def vmm_cycles(self) -> int:
        """The engine's count for its last VMM (rows issued and sums awaited)."""
        return self._streams.vmm_cycles

    async def _testbench(self, ctx) -> None:
        while True:
            await self._streams.cycle(ctx)

    def send(self, data: bytes) -> None:
        self._streams.send(data)

    def run(self, cycles: int) -> None:
        """Advance the simulation by ``cycles`` clock cycles."""
        stop = self.cycles + cycles
        while self.cycles < stop:
            self._sim.advance()

    def receive(self, n: int, *, max_cycles: int | None = None) -> bytes:
        """Advance the clock until ``n`` response bytes are out and return them.

        Raises ``TimeoutError`` when every command byte is taken and the engine is idle with
        fewer bytes out (none will follow), or after ``max_cycles`` cycles (default: plenty
        for a whole-array VMM per byte still expected).
        """
        n = check_count(n)
        c = self.config
        if max_cycles is None:
            per_byte = 100 + c.rows * c.cols // c.lanes
            max_cycles = 10_000 + per_byte * max(n - len(self._out), 0) + 4 * self._streams.unsent
        start = self.cycles
        quiet = 0
        while len(self._out) < n:
            before = self.cycles
            self._sim.advance()
            if self.cycles == before:
                continue
            quiet = quiet + 1 if not self._streams.unsent and self._streams.idle else 0
            if quiet >= 3 or self.cycles - start > max_cycles:
                why = "the engine is idle" if quiet >= 3 else f"after {max_cycles} cycles"
                raise TimeoutError(
                    f"{why} with {len(self._out)} response byte(s) out, {n} were expected"
                )
        return self._take(n)

    def close(self) -> None:
        """Finish the waveform file, if one is written."""
        if self._vcd is not None:
            self._vcd.__exit__(None, None, None)
            self._vcd = None
