"""What a bitstream build reports: utilization, Fmax and critical paths read from the tools'
outputs (nextpnr's report and log, Yosys's cell statistics), and the throughput a design
reaches at a clock and a UART bit rate."""

from __future__ import annotations

import json
import re
from pathlib import Path

from molxbar.emulator.config import CrossbarConfig
from molxbar.host.link_packer import batch_frames
from molxbar.protocol.spec import Layout, Opcode

from .targets import Board
from .toolchain import DESIGN

__all__ = [
    "parse_nextpnr_report",
    "parse_nextpnr_log",
    "parse_yosys_cells",
    "throughput",
    "read_tool_reports",
]


def parse_nextpnr_report(path: str | Path) -> dict:
    """Utilization, Fmax and critical paths from nextpnr's ``--report`` JSON.

    Returns ``{"utilization": {cell_type: {"used", "available"}}, "fmax": {clock:
    {"achieved_hz", "constraint_hz"}}, "critical_paths": [{"clocks", "delay_ns", "from",
    "to"}]}``.
    """
    data = json.loads(Path(path).read_text())
    fmax = {
        clock: {
            "achieved_hz": round(value["achieved"] * 1e6),
            "constraint_hz": round(value["constraint"] * 1e6),
        }
        for clock, value in data.get("fmax", {}).items()
    }
    paths = []
    for path_ in data.get("critical_paths", []):
        steps = path_.get("path", [])
        if not steps:
            continue
        paths.append(
            {
                "clocks": f"{path_['from']} -> {path_['to']}",
                "delay_ns": round(sum(step["delay"] for step in steps), 2),
                "logic_ns": round(
                    sum(step["delay"] for step in steps if step["type"] != "routing"), 2
                ),
                "from": steps[0]["from"]["cell"],
                "to": steps[-1]["to"]["cell"],
            }
        )
    return {"utilization": data.get("utilization", {}), "fmax": fmax, "critical_paths": paths}


def parse_nextpnr_log(text: str) -> dict:
    """Utilization (``{cell_type: {"used", "available"}}``) from the ``Device utilisation``
    block of a nextpnr log: there even when placement fails because the design does not fit."""
    utilization = {}
    for match in re.finditer(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text):
        utilization.setdefault(match[1], {"used": int(match[2]), "available": int(match[3])})
    return utilization


def parse_yosys_cells(log: str) -> dict[str, int]:
    """Cell counts by type from the last statistics block of a Yosys log or ``stat`` output
    (both the ``Number of cells: N`` and the ``N cells`` styles)."""
    lines = log.splitlines()
    starts = [
        k
        for k, line in enumerate(lines)
        if re.match(r"\s*Number of cells:\s*\d+\s*$", line) or re.match(r"\s*\d+\s+cells\s*$", line)
    ]
    if not starts:
        return {}
    cells: dict[str, int] = {}
    for line in lines[starts[-1] + 1 :]:
        match = re.match(r"\s+(\d+)\s+(\$?[A-Za-z_][\w$]*)\s*$", line) or re.match(
            r"\s+(\$?[A-Za-z_][\w$]*)\s+(\d+)\s*$", line
        )
        if not match:
            break
        count, name = match.groups() if match[1].isdigit() else match.groups()[::-1]
        if not name.startswith("$scopeinfo"):
            cells[name] = int(count)
    return cells


