"""Where a command stream runs: one registry of backends, used by the command line, the demo
and the benchmarks.

Each :class:`Backend` says how to run a whole command stream on a fresh engine and, where the
backend can be driven call by call, how to open a live transport for a
:class:`~molxbar.host.driver.CrossbarDriver`. Backends without one (the cocotb simulators
run a stream in one pass) are driven through a
:class:`~molxbar.host.transports.ReplayTransport`."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.framing import whole_commands
from molxbar.protocol.spec import Layout

__all__ = ["BACKENDS", "Backend", "RunResult", "backend", "run_stream"]


@dataclass(frozen=True)
class RunResult:
    """The response bytes of a command stream and, on a simulator, the clock cycles the run
    took and the engine's ``vmm_cycles`` count of its last VMM (``None`` on ``golden``).

    ``partial`` holds the bytes of a trailing partial command that was not run (see
    :meth:`Backend.run`); empty for a stream of whole commands."""

    responses: bytes
    cycles: int | None = None
    vmm_cycles: int | None = None
    partial: bytes = b""


Progress = Callable[[int], None] | None


@dataclass(frozen=True)
class Backend:
    """One place a command stream can run.

    Its ``run`` and ``transport`` functions import what they need when called, so that the
    registry itself costs nothing to import.

    Attributes
    ----------
    name
        The ``--backend`` name.
    description
        What runs the engine.
    wave_suffixes
        Waveform files the backend writes (empty: none).
    """

    name: str
    description: str
    wave_suffixes: tuple[str, ...]
    _run: Callable[[CrossbarConfig, bytes, Progress, str | None], RunResult]
    _transport: Callable[[CrossbarConfig], object] | None = None

    @property
    def live(self) -> bool:
        """A driver can talk to it call by call (:meth:`transport`)."""
        return self._transport is not None

    def run(
        self,
        config: CrossbarConfig,
        commands: bytes,
        *,
        progress: Progress = None,
        waves: str | os.PathLike | None = None,
    ) -> RunResult:
        """Run ``commands`` on a fresh engine; ``progress`` gets the command bytes consumed
        so far, ``waves`` names a waveform file.

        A stream that ends inside a command (cut in its fields, or a RUN_BATCH with vectors
        missing) runs the same way on every backend: its whole commands run and are
        answered, and the trailing partial command is not run but returned as
        :attr:`RunResult.partial` (an engine given it would wait for the rest)."""
        if waves is not None:
            if not self.wave_suffixes:
                raise ValueError("waves need a simulator backend: amaranth, verilator or icarus")
            if not str(waves).lower().endswith(self.wave_suffixes):
                raise ValueError(
                    f"waves = {str(waves)!r}: {self.name} writes "
                    f"{' or '.join(self.wave_suffixes)} files"
                )
        whole = whole_commands(Layout(config), commands)
        result = self._run(
            config, commands[:whole], progress, None if waves is None else str(waves)
        )
        return replace(result, partial=bytes(commands[whole:]))

    def transport(self, config: CrossbarConfig):
        """A live transport to a fresh engine; ``ValueError`` for a one-pass backend."""
        if self._transport is None:
            raise ValueError(f"backend {self.name!r} runs whole command streams only: replay")
        return self._transport(config)


def _golden(config, commands, progress, waves) -> RunResult:
    from molxbar.protocol.golden_engine import GoldenEngine

    responses = GoldenEngine(config).execute(commands)
    if progress is not None:
        progress(len(commands))
    return RunResult(responses)


def _golden_transport(config):
    from molxbar.host.transports import GoldenTransport

    return GoldenTransport(config)


def _amaranth(config, commands, progress, waves) -> RunResult:
    from .simulate import simulate_engine

    result = simulate_engine(config, commands, progress=progress, vcd=waves)
    return RunResult(result.responses, result.cycles, result.vmm_cycles)


def _amaranth_transport(config):
    from .transport import AmaranthTransport

    return AmaranthTransport(config)


def _verilator(config, commands, progress, waves) -> RunResult:
    """The native driver (:mod:`molxbar.sim.cosim.native`), its responses held to the golden
    engine as the cocotb bench holds them; the cocotb bench for a run that writes a
    waveform."""
    if waves is not None:
        return _cocotb("verilator")(config, commands, progress, waves)
    from .cosim.job import Job, Segment
    from .cosim.native import run_native

    result = run_native(Job(config, [Segment(commands)]), progress=progress)
    return RunResult(result.responses, result.cycles, result.vmm_cycles)


def _cocotb(simulator: str):
    def run(config, commands, progress, waves) -> RunResult:
        from .cosim.job import Job, Segment
        from .cosim.simulators import run_job

        result = run_job(Job(config, [Segment(commands)]), simulator, waves=waves)
        if progress is not None:
            progress(len(commands))
        return RunResult(result.responses, result.cycles, result.vmm_cycles)

    return run


#: The backends by ``--backend`` name: the golden engine, the gateware in the Amaranth
#: simulator, and its generated Verilog in Verilator (driven by a C++ loop; by the cocotb
#: bench when it writes a waveform) or under cocotb in Icarus Verilog.
BACKENDS = {
    b.name: b
    for b in (
        Backend("golden", "the golden engine (NumPy)", (), _golden, _golden_transport),
        Backend("amaranth", "the gateware in the Amaranth simulator", (".vcd",), _amaranth,
                _amaranth_transport),
        Backend("verilator", "the generated Verilog in Verilator, driven natively", (".vcd",),
                _verilator),
        Backend("icarus", "the generated Verilog under cocotb in Icarus Verilog", (".fst",),
                _cocotb("icarus")),
    )
}  # fmt: skip


def backend(name: str) -> Backend:
    """The backend called ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(
            f"backend = {name!r} is unknown: choose one of {', '.join(BACKENDS)}"
        ) from None


def run_stream(
    config: CrossbarConfig,
    commands: bytes,
    backend_name: str = "golden",
    *,
    progress: Progress = None,
    waves: str | os.PathLike | None = None,
) -> RunResult:
    """Run ``commands`` on a fresh engine of the backend ``backend_name``
    (:meth:`Backend.run`). The ``verilator`` and ``icarus`` backends raise
    :class:`molxbar.sim.cosim.CosimError` when the simulator is not installed."""
    return backend(backend_name).run(config, commands, progress=progress, waves=waves)
