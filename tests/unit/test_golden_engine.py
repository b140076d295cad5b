"""The golden engine (the protocol executed on the golden model) against an independent reading
of the protocol: a second, plain :class:`Crossbar` driven through its Python API, whose expected
response bytes are built with :func:`encode_response`, and a few responses written out by hand.

Random streams come from ``np.random.default_rng(seed)``; every assertion message carries the
seed and the index of the first differing command.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pytest

from molxbar.emulator import Crossbar, CrossbarConfig, preset
from molxbar.emulator.config import SIGMA_SEGMENTS
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import (
    COMMANDS,
    NOISE_READ,
    NOISE_WRITE,
    TABLE_READ,
    Layout,
    Opcode,
    Status,
    decode_response,
    decode_responses,
    encode_command,
    encode_response,
)

OPCODE_BYTES = {int(op) for op in Opcode}
UNKNOWN_BYTES = [b for b in range(256) if b not in OPCODE_BYTES]

STREAM_CONFIGS = {
    "ideal14": CrossbarConfig(),
    "ru_azo_2024": preset("ru_azo_2024"),
    "8x8-lanes1": CrossbarConfig(
        rows=8, cols=8, lanes=1, g_bits=8, levels=200, x_bits=12, read_sigma=0.5, write_sigma=0.3
    ),
    "8x8-lanes2": CrossbarConfig(
        rows=8, cols=8, lanes=2, g_bits=4, x_bits=2, rect_shift=1, read_noise=True, read_sigma=1.0
    ),
    "8x8-lanes4": CrossbarConfig(
        rows=8,
        cols=8,
        lanes=4,
        g_bits=16,
        x_bits=24,
        adc_bits=20,
        adc_shift=3,
        write_noise=True,
        write_sigma=2.0,
        seed=7,
    ),
    "8x8-lanes8": CrossbarConfig(
        rows=8,
        cols=8,
        lanes=8,
        g_bits=10,
        x_bits=9,
        adc_bits=8,
        rect_shift=2,
        update_shift=4,
        read_noise=True,
        read_sigma=3.0,
    ),
    "16x48": CrossbarConfig(
        rows=16,
        cols=48,
        lanes=6,
        g_bits=12,
        levels=3000,
        x_bits=12,
        read_sigma=1.0,
        read_sigma_slope=0.001,
        write_sigma=0.5,
        read_noise=True,
    ),
}


# Every error status is reachable in this one: x_bits and levels leave room in their fields.
ERROR_CONFIG = CrossbarConfig(
    rows=8,
    cols=8,
    lanes=2,
    g_bits=12,
    levels=3000,
    x_bits=12,
    rect_shift=3,
    read_sigma=2.0,
    write_sigma=1.0,
    read_noise=True,
    write_noise=True,
    seed=99,
)


# The reference reading of the protocol ------------------------------------------------------------


@dataclass
class Command:
    """One command of a stream: its opcode byte (possibly unknown), field values and bytes."""

    opcode: int
    fields: dict = field(default_factory=dict)
    data: bytes = b""


class Reference:
    """The protocol as documented, on a plain :class:`Crossbar` driven through its API."""

    def __init__(self, config: CrossbarConfig) -> None:
        self.config = config
        self.layout = Layout(config)
        self.crossbar = Crossbar(config)
        self.input = np.zeros(config.rows, dtype=np.int64)

    def _input_ok(self, codes) -> bool:
        c = self.config
        return all(c.x_min <= int(v) <= c.x_max for v in np.ravel(codes))

    def status_fields(self) -> dict:
        c, xb = self.config, self.crossbar
        return {
            "version": 4,
            "rows": c.rows,
            "cols": c.cols,
            "lanes": c.lanes,
            "g_bits": c.g_bits,
            "x_bits": c.x_bits,
            "levels": c.levels,
            "adc_bits": 0 if xb.adc_bits is None else xb.adc_bits,
            "adc_shift": xb.adc_shift,
            "rect_shift": 0xFF if xb.rect_shift is None else xb.rect_shift,
            "update_shift": xb.update_shift,
            "noise": int(xb.read_noise) | 2 * int(xb.write_noise),
            "seed": xb.noise_seed,
            "counter": xb.noise_counter,
            "output_bytes": (c.acc_fine_bits + 7) // 8,
            "hardware": int(c.noise_hardware) | 2 * int(c.leakage_hardware),
        }

    def _first_error(self, opcode: Opcode, f: dict) -> Status:
        """The first field out of range, checked in order (docs/protocol.md)."""
        c = self.config
        checks = {
            "row": lambda v: v < c.rows or Status.BAD_ROW,
            "col": lambda v: v < c.cols or Status.BAD_COL,
            "level": lambda v: v <= c.g_max or Status.BAD_LEVEL,
            "levels": lambda v: all(int(i) <= c.g_max for i in v) or Status.BAD_LEVEL,
            "a": lambda v: self._input_ok(v) or Status.BAD_INPUT,
            "b": lambda v: self._input_ok(v) or Status.BAD_INPUT,
            "x": lambda v: self._input_ok(v) or Status.BAD_INPUT,
        }
        if opcode is Opcode.PULSE_CELL:
            checks["count"] = lambda v: c.pulse_min <= v <= c.pulse_max or Status.BAD_COUNT
        if opcode is Opcode.SET_ADC:
            checks["bits"] = lambda v: v == 0 or 2 <= v <= 63 or Status.BAD_VALUE
            checks["shift"] = lambda v: v <= 63 or Status.BAD_SHIFT
        if opcode is Opcode.SET_RECT:
            checks["shift"] = lambda v: v <= 63 or v == 0xFF or Status.BAD_SHIFT
        if opcode is Opcode.SET_UPDATE_SHIFT:
            checks["shift"] = lambda v: v <= 63 or Status.BAD_SHIFT
        if opcode is Opcode.SET_NOISE:
            checks["flags"] = lambda v: v in (0, 1, 2, 3) or Status.BAD_VALUE
        if opcode is Opcode.SET_SIGMA:
            checks["table"] = lambda v: v in (0, 1) or Status.BAD_VALUE
            checks["scale"] = lambda v: all(int(i) < 4096 for i in v) or Status.BAD_VALUE
        for spec_field in COMMANDS[opcode].fields:
            check = checks.get(spec_field.name)
            if check is not None:
                result = check(f[spec_field.name])
                if result is not True:
                    return result
        return Status.OK

    def _outputs(self, opcode: Opcode, y) -> bytes:
        """An OK VMM response: each output in the fewest bytes the ADC width needs, all
        ceil(acc_fine_bits / 8) with the ADC off."""
        full = (self.config.acc_fine_bits + 7) // 8
        bits = self.crossbar.adc_bits
        width = full if bits is None else min(full, (bits + 7) // 8)
        return bytes([opcode, Status.OK]) + b"".join(
            int(v).to_bytes(width, "little", signed=True) for v in y
        )

    def respond(self, command: Command) -> bytes:
        """The expected response bytes of one command (all of a batch's responses)."""
        if command.opcode not in OPCODE_BYTES:
            return bytes([command.opcode, Status.UNKNOWN_OPCODE])
        opcode, f, xb, layout = Opcode(command.opcode), command.fields, self.crossbar, self.layout
        if opcode is Opcode.RUN_BATCH:
            if f["count"] == 0:
                return bytes([opcode, Status.BAD_COUNT])
            out = b""
            for x in f["x"]:
                if self._input_ok(x):
                    out += self._outputs(opcode, xb.vmm(x))
                else:
                    out += bytes([opcode, Status.BAD_INPUT])
            return out
        status = self._first_error(opcode, f)
        if status is not Status.OK:
            return bytes([opcode, status])
        result = {}
        if opcode is Opcode.SYNC:
            result = {"value": f["value"]}
        elif opcode is Opcode.STATUS:
            result = self.status_fields()
        elif opcode is Opcode.WRITE_CELL:
            xb.write_cell(f["row"], f["col"], f["level"])
        elif opcode is Opcode.WRITE_ROW:
            xb.write_row(f["row"], f["levels"])
        elif opcode is Opcode.PULSE_CELL:
            xb.pulse_cell(f["row"], f["col"], f["count"])
        elif opcode is Opcode.UPDATE_RANK1:
            xb.update_rank1(f["a"], f["b"])
        elif opcode is Opcode.READ_CELL:
            result = {"level": xb.read_cell(f["row"], f["col"])}
        elif opcode is Opcode.READ_ROW:
            result = {"levels": xb.read_row(f["row"])}
        elif opcode is Opcode.LOAD_INPUT:
            self.input = np.array(f["x"], dtype=np.int64)
        elif opcode is Opcode.RUN_VMM:
            return self._outputs(opcode, xb.vmm(self.input))
        elif opcode is Opcode.SET_ADC:
            xb.set_adc(f["bits"] or None, f["shift"])
            full = (self.config.acc_fine_bits + 7) // 8
            result = {"width": full if not f["bits"] else min(full, (f["bits"] + 7) // 8)}
        elif opcode is Opcode.SET_RECT:
            xb.set_rectification(None if f["shift"] == 0xFF else f["shift"])
        elif opcode is Opcode.SET_UPDATE_SHIFT:
            xb.set_update_shift(f["shift"])
        elif opcode is Opcode.SET_NOISE:
            xb.set_noise(read=bool(f["flags"] & 1), write=bool(f["flags"] & 2))
        elif opcode is Opcode.SET_SIGMA:
            table = [int(v) for v in f["scale"]]
            if f["table"] == 0:
                xb.set_noise(read_table=table)
            else:
                xb.set_noise(write_table=table)
        elif opcode is Opcode.SEED:
            xb.seed(f["seed"])
        return encode_response(layout, opcode, **result)


# Random commands ----------------------------------------------------------------------------------


class CommandMaker:
    """Random commands for one configuration; ``p_bad`` is the chance of a field out of range
    (when the field's bytes can hold one)."""

    WEIGHTS = {
        Opcode.SYNC: 2,
        Opcode.STATUS: 3,
        Opcode.WRITE_CELL: 6,
        Opcode.WRITE_ROW: 4,
        Opcode.PULSE_CELL: 6,
        Opcode.UPDATE_RANK1: 4,
        Opcode.READ_CELL: 4,
        Opcode.READ_ROW: 4,
        Opcode.LOAD_INPUT: 6,
        Opcode.RUN_VMM: 6,
        Opcode.RUN_BATCH: 6,
        Opcode.SET_ADC: 3,
        Opcode.SET_RECT: 3,
        Opcode.SET_UPDATE_SHIFT: 2,
        Opcode.SET_NOISE: 3,
        Opcode.SET_SIGMA: 2,
        Opcode.SEED: 2,
    }

    def __init__(
        self,
        rng: np.random.Generator,
        config: CrossbarConfig,
        p_bad: float = 0.12,
        *,
        rejected_vectors: str = "mixed",
    ):
        """``rejected_vectors``: ``"any"``, ``"mixed"`` (every batch keeps a valid vector) or
        ``"none"`` (no batch vector out of range)."""
        self.rng, self.config, self.p_bad = rng, config, p_bad
        self.rejected_vectors = rejected_vectors
        self.layout = Layout(config)
        ops = list(self.WEIGHTS)
        weights = np.array([self.WEIGHTS[op] for op in ops], dtype=float)
        self.ops, self.weights = ops, weights / weights.sum()

    def bad(self) -> bool:
        return self.rng.random() < self.p_bad

    def uint(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high, endpoint=True))

    def index(self, size: int) -> int:
        return self.uint(size, 0xFFFF) if self.bad() else self.uint(0, size - 1)

    def level(self) -> int:
        c, top = self.config, (1 << (8 * self.layout.level_bytes)) - 1
        if top > c.g_max and self.bad():
            return self.uint(c.g_max + 1, top)
        pick = self.rng.random()
        return 0 if pick < 0.1 else c.g_max if pick < 0.2 else self.uint(0, c.g_max)

    def levels(self, n: int) -> np.ndarray:
        c, top = self.config, (1 << (8 * self.layout.level_bytes)) - 1
        values = self.rng.integers(0, c.g_max, size=n, endpoint=True)
        values[self.rng.random(n) < 0.1] = c.g_max
        if top > c.g_max and self.bad():
            values[self.uint(0, n - 1)] = self.uint(c.g_max + 1, top)
        return values

    def pulses(self) -> int:
        c = self.config
        half = 1 << (8 * self.layout.pulse_bytes - 1)
        if half - 1 > c.pulse_max and self.bad():
            return self.uint(c.pulse_max + 1, half - 1) * int(self.rng.choice([-1, 1]))
        pick = self.rng.random()
        if pick < 0.1:
            return c.pulse_max
        if pick < 0.2:
            return c.pulse_min
        if pick < 0.6:
            return self.uint(-50, 50)
        return self.uint(c.pulse_min, c.pulse_max)

    def codes(self, n: int, small: bool = False) -> np.ndarray:
        """Input codes with the extremes sprinkled in, occasionally one out of range."""
        c, rng = self.config, self.rng
        if small:
            codes = rng.integers(max(c.x_min, -6), min(c.x_max, 6), size=n, endpoint=True)
        else:
            codes = rng.integers(c.x_min, c.x_max, size=n, endpoint=True)
            pick = rng.random(n)
            codes[pick < 0.1] = c.x_min
            codes[(pick >= 0.1) & (pick < 0.2)] = c.x_max
            codes[(pick >= 0.2) & (pick < 0.3)] = 0
        half = 1 << (8 * self.layout.input_bytes - 1)
        if half > c.x_max + 1 and self.bad():
            for _ in range(self.uint(1, 2)):
                wrong = (
                    self.uint(c.x_max + 1, half - 1)
                    if rng.random() < 0.5
                    else (self.uint(-half, c.x_min - 1))
                )
                codes[self.uint(0, n - 1)] = wrong
        return codes.astype(np.int64)

    def shift(self, typical: int) -> int:
        return self.uint(64, 255) if self.bad() else self.uint(0, typical)

    def fields(self, opcode: Opcode) -> dict:
        c, rng = self.config, self.rng
        if opcode is Opcode.SYNC:
            return {"value": self.uint(0, 255)}
        if opcode is Opcode.STATUS or opcode is Opcode.RUN_VMM:
            return {}
        if opcode is Opcode.WRITE_CELL:
            return {"row": self.index(c.rows), "col": self.index(c.cols), "level": self.level()}
        if opcode is Opcode.WRITE_ROW:
            return {"row": self.index(c.rows), "levels": self.levels(c.cols)}
        if opcode is Opcode.PULSE_CELL:
            return {"row": self.index(c.rows), "col": self.index(c.cols), "count": self.pulses()}
        if opcode is Opcode.UPDATE_RANK1:
            small = rng.random() < 0.8
            return {"a": self.codes(c.rows, small), "b": self.codes(c.cols, small)}
        if opcode in (Opcode.READ_CELL,):
            return {"row": self.index(c.rows), "col": self.index(c.cols)}
        if opcode is Opcode.READ_ROW:
            return {"row": self.index(c.rows)}
        if opcode is Opcode.LOAD_INPUT:
            return {"x": self.codes(c.rows)}
        if opcode is Opcode.RUN_BATCH:
            count = 0 if rng.random() < 0.05 else self.uint(1, 6)
            p_bad = self.p_bad
            if self.rejected_vectors == "none":
                self.p_bad = 0.0
            x = np.array([self.codes(c.rows) for _ in range(count)], dtype=np.int64)
            x = x.reshape(count, c.rows)
            self.p_bad = p_bad
            valid = np.all((x >= c.x_min) & (x <= c.x_max), axis=1)
            if self.rejected_vectors == "mixed" and count and not valid.any():
                x[int(rng.integers(count))] = rng.integers(c.x_min, c.x_max, c.rows, endpoint=True)
            return {"count": count, "x": x}
        if opcode is Opcode.SET_ADC:
            if self.bad():
                bits = int(rng.choice([1, self.uint(64, 255)]))
            else:
                bits = 0 if rng.random() < 0.4 else self.uint(2, 63)
            return {"bits": bits, "shift": self.shift(12)}
        if opcode is Opcode.SET_RECT:
            if rng.random() < 0.4:
                return {"shift": 0xFF}
            return {"shift": self.uint(64, 254) if self.bad() else self.uint(0, 8)}
        if opcode is Opcode.SET_UPDATE_SHIFT:
            return {"shift": self.shift(min(63, c.x_bits + 4))}
        if opcode is Opcode.SET_NOISE:
            return {"flags": self.uint(4, 255) if self.bad() else self.uint(0, 3)}
        if opcode is Opcode.SET_SIGMA:
            table = self.uint(2, 255) if self.bad() else self.uint(0, 1)
            scale = rng.integers(0, 4095, size=SIGMA_SEGMENTS, endpoint=True)
            if self.bad():
                scale[self.uint(0, SIGMA_SEGMENTS - 1)] = self.uint(4096, 0xFFFF)
            return {"table": table, "scale": scale}
        if opcode is Opcode.SEED:
            return {"seed": self.uint(0, 2**32 - 1)}
        raise AssertionError(opcode)

    def command(self) -> Command:
        if self.rng.random() < 0.04:
            opcode = int(self.rng.choice(UNKNOWN_BYTES))
            return Command(opcode, {}, bytes([opcode]))
        opcode = self.ops[int(self.rng.choice(len(self.ops), p=self.weights))]
        fields = self.fields(opcode)
        return Command(int(opcode), fields, encode_command(self.layout, opcode, **fields))

    def stream(self, length: int) -> list[Command]:
        """Every row written first, then ``length`` random commands."""
        c = self.config
        commands = []
        for row in range(c.rows):
            fields = {"row": row, "levels": self.rng.integers(0, c.g_max, c.cols, endpoint=True)}
            data = encode_command(self.layout, Opcode.WRITE_ROW, **fields)
            commands.append(Command(Opcode.WRITE_ROW, fields, data))
        return commands + [self.command() for _ in range(length)]


# Helpers ------------------------------------------------------------------------------------------


def expected_responses(config: CrossbarConfig, commands: list[Command]) -> list[bytes]:
    reference = Reference(config)
    return [reference.respond(command) for command in commands]


def assert_same_responses(actual: bytes, expected: list[bytes], commands, message: str) -> None:
    """Byte equality; on failure, names the first command whose response differs."""
    if actual == b"".join(expected):
        return
    offset = 0
    for index, (command, response) in enumerate(zip(commands, expected, strict=True)):
        got = actual[offset : offset + len(response)]
        if got != response:
            name = Opcode(command.opcode).name if command.opcode in OPCODE_BYTES else "unknown"
            raise AssertionError(
                f"{message}: command {index} ({name} {command.opcode:#04x}, fields "
                f"{command.fields}) answered {got.hex()}, expected {response.hex()}"
            )
        offset += len(response)
    raise AssertionError(f"{message}: {len(actual) - offset} extra bytes {actual[offset:].hex()}")


def assert_documented_statuses(layout: Layout, responses: bytes, message: str) -> None:
    """Every response decodes (its length from the responses before it: ``layout`` is the
    power-on one) and its status is OK or one its command documents."""
    for response in decode_responses(layout, responses):
        if response.opcode not in OPCODE_BYTES:
            assert response.status is Status.UNKNOWN_OPCODE, message
            continue
        allowed = {Status.OK, *COMMANDS[Opcode(response.opcode)].errors}
        assert response.status in allowed, f"{message}: {response}"


def run(engine: GoldenEngine, *commands: bytes) -> bytes:
    out = engine.execute(b"".join(commands))
    assert engine.idle
    return out


def snapshot(engine: GoldenEngine) -> bytes:
    """Every level and every register (READ_ROW and STATUS change nothing)."""
    layout, rows = engine.layout, engine.config.rows
    reads = [encode_command(layout, Opcode.READ_ROW, row=r) for r in range(rows)]
    return run(engine, *reads, encode_command(layout, Opcode.STATUS))


def level_bytes(config: CrossbarConfig, values) -> bytes:
    width = Layout(config).level_bytes
    return b"".join(int(v).to_bytes(width, "little") for v in values)


def output_bytes(config: CrossbarConfig, values, width: int | None = None) -> bytes:
    """Outputs as the engine sends them: ``width`` bytes each (default: the ADC off)."""
    width = width or Layout(config).output_bytes
    return b"".join(int(v).to_bytes(width, "little", signed=True) for v in values)


# Literal responses --------------------------------------------------------------------------------


def test_literal_responses():
    engine = GoldenEngine()
    assert engine.execute(b"\x01\x5a") == b"\x01\x00\x5a"
    assert engine.execute(b"\x99") == b"\x99\x01"
    # Row 64 of a 64-row array; the whole 7-byte command is consumed.
    assert engine.execute(b"\x10\x40\x00\x00\x00\x00\x00") == b"\x10\x02"
    assert engine.idle
    assert engine.execute(b"\x01\x00") == b"\x01\x00\x00"
    assert engine.execute(b"\x10\x01\x00\x02\x00\x34\x12") == b"\x10\x00"
    assert engine.execute(b"\x14\x01\x00\x02\x00") == b"\x14\x00\x34\x12"
    assert engine.execute(b"\x14\x01\x00\x40\x00") == b"\x14\x03"


def test_status_after_reset():
    expected = (
        b"\x02\x00"
        b"\x04"  # version
        b"\x40\x00\x40\x00\x08\x00"  # rows, cols, lanes
        b"\x0e\x10"  # g_bits, x_bits
        b"\x00\x40\x00\x00"  # levels
        b"\x00\x00\xff\x00"  # adc_bits, adc_shift, rect_shift, update_shift
        b"\x00"  # noise
        b"\x00\x00\x00\x00\x00\x00\x00\x00"  # seed, counter
        b"\x06\x03"  # output bytes (47-bit outputs), hardware: noise and leakage
    )
    assert GoldenEngine().execute(b"\x02") == expected
    assert GoldenEngine(CrossbarConfig()).execute(b"\x02") == expected
    ru_azo = (
        b"\x02\x00\x04\x40\x00\x40\x00\x08\x00\x0f\x10"
        b"\x88\x40\x00\x00"  # 16520 levels
        b"\x00\x00\xff\x00\x03"  # noise: read and write
        b"\x24\x20\x00\x00\x00\x00\x00\x00"  # seed 0x2024, counter 0
        b"\x06\x03"
    )
    assert GoldenEngine(preset("ru_azo_2024")).execute(b"\x02") == ru_azo
    small = CrossbarConfig(
        rows=8, cols=16, lanes=4, g_bits=6, levels=50, x_bits=5, adc_bits=9, adc_shift=2,
        rect_shift=1, update_shift=3, read_noise=True, seed=0xDEADBEEF,
    )  # fmt: skip
    assert GoldenEngine(small).execute(b"\x02") == (
        b"\x02\x00\x04\x08\x00\x10\x00\x04\x00\x06\x05\x32\x00\x00\x00"
        b"\x09\x02\x01\x03\x01\xef\xbe\xad\xde\x00\x00\x00\x00"
        b"\x04\x03"  # 26-bit outputs
    )


def test_status_registers_and_counter():
    engine = GoldenEngine(ERROR_CONFIG)
    out = engine.execute(
        b"\x30\x0c\x05"  # SET_ADC 12, 5
        b"\x31\xff"  # SET_RECT ideal
        b"\x32\x07"  # SET_UPDATE_SHIFT 7
        b"\x33\x01"  # SET_NOISE read only
        b"\x35\x78\x56\x34\x12"  # SEED
        b"\x21\x21\x21"  # three VMMs: counter 3
        b"\x02"
    )
    status = out[-30:]
    assert status[:2] == b"\x02\x00"
    assert status[15:] == b"\x0c\x05\xff\x07\x01\x78\x56\x34\x12\x03\x00\x00\x00\x05\x03"
    # A write with write noise on takes one counter; a pulse takes none.
    out = engine.execute(b"\x33\x02\x10\x00\x00\x00\x00\x05\x00\x12\x00\x00\x00\x00\x01\x00\x02")
    assert out[:6] == b"\x33\x00\x10\x00\x12\x00"
    assert out[6:][15:] == b"\x0c\x05\xff\x07\x02\x78\x56\x34\x12\x04\x00\x00\x00\x05\x03"
    out = engine.execute(b"\x31\x00\x30\x00\x3f\x02")
    assert out[:5] == b"\x31\x00\x30\x00\x05"  # SET_ADC off: outputs in all 5 bytes
    assert out[5:][15:] == b"\x00\x3f\x00\x07\x02\x78\x56\x34\x12\x04\x00\x00\x00\x05\x03"


def test_literal_vmm():
    """A VMM worked out by hand: ideal and leaky rectification, ADC saturation and rounding."""
    config = CrossbarConfig()
    layout = Layout(config)
    engine = GoldenEngine(config)
    x = np.zeros(64, dtype=np.int64)
    x[0], x[1] = 1000, -7
    out = run(
        engine,
        encode_command(layout, Opcode.WRITE_CELL, row=0, col=0, level=16383),
        encode_command(layout, Opcode.WRITE_CELL, row=1, col=1, level=2),
        encode_command(layout, Opcode.LOAD_INPUT, x=x),
    )
    assert out == b"\x10\x00\x10\x00\x20\x00"

    def vmm(*columns, width=None):
        return b"\x21\x00" + output_bytes(config, [*columns] + [0] * (64 - len(columns)), width)

    assert run(engine, b"\x21") == vmm(16383000, 0)  # ideal: x[1] < 0 adds nothing
    assert vmm(16383000, 0)[2:8] == b"\x18\xfc\xf9\x00\x00\x00"
    assert run(engine, b"\x31\x00\x21") == b"\x31\x00" + vmm(16383000, -14)
    assert vmm(0, -14)[8:14] == b"\xf2\xff\xff\xff\xff\xff"
    assert run(engine, b"\x31\x02\x21") == b"\x31\x00" + vmm(16383000, -4)  # floor(-3.5)
    # Saturated to 8 bits, in one byte each (SET_ADC answers the width); 16 bits in two.
    assert run(engine, b"\x30\x08\x00\x21") == b"\x30\x00\x01" + vmm(127, -4, width=1)
    assert vmm(127, -4, width=1)[2:5] == b"\x7f\xfc\x00"
    assert run(engine, b"\x30\x10\x00\x21")[:9] == b"\x30\x00\x02\x21\x00\xff\x7f\xfc\xff"
    # round(16383000 / 8) = 2047875, round(-4 / 8) = -1 (half away from zero)
    assert run(engine, b"\x30\x00\x03\x21") == b"\x30\x00\x06" + vmm(2047875, -1)
    assert run(engine, b"\x30\x02\x03\x21") == b"\x30\x00\x01" + vmm(1, -1, width=1)
    batch = encode_command(layout, Opcode.RUN_BATCH, count=2, x=np.array([x, -x]))
    # -x: (-1000 * 16383) >> 2 = -4095750 in column 0, 7 * 2 = 14 in column 1.
    expected = b"\x22" + vmm(16383000, -4)[1:] + b"\x22" + vmm(-4095750, 14)[1:]
    assert run(engine, b"\x30\x00\x00", batch) == b"\x30\x00\x06" + expected


def test_every_command_once():
    for name in ("ideal14", "ru_azo_2024", "8x8-lanes1"):
        config = STREAM_CONFIGS[name]
        layout = Layout(config)
        rng = np.random.default_rng(11)
        maker = CommandMaker(rng, config, p_bad=0.0)
        commands = maker.stream(0)
        for opcode in Opcode:
            fields = maker.fields(opcode)
            if opcode is Opcode.RUN_BATCH:
                fields = {"count": 1, "x": maker.codes(config.rows)[None]}
            commands.append(Command(opcode, fields, encode_command(layout, opcode, **fields)))
        commands.append(Command(Opcode.STATUS, {}, b"\x02"))
        expected = expected_responses(config, commands)
        for command, response in zip(commands, expected, strict=True):
            assert response[:2] == bytes([command.opcode, 0]), name
            assert len(response) == layout.response_length(Opcode(command.opcode)), name
        engine = GoldenEngine(config)
        assert_same_responses(run(engine, *(c.data for c in commands)), expected, commands, name)


def test_vmm_after_reset_uses_zero_input():
    config = STREAM_CONFIGS["8x8-lanes8"]
    engine = GoldenEngine(config)
    rng = np.random.default_rng(12)
    rows = [
        encode_command(engine.layout, Opcode.WRITE_ROW, row=r, levels=rng.integers(0, 1024, 8))
        for r in range(8)
    ]
    out = run(engine, *rows, b"\x21\x02")
    vmm = engine.layout.response_length(Opcode.RUN_VMM)
    assert out[:16] == b"\x11\x00" * 8
    assert out[16 : 16 + vmm] == b"\x21\x00" + bytes(8 * engine.layout.output_width)
    assert out[16 + vmm + 24 : -2] == b"\x01\x00\x00\x00"  # read noise on: one counter


# Errors -------------------------------------------------------------------------------------------


def error_cases() -> dict[tuple[Opcode, Status], list[bytes]]:
    """Commands that must be answered with each documented error, in ``ERROR_CONFIG``."""
    c = ERROR_CONFIG
    layout = Layout(c)

    def cmd(opcode, **fields):
        return encode_command(layout, opcode, **fields)

    good_x = np.arange(c.rows) - 4
    bad_hi, bad_lo = good_x.copy(), good_x.copy()
    bad_hi[3], bad_lo[7] = c.x_max + 1, c.x_min - 1
    levels = np.full(c.cols, 7)
    bad_levels = levels.copy()
    bad_levels[5] = c.levels
    scale = np.full(SIGMA_SEGMENTS, 4095)
    bad_scale = scale.copy()
    bad_scale[9] = 4096
    W, P, R = Opcode.WRITE_CELL, Opcode.PULSE_CELL, Opcode.READ_CELL
    return {
        (W, Status.BAD_ROW): [
            cmd(W, row=8, col=0, level=0),
            cmd(W, row=0xFFFF, col=8, level=0xFFFF),  # the first failing field is reported
        ],
        (W, Status.BAD_COL): [cmd(W, row=7, col=8, level=0), cmd(W, row=0, col=99, level=5000)],
        (W, Status.BAD_LEVEL): [
            cmd(W, row=7, col=7, level=3000),
            cmd(W, row=0, col=0, level=65535),
        ],
        (Opcode.WRITE_ROW, Status.BAD_ROW): [
            cmd(Opcode.WRITE_ROW, row=8, levels=levels),
            cmd(Opcode.WRITE_ROW, row=300, levels=bad_levels),
        ],
        (Opcode.WRITE_ROW, Status.BAD_LEVEL): [cmd(Opcode.WRITE_ROW, row=7, levels=bad_levels)],
        (P, Status.BAD_ROW): [cmd(P, row=8, col=9, count=c.pulse_max + 1)],
        (P, Status.BAD_COL): [cmd(P, row=0, col=8, count=c.pulse_min - 1)],
        (P, Status.BAD_COUNT): [
            cmd(P, row=0, col=0, count=c.pulse_max + 1),
            cmd(P, row=7, col=7, count=c.pulse_min - 1),
            cmd(P, row=1, col=1, count=-32768),
        ],
        (Opcode.UPDATE_RANK1, Status.BAD_INPUT): [
            cmd(Opcode.UPDATE_RANK1, a=bad_hi, b=good_x),
            cmd(Opcode.UPDATE_RANK1, a=good_x, b=bad_lo),
        ],
        (R, Status.BAD_ROW): [cmd(R, row=8, col=0), cmd(R, row=8, col=8)],
        (R, Status.BAD_COL): [cmd(R, row=0, col=8)],
        (Opcode.READ_ROW, Status.BAD_ROW): [cmd(Opcode.READ_ROW, row=8)],
        (Opcode.LOAD_INPUT, Status.BAD_INPUT): [
            cmd(Opcode.LOAD_INPUT, x=bad_hi),
            cmd(Opcode.LOAD_INPUT, x=bad_lo),
        ],
        (Opcode.RUN_BATCH, Status.BAD_COUNT): [b"\x22\x00\x00"],
        (Opcode.RUN_BATCH, Status.BAD_INPUT): [
            cmd(Opcode.RUN_BATCH, count=1, x=bad_hi[None]),
            cmd(Opcode.RUN_BATCH, count=1, x=bad_lo[None]),
            cmd(Opcode.RUN_BATCH, count=2, x=np.array([bad_lo, bad_hi])),
        ],
        (Opcode.SET_ADC, Status.BAD_VALUE): [b"\x30\x01\x00", b"\x30\x40\x00", b"\x30\xff\xff"],
        (Opcode.SET_ADC, Status.BAD_SHIFT): [b"\x30\x00\x40", b"\x30\x3f\xff", b"\x30\x08\x80"],
        (Opcode.SET_RECT, Status.BAD_SHIFT): [b"\x31\x40", b"\x31\xfe", b"\x31\x80"],
        (Opcode.SET_UPDATE_SHIFT, Status.BAD_SHIFT): [b"\x32\x40", b"\x32\xff"],
        (Opcode.SET_NOISE, Status.BAD_VALUE): [b"\x33\x04", b"\x33\x07", b"\x33\x80", b"\x33\xff"],
        (Opcode.SET_SIGMA, Status.BAD_VALUE): [
            cmd(Opcode.SET_SIGMA, table=2, scale=scale),
            cmd(Opcode.SET_SIGMA, table=0, scale=bad_scale),
            cmd(Opcode.SET_SIGMA, table=1, scale=bad_scale),
            cmd(Opcode.SET_SIGMA, table=255, scale=np.full(SIGMA_SEGMENTS, 0xFFFF)),
        ],
    }


def prepared_engine(config: CrossbarConfig = ERROR_CONFIG) -> GoldenEngine:
    """An engine whose levels, input vector, registers, tables and counter are not at reset."""
    engine = GoldenEngine(config)
    layout = engine.layout
    rng = np.random.default_rng(13)
    rows = [
        encode_command(layout, Opcode.WRITE_ROW, row=r, levels=rng.integers(0, config.levels, 8))
        for r in range(config.rows)
    ]
    x = rng.integers(config.x_min, config.x_max, config.rows, endpoint=True)
    run(
        engine,
        *rows,
        encode_command(layout, Opcode.LOAD_INPUT, x=x),
        encode_command(layout, Opcode.SET_SIGMA, table=0, scale=rng.integers(0, 4096, 16)),
        encode_command(layout, Opcode.SET_SIGMA, table=1, scale=rng.integers(0, 4096, 16)),
        b"\x30\x10\x02\x31\x03\x32\x05\x35\x01\x02\x03\x04\x21\x21",
    )
    return engine


def probe(engine: GoldenEngine) -> bytes:
    """Commands whose answers depend on every piece of state, tables and input included."""
    c, layout = engine.config, engine.layout
    x = np.linspace(c.x_min, c.x_max, c.rows).astype(np.int64)
    a = np.arange(c.rows) % 5 - 2
    b = np.arange(c.cols) % 7 - 3
    return run(
        engine,
        b"\x21",
        encode_command(layout, Opcode.RUN_BATCH, count=2, x=np.array([x, -x])),
        encode_command(layout, Opcode.WRITE_CELL, row=1, col=2, level=c.g_max // 2),
        encode_command(layout, Opcode.WRITE_ROW, row=3, levels=np.arange(c.cols) * 5),
        encode_command(layout, Opcode.UPDATE_RANK1, a=a, b=b),
        encode_command(layout, Opcode.PULSE_CELL, row=4, col=4, count=-9),
        *(encode_command(layout, Opcode.READ_ROW, row=r) for r in range(c.rows)),
        b"\x02",
    )


def test_every_documented_error_is_reachable():
    cases = error_cases()
    documented = {(spec.opcode, s) for spec in COMMANDS.values() for s in spec.errors}
    assert set(cases) == documented
    produced = {status for _, status in cases} | {Status.OK, Status.UNKNOWN_OPCODE}
    assert produced == set(Status)


def error_params():
    for opcode, status in error_cases():
        yield pytest.param(opcode, status, id=f"{opcode.name}-{status.name}")


@pytest.mark.parametrize(("opcode", "status"), list(error_params()))
def test_error_changes_nothing(opcode, status):
    untouched = prepared_engine()
    expected_probe = probe(untouched)
    for data in error_cases()[(opcode, status)]:
        engine = prepared_engine()
        before = snapshot(engine)
        answer = bytes([opcode, status])
        if opcode is Opcode.RUN_BATCH and data[1] == 2:
            answer *= 2
        assert run(engine, data) == answer, data.hex()
        assert snapshot(engine) == before, data.hex()
        assert probe(engine) == expected_probe, data.hex()


def test_boundaries():
    """The documented limits of every field: the last valid value is taken, the next rejected,
    and the registers (STATUS) hold what was taken."""
    c = ERROR_CONFIG
    layout = Layout(c)
    x_lo, x_hi = np.full(c.rows, c.x_min), np.full(c.cols, c.x_max)
    x_over, x_under = x_lo.copy(), x_hi.copy()
    x_over[1], x_under[2] = c.x_max + 1, c.x_min - 1
    scale = np.full(SIGMA_SEGMENTS, 4095)
    scale_over = scale.copy()
    scale_over[15] = 4096
    accepted = [
        (Opcode.WRITE_CELL, {"row": c.rows - 1, "col": c.cols - 1, "level": c.g_max}),
        (Opcode.WRITE_ROW, {"row": c.rows - 1, "levels": np.full(c.cols, c.g_max)}),
        (Opcode.PULSE_CELL, {"row": 0, "col": 0, "count": c.pulse_max}),
        (Opcode.PULSE_CELL, {"row": 0, "col": 0, "count": c.pulse_min}),
        (Opcode.READ_CELL, {"row": c.rows - 1, "col": c.cols - 1}),
        (Opcode.READ_ROW, {"row": c.rows - 1}),
        (Opcode.UPDATE_RANK1, {"a": x_lo, "b": x_hi}),
        (Opcode.LOAD_INPUT, {"x": x_lo}),
        (Opcode.RUN_BATCH, {"count": 2, "x": np.array([x_lo, x_hi])}),
        (Opcode.SET_SIGMA, {"table": 1, "scale": scale}),
        (Opcode.SET_SIGMA, {"table": 0, "scale": scale}),
        (Opcode.SEED, {"seed": 2**32 - 1}),
    ]
    rejected = [
        (Opcode.WRITE_CELL, {"row": c.rows, "col": 0, "level": 0}, Status.BAD_ROW),
        (Opcode.WRITE_CELL, {"row": 0, "col": c.cols, "level": 0}, Status.BAD_COL),
        (Opcode.WRITE_CELL, {"row": 0, "col": 0, "level": c.levels}, Status.BAD_LEVEL),
        (Opcode.PULSE_CELL, {"row": 0, "col": 0, "count": c.pulse_max + 1}, Status.BAD_COUNT),
        (Opcode.PULSE_CELL, {"row": 0, "col": 0, "count": c.pulse_min - 1}, Status.BAD_COUNT),
        (Opcode.UPDATE_RANK1, {"a": x_over, "b": x_hi}, Status.BAD_INPUT),
        (Opcode.UPDATE_RANK1, {"a": x_lo, "b": x_under}, Status.BAD_INPUT),
        (Opcode.SET_SIGMA, {"table": 2, "scale": scale}, Status.BAD_VALUE),
        (Opcode.SET_SIGMA, {"table": 0, "scale": scale_over}, Status.BAD_VALUE),
    ]
    commands = [Command(op, f, encode_command(layout, op, **f)) for op, f in accepted]
    commands += [Command(op, f, encode_command(layout, op, **f)) for op, f, _ in rejected]
    registers = [
        (b"\x30\x00\x00", Status.OK, 0, 0),
        (b"\x30\x02\x3f", Status.OK, 2, 63),
        (b"\x30\x3f\x00", Status.OK, 63, 0),
        (b"\x30\x01\x00", Status.BAD_VALUE, 63, 0),
        (b"\x30\x40\x00", Status.BAD_VALUE, 63, 0),
        (b"\x30\x05\x40", Status.BAD_SHIFT, 63, 0),
        (b"\x31\x00", Status.OK, 0),
        (b"\x31\x3f", Status.OK, 63),
        (b"\x31\xff", Status.OK, 0xFF),
        (b"\x31\x40", Status.BAD_SHIFT, 0xFF),
        (b"\x31\xfe", Status.BAD_SHIFT, 0xFF),
        (b"\x32\x3f", Status.OK, 63),
        (b"\x32\x00", Status.OK, 0),
        (b"\x32\x40", Status.BAD_SHIFT, 0),
        (b"\x33\x03", Status.OK, 3),
        (b"\x33\x00", Status.OK, 0),
        (b"\x33\x02", Status.OK, 2),
        (b"\x33\x01", Status.OK, 1),
        (b"\x33\x04", Status.BAD_VALUE, 1),
    ]
    status_offset = {0x30: 15, 0x31: 17, 0x32: 18, 0x33: 19}
    engine = GoldenEngine(c)
    reference = Reference(c)
    for data, status, *register in registers:
        out = run(engine, data, b"\x02")
        assert out[:2] == bytes([data[0], status]), data.hex()
        command = Command(data[0], dict(zip(("bits", "shift"), data[1:], strict=False)), data)
        if data[0] != 0x30:
            name = {0x31: "shift", 0x32: "shift", 0x33: "flags"}[data[0]]
            command.fields = {name: data[1]}
        answer = reference.respond(command)  # SET_ADC's OK answer has the output width
        assert out[: len(answer)] == answer
        start = len(answer) + status_offset[data[0]]
        assert out[start : start + len(register)] == bytes(register), data.hex()
    expected = [reference.respond(command) for command in commands]
    for response, (_, _, status) in zip(expected[len(accepted) :], rejected, strict=True):
        assert response[1] == status
    for response in expected[: len(accepted)]:
        assert response[1] == Status.OK
    out = run(engine, *(command.data for command in commands))
    assert_same_responses(out, expected, commands, "boundaries")


def test_unknown_opcodes():
    engine = prepared_engine()
    before = snapshot(engine)
    data = bytes(UNKNOWN_BYTES)
    assert len(UNKNOWN_BYTES) == 256 - len(Opcode)
    expected = b"".join(bytes([b, Status.UNKNOWN_OPCODE]) for b in UNKNOWN_BYTES)
    assert run(engine, data) == expected
    assert snapshot(engine) == before
    # Only the opcode byte is consumed: what follows is the next command.
    assert run(engine, b"\x00\x01\x07\xff\x02"[:3]) == b"\x00\x01\x01\x00\x07"
    assert run(engine, b"\xff\x01\xff") == b"\xff\x01\x01\x00\xff"


# Randomized streams -------------------------------------------------------------------------------


STREAM_CASES = [(name, seed) for name in STREAM_CONFIGS for seed in (1, 2)]


@pytest.mark.parametrize(("name", "seed"), STREAM_CASES)
def test_random_stream(name, seed):
    config = STREAM_CONFIGS[name]
    rng = np.random.default_rng(seed)
    length = 250 if config.rows * config.cols > 1000 else 400
    commands = CommandMaker(rng, config).stream(length)
    expected = expected_responses(config, commands)
    engine = GoldenEngine(config)
    actual = engine.execute(b"".join(c.data for c in commands))
    message = f"config {name}, seed {seed}"
    assert_same_responses(actual, expected, commands, message)
    assert engine.idle, message
    assert_documented_statuses(Layout(config), actual, message)
    # Both outcomes of the commands were exercised.
    statuses = {r[1] for r in expected}
    assert Status.OK in statuses and len(statuses) > 3, f"{message}: {statuses}"


def test_random_stream_with_rejected_only_batches():
    config = STREAM_CONFIGS["8x8-lanes1"]
    seed = 5
    maker = CommandMaker(np.random.default_rng(seed), config, rejected_vectors="any")
    commands = maker.stream(150)
    x = np.full((2, config.rows), config.x_max + 1)
    data = encode_command(maker.layout, Opcode.RUN_BATCH, count=2, x=x)
    commands.insert(len(commands) // 2, Command(Opcode.RUN_BATCH, {"count": 2, "x": x}, data))
    expected = expected_responses(config, commands)
    engine = GoldenEngine(config)
    actual = engine.execute(b"".join(c.data for c in commands))
    assert_same_responses(actual, expected, commands, f"seed {seed}")
    assert engine.idle


def test_batch_of_only_rejected_vectors():
    config = ERROR_CONFIG
    layout = Layout(config)
    bad = np.full(config.rows, config.x_min - 1)
    good = np.zeros(config.rows, dtype=np.int64)
    engine = GoldenEngine(config)
    assert run(engine, encode_command(layout, Opcode.RUN_BATCH, count=1, x=bad[None])) == (
        b"\x22\x06"
    )
    # A mixed batch fed vector by vector: the rejected vector arrives on its own.
    data = encode_command(layout, Opcode.RUN_BATCH, count=2, x=np.array([good, bad]))
    vector = config.rows * layout.input_bytes
    assert engine.execute(data[: 3 + vector])[:2] == b"\x22\x00"
    assert engine.execute(data[3 + vector :]) == b"\x22\x06"
    assert engine.idle


def test_streams_cover_every_status():
    """The small random streams between them produce every status."""
    seen = set()
    for name in ("8x8-lanes1", "16x48"):
        config = STREAM_CONFIGS[name]
        commands = CommandMaker(np.random.default_rng(3), config, p_bad=0.3).stream(300)
        responses = run(GoldenEngine(config), *(c.data for c in commands))
        seen |= {response.status for response in decode_responses(Layout(config), responses)}
    assert seen == set(Status)


# Chunking -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "seed", "rejected"),
    [
        ("8x8-lanes1", 21, "none"),
        ("16x48", 22, "none"),
        ("ru_azo_2024", 23, "none"),
        ("8x8-lanes1", 24, "mixed"),
    ],
)
def test_chunking(name, seed, rejected):
    config = STREAM_CONFIGS[name]
    rng = np.random.default_rng(seed)
    length = 60 if name == "ru_azo_2024" else 200
    commands = CommandMaker(rng, config, rejected_vectors=rejected).stream(length)
    expected = expected_responses(config, commands)
    stream = b"".join(c.data for c in commands)
    full = b"".join(expected)
    message = f"config {name}, seed {seed}"

    whole = GoldenEngine(config)
    assert whole.execute(stream) == full, message
    assert whole.idle

    # Byte by byte: idle exactly at command boundaries, every response as soon as it is due.
    boundaries = {}
    offset, answered = 0, 0
    for index, command in enumerate(commands):
        offset += len(command.data)
        answered += len(expected[index])
        boundaries[offset] = answered
    engine = GoldenEngine(config)
    assert engine.idle
    got = bytearray()
    for position in range(len(stream)):
        out = engine.execute(stream[position : position + 1])
        assert out == full[len(got) : len(got) + len(out)], f"{message}, byte {position}"
        got += out
        end = position + 1
        assert engine.idle == (end in boundaries), f"{message}, byte {position}"
        if end in boundaries:
            assert len(got) == boundaries[end], f"{message}, byte {position}"
    assert bytes(got) == full

    # Random splits, including empty pieces.
    for split_seed in range(3):
        split_rng = np.random.default_rng(1000 * seed + split_seed)
        cuts = np.sort(split_rng.integers(0, len(stream), size=len(stream) // 40))
        pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        engine = GoldenEngine(config)
        got = b"".join(engine.execute(piece) for piece in pieces)
        assert got == full, f"{message}, split seed {1000 * seed + split_seed}"
        assert engine.idle


def test_idle_during_batch():
    config = STREAM_CONFIGS["8x8-lanes1"]
    layout = Layout(config)
    engine = GoldenEngine(config)
    assert engine.idle
    x = np.arange(24).reshape(3, 8) - 12
    data = encode_command(layout, Opcode.RUN_BATCH, count=3, x=x)
    vector = layout.command_length(Opcode.RUN_BATCH) - layout.header_length(Opcode.RUN_BATCH)
    assert engine.execute(data[:1]) == b"" and not engine.idle
    assert engine.execute(data[1:3]) == b"" and not engine.idle  # header read, batch open
    assert engine.execute(data[3 : 3 + vector]) == encode_response(
        layout, Opcode.RUN_BATCH, y=np.zeros(8, dtype=np.int64)
    )
    assert not engine.idle
    assert engine.execute(data[3 + vector : -1]) != b"" and not engine.idle
    assert engine.execute(data[-1:]) != b"" and engine.idle
    # Bytes after a batch are commands again, not vectors.
    assert engine.execute(b"\x01\x22") == b"\x01\x00\x22" and engine.idle


# RUN_BATCH ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("noise", [False, True])
def test_batch_equals_vector_by_vector(noise):
    config = preset("ru_azo_2024", x_bits=12, read_noise=noise, write_noise=noise)
    layout = Layout(config)
    seed = 31 + noise
    rng = np.random.default_rng(seed)
    maker = CommandMaker(rng, config, p_bad=0.3)
    setup = maker.stream(0)
    settings = b"\x31\x03\x30\x18\x02\x35\x44\x33\x22\x11"  # leakage, ADC, seed
    x = np.array([maker.codes(config.rows) for _ in range(60)])
    valid = np.all((x >= config.x_min) & (x <= config.x_max), axis=1)
    assert 0 < valid.sum() < len(valid), f"seed {seed}"

    batched = GoldenEngine(config)
    run(batched, *(c.data for c in setup), settings)
    out = run(batched, encode_command(layout, Opcode.RUN_BATCH, count=len(x), x=x), b"\x02")

    single = GoldenEngine(config)
    run(single, *(c.data for c in setup), settings)
    expected = b""
    for vector, ok in zip(x, valid, strict=True):
        load = run(single, encode_command(layout, Opcode.LOAD_INPUT, x=vector))
        if ok:
            assert load == b"\x20\x00"
            vmm = run(single, b"\x21")
            assert vmm[:2] == b"\x21\x00"
            expected += b"\x22" + vmm[1:]
        else:
            assert load == b"\x20\x06"
            expected += b"\x22\x06"
    status = run(single, b"\x02")
    assert out == expected + status, f"seed {seed}"
    counter = int.from_bytes(status[-6:-2], "little")  # (output_bytes, hardware after it)
    assert counter == (int(valid.sum()) if noise else 0), f"seed {seed}"


def test_batch_count_zero():
    config = STREAM_CONFIGS["8x8-lanes8"]
    engine = GoldenEngine(config)
    before = snapshot(engine)
    assert engine.execute(b"\x22\x00\x00") == b"\x22\x05"
    assert engine.idle
    # No vectors follow: the next byte is a command.
    assert engine.execute(b"\x01\x77") == b"\x01\x00\x77"
    assert engine.execute(b"\x22\x00") == b"" and not engine.idle
    assert engine.execute(b"\x00\x01\x78") == b"\x22\x05\x01\x00\x78" and engine.idle
    assert snapshot(engine) == before


def test_batch_rejected_vectors_take_no_counter():
    config = ERROR_CONFIG
    layout = Layout(config)
    engine = GoldenEngine(config)
    good = np.full(config.rows, 5)
    bad = good.copy()
    bad[0] = config.x_max + 1
    x = np.array([bad, good, bad, bad, good, bad])
    out = run(engine, encode_command(layout, Opcode.RUN_BATCH, count=6, x=x), b"\x02")
    reference = Crossbar(config)
    y = reference.vmm_batch(np.array([good, good]))
    expected = b"\x22\x06" + encode_response(layout, Opcode.RUN_BATCH, y=y[0]) + b"\x22\x06" * 2
    expected += encode_response(layout, Opcode.RUN_BATCH, y=y[1]) + b"\x22\x06"
    assert out[: len(expected)] == expected
    assert out[-6:-2] == b"\x02\x00\x00\x00"  # the counter


# LOAD_INPUT ---------------------------------------------------------------------------------------


def test_bad_load_input_keeps_previous_vector():
    config = CrossbarConfig(rows=4, cols=3, lanes=1, g_bits=8, x_bits=12)
    layout = Layout(config)
    g = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 255]]
    engine = GoldenEngine(config)
    run(engine, *(encode_command(layout, Opcode.WRITE_ROW, row=r, levels=g[r]) for r in range(4)))

    def vmm(x):  # ideal rectification: negative inputs add nothing
        return b"\x21\x00" + output_bytes(
            config, [sum(max(x[i], 0) * g[i][j] for i in range(4)) for j in range(3)]
        )

    x1 = [2047, 3, -2048, 1]
    assert run(engine, encode_command(layout, Opcode.LOAD_INPUT, x=x1), b"\x21") == (
        b"\x20\x00" + vmm(x1)
    )
    for bad in ([2048, 0, 0, 0], [0, 0, 0, -2049], [5, 5, 5, 32767]):
        out = run(engine, encode_command(layout, Opcode.LOAD_INPUT, x=bad), b"\x21")
        assert out == b"\x20\x06" + vmm(x1), bad
        assert vmm(x1) != vmm([min(v, 2047) for v in bad])
    x2 = [0, 0, 9, 0]
    assert run(engine, encode_command(layout, Opcode.LOAD_INPUT, x=x2), b"\x21") == (
        b"\x20\x00" + vmm(x2)
    )


# Saturation ---------------------------------------------------------------------------------------


def test_pulse_saturation():
    config = CrossbarConfig(rows=2, cols=2, lanes=1, g_bits=12, levels=3000, x_bits=8)
    layout = Layout(config)
    engine = GoldenEngine(config)
    assert (config.pulse_min, config.pulse_max) == (-4096, 4095)

    def pulse(row, col, count):
        return encode_command(layout, Opcode.PULSE_CELL, row=row, col=col, count=count)

    def read(row, col, level):
        assert run(engine, encode_command(layout, Opcode.READ_CELL, row=row, col=col)) == (
            b"\x14\x00" + level.to_bytes(2, "little")
        )

    run(engine, encode_command(layout, Opcode.WRITE_CELL, row=0, col=1, level=2990))
    for count, level in ((5, 2995), (20, 2999), (1, 2999), (4095, 2999), (-1, 2998)):
        assert run(engine, pulse(0, 1, count)) == b"\x12\x00"
        read(0, 1, level)
    for count, level in ((-4096, 0), (-1, 0), (7, 7), (-8, 0), (4095, 2999), (-4096, 0)):
        assert run(engine, pulse(0, 1, count)) == b"\x12\x00"
        read(0, 1, level)
    assert run(engine, pulse(1, 0, 4095)) == b"\x12\x00"
    read(1, 0, 2999)
    read(0, 0, 0)
    read(1, 1, 0)


def round_half_away(value: Fraction) -> int:
    magnitude = int(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def test_rank1_update_saturation_and_rounding():
    config = CrossbarConfig(rows=6, cols=5, lanes=1, g_bits=12, levels=3000, x_bits=8)
    layout = Layout(config)
    engine = GoldenEngine(config)
    start = 1500
    levels = [[start] * 5 for _ in range(6)]
    run(
        engine,
        *(encode_command(layout, Opcode.WRITE_ROW, row=r, levels=levels[r]) for r in range(6)),
    )

    def read_all():
        return run(engine, *(encode_command(layout, Opcode.READ_ROW, row=r) for r in range(6)))

    def expected_rows():
        return b"".join(b"\x15\x00" + level_bytes(config, row) for row in levels)

    def update(a, b, shift):
        out = run(
            engine, bytes([0x32, shift]), encode_command(layout, Opcode.UPDATE_RANK1, a=a, b=b)
        )
        assert out == b"\x32\x00\x13\x00"
        for i in range(6):
            for j in range(5):
                delta = round_half_away(Fraction(a[i] * b[j], 1 << shift))
                levels[i][j] = min(max(levels[i][j] + delta, 0), 2999)
        assert read_all() == expected_rows(), (a, b, shift)

    # Shift 0: the extremes saturate at both ends; small products do not.
    update([127, -128, 1, -1, 0, 127], [127, -128, 1, -1, 3], 0)
    assert {levels[0][0], levels[0][1], levels[1][0], levels[1][1]} == {0, 2999}
    # Ties are rounded away from zero: +-0.5 -> +-1, +-1.5 -> +-2, +-2.5 -> +-3.
    update([1, -1, 3, -3, 5, 0], [1, -1, 1, -1, 2], 1)
    update([3, -3, 5, -5, 1, 2], [1, 3, 5, -7, 1], 2)
    # Large shifts: nothing moves unless the product reaches half of 2**shift.
    update([127, -128, 127, -128, 1, 0], [127, -128, 64, -64, 1], 15)
    update([127, -128, 127, -128, 1, 0], [127, -128, 64, -64, 1], 63)
    # Repeated full-scale updates pin every cell at an end.
    for _ in range(3):
        update([127, -128, 127, -128, 127, -128], [127, 127, -128, -128, 127], 0)
    assert all(v in (0, 2999) for row in levels for v in row)


def test_without_noise_hardware_the_noise_stays_off():
    """``noise_hardware=False``: SET_NOISE with a flag set is refused and changes nothing;
    the noise flags of STATUS stay 0; SET_NOISE 0, SET_SIGMA and SEED still answer OK."""
    config = CrossbarConfig(rows=4, cols=4, lanes=2, noise_hardware=False)
    layout = Layout(config)
    engine = GoldenEngine(config)
    for flags in (NOISE_READ, NOISE_WRITE, NOISE_READ | NOISE_WRITE):
        answer = engine.execute(encode_command(layout, Opcode.SET_NOISE, flags=flags))
        assert answer == bytes([Opcode.SET_NOISE, Status.BAD_VALUE])
    ok = [
        encode_command(layout, Opcode.SET_NOISE, flags=0),
        encode_command(layout, Opcode.SET_SIGMA, table=TABLE_READ, scale=[1] * SIGMA_SEGMENTS),
        encode_command(layout, Opcode.SEED, seed=7),
    ]
    for command in ok:
        assert engine.execute(command)[1] == Status.OK
    status, _ = decode_response(layout, engine.execute(encode_command(layout, Opcode.STATUS)))
    assert status.fields["noise"] == 0
    with pytest.raises(ValueError, match="read = True needs a config with noise_hardware"):
        engine.crossbar.set_noise(read=True)
    with pytest.raises(ValueError, match="write_noise = True needs noise_hardware = True"):
        config.replace(write_noise=True)
