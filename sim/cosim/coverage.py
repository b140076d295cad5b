"""Functional coverage: which commands, statuses, edge cases, stream conditions and
configurations a verification run exercised.

Coverage is computed from what crossed the engine's ports: the command stream, cut into
commands with :func:`~molxbar.protocol.framing.split_commands` and replayed on a golden
engine to know the state each command met (a pulse that saturates needs the level it
started from), and the response stream, decoded with
:func:`~molxbar.protocol.spec.decode_response`. The stream counters (stalls,
back-pressure, idle cycles, resets) come from the test bench.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.emulator.fixedpoint import round_shift
from molxbar.protocol.framing import split_commands
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import (
    COMMANDS,
    Layout,
    Opcode,
    Status,
    decode_command_fields,
    decode_response,
)

__all__ = ["EDGES", "STREAM", "ERROR_STATUSES", "Coverage", "stream_coverage", "config_label"]

#: Edge cases of the arithmetic and the protocol, with what hits them.
EDGES = {
    "pulse_saturates_top": "a PULSE_CELL that would pass the top level",
    "pulse_saturates_zero": "a PULSE_CELL that would pass level 0",
    "rank1_saturates_top": "an UPDATE_RANK1 that would push a cell past the top level",
    "rank1_saturates_zero": "an UPDATE_RANK1 that would push a cell below 0",
    "write_level_zero": "a direct write of level 0",
    "write_level_top": "a direct write of the top level",
    "input_negative": "a VMM with negative inputs",
    "input_negative_leaks": "a VMM with negative inputs and a rectification shift set",
    "input_max": "a VMM with an input at the largest code",
    "input_min": "a VMM with an input at the smallest code",
    "adc_saturates": "a VMM output at a limit of the ADC width",
    "adc_shift": "a VMM with an ADC shift",
    "batch_several": "a RUN_BATCH of more than one vector",
    "batch_bad_vector": "a RUN_BATCH with a vector rejected (BAD_INPUT) among good ones",
    "vmm_read_noise": "a VMM with read noise on",
    "write_noise": "a direct write with the write error on",
    "unknown_opcode": "a byte that is no opcode where a command starts",
    "error_response": "any command answered with an error status",
}

#: Stream conditions, counted by the test bench.
STREAM = {
    "cmd_idle": "cycles the command stream was left idle",
    "cmd_stall": "cycles the engine held a command beat (ready low)",
    "rsp_backpressure": "cycles a response beat waited for ready",
    "reset_mid_traffic": "resets while commands and responses were in flight",
}


def config_label(config: CrossbarConfig, stream_bytes: int | None = None) -> str:
    """A short name of a configuration, e.g. ``64x64 l64 g14 x16 B8 read-noise``."""
    c = config
    parts = [f"{c.rows}x{c.cols}", f"l{c.lanes}", f"g{c.g_bits}"]
    if c.levels != 1 << c.g_bits:
        parts.append(f"levels{c.levels}")
    parts.append(f"x{c.x_bits}")
    if stream_bytes is not None:
        parts.append(f"B{stream_bytes}")
    if c.read_noise:
        parts.append("read-noise")
    if c.write_noise:
        parts.append("write-noise")
    return " ".join(parts)


@dataclass
class Coverage:
    """Hit counts per bin, in groups ``command``, ``status``, ``edge``, ``stream`` and
    ``config``. Every bin of the first four groups is listed, hit or not."""

    bins: dict[str, Counter] = field(
        default_factory=lambda: {
            "command": Counter({op.name: 0 for op in Opcode}),
            "status": Counter({status.name: 0 for status in Status}),
            "edge": Counter(dict.fromkeys(EDGES, 0)),
            "stream": Counter(dict.fromkeys(STREAM, 0)),
            "config": Counter(),
        }
    )

    def hit(self, group: str, name: str, count: int = 1) -> None:
        self.bins[group][name] += count

    def merge(self, other: Coverage) -> Coverage:
        """Add ``other``'s hits to this one; returns ``self``."""
        for group, counter in other.bins.items():
            self.bins.setdefault(group, Counter()).update(counter)
        return self

    def missing(self, *groups: str) -> list[str]:
        """``group.bin`` names never hit (in ``groups``, default all but ``config``)."""
        groups = groups or ("command", "status", "edge", "stream")
        return [f"{g}.{name}" for g in groups for name, n in self.bins[g].items() if n == 0]

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {group: dict(counter) for group, counter in self.bins.items()}

    def report(self) -> str:
        """A text table: hits per bin, then the bins missed."""
        lines = []
        for group, counter in self.bins.items():
            hit = sum(1 for n in counter.values() if n)
            lines.append(f"{group}: {hit} of {len(counter)} bins hit")
            for name, n in counter.items():
                lines.append(f"  {'  ' if n else '- '}{name:<24} {n}")
        missing = self.missing()
        lines.append("missed: " + (", ".join(missing) if missing else "nothing"))
        return "\n".join(lines)

    # Collecting -------------------------------------------------------------------------

    def add_stream(
        self,
        config: CrossbarConfig,
        commands: bytes,
        responses: bytes,
        *,
        stream_bytes: int | None = None,
        cut: bool = False,
    ) -> Coverage:
        """Count the commands of ``commands`` (replayed on a golden engine from reset) and
        the statuses of ``responses``; returns ``self``. ``cut``: a reset ended the stream,
        so its last command and its last response may be partial (they are not counted)."""
        self.hit("config", config_label(config, stream_bytes))
        layout = Layout(config)
        pos = 0
        while pos < len(responses):
            if cut and _partial(layout, responses, pos):
                break
            response, pos = decode_response(layout, responses, pos)
            layout = layout.after(response)  # SET_ADC: the outputs' width from now on
            self.hit("status", response.status.name)
            if response.status is not Status.OK:
                self.hit("edge", "error_response")
        golden = GoldenEngine(config)
        layout = golden.layout
        known = {int(op) for op in Opcode}
        for command in split_commands(layout, commands):
            if command[0] not in known:
                self.hit("edge", "unknown_opcode")
                golden.execute(command)
                continue
            opcode = Opcode(command[0])
            if len(command) < layout.header_length(opcode):
                break  # a partial command at the end of a stream cut by a reset
            self.hit("command", opcode.name)
            self._edges(golden, opcode, command)
            golden.execute(command)
        return self

    def _edges(self, golden: GoldenEngine, opcode: Opcode, command: bytes) -> None:
        c, layout, xb = golden.config, golden.layout, golden.crossbar
        fields = decode_command_fields(layout, opcode, command, 1)
        if layout.validate(opcode, fields) is not Status.OK:
            return
        if opcode is Opcode.PULSE_CELL:
            after = int(xb.levels[fields["row"], fields["col"]]) + fields["count"]
            if after > c.g_max:
                self.hit("edge", "pulse_saturates_top")
            if after < 0:
                self.hit("edge", "pulse_saturates_zero")
        elif opcode is Opcode.UPDATE_RANK1:
            delta = round_shift(fields["a"][:, None] * fields["b"][None, :], xb.update_shift)
            after = xb.levels + delta
            if (after > c.g_max).any():
                self.hit("edge", "rank1_saturates_top")
            if (after < 0).any():
                self.hit("edge", "rank1_saturates_zero")
        elif opcode in (Opcode.WRITE_CELL, Opcode.WRITE_ROW):
            levels = np.atleast_1d(fields.get("level", fields.get("levels")))
            if (levels == 0).any():
                self.hit("edge", "write_level_zero")
            if (levels == c.g_max).any():
                self.hit("edge", "write_level_top")
            if xb.write_noise:
                self.hit("edge", "write_noise")
        elif opcode is Opcode.RUN_VMM:
            self._vmm_edges(golden, golden.input[None, :])
        elif opcode is Opcode.RUN_BATCH:
            width = layout.input_bytes
            body = np.frombuffer(command[layout.header_length(opcode) :], dtype=np.uint8)
            count = len(body) // (c.rows * width)
            raw = body[: count * c.rows * width].reshape(count, c.rows, width).astype(np.int64)
            x = np.zeros((count, c.rows), dtype=np.int64)
            for byte in range(width):
                x |= raw[:, :, byte] << (8 * byte)
            sign = np.int64(1) << (8 * width - 1)
            x = (x ^ sign) - sign
            good = np.all((x >= c.x_min) & (x <= c.x_max), axis=1)
            if count > 1:
                self.hit("edge", "batch_several")
            if good.any() and not good.all():
                self.hit("edge", "batch_bad_vector")
            self._vmm_edges(golden, x[good])

    def _vmm_edges(self, golden: GoldenEngine, x: np.ndarray) -> None:
        c, xb = golden.config, golden.crossbar
        if x.size == 0:
            return
        if (x < 0).any():
            self.hit("edge", "input_negative")
            if xb.rect_shift is not None:
                self.hit("edge", "input_negative_leaks")
        if (x == c.x_max).any():
            self.hit("edge", "input_max")
        if (x == c.x_min).any():
            self.hit("edge", "input_min")
        if xb.adc_shift:
            self.hit("edge", "adc_shift")
        if xb.read_noise:
            self.hit("edge", "vmm_read_noise")
        if xb.adc_bits is not None:
            top = (1 << (xb.adc_bits - 1)) - 1
            outputs = _peek_outputs(golden, x)
            if ((outputs >= top) | (outputs <= -top - 1)).any():
                self.hit("edge", "adc_saturates")