def throughput(config: CrossbarConfig, clock_hz: float, baud: int) -> dict:
    """VMMs and multiply-accumulates per second at ``clock_hz``.

    * ``compute``: the lanes alone, one row per cycle per lane (``rows * cols / lanes``
      cycles per vector);
    * ``engine``: a batch in the bridge's engine, whose streams move one byte per cycle, so a
      vector also needs as many cycles as its command bytes and its response bytes;
    * ``uart``: what a UART at ``baud`` carries (8N1, one line each way; the busier line
      sets the rate);
    * ``link``: what the serial link carries, two frames in flight
      (:func:`~molxbar.host.link_packer.batch_frames`): a frame's commands arrive while
      the one before is answered, so the busier line sets the rate (no USB latency
      counted); ``link_adc16`` the same with a 16-bit ADC, whose outputs take 2 bytes.
    """
    layout = Layout(config)
    compute = config.rows * config.cols // config.lanes
    in_bytes = config.rows * layout.input_bytes
    out_bytes = layout.response_length(Opcode.RUN_BATCH)
    cycles = max(compute, in_bytes, out_bytes)
    macs = config.rows * config.cols
    rates = {
        "compute": clock_hz / compute,
        "engine": clock_hz / cycles,
        "uart": baud / 10 / max(in_bytes, out_bytes),
    }
    for name, adc_bits in (("link", 0), ("link_adc16", 16)):
        frames = batch_frames(layout.at_adc(adc_bits))
        busier = max(frames["command"], frames["response"])
        rates[name] = baud / 10 * frames["vectors"] / busier
    result: dict = {
        "compute_cycles_per_vmm": compute,
        "batch_cycles_per_vmm": cycles,
        "uart_bytes_per_vmm": {"command": in_bytes, "response": out_bytes},
    }
    for name, vmm in rates.items():
        result[f"{name}_vmm_per_s"] = round(vmm, 1) if vmm < 1000 else round(vmm)
        result[f"{name}_mac_per_s"] = round(vmm * macs)
    return result


def read_tool_reports(board: Board, config: CrossbarConfig, baud: int, out: Path) -> dict:
    """Utilization, Fmax and throughput from the tools' reports (what there is of them)."""
    report_path, log_path = out / f"{DESIGN}.report.json", out / f"{DESIGN}.tim"
    if report_path.exists():
        nextpnr = parse_nextpnr_report(report_path)
    else:
        log = log_path.read_text(errors="replace") if log_path.exists() else ""
        nextpnr = {"utilization": parse_nextpnr_log(log), "fmax": {}, "critical_paths": []}
    stat_path = out / f"{DESIGN}.stat"
    cells = parse_yosys_cells(stat_path.read_text()) if stat_path.exists() else {}
    synthesis = {
        name: {
            "used": sum(n for cell, n in cells.items() if cell.startswith(prefixes)),
            "available": board.capacity.get(name),
        }
        for name, prefixes in board.synthesis_cells.items()
    }
    used = nextpnr["utilization"]
    resources = {}
    for name, types in board.resources.items():
        present = [t for t in types if t in used]
        if present:
            resources[name] = {
                "used": sum(used[t]["used"] for t in present),
                "available": sum(used[t]["available"] for t in present),
            }
    if board.family == "ice40":
        # A logic cell is a LUT4 and a flip-flop; count what synthesis made of each.
        resources["lut4"] = {
            "used": cells.get("SB_LUT4", 0),
            "available": resources.get("lut", {}).get("available", 0),
        }
        resources["ff"] = {
            "used": sum(n for name, n in cells.items() if name.startswith("SB_DFF")),
            "available": resources.get("lut", {}).get("available", 0),
        }
    for value in (*resources.values(), *synthesis.values()):
        value["percent"] = (
            round(100 * value["used"] / value["available"], 1) if value["available"] else None
        )
    fmax = nextpnr["fmax"]
    # The engine's clock (named in its constraint); else the slowest.
    engine_clock = next(
        (v for name, v in fmax.items() if "engine_clk" in name),
        min(fmax.values(), key=lambda v: v["achieved_hz"], default=None),
    )
    achieved = engine_clock["achieved_hz"] if engine_clock else None
    timing_met = all(v["achieved_hz"] >= v["constraint_hz"] for v in fmax.values())
    result = {
        "resources": resources,
        "synthesis": synthesis,
        "synthesis_cells": cells,
        "fits": all(v["used"] <= v["available"] for v in used.values())
        if used
        else all(v["used"] <= v["available"] for v in synthesis.values() if v["available"])
        if cells
        else None,
        "fmax": fmax,
        "timing_met": timing_met if fmax else None,
        "critical_paths": nextpnr["critical_paths"],
    }
    if achieved:
        result["throughput_at_fmax"] = throughput(config, achieved, baud)
    return result
