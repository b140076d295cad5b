"""Documents generated from the protocol definition: ``docs/protocol.md``.

``python -m molxbar.protocol.docgen`` prints the Markdown; a test keeps the checked-in copy
up to date.
"""

from __future__ import annotations

from molxbar.emulator.config import (
    NOISE_FRAC_BITS,
    SIGMA_SCALE_BITS,
    SIGMA_SEGMENTS,
    Z_MAX,
    Z_SIGMA,
    CrossbarConfig,
)

from .spec import COMMANDS, RECT_IDEAL, STATUS_TEXT, FieldKind, Layout, Status, header_fields

__all__ = ["impossible_statuses", "protocol_markdown"]

_WIDTH_RULE = {
    FieldKind.LEVEL: "ceil(g_bits/8)",
    FieldKind.PULSES: "ceil((g_bits+1)/8)",
    FieldKind.INPUT: "ceil(x_bits/8)",
    FieldKind.OUTPUT: "output_width, ADC off: ceil(acc_fine_bits/8)",
}


def _field_rows(layout: Layout, fields) -> list[str]:
    rows = []
    for f in fields:
        width = layout.width(f.kind)
        rule = _WIDTH_RULE.get(f.kind)
        size = f"{width}" if rule is None else f"{rule} = {width}"
        if f.repeat != 1:
            size = f"{size} × {f.repeat} ({layout.count(f)})"
        rows.append(f"| `{f.name}` | {size} | {f.kind.value} | {f.doc} |")
    return rows


def _widths(config: CrossbarConfig) -> list[str]:
    """How every field width follows from the configuration (checked against the golden
    engine's for a sweep of configurations by the tests)."""
    c = config
    noise_max = c.noise_max
    return [
        "## Widths",
        "",
        "Every width follows from `rows`, `g_bits`, `levels` and `x_bits` (STATUS reports "
        "them, and the output width as `output_bytes`); `bitlen(n)` is the bits of the "
        "positive integer `n` (`floor(log2 n) + 1`):",
        "",
        "- level codes `0 .. levels-1` (`g_max = levels - 1`): `ceil(g_bits/8)` bytes;",
        "- pulse counts `-2^g_bits .. 2^g_bits - 1`: `ceil((g_bits+1)/8)` bytes;",
        "- input codes `-2^(x_bits-1) .. 2^(x_bits-1) - 1`: `ceil(x_bits/8)` bytes;",
        f"- VMM outputs: `acc_fine_bits = bitlen(rows * 2^(x_bits-1) * (g_max * "
        f"2^{NOISE_FRAC_BITS} + {noise_max})) + 1` bits, signed: the noisy accumulator "
        f"`acc * 2^{NOISE_FRAC_BITS} + noise` with `|noise| <= {noise_max}` per term "
        f"({Z_MAX} × the largest amplitude {(1 << SIGMA_SCALE_BITS) - 1}). A configuration "
        f"needs `acc_fine_bits <= 63`. With the ADC off each output takes "
        f"`output_bytes = ceil(acc_fine_bits/8)` bytes (sign-extended). For the crossbar "
        f"above: `acc_fine_bits = {c.acc_fine_bits}`, `output_bytes = "
        f"{Layout(c).output_bytes}`.",
        "- **Output width**: each VMM output takes `output_width` bytes, the fewest that "
        "hold it at the ADC setting: `output_width = output_bytes` with the ADC off "
        "(`adc_bits = 0`), else `min(output_bytes, ceil(adc_bits/8))` (2 bytes for "
        "`adc_bits` 9 .. 16). The outputs are signed and sign-extended. The width changes "
        "with the `SET_ADC` that the engine accepts, for every VMM answered after it; a "
        "host follows it from the `SET_ADC` commands it sends (or STATUS's `adc_bits`). "
        "The response lengths below are with the ADC off.",
    ]


def _behaviour(config: CrossbarConfig) -> list[str]:
    segment_bits = config.g_bits - config.segment_shift
    return [
        "## Behaviour the commands share",
        "",
        "- **Power-on** (and reset): every level 0, the loaded input vector 0, the registers "
        "at the configuration's values (STATUS reports them), the noise counter 0.",
        "- **Signed fields** are read whole as two's complement of their width, then "
        "range-checked: with `x_bits = 12` in 2 bytes, `0x0800` is 2048 (`BAD_INPUT`), "
        "`0xF800` is -2048.",
        "- **`RUN_BATCH`** computes on its own vectors: the vector `LOAD_INPUT` loaded "
        "for `RUN_VMM` stays. A vector answered `BAD_INPUT` changes nothing and takes no "
        "noise operation (the counter does not advance); the other vectors run.",
        "- **The noise counter** advances once per noisy operation: a VMM with read noise "
        "on, a `WRITE_CELL` or `WRITE_ROW` with write error on that passed its checks.",
        f"- **Noise amplitudes**: the table entry `m` of {SIGMA_SEGMENTS} covers the levels "
        f"`m * 2^s .. (m+1) * 2^s - 1` with `s = g_bits - {segment_bits}`; "
        f"a configuration's default entry is its sigma at the segment's midpoint "
        f"`(m + 0.5) * 2^s`, `min(round(sigma(g_mid) * 2^{NOISE_FRAC_BITS} / {Z_SIGMA:g}), "
        f"{(1 << SIGMA_SCALE_BITS) - 1})` (Python's `round`, half to even).",
        "- **Hardware**: an engine built without noise hardware (STATUS `hardware` bit 0 "
        "clear) answers `SET_NOISE` with any flag set `BAD_VALUE`; one without leakage "
        "hardware (bit 1 clear) answers `SET_RECT` with any shift but "
        f"`{RECT_IDEAL:#x}` `BAD_SHIFT`. The other statuses do not depend on the hardware.",
        "- **A stream cut inside a command**: the engine waits for the rest; "
        "`molxbar.sim.backends.run_stream` runs the whole commands and returns the partial "
        "one unrun, on every backend.",
        "- **Statuses a configuration cannot give**: a field whose valid values fill its "
        "bytes never fails its check (input codes when `x_bits` is a multiple of 8, pulse "
        "counts when `g_bits + 1` is, levels when `levels = 2^(8 * ceil(g_bits/8))`). "
        f"For the crossbar above: {_impossible(config)}.",
    ]


