"""Verilog/RTLIL generation and the gateware backend of the command line."""

import re

import numpy as np
import pytest

from molxbar.cli import main
from molxbar.emulator import CrossbarConfig
from molxbar.hdl.generate import TOP_NAME, generate

TINY = CrossbarConfig(rows=4, cols=4, lanes=2, g_bits=6, x_bits=6)
PORTS = {
    "clk": "input",
    "rst": "input",
    "cmd__valid": "input",
    "cmd__ready": "output",
    "cmd__payload": "input",
    "rsp__valid": "output",
    "rsp__ready": "input",
    "rsp__payload": "output",
    "idle": "output",
    "vmm_cycles": "output",
}


def top_ports(text):
    body = text[text.index(f"module {TOP_NAME}(") :]
    body = body[: body.index("endmodule")]
    return dict(
        (name, direction)
        for direction, name in re.findall(
            r"^\s*(input|output)\s+(?:\[[^\]]+\]\s*)?(\w+);", body, re.M
        )
    )


@pytest.fixture(scope="module")
def tiny_verilog():
    return generate(TINY)


def test_verilog_is_deterministic_and_has_the_documented_ports(tiny_verilog):
    assert tiny_verilog == generate(TINY)
    assert top_ports(tiny_verilog) == PORTS
    assert "/work/" not in tiny_verilog and "/home/" not in tiny_verilog
    assert ".py:" not in tiny_verilog


def test_rtlil_and_errors():
    text = generate(TINY, "rtlil")
    assert f"module \\{TOP_NAME}" in text
    with pytest.raises(ValueError, match="format = 'vhdl' is unknown"):
        generate(TINY, "vhdl")


def test_cli_generate(tmp_path, capsys, tiny_verilog):
    out = tmp_path / "engine.v"
    assert (
        main(
            [
                "generate",
                "--rows",
                "4",
                "--cols",
                "4",
                "--lanes",
                "2",
                "--g-bits",
                "6",
                "--x-bits",
                "6",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_text() == tiny_verilog
    with pytest.raises(SystemExit):
        main(["generate", "--cols", "6", "--lanes", "4", "-o", str(out)])
    assert "lanes = 4 must divide cols = 6" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", "--product-stages", "3", "-o", str(out)])
    assert "--product-stages: invalid choice: 3" in capsys.readouterr().err
    assert out.read_text() == tiny_verilog  # (a refused command writes nothing)


def test_two_product_stages_add_a_register_per_lane():
    one, two = generate(TINY), generate(TINY, product_stages=2)
    assert one != two
    # The second product register of each lane, x*g and x*n.
    assert two.count("late_xg") > one.count("late_xg") == 0
    with pytest.raises(ValueError, match="product_stages = 0 must be 1 or 2"):
        generate(TINY, product_stages=0)


def test_cli_vmm_amaranth_backend_equals_golden(tmp_path):
    rng = np.random.default_rng(40)
    levels = rng.integers(0, 2**14, (8, 4))
    inputs = rng.integers(-(2**15) + 1, 2**15, (3, 8))
    np.save(tmp_path / "L.npy", levels)
    np.save(tmp_path / "X.npy", inputs)
    outputs = {}
    for backend in ("golden", "amaranth"):
        out = tmp_path / f"Y_{backend}.npy"
        args = [
            "vmm",
            "--levels",
            str(tmp_path / "L.npy"),
            "--inputs",
            str(tmp_path / "X.npy"),
            "--out",
            str(out),
            "--backend",
            backend,
            "--signed-inputs",
        ]
        assert main(args) == 0
        outputs[backend] = np.load(out)
    np.testing.assert_array_equal(outputs["amaranth"], outputs["golden"])
    np.testing.assert_array_equal(outputs["golden"], inputs @ levels)
