"""The command protocol: opcodes, statuses, field widths, encoding and the generated document.

The expected bytes are built here from the documented rules (little-endian, two's complement,
the width rules of ``docs/protocol.md``) with ``int.to_bytes``, never with the module's own
packer. Random values come from ``np.random.default_rng(seed)``; failures print the seed.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from molxbar.emulator.config import MAX_ADC_BITS, SIGMA_SEGMENTS, CrossbarConfig, preset
from molxbar.host.driver import CrossbarDriver
from molxbar.host.transports import GoldenTransport
from molxbar.protocol.docgen import impossible_statuses, protocol_markdown
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import (
    COMMANDS,
    HARDWARE_LEAKAGE,
    HARDWARE_NOISE,
    PROTOCOL_VERSION,
    STATUS_TEXT,
    FieldKind,
    Layout,
    Opcode,
    Response,
    Status,
    decode_command_fields,
    decode_response,
    encode_command,
    encode_response,
    header_fields,
)

ROOT = Path(__file__).resolve().parents[2]

CONFIGS = {
    "ideal14": CrossbarConfig(),
    "ru_azo_2024": preset("ru_azo_2024"),
    "small": CrossbarConfig(rows=8, cols=8, g_bits=8, x_bits=8, lanes=2),
    "odd": CrossbarConfig(rows=3, cols=5, g_bits=17, x_bits=20, lanes=5),
    "wide": CrossbarConfig(rows=16, cols=2, g_bits=24, x_bits=24, lanes=1),
}

# The documented widths and signedness of each field kind, written out from docs/protocol.md.
SIGNED_KINDS = {FieldKind.PULSES, FieldKind.INPUT, FieldKind.OUTPUT}


def documented_width(c: CrossbarConfig, kind: FieldKind) -> int:
    return {
        FieldKind.U8: 1,
        FieldKind.U16: 2,
        FieldKind.U32: 4,
        FieldKind.ROW: 2,
        FieldKind.COL: 2,
        FieldKind.SIGMA: 2,
        FieldKind.LEVEL: math.ceil(c.g_bits / 8),
        FieldKind.PULSES: math.ceil((c.g_bits + 1) / 8),
        FieldKind.INPUT: math.ceil(c.x_bits / 8),
        FieldKind.OUTPUT: documented_output_width(c, c.adc_bits or 0),
    }[kind]


def documented_output_width(c: CrossbarConfig, adc_bits: int) -> int:
    """All the accumulator's bytes with the ADC off, else the bytes of an adc_bits output."""
    full = math.ceil(c.acc_fine_bits / 8)
    return full if adc_bits == 0 else min(full, math.ceil(adc_bits / 8))


def documented_count(c: CrossbarConfig, repeat) -> int:
    return {1: 1, "rows": c.rows, "cols": c.cols, "segments": SIGMA_SEGMENTS}[repeat]


def field_range(c: CrossbarConfig, kind: FieldKind) -> tuple[int, int]:
    """The values a field's bytes can hold."""
    bits = 8 * documented_width(c, kind)
    if kind in SIGNED_KINDS:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def random_value(rng: np.random.Generator, c: CrossbarConfig, field):
    """A random value over the whole encodable range, with the extremes sprinkled in."""
    low, high = field_range(c, field.kind)
    count = documented_count(c, field.repeat)
    values = [int(v) for v in rng.integers(low, high, size=count, endpoint=True)]
    for i in range(count):
        pick = rng.random()
        if pick < 0.1:
            values[i] = low
        elif pick < 0.2:
            values[i] = high
    return values[0] if field.repeat == 1 else np.array(values, dtype=np.int64)


def manual_bytes(c: CrossbarConfig, fields, values: dict) -> bytes:
    """The documented encoding, field by field, with ``int.to_bytes``."""
    out = b""
    for f in fields:
        width = documented_width(c, f.kind)
        items = [values[f.name]] if f.repeat == 1 else list(values[f.name])
        assert len(items) == documented_count(c, f.repeat)
        for v in items:
            out += int(v).to_bytes(width, "little", signed=f.kind in SIGNED_KINDS)
    return out


def assert_fields_equal(actual: dict, expected: dict, message: str) -> None:
    assert actual.keys() == expected.keys(), message
    for name, value in expected.items():
        if np.ndim(value) == 0:
            assert isinstance(actual[name], int), f"{message}: {name} is {type(actual[name])}"
            assert actual[name] == value, f"{message}: {name}"
        else:
            assert actual[name].dtype == np.int64, f"{message}: {name}"
            np.testing.assert_array_equal(actual[name], value, err_msg=f"{message}: {name}")


# Opcodes, statuses and command specs --------------------------------------------------------------