def impossible_statuses(config: CrossbarConfig) -> dict[Status, list[str]]:
    """The error statuses that no command field can fail with on ``config``, and the
    fields (``COMMAND.field``) whose check would give them: those whose valid values are
    every value their bytes hold."""
    layout = Layout(config)
    possible, checked = set(), {}
    for spec in COMMANDS.values():
        for field in header_fields(spec.opcode) + (
            spec.fields[1:] if spec.opcode.name == "RUN_BATCH" else ()
        ):
            ranges, status = layout.check(spec.opcode, field)
            if status is Status.OK:
                continue
            width = 8 * layout.width(field.kind)
            low = -(1 << (width - 1)) if Layout.signed(field.kind) else 0
            full = any(a <= low and b >= low + (1 << width) - 1 for a, b in ranges)
            checked.setdefault(status, []).append(f"{spec.opcode.name}.{field.name}")
            if not full:
                possible.add(status)
    return {s: names for s, names in checked.items() if s not in possible}


def _impossible(config: CrossbarConfig) -> str:
    statuses = impossible_statuses(config)
    if not statuses:
        return "every error status can occur"
    return "; ".join(
        f"`{s.name}` cannot occur ({', '.join(f'`{n}`' for n in names)} take every value)"
        for s, names in statuses.items()
    )


def protocol_markdown(config: CrossbarConfig | None = None) -> str:
    """``docs/protocol.md``: byte counts are given for ``config`` (default ``ideal14``)."""
    config = config or CrossbarConfig()
    layout = Layout(config)
    lines = [
        "# The molxbar command protocol",
        "",
        "<!-- Generated by `python -m molxbar.protocol.docgen` from "
        "`protocol/spec.py`; do not edit. -->",
        "",
        "The host sends commands as a byte stream; the engine answers every command (and "
        "every vector of a batch) with one response. Multi-byte fields are little-endian, "
        "signed fields two's complement. Field widths follow from the configuration; the "
        f"byte counts below are for the default `{config.rows}×{config.cols}`, "
        f"`g_bits={config.g_bits}`, `x_bits={config.x_bits}` crossbar.",
        "",
        "- A **command** is its opcode byte followed by its fields.",
        "- A **response** is the opcode byte, a status byte, and, when the status is `OK`, "
        "the response fields.",
        "- An unknown opcode is answered `(opcode, UNKNOWN_OPCODE)` and only that byte is "
        "consumed. A command with a field out of range is consumed whole, answered "
        "`(opcode, status)`, and changes nothing; fields are checked in order and the first "
        "failure is reported.",
        "",
        "## Status codes",
        "",
        "| code | name | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{s.value:#04x}` | `{s.name}` | {STATUS_TEXT[s]} |" for s in Status]
    lines += ["", *_widths(config), "", *_behaviour(config), ""]
    lines += ["## Commands", ""]
    lines += ["| opcode | command | bytes | response bytes |", "|---|---|---|---|"]
    for spec in COMMANDS.values():
        size = f"{layout.header_length(spec.opcode)}"
        if layout.header_length(spec.opcode) != layout.command_length(spec.opcode):
            vector = layout.command_length(spec.opcode) - layout.header_length(spec.opcode)
            size += f" + {vector} per vector"
        lines.append(
            f"| `{spec.opcode.value:#04x}` | [`{spec.opcode.name}`](#{spec.opcode.name.lower()}) "
            f"| {size} | {layout.response_length(spec.opcode)} |"
        )
    for spec in COMMANDS.values():
        lines += [
            "",
            f"### {spec.opcode.name}",
            "",
            f"Opcode `{spec.opcode.value:#04x}`. {spec.doc}",
            "",
        ]
        header = ["| field | bytes | encoding | meaning |", "|---|---|---|---|"]
        if spec.fields:
            lines += ["Command fields:", "", *header, *_field_rows(layout, spec.fields), ""]
        else:
            lines += ["No command fields.", ""]
        if spec.response:
            lines += ["Response fields (after opcode and `OK`):", "", *header]
            lines += _field_rows(layout, spec.response)
            lines.append("")
        else:
            lines += ["Response: opcode and status only.", ""]
        errors = ", ".join(f"`{s.name}`" for s in spec.errors) or "none"
        lines.append(f"Errors: {errors}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(protocol_markdown(), end="")
