"""``molxbar bench --link``: the serial link's fault figures and frame overhead, measured on
the host-level link model (:mod:`molxbar.sim.link_faults`)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.link import COMMAND_FRAMING_BYTES, RESPONSE_FRAMING_BYTES, max_payload
from molxbar.protocol.link_frames import command_frame, response_frame
from molxbar.protocol.spec import Layout, Opcode, encode_command
from molxbar.sim.link_faults import run_fault_session

__all__ = ["frame_overheads", "link_rate", "link_table"]

#: The boards' crossbar.
BOARD = CrossbarConfig(noise_hardware=False)


def frame_overheads(config: CrossbarConfig = BOARD, seed: int = 0) -> list[dict]:
    """Line bytes of typical frames against the engine bytes they carry, random data (so
    that escapes count as they come)."""
    rng = np.random.default_rng(seed)
    layout = Layout(config)
    x = rng.integers(config.x_min, config.x_max + 1, (2, config.rows))
    vmm = encode_command(layout, Opcode.LOAD_INPUT, x=x[0]) + bytes([Opcode.RUN_VMM])
    batch = encode_command(layout, Opcode.RUN_BATCH, count=2, x=x)
    outputs = rng.integers(-(1 << 30), 1 << 30, config.cols)
    answer = bytes([Opcode.RUN_VMM, 0]) + b"".join(
        int(v).to_bytes(layout.output_bytes, "little", signed=True) for v in outputs
    )
    answer16 = bytes([Opcode.RUN_VMM, 0]) + b"".join(
        int(v).to_bytes(2, "little", signed=True) for v in outputs >> 15
    )
    credits = max_payload()
    rows = [
        ("command: LOAD_INPUT + RUN_VMM", vmm, command_frame(1, vmm)),
        ("command: RUN_BATCH of 2 vectors", batch, command_frame(1, batch)),
        ("command: SYNC", b"\x01\x00", command_frame(1, b"\x01\x00")),
        ("response: one VMM's outputs", answer, response_frame(1, 0, credits, answer)),
        ("response: two VMMs' outputs", answer * 2, response_frame(1, 0, credits, answer * 2)),
        ("response: one VMM, 16-bit ADC", answer16, response_frame(1, 0, credits, answer16)),
    ]
    return [
        {
            "frame": name,
            "engine_bytes": len(payload),
            "line_bytes": len(wire),
            "overhead_bytes": len(wire) - len(payload),
            "overhead_percent": 100 * (len(wire) - len(payload)) / len(payload),
        }
        for name, payload, wire in rows
    ]


def link_rate(board_name: str = "icebreaker", *, adc_bits: int = 16, quick: bool = False) -> dict:
    """VMMs per second of a long batch over a board's serial link at its default clock and
    baud rate, measured on the bit-serial simulation of its bridge gateware
    (:func:`~molxbar.sim.bridge.simulate_bridge`, the host's ``SerialTransport`` on the
    other end, two frames in flight): the cycles of a batch of ``n`` vectors less those of a
    shorter one, so the first frame's wait does not count. No USB latency is in it."""
    from molxbar.boards.build import throughput
    from molxbar.boards.targets import BOARDS, board_config
    from molxbar.hdl.uart import uart_divisor
    from molxbar.protocol.link import COMMAND_BUFFER_BYTES, IDLE_TIMEOUT_BYTES, REPLAY_BUFFER_BYTES
    from molxbar.sim.bridge import simulate_bridge

    board = BOARDS[board_name]
    config = board_config(board)
    layout = Layout(config)
    baud = board.baud_for(board.clock_hz)
    divisor = uart_divisor(board.clock_hz * board.uart_clock_ratio, baud)
    rng = np.random.default_rng(0)
    short, long = (3, 9) if quick else (3, 15)
    cycles = {}
    for n in (short, long):
        x = rng.integers(config.x_min, config.x_max + 1, (n, config.rows))
        commands = encode_command(layout, Opcode.SET_ADC, bits=adc_bits, shift=0)
        commands += encode_command(layout, Opcode.RUN_BATCH, count=n, x=x)
        result = simulate_bridge(
            config,
            commands,
            divisor=divisor,
            uart_clock_ratio=board.uart_clock_ratio,
            buffer_bytes=COMMAND_BUFFER_BYTES,
            replay_bytes=REPLAY_BUFFER_BYTES,
            timeout_bytes=IDLE_TIMEOUT_BYTES,
            read_counters=False,
        )
        if result.difference is not None:
            raise AssertionError(f"the bridge's answers differ: {result.difference}")
        cycles[n] = result.cycles
    seconds = (cycles[long] - cycles[short]) / board.clock_hz
    rates = throughput(config, board.clock_hz, baud)
    return {
        "board": board.name,
        "baud": baud,
        "clock_hz": board.clock_hz,
        "adc_bits": adc_bits,
        "output_bytes": layout.at_adc(adc_bits).output_width,
        "vmm_per_s": (long - short) / seconds,
        "modelled_vmm_per_s": rates["link_adc16_vmm_per_s" if adc_bits == 16 else "link_vmm_per_s"],
        # Unframed bytes at 1 Mbaud with full-width outputs, the board's link before frames.
        "before_vmm_per_s": throughput(config, board.clock_hz, 1_000_000)["uart_vmm_per_s"],
    }