def test_every_opcode_has_a_spec():
    assert set(COMMANDS) == set(Opcode)
    for opcode, spec in COMMANDS.items():
        assert spec.opcode is opcode
        assert spec.doc
        names = [f.name for f in spec.fields]
        assert len(names) == len(set(names)), opcode
        names = [f.name for f in spec.response]
        assert len(names) == len(set(names)), opcode
        for f in spec.fields + spec.response:
            assert f.repeat in (1, "rows", "cols", "segments"), (opcode, f)
            assert f.doc


def test_opcodes_and_statuses_are_unique_bytes():
    # An enum silently turns a duplicate value into an alias: compare with __members__.
    for enum_type in (Opcode, Status):
        values = [int(member) for member in enum_type.__members__.values()]
        assert len(values) == len(set(values)), enum_type
        assert all(0 <= v <= 0xFF for v in values), enum_type
    assert Status.OK == 0


def test_status_texts_and_documented_errors():
    assert set(STATUS_TEXT) == set(Status)
    for spec in COMMANDS.values():
        assert len(set(spec.errors)) == len(spec.errors), spec.opcode
        assert Status.OK not in spec.errors and Status.UNKNOWN_OPCODE not in spec.errors
    documented = {s for spec in COMMANDS.values() for s in spec.errors}
    assert documented | {Status.OK, Status.UNKNOWN_OPCODE} == set(Status)


def test_header_fields():
    for opcode, spec in COMMANDS.items():
        expected = spec.fields[:1] if opcode is Opcode.RUN_BATCH else spec.fields
        assert header_fields(opcode) == expected
    assert [f.name for f in header_fields(Opcode.RUN_BATCH)] == ["count"]


# Layout -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # level, pulses, input, output bytes, written out.
        ("ideal14", (2, 2, 2, 6)),
        ("ru_azo_2024", (2, 2, 2, 6)),
        ("small", (1, 2, 1, 4)),
        ("odd", (3, 3, 3, 7)),
        ("wide", (3, 4, 3, 8)),
    ],
)
def test_layout_widths(name, expected):
    c = CONFIGS[name]
    layout = Layout(c)
    rules = (
        math.ceil(c.g_bits / 8),
        math.ceil((c.g_bits + 1) / 8),
        math.ceil(c.x_bits / 8),
        math.ceil(c.acc_fine_bits / 8),
    )
    assert rules == expected
    actual = (layout.level_bytes, layout.pulse_bytes, layout.input_bytes, layout.output_bytes)
    assert actual == expected
    for kind in FieldKind:
        assert layout.width(kind) == documented_width(c, kind), kind
        assert Layout.signed(kind) == (kind in SIGNED_KINDS), kind
    for spec in COMMANDS.values():
        for f in spec.fields + spec.response:
            assert layout.count(f) == documented_count(c, f.repeat)
            assert layout.size(f) == documented_count(c, f.repeat) * documented_width(c, f.kind)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_output_width_follows_the_adc_setting(name):
    c = CONFIGS[name]
    full = math.ceil(c.acc_fine_bits / 8)
    for bits in (0, *range(2, MAX_ADC_BITS + 1)):
        layout = Layout(c).at_adc(bits)
        assert layout.output_width == documented_output_width(c, bits), bits
        assert layout.output_bytes == full
        assert layout.response_length(Opcode.RUN_VMM) == 2 + c.cols * layout.output_width
    # SET_ADC's response reports the width; a reader of the responses follows it.
    engine = GoldenEngine(c)
    answer = engine.execute(encode_command(Layout(c), Opcode.SET_ADC, bits=16, shift=0))
    response, _ = decode_response(Layout(c), answer)
    assert response.fields == {"width": min(full, 2)}
    assert Layout(c).after(response) == engine.layout == Layout(c).at_adc(16)
    with pytest.raises(ValueError, match=rf"output_width = {full + 1} must be in \[1, {full}\]"):
        Layout(c, full + 1)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_layout_lengths(name):
    c = CONFIGS[name]
    layout = Layout(c)
    level = documented_width(c, FieldKind.LEVEL)
    pulses = documented_width(c, FieldKind.PULSES)
    x = documented_width(c, FieldKind.INPUT)
    y = documented_width(c, FieldKind.OUTPUT)
    commands = {
        Opcode.SYNC: (2, 3),
        Opcode.STATUS: (1, 30),
        Opcode.WRITE_CELL: (5 + level, 2),
        Opcode.WRITE_ROW: (3 + c.cols * level, 2),
        Opcode.PULSE_CELL: (5 + pulses, 2),
        Opcode.UPDATE_RANK1: (1 + (c.rows + c.cols) * x, 2),
        Opcode.READ_CELL: (5, 2 + level),
        Opcode.READ_ROW: (3, 2 + c.cols * level),
        Opcode.LOAD_INPUT: (1 + c.rows * x, 2),
        Opcode.RUN_VMM: (1, 2 + c.cols * y),
        Opcode.RUN_BATCH: (3 + c.rows * x, 2 + c.cols * y),
        Opcode.SET_ADC: (3, 3),
        Opcode.SET_RECT: (2, 2),
        Opcode.SET_UPDATE_SHIFT: (2, 2),
        Opcode.SET_NOISE: (2, 2),
        Opcode.SET_SIGMA: (2 + 2 * SIGMA_SEGMENTS, 2),
        Opcode.SEED: (5, 2),
    }
    assert set(commands) == set(Opcode)
    for opcode, (command, response) in commands.items():
        assert layout.command_length(opcode) == command, opcode
        assert layout.response_length(opcode) == response, opcode
        header = 3 if opcode is Opcode.RUN_BATCH else command
        assert layout.header_length(opcode) == header, opcode


