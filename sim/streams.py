"""The engine's two streams in the Amaranth simulator, driven one cycle at a time: the one
stream driver of :func:`~molxbar.sim.simulate.simulate_engine`,
:class:`~molxbar.sim.transport.AmaranthTransport` and the gateware tests.

Command bytes are queued with :meth:`EngineStreams.send` and offered as beats
(:mod:`molxbar.protocol.beats`; one byte a transfer on an engine whose streams carry plain
bytes); response beats are unpacked into :attr:`EngineStreams.responses`. Idle cycles on the
command stream and back-pressure on the response stream follow :mod:`molxbar.sim.stalls`.
A beat offered and not taken is offered again, unchanged, the next time ``valid`` is high.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Value

from molxbar.protocol.beats import unpack_beat

from .stalls import check_stalls, stall_draws

__all__ = ["EngineStreams"]


class EngineStreams:
    """The ``cmd`` and ``rsp`` streams of ``engine``.

    Parameters
    ----------
    engine
        An :class:`~molxbar.hdl.engine.Engine` (or a component with its ``cmd``, ``rsp``,
        ``idle`` and ``vmm_cycles`` members).
    rng
        The random generator of the stall patterns and beat sizes.
    idle_in, stall_out, stall_burst
        Stall patterns (:func:`~molxbar.sim.stalls.stall_draws`): idle cycles on ``cmd``,
        back-pressure on ``rsp``, and the mean run length of the back-pressure.
    cut_beats
        Cut the command bytes into beats of random lengths (1 to ``stream_bytes``) rather
        than full ones; by default when ``idle_in`` is above zero.

    Attributes
    ----------
    responses
        Response bytes out of the engine and not yet consumed (a ``bytearray``: consumers
        delete what they take).
    taken, cycles
        Command bytes the engine has taken, and cycles simulated.
    idle
        At the last edge the engine was idle and offered no response beat.
    vmm_cycles
        The engine's ``vmm_cycles`` output at the last edge.
    """

    def __init__(
        self,
        engine,
        rng: np.random.Generator,
        *,
        idle_in: float = 0.0,
        stall_out: float = 0.0,
        stall_burst: int = 1,
        cut_beats: bool | None = None,
    ) -> None:
        check_stalls("idle_in", idle_in)
        check_stalls("stall_out", stall_out, stall_burst)
        self.engine = engine
        self.stream_bytes: int | None = getattr(engine, "stream_bytes", None)
        self._rng = rng
        self._cut = idle_in > 0 if cut_beats is None else cut_beats
        self._idle_draws = stall_draws(rng, idle_in)
        self._stall_draws = stall_draws(rng, stall_out, stall_burst)
        self._cmd_payload = Value.cast(engine.cmd.payload)
        self._rsp_payload = Value.cast(engine.rsp.payload)
        self._queue = bytearray()
        self._beat: tuple[int, int] | None = None  # the beat on offer: payload, bytes
        self.responses = bytearray()
        self.taken = 0
        self.cycles = 0
        self.idle = True
        self.vmm_cycles = 0

    @property
    def unsent(self) -> int:
        """Command bytes queued and not yet taken."""
        return len(self._queue)

    def send(self, data: bytes) -> None:
        """Queue command bytes."""
        self._queue += bytes(data)

    def _next_beat(self) -> tuple[int, int]:
        if self._beat is None:
            width = self.stream_bytes
            if width is None:
                self._beat = self._queue[0], 1
            else:
                size = int(self._rng.integers(1, width + 1)) if self._cut else width
                size = min(size, len(self._queue))
                data = int.from_bytes(self._queue[:size], "little")
                self._beat = data | (size << 8 * width), size
        return self._beat

    async def cycle(self, ctx, *, ready: bool | None = None) -> bool:
        """Drive one clock cycle and account for its edge; returns whether a response beat
        was offered at the edge. ``ready`` overrides the back-pressure pattern."""
        dut = self.engine
        offer = bool(self._queue) and not next(self._idle_draws)
        drawn = not next(self._stall_draws)
        ready = drawn if ready is None else ready
        ctx.set(dut.cmd.valid, offer)
        if offer:
            ctx.set(self._cmd_payload, self._next_beat()[0])
        ctx.set(dut.rsp.ready, ready)
        # One settle per cycle: the values just before the clock edge.
        took, valid, beat, idle, vmm_cycles = (
            await ctx.tick().sample(
                dut.cmd.ready, dut.rsp.valid, self._rsp_payload, dut.idle, dut.vmm_cycles
            )
        )[2:]
        if offer and took:
            size = self._beat[1]
            del self._queue[:size]
            self.taken += size
            self._beat = None
        if ready and valid:
            if self.stream_bytes is None:
                self.responses.append(beat)
            else:
                self.responses += unpack_beat(beat, self.stream_bytes)
        self.idle = bool(idle) and not valid
        self.vmm_cycles = vmm_cycles
        self.cycles += 1
        return bool(valid)