def link_table(*, quick: bool = False, out: TextIO = sys.stdout) -> dict:
    """Run fault sessions on the 64x64 and a 16x16 crossbar and print the figures."""
    fixed_command, fixed_response = COMMAND_FRAMING_BYTES, RESPONSE_FRAMING_BYTES
    print(
        f"\nSerial link: frames of {fixed_command} bytes around the commands (END, seq, kind, "
        f"CRC, END) and {fixed_response} around the responses (END, seq, status, credits, "
        f"CRC, END), plus one byte per 0xC0 or 0xDB escaped",
        file=out,
    )
    overheads = frame_overheads()
    for row in overheads:
        print(
            f"  {row['frame']:34s} {row['engine_bytes']:5d} -> {row['line_bytes']:5d} bytes "
            f"(+{row['overhead_bytes']}, {row['overhead_percent']:.1f} %)",
            file=out,
        )
    sessions = []
    medium = CrossbarConfig(rows=16, cols=16, lanes=4, noise_hardware=False)
    plans = [(medium, 1_700 if quick else 17_000), (BOARD, 300 if quick else 3_000)]
    print("\nFault injection (flips, bursts, drops, inserts, duplicates, host stalls):", file=out)
    for config, operations in plans:
        start = time.perf_counter()
        report = run_fault_session(config, operations=operations, rate=0.2, seed=3)
        seconds = time.perf_counter() - start
        row = {
            "crossbar": f"{config.rows}x{config.cols}",
            "operations": operations,
            "faults": report.injected,
            "by_kind": dict(report.faults),
            "silent_wrong_results": report.silent_wrong_results,
            "silent_level_changes": report.silent_level_changes,
            "reported": report.reported,
            "retries": report.retries,
            "replays": report.replays,
            "frames": report.frames,
            "board_counters": list(report.counters),
            "seconds": seconds,
        }
        sessions.append(row)
        print(
            f"  {row['crossbar']:>6s}: {operations} operations, {report.injected} faults "
            f"injected -> {report.silent_wrong_results} silent wrong results, "
            f"{report.silent_level_changes} silent level changes, {report.reported} reported; "
            f"{report.retries} retries, {report.replays} answered from the replay buffer, "
            f"{report.frames} frames ({seconds:.1f} s)",
            file=out,
        )
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(report.faults.items()))
        print(f"          faults: {kinds}; board counters {list(report.counters)}", file=out)
    start = time.perf_counter()
    rate = link_rate(quick=quick)
    print(
        f"\nLink rate, {rate['board']} at {rate['clock_hz'] / 1e6:g} MHz and "
        f"{rate['baud']:,} baud, {rate['adc_bits']}-bit ADC ({rate['output_bytes']} bytes an "
        f"output): {rate['vmm_per_s']:,.0f} VMM/s measured on the bit-serial bridge "
        f"simulation ({rate['modelled_vmm_per_s']:,.0f} from the frame sizes; "
        f"{rate['before_vmm_per_s']:,.0f} at 1 Mbaud unframed with full-width outputs: "
        f"{rate['vmm_per_s'] / rate['before_vmm_per_s']:.1f}x) "
        f"({time.perf_counter() - start:.0f} s)",
        file=out,
    )
    return {"overheads": overheads, "sessions": sessions, "rate": rate}
