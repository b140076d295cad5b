"""What one MAC lane costs on each board's FPGA, with and without noise hardware: the lane
with the noise logic that is its own (the deviate of its cell's word, the amplitude of its
level, ``z * s``) synthesised alone by Yosys, as the board builds it (the ULX3S with the
reverse-leakage masks and sums and a second product register, the iCEBreaker without either
and with ``z * s`` in a multiplier).

Shared logic (the noise generator, the word memories, the settings) is not in these figures:
they are what each further lane adds, except for the leakage masks, made from the shift
alone, which a whole design makes once. ``molxbar bench --lane-cost`` prints them.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from molxbar.emulator.config import SIGMA_SCALE_BITS, SIGMA_SEGMENTS, CrossbarConfig
from molxbar.hdl.mac import MacLane, leak_sum_bits, noise_product_bits

from .reports import parse_yosys_cells
from .targets import BOARDS, Board, board_config
from .toolchain import toolchain_env

__all__ = ["LaneWithNoise", "lane_cost", "lane_cost_table"]

#: Cell types of each family, as the table's columns: logic, carry, flip-flops, multipliers.
_COLUMNS = {
    "ecp5": (("LUT4",), ("CCU2C",), ("TRELLIS_FF",), ("MULT18X18D",)),
    "ice40": (("SB_LUT4",), ("SB_CARRY",), ("SB_DFF",), ("SB_MAC16",)),
}


class LaneWithNoise(wiring.Component):
    """A :class:`~molxbar.hdl.mac.MacLane` fed from ports: a term every cycle, the cell's
    noise word as a row word XOR a column word, the read amplitudes; all four sums out."""

    def __init__(
        self, config: CrossbarConfig, product_stages: int, noise_multiplier: bool = False
    ) -> None:
        self._config = config
        self._product_stages = product_stages
        self._noise_multiplier = noise_multiplier
        super().__init__(
            {
                "x": In(signed(config.x_bits)),
                "g": In(config.g_bits),
                "row_word": In(64),
                "col_word": In(64),
                "read_table": In(SIGMA_SCALE_BITS * SIGMA_SEGMENTS),
                "noise_en": In(1),
                "rect_ideal": In(1),
                "rect_shift": In(6),
                "acc": Out(signed(config.acc_bits)),
                "noise_acc": Out(signed(config.noise_acc_bits)),
                "leak_acc": Out(signed(leak_sum_bits(config, config.product_bits))),
                "leak_noise_acc": Out(signed(leak_sum_bits(config, noise_product_bits(config)))),
            }
        )

    def elaborate(self, platform) -> Module:
        c = self._config
        m = Module()
        m.submodules.lane = lane = MacLane(
            c, product_stages=self._product_stages, noise_multiplier=self._noise_multiplier
        )
        term = lane.i.payload
        m.d.comb += [
            lane.i.valid.eq(1),
            term.x.eq(self.x),
            term.g.eq(self.g),
            lane.noise_en.eq(self.noise_en),
            lane.rect_ideal.eq(self.rect_ideal),
            lane.rect_shift.eq(self.rect_shift),
            self.acc.eq(lane.acc),
            self.noise_acc.eq(lane.noise_acc),
            self.leak_acc.eq(lane.leak_acc),
            self.leak_noise_acc.eq(lane.leak_noise_acc),
        ]
        if c.noise_hardware:
            m.d.comb += [
                term.word.eq(self.row_word ^ self.col_word),
                lane.read_table.eq(self.read_table),
            ]
        return m


def lane_cost(board: Board, crossbar: str) -> dict[str, int]:
    """Cells of one lane of ``board``'s ``crossbar`` (``"twin"`` or ``"ideal"``), from Yosys'
    ``synth_<family>`` with the board's synthesis options."""
    chosen = board.crossbar_named(crossbar)
    config = board_config(board, lanes=1, crossbar=crossbar)
    yosys = toolchain_env(board.family)["YOSYS"]
    # (Yosys runs in the folder of its files: the WebAssembly build sees only that one.)
    with tempfile.TemporaryDirectory(prefix="molxbar-lane-") as tmp:
        Path(tmp, "lane.il").write_text(
            rtlil.convert(
                LaneWithNoise(
                    config, chosen.options.product_stages, chosen.options.noise_multipliers
                ),
                name="lane",
            )
        )
        script = (
            f"read_rtlil lane.il; synth_{board.family} {board.synth_options} -top lane; "
            "tee -q -o lane.stat stat"
        )
        subprocess.run(
            [yosys, "-q", "-p", script], cwd=tmp, check=True, capture_output=True, text=True
        )
        cells = parse_yosys_cells(Path(tmp, "lane.stat").read_text())
    names = ("logic", "carry", "ff", "dsp")
    return {
        name: sum(n for cell, n in cells.items() if cell.startswith(prefixes))
        for name, prefixes in zip(names, _COLUMNS[board.family], strict=True)
    }


def lane_cost_table(out=sys.stdout) -> list[dict]:
    """Print and return :func:`lane_cost` of each board's twin and ideal lane, and the
    difference: what the noise hardware (and the twin's other choices) add per lane."""
    print("One MAC lane synthesised alone (Yosys), as each board builds it:", file=out)
    print("  board       lane    logic  carry     FF  DSP", file=out)
    rows = []
    for name, board in BOARDS.items():
        costs = {crossbar: lane_cost(board, crossbar) for crossbar in ("twin", "ideal")}
        costs["added"] = {key: costs["twin"][key] - costs["ideal"][key] for key in costs["twin"]}
        for crossbar, cells in costs.items():
            rows.append({"board": name, "lane": crossbar, **cells})
            print(
                f"  {name:10s}  {crossbar:6s}  {cells['logic']:5d}  {cells['carry']:5d}  "
                f"{cells['ff']:5d}  {cells['dsp']:3d}",
                file=out,
            )
    return rows
