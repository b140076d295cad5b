"""What one co-simulation run does, and what it found: the files between the host process
and the simulator process.

A job folder holds ``job.json`` (the configuration, stream options and segments),
``segment<k>.bin`` (the command bytes of each segment) and, after the run, ``result.json``
and ``responses<k>.bin``. A *segment* is a command stream sent to a freshly reset engine;
a segment with ``reset_after`` ends with a reset in mid-traffic once the engine has taken
that many of its command bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from molxbar.emulator.config import CrossbarConfig

__all__ = ["Segment", "Job", "SegmentResult", "JobResult"]


@dataclass(frozen=True)
class Segment:
    """One command stream after a reset; ``reset_after`` (bytes) ends it early."""

    commands: bytes
    reset_after: int | None = None

    def __post_init__(self) -> None:
        if self.reset_after is not None and not 0 <= self.reset_after <= len(self.commands):
            raise ValueError(
                f"reset_after = {self.reset_after} must be in [0, {len(self.commands)}]"
            )


@dataclass
class Job:
    """A co-simulation run.

    Parameters
    ----------
    config
        The crossbar the design was generated for.
    segments
        Command streams, each after a reset.
    idle_in, stall_out
        Probabilities of an idle cycle on the command stream and of back-pressure on the
        response stream.
    stall_burst
        Mean run length of the back-pressure (:mod:`molxbar.sim.stalls`): 1 draws each
        cycle on its own, more holds ``ready`` low for long runs.
    seed
        Seed of the idle cycles, the back-pressure and the reset timing.
    check
        Compare the responses with the golden engine in the simulator process.
    max_cycles
        Cycles allowed per segment (default: from the segment's length).
    """

    config: CrossbarConfig
    segments: list[Segment]
    idle_in: float = 0.0
    stall_out: float = 0.0
    stall_burst: int = 1
    seed: int = 0
    check: bool = True
    max_cycles: int | None = None
    folder: Path = field(default=Path("."), compare=False)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        spec = {
            "config": self.config.as_dict(),
            "segments": [],
            "idle_in": self.idle_in,
            "stall_out": self.stall_out,
            "stall_burst": self.stall_burst,
            "seed": self.seed,
            "check": self.check,
            "max_cycles": self.max_cycles,
        }
        for k, segment in enumerate(self.segments):
            (folder / f"segment{k}.bin").write_bytes(segment.commands)
            spec["segments"].append({"file": f"segment{k}.bin", "reset_after": segment.reset_after})
        (folder / "job.json").write_text(json.dumps(spec, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Job:
        spec = json.loads((folder / "job.json").read_text())
        segments = [
            Segment((folder / s["file"]).read_bytes(), s["reset_after"]) for s in spec["segments"]
        ]
        return cls(
            config=CrossbarConfig(**spec["config"]),
            segments=segments,
            idle_in=spec["idle_in"],
            stall_out=spec["stall_out"],
            stall_burst=spec["stall_burst"],
            seed=spec["seed"],
            check=spec["check"],
            max_cycles=spec["max_cycles"],
            folder=folder,
        )

    def segment_commands(self, index: int) -> bytes:
        return self.segments[index].commands


@dataclass
class SegmentResult:
    """What one segment did: command bytes taken, response bytes, cycles, whether a reset
    ended it."""

    taken: int
    responses: bytes
    cycles: int
    reset: bool


@dataclass
class JobResult:
    """What a run found. ``error`` names the first mismatch (or timeout) with the seed."""

    seed: int = 0
    payload_bits: int = 8
    stream_bytes: int | None = None
    segments: list[SegmentResult] = field(default_factory=list)
    seconds: float = 0.0
    vmm_cycles: int = 0
    cmd_stall_cycles: int = 0
    cmd_idle_cycles: int = 0
    rsp_backpressure_cycles: int = 0
    error: str | None = None

    @property
    def cycles(self) -> int:
        return sum(s.cycles for s in self.segments)

    @property
    def responses(self) -> bytes:
        """The responses of the last segment (the whole run when there was no reset)."""
        return self.segments[-1].responses if self.segments else b""

    def save(self, folder: Path) -> None:
        spec = asdict(self)
        for k, segment in enumerate(self.segments):
            (folder / f"responses{k}.bin").write_bytes(segment.responses)
            spec["segments"][k]["responses"] = f"responses{k}.bin"
        (folder / "result.json").write_text(json.dumps(spec, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> JobResult:
        spec = json.loads((folder / "result.json").read_text())
        segments = [
            SegmentResult(
                taken=s["taken"],
                responses=(folder / s["responses"]).read_bytes(),
                cycles=s["cycles"],
                reset=s["reset"],
            )
            for s in spec.pop("segments")
        ]
        return cls(segments=segments, **spec)