# Valid ranges ---------------------------------------------------------------------------------


def documented_ranges(c: CrossbarConfig) -> dict:
    """The valid values and the rejecting status of every command field, from the field docs
    (``CommandSpec``) and ``docs/protocol.md``."""
    rows, cols = ((0, c.rows - 1),), ((0, c.cols - 1),)
    level = (((0, c.g_max),), Status.BAD_LEVEL)
    x = (((c.x_min, c.x_max),), Status.BAD_INPUT)
    return {
        (Opcode.SYNC, "value"): (((0, 255),), Status.OK),
        (Opcode.WRITE_CELL, "row"): (rows, Status.BAD_ROW),
        (Opcode.WRITE_CELL, "col"): (cols, Status.BAD_COL),
        (Opcode.WRITE_CELL, "level"): level,
        (Opcode.WRITE_ROW, "row"): (rows, Status.BAD_ROW),
        (Opcode.WRITE_ROW, "levels"): level,
        (Opcode.PULSE_CELL, "row"): (rows, Status.BAD_ROW),
        (Opcode.PULSE_CELL, "col"): (cols, Status.BAD_COL),
        (Opcode.PULSE_CELL, "count"): (
            ((-(1 << c.g_bits), (1 << c.g_bits) - 1),),
            Status.BAD_COUNT,
        ),
        (Opcode.UPDATE_RANK1, "a"): x,
        (Opcode.UPDATE_RANK1, "b"): x,
        (Opcode.READ_CELL, "row"): (rows, Status.BAD_ROW),
        (Opcode.READ_CELL, "col"): (cols, Status.BAD_COL),
        (Opcode.READ_ROW, "row"): (rows, Status.BAD_ROW),
        (Opcode.LOAD_INPUT, "x"): x,
        (Opcode.RUN_BATCH, "count"): (((1, 65535),), Status.BAD_COUNT),
        (Opcode.RUN_BATCH, "x"): x,
        (Opcode.SET_ADC, "bits"): (((0, 0), (2, 63)), Status.BAD_VALUE),
        (Opcode.SET_ADC, "shift"): (((0, 63),), Status.BAD_SHIFT),
        (Opcode.SET_RECT, "shift"): (((0, 63), (0xFF, 0xFF)), Status.BAD_SHIFT),
        (Opcode.SET_UPDATE_SHIFT, "shift"): (((0, 63),), Status.BAD_SHIFT),
        (Opcode.SET_NOISE, "flags"): (((0, 3),), Status.BAD_VALUE),
        (Opcode.SET_SIGMA, "table"): (((0, 1),), Status.BAD_VALUE),
        (Opcode.SET_SIGMA, "scale"): (((0, 4095),), Status.BAD_VALUE),
        (Opcode.SEED, "seed"): (((0, 2**32 - 1),), Status.OK),
    }


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_layout_check_ranges(name):
    c = CONFIGS[name]
    layout = Layout(c)
    expected = documented_ranges(c)
    fields = {(op, f.name): f for op, spec in COMMANDS.items() for f in spec.fields}
    assert set(expected) == set(fields)
    for (opcode, field_name), (ranges, status) in expected.items():
        f = fields[(opcode, field_name)]
        assert layout.check(opcode, f) == (ranges, status), (opcode, field_name)
        # A rejecting status is one the command documents; the ranges fit the field's bytes.
        assert status is Status.OK or status in COMMANDS[opcode].errors, (opcode, field_name)
        low, high = field_range(c, f.kind)
        assert all(low <= a <= b <= high for a, b in ranges), (opcode, field_name)
    # Every documented error is the rejection of some field.
    for opcode, spec in COMMANDS.items():
        statuses = {layout.check(opcode, f)[1] for f in spec.fields}
        assert set(spec.errors) <= statuses, opcode


