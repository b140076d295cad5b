"""``molxbar demo`` on reduced images: report, figures, the byte check, the command line."""

import json

import numpy as np
import pytest

from molxbar.cli import main
from molxbar.demo import DEFAULT_BACKEND, run_demo
from molxbar.emulator.device import PAPER_SNR_DB

FIGURES = {"images.png", "snr_sweep.png", "pulses.png", "energy.png"}


def test_demo_on_one_64x64_block(tmp_path):
    report = run_demo("golden", tmp_path, size=64, progress=False)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["snr_db"] == pytest.approx(report["snr_db"])
    assert set(saved["figures"]) == FIGURES
    for name in FIGURES:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (saved["blocks"], saved["tiles"], saved["block"]) == (1, 4, 64)
    # 2 passes x 64 vectors x 2 input phases x 4 tiles.
    assert saved["vmms"] == 1024
    assert saved["snr_db"] > PAPER_SNR_DB
    assert saved["enob"] == pytest.approx((saved["snr_db"] - 1.76) / 6.02)
    assert saved["check"]["checked"] is False  # the golden engine is the reference
    assert saved["pulse_staircase"]["matches_device_view"] is True
    assert saved["pulse_staircase"]["top_level"] == saved["config"]["levels"] - 1
    energy = saved["energy"]
    assert 0 < energy["demo_device_energy_per_vmm_j"] < energy["digital_energy_per_vmm_j"]
    devices = saved["snr_sweep"]["devices"]
    full = {name: curve["snr_db"][0] for name, curve in devices.items()}
    assert full["5-bit"] < 40 < 70 < full["14-bit"] and full["ru_azo_2024"] > 70
    assert full["5-bit"] < full["8-bit"] < full["12-bit"] < full["14-bit"]
    adc = devices["14-bit"]["snr_db"][1:]
    assert adc == sorted(adc)  # more ADC bits, more SNR
    # The figure's note on the ADC: its full scale and how far the outputs sit below it.
    ideal = devices["14-bit"]
    assert ideal["adc_full_scale"] > ideal["rms_output"] > ideal["rms_column_spread"] > 0
    # Every tile programming is read back (the README says "programmed and verified").
    verified = saved["program_and_verify"]
    assert verified["tile_programmings_verified"] == saved["programmings"] > saved["tiles"]
    assert verified["initial_errors"] == verified["remaining_errors"] == 0  # ideal14: exact
    # The inset of pulses.png: one level a pulse, and where direct writes land.
    single = saved["pulse_staircase"]["single_pulse_levels"]
    assert single[0] == (saved["config"]["levels"] - 1) // 2  # from mid-scale
    assert np.diff(single).tolist() == [1] * 16
    write = saved["pulse_staircase"]["write_error"]
    assert write["target"] == single[-1] and sum(write["landed"].values()) == 256
    assert 0 < write["sigma_levels"] < 0.5
    # energy.png's explanation: the inputs' mean power and the conductances set the ratio
    # to the half-scale, full-input point within a factor of two.
    ratio = energy["demo_device_energy_per_vmm_j"] / energy["half_scale_device_energy_per_vmm_j"]
    factors = energy["demo_mean_input_power"] * energy["demo_mean_conductance_over_half_scale"]
    assert 0.5 < ratio / factors < 2 and ratio < 0.1


def test_the_sweep_of_a_small_image_uses_64x64_blocks(tmp_path):
    """On an 8x8 image the sweep still runs on a 64x64 block: curves that rise with the ADC
    bits until they level off, and with the conductance levels."""
    sweep = run_demo("golden", tmp_path, size=8, progress=False)["snr_sweep"]
    assert (sweep["block"], sweep["blocks"]) == (64, 1)
    full = []
    for name, curve in sweep["devices"].items():
        snrs = curve["snr_db"][1:]
        for fewer, more in zip(snrs, snrs[1:], strict=False):
            assert more > fewer - 0.2, (name, snrs)  # flat within 0.2 dB once levelled off
        if name != "ru_azo_2024":
            full.append(curve["snr_db"][0])
    assert full == sorted(full)


def test_replay_checks_every_response_byte(tmp_path):
    report = run_demo(
        "golden", tmp_path, size=16, sweep=False, replay=True, progress=False, crossbars=2
    )
    check = report["check"]
    assert check["checked"] and check["bit_exact"] and check["mode"] == "replayed in one pass"
    assert check["bytes_compared"] == report["link"]["response_bytes"] > 0
    assert report["tiles"] == 1 and report["programmings"] == 1
    assert report["snr_db"] > PAPER_SNR_DB


def test_the_command_line(tmp_path, capsys):
    assert main(["demo", "--size", "16", "--no-sweep", "-o", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    # Each long step is named, also when stderr is no terminal (no progress bars there).
    transform = err.index("inverse DFT: 64 VMMs on the golden engine, recorded for the replay")
    replay = err.index(f"command bytes) on {DEFAULT_BACKEND}, every response byte compared")
    assert transform < replay, err
    assert "SNR" in out and "ENOB" in out and "bit-exact  yes" in out
    assert "523 per VMM (engine count)" in out  # 64x64 at 8 lanes: 512 + 11
    assert (tmp_path / "out" / "report.json").exists()
    assert main(["demo", "--size", "16", "--no-sweep", "--json", "-o", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backend"] == DEFAULT_BACKEND and summary["image_size"] == 16
    with pytest.raises(SystemExit) as info:
        main(["demo", "--size", "100", "-o", str(tmp_path)])
    assert info.value.code == 2
    assert "multiple of 64" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_on_the_gateware(tmp_path):
    report = run_demo("amaranth", tmp_path, size=8, sweep=False, progress=False)
    check = report["check"]
    assert check["checked"] and check["bit_exact"] and check["mode"] == "live"
    assert check["bytes_compared"] == report["link"]["response_bytes"]
    assert report["cycles"]["vmm_cycles"] >= 64 * 64 // 8
    assert report["snr_db"] > PAPER_SNR_DB
