"""The generated C header: up to date, valid C, and the same numbers as the protocol."""

import shutil
import subprocess
import sys

import pytest

from molxbar.emulator import CrossbarConfig
from molxbar.protocol.headergen import HEADER_PATH, protocol_header
from molxbar.protocol.spec import (
    PROTOCOL_VERSION,
    RECT_IDEAL,
    STATUS_TEXT,
    Layout,
    Opcode,
    Status,
)

gcc = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(gcc is None, reason="gcc is not installed")


def test_the_checked_in_header_is_up_to_date():
    assert HEADER_PATH.read_text() == protocol_header(), (
        "protocol/include/molxbar_protocol.h is out of date: run "
        "`python -m molxbar.protocol.headergen -o protocol/include/molxbar_protocol.h`"
    )


def test_the_generator_runs_as_a_module():
    out = subprocess.run(
        [sys.executable, "-m", "molxbar.protocol.headergen"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out == protocol_header()


@needs_gcc
@pytest.mark.parametrize("std", ["c99", "c11"])
def test_the_header_is_valid_c(std):
    subprocess.run(
        [
            gcc,
            f"-std={std}",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            "-x",
            "c",
            str(HEADER_PATH),
        ],
        check=True,
    )


@needs_gcc
def test_a_c_program_sees_the_protocol_values(tmp_path):
    source = tmp_path / "values.c"
    source.write_text(
        '#include <stdio.h>\n#include "molxbar_protocol.h"\n'
        "int main(void) {\n"
        '    printf("%d %d %u %d %d\\n", MOLXBAR_PROTOCOL_VERSION, MOLXBAR_OP_RUN_BATCH,\n'
        "           MOLXBAR_RECT_IDEAL, MOLXBAR_CMD_LEN_WRITE_ROW, MOLXBAR_RSP_LEN_RUN_VMM);\n"
        '    printf("%d %d %d\\n", MOLXBAR_RUN_BATCH_VECTOR_LEN, MOLXBAR_STATUS_RSP_SEED_OFFSET,\n'
        "           MOLXBAR_WRITE_CELL_LEVEL_OFFSET);\n"
        '    printf("%d %d\\n", MOLXBAR_X_MIN, MOLXBAR_STATUS_BAD_INPUT);\n'
        '    printf("%s\\n", molxbar_status_text(MOLXBAR_STATUS_BAD_SHIFT));\n'
        '    printf("%s\\n", molxbar_status_text(0x77));\n'
        "    for (int bits = 0; bits <= 63; bits++)\n"
        '        printf("%d ", MOLXBAR_OUTPUT_WIDTH(bits));\n'
        "    return 0;\n}\n"
    )
    binary = tmp_path / "values"
    subprocess.run(
        [
            gcc,
            "-std=c99",
            "-Wall",
            "-Werror",
            "-I",
            str(HEADER_PATH.parent),
            "-o",
            str(binary),
            str(source),
        ],
        check=True,
    )
    lines = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    lines = lines.splitlines()
    layout = Layout(CrossbarConfig())
    assert lines[0].split() == [
        str(PROTOCOL_VERSION),
        str(int(Opcode.RUN_BATCH)),
        str(RECT_IDEAL),
        str(layout.command_length(Opcode.WRITE_ROW)),
        str(layout.response_length(Opcode.RUN_VMM)),
    ]
    vector = layout.command_length(Opcode.RUN_BATCH) - layout.header_length(Opcode.RUN_BATCH)
    # STATUS response: opcode, status, then version .. counter, output_bytes, hardware; the
    # seed is the 4 bytes before the 4-byte counter.
    seed_offset = layout.response_length(Opcode.STATUS) - 10
    assert lines[1].split() == [str(vector), str(seed_offset), "5"]
    assert lines[2].split() == [str(CrossbarConfig().x_min), str(int(Status.BAD_INPUT))]
    assert lines[3] == STATUS_TEXT[Status.BAD_SHIFT]
    assert lines[4] == "unknown status"
    # The output width at every ADC width register, as the protocol defines it.
    widths = [layout.at_adc(bits).output_width for bits in range(64)]
    assert lines[5].split() == [str(w) for w in widths]
    assert widths[0] == layout.output_bytes and widths[16] == 2 and widths[8] == 1


def test_lengths_follow_the_configuration():
    text = protocol_header(CrossbarConfig(rows=8, cols=4, lanes=2, g_bits=20, x_bits=10))
    assert "#define MOLXBAR_ROWS 8\n" in text
    assert "#define MOLXBAR_LEVEL_BYTES 3\n" in text
    # WRITE_ROW: opcode, a 2-byte row, 4 levels of 3 bytes.
    assert "#define MOLXBAR_CMD_LEN_WRITE_ROW 15\n" in text