def test_layout_validate_first_failing_field():
    c = CONFIGS["small"]  # 8x8, g_bits 8 (levels fill the byte), x_bits 8
    c = c.replace(levels=200, x_bits=7)
    layout = Layout(c)
    v = layout.validate
    W, P = Opcode.WRITE_CELL, Opcode.PULSE_CELL
    assert v(W, {"row": 7, "col": 7, "level": 199}) is Status.OK
    assert v(W, {"row": 8, "col": 8, "level": 200}) is Status.BAD_ROW
    assert v(W, {"row": 0, "col": 8, "level": 200}) is Status.BAD_COL
    assert v(W, {"row": 0, "col": 0, "level": 200}) is Status.BAD_LEVEL
    assert v(P, {"row": 0, "col": 0, "count": -256}) is Status.OK
    assert v(P, {"row": 0, "col": 0, "count": 256}) is Status.BAD_COUNT
    assert v(P, {"row": 0, "col": 9, "count": 256}) is Status.BAD_COL
    levels = np.full(8, 199)
    assert v(Opcode.WRITE_ROW, {"row": 7, "levels": levels}) is Status.OK
    levels[3] = 200
    assert v(Opcode.WRITE_ROW, {"row": 7, "levels": levels}) is Status.BAD_LEVEL
    assert v(Opcode.WRITE_ROW, {"row": 8, "levels": levels}) is Status.BAD_ROW
    x = np.full(8, -64)
    assert v(Opcode.UPDATE_RANK1, {"a": x, "b": x}) is Status.OK
    x[7] = 64
    assert v(Opcode.UPDATE_RANK1, {"a": np.zeros(8), "b": x}) is Status.BAD_INPUT
    assert v(Opcode.LOAD_INPUT, {"x": x}) is Status.BAD_INPUT
    assert v(Opcode.SET_ADC, {"bits": 1, "shift": 64}) is Status.BAD_VALUE
    assert v(Opcode.SET_ADC, {"bits": 63, "shift": 64}) is Status.BAD_SHIFT
    assert v(Opcode.SET_ADC, {"bits": 0, "shift": 63}) is Status.OK
    assert v(Opcode.SET_RECT, {"shift": 0xFF}) is Status.OK
    assert v(Opcode.SET_RECT, {"shift": 0xFE}) is Status.BAD_SHIFT
    assert v(Opcode.RUN_BATCH, {"count": 0}) is Status.BAD_COUNT
    assert v(Opcode.RUN_BATCH, {"count": 65535}) is Status.OK
    scale = np.full(16, 4095)
    assert v(Opcode.SET_SIGMA, {"table": 1, "scale": scale}) is Status.OK
    scale[0] = 4096
    assert v(Opcode.SET_SIGMA, {"table": 1, "scale": scale}) is Status.BAD_VALUE
    assert v(Opcode.SYNC, {"value": 255}) is Status.OK
    assert v(Opcode.STATUS, {}) is Status.OK
    assert v(Opcode.SEED, {"seed": 2**32 - 1}) is Status.OK


# Encoding and decoding ----------------------------------------------------------------------------


def test_pinned_command_bytes():
    layout = Layout(CrossbarConfig())
    assert encode_command(layout, Opcode.SYNC, value=0x5A) == b"\x01\x5a"
    assert encode_command(layout, Opcode.STATUS) == b"\x02"
    assert encode_command(layout, Opcode.WRITE_CELL, row=1, col=0x203, level=0x1234) == bytes(
        [0x10, 0x01, 0x00, 0x03, 0x02, 0x34, 0x12]
    )
    assert encode_command(layout, Opcode.PULSE_CELL, row=0, col=63, count=-2) == bytes(
        [0x12, 0x00, 0x00, 0x3F, 0x00, 0xFE, 0xFF]
    )
    assert encode_command(layout, Opcode.SEED, seed=0x01020304) == b"\x35\x04\x03\x02\x01"
    assert encode_command(layout, Opcode.SET_ADC, bits=8, shift=3) == b"\x30\x08\x03"
    x = np.zeros((2, 64), dtype=np.int64)
    x[0, 0], x[1, 63] = -32768, 32767
    batch = encode_command(layout, Opcode.RUN_BATCH, count=2, x=x)
    assert batch[:5] == b"\x22\x02\x00\x00\x80"
    assert batch[5 : 3 + 128] == bytes(126)
    assert batch[3 + 128 : -2] == bytes(126)
    assert batch[-2:] == b"\xff\x7f"
    sigma = encode_command(layout, Opcode.SET_SIGMA, table=1, scale=np.arange(16) * 257)
    assert sigma == b"\x34\x01" + b"".join(bytes([i, i]) for i in range(16))