def _peek_outputs(golden: GoldenEngine, x: np.ndarray) -> np.ndarray:
    """The outputs ``golden`` would give for ``x`` without changing its state (noise
    counters included)."""
    xb = golden.crossbar
    counter = xb.noise_counter
    try:
        return xb.vmm_batch(x)
    finally:
        xb.noise_counter = counter


def stream_coverage(coverage: Coverage, result) -> Coverage:
    """Add the stream counters of a :class:`~molxbar.sim.cosim.job.JobResult`."""
    coverage.hit("stream", "cmd_idle", result.cmd_idle_cycles)
    coverage.hit("stream", "cmd_stall", result.cmd_stall_cycles)
    coverage.hit("stream", "rsp_backpressure", result.rsp_backpressure_cycles)
    coverage.hit("stream", "reset_mid_traffic", sum(s.reset for s in result.segments))
    return coverage


#: Every status some command can return, and UNKNOWN_OPCODE.
ERROR_STATUSES = frozenset(s for spec in COMMANDS.values() for s in spec.errors) | {
    Status.UNKNOWN_OPCODE
}


def _partial(layout: Layout, responses: bytes, pos: int) -> bool:
    """The response at ``pos`` runs past the end of ``responses``."""
    if len(responses) - pos < 2:
        return True
    if responses[pos + 1] != Status.OK or responses[pos] not in {int(op) for op in Opcode}:
        return False  # an error response is two bytes; decoding names a bad one
    return len(responses) - pos < layout.response_length(Opcode(responses[pos]))