def test_pinned_response_bytes():
    layout = Layout(CrossbarConfig())
    assert encode_response(layout, Opcode.SYNC, value=0x5A) == b"\x01\x00\x5a"
    assert encode_response(layout, Opcode.READ_CELL, level=0x1234) == b"\x14\x00\x34\x12"
    assert encode_response(layout, Opcode.WRITE_CELL) == b"\x10\x00"
    assert encode_response(layout, Opcode.WRITE_CELL, Status.BAD_ROW) == b"\x10\x02"
    # Error responses carry no fields, whatever is given.
    assert encode_response(layout, Opcode.READ_ROW, Status.BAD_ROW) == b"\x15\x02"
    y = np.zeros(64, dtype=np.int64)
    y[:4] = [-1, 2**47 - 1, -(2**47), 0x0102030405]
    out = encode_response(layout, Opcode.RUN_VMM, y=y)
    assert out[:2] == b"\x21\x00"
    assert out[2:26] == (
        b"\xff" * 6 + b"\xff\xff\xff\xff\xff\x7f" + b"\x00\x00\x00\x00\x00\x80"
        b"\x05\x04\x03\x02\x01\x00"
    )
    assert out[26:] == bytes(6 * 60)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_command_round_trip(name):
    c = CONFIGS[name]
    layout = Layout(c)
    seed = 1000 + sorted(CONFIGS).index(name)
    rng = np.random.default_rng(seed)
    for opcode, spec in COMMANDS.items():
        for trial in range(12):
            message = f"seed {seed}, {opcode.name}, trial {trial}"
            if opcode is Opcode.RUN_BATCH:
                count = int(rng.integers(1, 5))
                x = np.array([random_value(rng, c, spec.fields[1]) for _ in range(count)])
                data = encode_command(layout, opcode, count=count, x=x)
                expected = bytes([opcode]) + count.to_bytes(2, "little")
                for vector in x:
                    expected += manual_bytes(c, spec.fields[1:], {"x": vector})
                assert data == expected, message
                assert len(data) == layout.header_length(opcode) + count * (
                    layout.command_length(opcode) - layout.header_length(opcode)
                )
                assert decode_command_fields(layout, opcode, data, 1) == {"count": count}
                continue
            values = {f.name: random_value(rng, c, f) for f in spec.fields}
            data = encode_command(layout, opcode, **values)
            assert data == bytes([opcode]) + manual_bytes(c, spec.fields, values), message
            assert len(data) == layout.command_length(opcode), message
            # Decoding at an offset inside a longer buffer.
            padded = b"\xaa\xbb" + data + b"\xcc"
            decoded = decode_command_fields(layout, opcode, padded, 3)
            assert_fields_equal(decoded, values, message)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_signed_extremes_round_trip(name):
    c = CONFIGS[name]
    layout = Layout(c)
    for opcode, spec in COMMANDS.items():
        for fields, encode in ((spec.fields, "command"), (spec.response, "response")):
            signed = [f for f in fields if f.kind in SIGNED_KINDS]
            if not signed or opcode is Opcode.RUN_BATCH and encode == "command":
                continue
            for pick in (0, 1, "alternate"):
                values = {}
                for f in fields:
                    low, high = field_range(c, f.kind)
                    n = documented_count(c, f.repeat)
                    if pick == "alternate":
                        items = [(low, high)[i % 2] for i in range(n)]
                    else:
                        items = [(low, high)[pick]] * n
                    values[f.name] = items[0] if f.repeat == 1 else np.array(items)
                message = f"{opcode.name} {encode} {pick}"
                if encode == "command":
                    data = encode_command(layout, opcode, **values)
                    assert data[1:] == manual_bytes(c, fields, values), message
                    decoded = decode_command_fields(layout, opcode, data, 1)
                else:
                    data = encode_response(layout, opcode, **values)
                    assert data[2:] == manual_bytes(c, fields, values), message
                    response, end = decode_response(layout, data)
                    assert end == len(data)
                    decoded = response.fields
                assert_fields_equal(decoded, values, message)
    # RUN_BATCH vectors at the extremes.
    low, high = field_range(c, FieldKind.INPUT)
    x = np.array([[low] * c.rows, [high] * c.rows, [-1] * c.rows])
    data = encode_command(layout, Opcode.RUN_BATCH, count=3, x=x)
    width = documented_width(c, FieldKind.INPUT)
    body = data[3:]
    decoded = [
        int.from_bytes(body[i : i + width], "little", signed=True)
        for i in range(0, len(body), width)
    ]
    assert decoded == x.reshape(-1).tolist()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_response_round_trip(name):
    c = CONFIGS[name]
    layout = Layout(c)
    seed = 2000 + sorted(CONFIGS).index(name)
    rng = np.random.default_rng(seed)
    stream = b""
    expected: list[tuple[int, Status, dict]] = []
    for _ in range(6):
        for opcode, spec in COMMANDS.items():
            message = f"seed {seed}, {opcode.name}"
            values = {f.name: random_value(rng, c, f) for f in spec.response}
            data = encode_response(layout, opcode, **values)
            assert data == bytes([opcode, 0]) + manual_bytes(c, spec.response, values), message
            assert len(data) == layout.response_length(opcode), message
            response, end = decode_response(layout, data)
            assert end == len(data)
            assert response.opcode == opcode and response.status is Status.OK and response.ok
            assert_fields_equal(response.fields, values, message)
            stream += data
            expected.append((opcode, Status.OK, values))
            for status in spec.errors:
                stream += encode_response(layout, opcode, status)
                expected.append((opcode, status, {}))
        stream += b"\x99\x01"  # an unknown opcode's answer
        expected.append((0x99, Status.UNKNOWN_OPCODE, {}))
    # Decoding a whole stream response by response.
    offset = 0
    for opcode, status, values in expected:
        response, offset = decode_response(layout, stream, offset)
        assert isinstance(response, Response)
        assert (response.opcode, response.status) == (opcode, status), f"seed {seed}"
        assert response.ok == (status is Status.OK)
        assert_fields_equal(response.fields, values, f"seed {seed}, {opcode}")
    assert offset == len(stream)


def test_decode_truncated_response():
    for c in CONFIGS.values():
        layout = Layout(c)
        rng = np.random.default_rng(3)
        for opcode, spec in COMMANDS.items():
            values = {f.name: random_value(rng, c, f) for f in spec.response}
            data = encode_response(layout, opcode, **values)
            for cut in range(len(data)):
                with pytest.raises(ValueError, match=r"needs \d+ bytes"):
                    decode_response(layout, data[:cut])
                # The same at an offset.
                with pytest.raises(ValueError, match=r"needs \d+ bytes"):
                    decode_response(layout, b"\x01\x00\x07" + data[:cut], 3)


def test_decode_unknown_status_or_opcode():
    layout = Layout(CrossbarConfig())
    known = {int(s) for s in Status}
    for status in range(256):
        if status in known:
            continue
        with pytest.raises(ValueError, match=f"status byte {status:#04x} at offset 1"):
            decode_response(layout, bytes([Opcode.SYNC, status, 0]))
        with pytest.raises(ValueError, match=f"status byte {status:#04x} at offset 4"):
            decode_response(layout, bytes([0, 0, 0, Opcode.SYNC, status, 0]), 3)
    with pytest.raises(ValueError, match="unknown opcode 0x99"):
        decode_response(layout, b"\x99\x00\x00\x00")
    response, end = decode_response(layout, b"\x99\x01")
    assert (response.opcode, response.status, response.fields, end) == (
        0x99,
        Status.UNKNOWN_OPCODE,
        {},
        2,
    )


# Encoding errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_encode_value_out_of_range(name):
    c = CONFIGS[name]
    layout = Layout(c)
    rng = np.random.default_rng(4)
    for opcode, spec in COMMANDS.items():
        for which, fields in (("command", spec.fields), ("response", spec.response)):
            for f in fields:
                low, high = field_range(c, f.kind)
                for bad in (low - 1, high + 1):
                    values = {g.name: random_value(rng, c, g) for g in fields}
                    if f.repeat == 1:
                        values[f.name] = bad
                    else:
                        items = values[f.name].tolist()  # Python ints: bad may exceed int64
                        items[int(rng.integers(layout.count(f)))] = bad
                        values[f.name] = items
                    pattern = rf"^{f.name} = {bad} .*\[{low}, {high}\]"
                    with pytest.raises(ValueError, match=pattern):
                        if which == "response":
                            encode_response(layout, opcode, **values)
                        elif opcode is Opcode.RUN_BATCH:
                            x = values["x"]
                            x = np.array([x]) if f.name == "x" else np.zeros((1, c.rows), int)
                            count = values["count"] if f.name == "count" else 1
                            encode_command(layout, opcode, count=count, x=x)
                        else:
                            encode_command(layout, opcode, **values)


def test_encode_wrong_number_of_values():
    c = CONFIGS["small"]
    layout = Layout(c)
    rng = np.random.default_rng(5)
    for opcode, spec in COMMANDS.items():
        for which, fields in (("command", spec.fields), ("response", spec.response)):
            if which == "command" and opcode is Opcode.RUN_BATCH:
                continue
            for f in fields:
                n = layout.count(f)
                wrong = [[0] * (n - 1), [0] * (n + 1), [[0] * n]]
                if f.repeat != 1:
                    wrong.append(0)  # a scalar for a repeated field
                for bad in wrong:
                    values = {g.name: random_value(rng, c, g) for g in fields}
                    values[f.name] = bad
                    with pytest.raises(ValueError, match=rf"^{f.name} needs {n} value\(s\)"):
                        if which == "command":
                            encode_command(layout, opcode, **values)
                        else:
                            encode_response(layout, opcode, **values)
    # RUN_BATCH: x must be (count, rows).
    with pytest.raises(ValueError, match=r"x must be \(count, rows\)"):
        encode_command(layout, Opcode.RUN_BATCH, count=1, x=np.zeros(c.rows, dtype=int))
    with pytest.raises(ValueError, match=rf"^x needs {c.rows} value\(s\)"):
        encode_command(layout, Opcode.RUN_BATCH, count=1, x=np.zeros((1, c.rows + 1), int))


def test_encode_missing_or_unexpected_fields():
    layout = Layout(CONFIGS["small"])
    with pytest.raises(ValueError, match=r"missing: \['value'\]"):
        encode_command(layout, Opcode.SYNC)
    with pytest.raises(ValueError, match=r"missing: \['col'\]"):
        encode_command(layout, Opcode.WRITE_CELL, row=0, level=0)
    with pytest.raises(ValueError, match=r"unexpected: \['colour'\]"):
        encode_command(layout, Opcode.WRITE_CELL, row=0, col=0, level=0, colour=1)
    with pytest.raises(ValueError, match=r"unexpected: \['value'\]"):
        encode_command(layout, Opcode.STATUS, value=1)
    with pytest.raises(ValueError, match=r"missing: \['count'\]"):
        encode_command(layout, Opcode.RUN_BATCH, x=np.zeros((1, 8), dtype=int))
    with pytest.raises(ValueError, match=r"missing: \['level'\]"):
        encode_response(layout, Opcode.READ_CELL)
    with pytest.raises(ValueError, match=r"unexpected: \['y'\]"):
        encode_response(layout, Opcode.WRITE_CELL, y=1)
    with pytest.raises(ValueError, match=r"missing: \['seed'\]"):
        status = {f.name: 0 for f in COMMANDS[Opcode.STATUS].response if f.name != "seed"}
        encode_response(layout, Opcode.STATUS, **status)


def test_encode_run_batch_without_vectors():
    layout = Layout(CONFIGS["small"])
    with pytest.raises(ValueError, match="x"):
        encode_command(layout, Opcode.RUN_BATCH, count=1)


def test_encode_run_batch_count_mismatch():
    layout = Layout(CONFIGS["small"])
    with pytest.raises(ValueError, match="count"):
        encode_command(layout, Opcode.RUN_BATCH, count=3, x=np.zeros((1, 8), dtype=int))


def test_encode_huge_value():
    layout = Layout(CONFIGS["small"])
    with pytest.raises(ValueError, match=r"^seed = .*\[0, 4294967295\]"):
        encode_command(layout, Opcode.SEED, seed=2**70)


def test_encode_non_integer_value():
    layout = Layout(CONFIGS["small"])
    with pytest.raises((ValueError, TypeError), match="level"):
        encode_command(layout, Opcode.WRITE_CELL, row=0, col=0, level=1.5)


def test_encode_response_with_int_status():
    layout = Layout(CONFIGS["small"])
    assert encode_response(layout, Opcode.SYNC, 0, value=5) == b"\x01\x00\x05"


# The generated document ---------------------------------------------------------------------------


DOCGEN_HINT = (
    "docs/protocol.md is out of date: run `python -m molxbar.protocol.docgen > docs/protocol.md`"
)


def test_protocol_doc_is_up_to_date():
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert doc == protocol_markdown(), DOCGEN_HINT


def test_docgen_module_prints_the_doc():
    result = subprocess.run(
        [sys.executable, "-m", "molxbar.protocol.docgen"],
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    assert result.stdout.decode("utf-8") == protocol_markdown()


def test_doc_lists_every_command_and_status():
    doc = protocol_markdown()
    layout = Layout(CrossbarConfig())
    for s in Status:
        assert f"| `{s.value:#04x}` | `{s.name}` | {STATUS_TEXT[s]} |" in doc
    for spec in COMMANDS.values():
        assert re.search(rf"^### {spec.opcode.name}$", doc, re.MULTILINE), spec.opcode
        row = re.search(
            rf"^\| `{spec.opcode.value:#04x}` \| \[`{spec.opcode.name}`\].*$", doc, re.M
        )
        assert row, spec.opcode
        assert row.group(0).endswith(f"| {layout.response_length(spec.opcode)} |")
        errors = ", ".join(f"`{s.name}`" for s in spec.errors) or "none"
        section = doc.split(f"### {spec.opcode.name}\n", 1)[1].split("\n### ", 1)[0]
        assert f"Errors: {errors}." in section, spec.opcode
    assert "| `0x22` | [`RUN_BATCH`](#run_batch) | 3 + 128 per vector | 386 |" in doc


def _documented_output_bits(rows: int, g_bits: int, levels: int, x_bits: int) -> int:
    """``acc_fine_bits`` as docs/protocol.md writes it."""
    inner = rows * 2 ** (x_bits - 1) * ((levels - 1) * 2**10 + 131040)
    return inner.bit_length() + 1


def test_the_documented_output_width_is_the_engines(rng):
    """docs/protocol.md's formula against the golden engine's VMM response and STATUS, for
    a sweep of shapes (the width depends on ``levels`` and the exact row count)."""
    text = (ROOT / "docs" / "protocol.md").read_text()
    assert "`acc_fine_bits = bitlen(rows * 2^(x_bits-1) * (g_max * 2^10 + 131040)) + 1`" in text
    checked = 0
    row_counts = (*range(1, 18), 31, 32, 33, 63, 64, 65, 100, 128)
    for rows in row_counts:
        for g_bits in (4, 8, 14, 15, 20):
            levels = int(rng.integers(2, 2**g_bits + 1))
            for x_bits in (2, 8, 16):
                config = CrossbarConfig(
                    rows=rows, cols=2, lanes=1, g_bits=g_bits, levels=levels, x_bits=x_bits
                )
                bits = _documented_output_bits(rows, g_bits, levels, x_bits)
                engine = GoldenEngine(config)
                vmm = engine.execute(bytes([Opcode.RUN_VMM]))
                status = decode_response(Layout(config), engine.execute(b"\x02"))[0].fields
                assert len(vmm) == 2 + 2 * -(-bits // 8), config
                assert status["output_bytes"] == -(-bits // 8)
                assert status["hardware"] == HARDWARE_NOISE | HARDWARE_LEAKAGE
                checked += 1
    assert checked == len(row_counts) * 5 * 3


def test_batch_vectors_leave_the_loaded_input_and_signed_fields_are_whole_words():
    config = CrossbarConfig(rows=2, cols=2, lanes=1, g_bits=4, x_bits=12)
    layout = Layout(config)
    engine = GoldenEngine(config)
    engine.execute(encode_command(layout, Opcode.WRITE_ROW, row=0, levels=[3, 5]))
    engine.execute(encode_command(layout, Opcode.WRITE_ROW, row=1, levels=[7, 11]))
    engine.execute(encode_command(layout, Opcode.LOAD_INPUT, x=[2, 1]))
    engine.execute(encode_command(layout, Opcode.RUN_BATCH, count=1, x=[[100, 100]]))
    y = decode_response(layout, engine.execute(bytes([Opcode.RUN_VMM])))[0].fields["y"]
    assert list(y) == [2 * 3 + 7, 2 * 5 + 11]
    # 0x0800 is 2048 (out of range for 12 bits), 0xF800 is -2048 (the lowest code).
    assert engine.execute(b"\x20\x00\x08\x00\x00") == b"\x20" + bytes([Status.BAD_INPUT])
    assert engine.execute(b"\x20\x00\xf8\x00\x00") == b"\x20\x00"


def test_status_gives_a_driver_the_hardware_and_a_driver_refuses_what_is_missing():
    ideal = CrossbarConfig(rows=4, cols=4, lanes=1, noise_hardware=False, leakage_hardware=False)
    transport = GoldenTransport(ideal)
    driver = CrossbarDriver(transport)  # (discovers the engine from STATUS)
    assert not driver.config.noise_hardware and not driver.config.leakage_hardware
    sent = driver.bytes_sent
    with pytest.raises(ValueError, match="the engine has no noise hardware"):
        driver.set_noise(read=True, write=False)
    with pytest.raises(ValueError, match="the engine has no leakage hardware"):
        driver.set_rect(3)
    assert driver.bytes_sent == sent  # refused before anything was sent
    driver.set_noise(read=False, write=False)
    driver.set_rect(None)
    fields = driver.status()
    assert fields["hardware"] == 0 and fields["version"] == PROTOCOL_VERSION


def test_the_statuses_a_configuration_cannot_give():
    wide, narrow = CrossbarConfig(), CrossbarConfig(rows=8, cols=8, lanes=2, x_bits=12)
    assert impossible_statuses(narrow) == {}
    assert list(impossible_statuses(wide)) == [Status.BAD_INPUT]
    # Every 2-byte input, the extremes included, is a valid 16-bit code; at 12 bits not.
    for config, expected in ((wide, Status.OK), (narrow, Status.BAD_INPUT)):
        layout = Layout(config)
        command = bytes([Opcode.LOAD_INPUT]) + b"\x00\x80" * config.rows
        assert len(command) == layout.command_length(Opcode.LOAD_INPUT)
        assert GoldenEngine(config).execute(command) == bytes([Opcode.LOAD_INPUT, expected])
