"""Command streams for comparing backends with the golden engine: a directed stream of every
command, status and edge case, random streams of every command (valid and out of range,
batches long and short), and what a stream after a reset sets first."""

from __future__ import annotations

import numpy as np

from molxbar.emulator.config import SIGMA_SCALE_BITS, SIGMA_SEGMENTS, CrossbarConfig
from molxbar.protocol.spec import RECT_IDEAL, Layout, Opcode, encode_command

__all__ = ["directed_commands", "preamble", "program_rows", "random_commands"]


def program_rows(config: CrossbarConfig, levels: np.ndarray) -> bytes:
    """WRITE_ROW commands for a whole level matrix."""
    layout = Layout(config)
    return b"".join(
        encode_command(layout, Opcode.WRITE_ROW, row=r, levels=levels[r])
        for r in range(config.rows)
    )


def _raw_field(rng: np.random.Generator, nbytes: int) -> int:
    return int(rng.integers(0, 1 << (8 * nbytes)))


def random_commands(
    config: CrossbarConfig,
    rng: np.random.Generator,
    count: int,
    *,
    vmm_weight: float = 1.0,
    max_batch: int = 3,
    long_batch: int = 0,
    noise: bool = True,
) -> bytes:
    """``count`` random commands: every opcode, valid and out-of-range fields, unknown opcodes.

    Out-of-range values are drawn where the field width allows them; ``noise`` allows
    SET_NOISE to switch the noise on. A batch has up to ``max_batch`` vectors; with
    ``long_batch`` one batch in five has ``max_batch + 1`` to ``long_batch`` instead.
    """
    c, layout = config, Layout(config)
    out = bytearray()

    def row(bad=0.1):
        return (
            int(rng.integers(c.rows, 1 << 16)) if rng.random() < bad else int(rng.integers(c.rows))
        )

    def col(bad=0.1):
        return (
            int(rng.integers(c.cols, 1 << 16)) if rng.random() < bad else int(rng.integers(c.cols))
        )

    def level(bad=0.05):
        top = (1 << (8 * layout.level_bytes)) - 1
        if rng.random() < bad and top > c.g_max:
            return int(rng.integers(c.g_max + 1, top + 1))
        edge = rng.random()
        if edge < 0.1:
            return 0
        if edge < 0.2:
            return c.g_max
        return int(rng.integers(0, c.levels))

    def inputs(n, bad=0.03):
        x = rng.integers(c.x_min, c.x_max + 1, size=n)
        edge = rng.random()
        if edge < 0.15:
            x[rng.random(n) < 0.5] = c.x_max
        elif edge < 0.3:
            x[rng.random(n) < 0.5] = c.x_min
        elif edge < 0.45:
            x = np.minimum(np.abs(x), c.x_max)  # one phase of a signed input (|x_min| > x_max)
        low, high = -(1 << (8 * layout.input_bytes - 1)), (1 << (8 * layout.input_bytes - 1)) - 1
        if rng.random() < bad and (low < c.x_min or high > c.x_max):
            x[int(rng.integers(n))] = high if high > c.x_max else low
        return x

    opcodes = list(Opcode)
    weights = np.array(
        [vmm_weight if op in (Opcode.RUN_VMM, Opcode.RUN_BATCH) else 1.0 for op in opcodes]
    )
    weights /= weights.sum()
    for _ in range(count):
        if rng.random() < 0.03:
            out.append(int(rng.choice([0x00, 0x03, 0x7F, 0x99, 0xFF])))
            continue
        op = opcodes[int(rng.choice(len(opcodes), p=weights))]
        if op is Opcode.SYNC:
            cmd = encode_command(layout, op, value=int(rng.integers(256)))
        elif op in (Opcode.STATUS, Opcode.RUN_VMM):
            cmd = encode_command(layout, op)
        elif op is Opcode.WRITE_CELL:
            cmd = encode_command(layout, op, row=row(), col=col(), level=level())
        elif op is Opcode.WRITE_ROW:
            levels = [level(bad=0.01) for _ in range(c.cols)]
            cmd = encode_command(layout, op, row=row(), levels=levels)
        elif op is Opcode.PULSE_CELL:
            span = 1 << (8 * layout.pulse_bytes - 1)
            count_ = (
                int(rng.integers(-span, span))
                if rng.random() < 0.1
                else int(rng.integers(c.pulse_min, c.pulse_max + 1))
            )
            cmd = encode_command(layout, op, row=row(), col=col(), count=count_)
        elif op is Opcode.UPDATE_RANK1:
            scale = int(rng.integers(1, c.x_bits + 1))
            a = inputs(c.rows, bad=0.05) >> scale
            b = inputs(c.cols, bad=0.05) >> scale
            cmd = encode_command(layout, op, a=a, b=b)
        elif op in (Opcode.READ_CELL,):
            cmd = encode_command(layout, op, row=row(), col=col())
        elif op is Opcode.READ_ROW:
            cmd = encode_command(layout, op, row=row())
        elif op is Opcode.LOAD_INPUT:
            cmd = encode_command(layout, op, x=inputs(c.rows))
        elif op is Opcode.RUN_BATCH:
            n = int(rng.integers(0, max_batch + 1))
            if long_batch > max_batch and rng.random() < 0.2:
                n = int(rng.integers(max_batch + 1, long_batch + 1))
            vectors = np.array([inputs(c.rows) for _ in range(n)]).reshape(n, c.rows)
            cmd = encode_command(layout, op, count=n, x=vectors)
        elif op is Opcode.SET_ADC:
            bits = int(rng.choice([0, 0, 1, 2, 8, 12, 20, 40, 63, 64, 200]))
            shift = int(rng.choice([0, 0, 1, 3, 7, 12, 20, 40, 63, 64]))
            cmd = encode_command(layout, op, bits=bits, shift=shift)
        elif op is Opcode.SET_RECT:
            shift = int(rng.choice([RECT_IDEAL, RECT_IDEAL, 0, 1, 4, 13, 63, 64, 100]))
            cmd = encode_command(layout, op, shift=shift)
        elif op is Opcode.SET_UPDATE_SHIFT:
            cmd = encode_command(layout, op, shift=int(rng.choice([0, 2, 8, 16, 30, 63, 64])))
        elif op is Opcode.SET_NOISE:
            flags = int(rng.integers(0, 4)) if noise else 0
            if rng.random() < 0.1:
                flags = int(rng.choice([4, 8, 0x80]))
            cmd = encode_command(layout, op, flags=flags)
        elif op is Opcode.SET_SIGMA:
            scale = rng.integers(0, 1 << SIGMA_SCALE_BITS, size=SIGMA_SEGMENTS)
            if rng.random() < 0.5:
                scale >>= int(rng.integers(0, SIGMA_SCALE_BITS))
            table = int(rng.choice([0, 1, 1, 2])) if rng.random() < 0.95 else 7
            if rng.random() < 0.05:
                scale[int(rng.integers(SIGMA_SEGMENTS))] = 1 << SIGMA_SCALE_BITS
            cmd = encode_command(layout, op, table=table, scale=scale)
        elif op is Opcode.SEED:
            cmd = encode_command(layout, op, seed=_raw_field(rng, 4))
        else:  # pragma: no cover
            raise AssertionError(op)
        out += cmd
    return bytes(out)


def preamble(config: CrossbarConfig, rng: np.random.Generator) -> bytes:
    """What a stream after a reset sets first: random levels in every row, the loaded input
    vector 0 and the configuration's noise tables (a reset restores the registers, but the
    memories keep their contents)."""
    layout = Layout(config)
    return b"".join(
        [
            program_rows(config, rng.integers(0, config.levels, (config.rows, config.cols))),
            encode_command(layout, Opcode.LOAD_INPUT, x=np.zeros(config.rows, dtype=int)),
            encode_command(layout, Opcode.SET_SIGMA, table=0, scale=config.read_sigma_table),
            encode_command(layout, Opcode.SET_SIGMA, table=1, scale=config.write_sigma_table),
        ]
    )


def directed_commands(config: CrossbarConfig, rng: np.random.Generator) -> bytes:
    """Every command with valid fields, every error status, and the edge cases: writes of
    level 0 and the top level, saturating pulses and rank-1 updates, negative, largest and
    smallest inputs with ideal and leaky cells, ADC saturation, noise, batches with a bad
    vector, unknown opcodes."""
    c, layout = config, Layout(config)

    def enc(op: Opcode, **fields) -> bytes:
        return encode_command(layout, op, **fields)

    top, x_max, x_min = c.g_max, c.x_max, c.x_min
    # The cells of the edge cases: row 2, columns 3 and 4 where the array has them.
    row, col, other = 2 % c.rows, 3 % c.cols, 4 % c.cols
    x = rng.integers(x_min, x_max + 1, (3, c.rows))
    x[0, :2] = x_max, x_min
    bad = x[1].copy()
    bad[0] = x_max + 1 if x_max + 1 < 1 << (8 * layout.input_bytes - 1) else x_max
    # The ADC's saturation widths of a few bits and its first rounding shifts, each on a batch
    # of the largest inputs and of row 1 alone (by then written with levels 0 and the top).
    settings = [(bits, 0) for bits in range(2, 8)] + [(0, shift) for shift in (1, 2, 3, 5)]
    sweep_x = np.stack([np.full(c.rows, x_max), np.where(np.arange(c.rows) == 1, x_max, 0)])
    adc_sweep = [
        enc(Opcode.SET_ADC, bits=bits, shift=shift) + enc(Opcode.RUN_BATCH, count=2, x=sweep_x)
        for bits, shift in [*settings, (3, 1)]
    ]
    parts = [
        program_rows(c, rng.integers(0, c.levels, (c.rows, c.cols))),
        enc(Opcode.SYNC, value=0xA5),
        enc(Opcode.STATUS),
        enc(Opcode.SET_ADC, bits=4, shift=9),  # saturates on the random levels
        enc(Opcode.RUN_BATCH, count=3, x=np.stack([np.minimum(np.abs(x[0]), x_max), bad, x[2]])),
        enc(Opcode.SET_ADC, bits=0, shift=0),
        bytes([0x99, 0x00, 0xFF]),  # UNKNOWN_OPCODE, three times
        enc(Opcode.WRITE_CELL, row=c.rows, col=0, level=1),  # BAD_ROW
        enc(Opcode.WRITE_CELL, row=0, col=c.cols, level=1),  # BAD_COL
        enc(Opcode.WRITE_CELL, row=0, col=0, level=c.levels),  # BAD_LEVEL
        enc(Opcode.PULSE_CELL, row=0, col=0, count=c.pulse_min - 1),  # BAD_COUNT
        enc(Opcode.SET_ADC, bits=1, shift=0),  # BAD_VALUE
        enc(Opcode.SET_ADC, bits=0, shift=64),  # BAD_SHIFT
        enc(Opcode.SET_RECT, shift=64),  # BAD_SHIFT
        enc(Opcode.SET_UPDATE_SHIFT, shift=64),  # BAD_SHIFT
        enc(Opcode.SET_NOISE, flags=4),  # BAD_VALUE
        enc(Opcode.SET_SIGMA, table=2, scale=np.zeros(16, dtype=int)),  # BAD_VALUE
        enc(Opcode.RUN_BATCH, count=0, x=np.zeros((0, c.rows))),  # BAD_COUNT
        enc(Opcode.LOAD_INPUT, x=bad),  # BAD_INPUT (x_bits < 16)
        enc(Opcode.WRITE_CELL, row=row, col=col, level=top),
        enc(Opcode.WRITE_CELL, row=row, col=other, level=0),
        enc(Opcode.PULSE_CELL, row=row, col=col, count=c.pulse_max),  # saturates at the top
        enc(Opcode.PULSE_CELL, row=row, col=other, count=c.pulse_min),  # and at 0
        enc(Opcode.READ_CELL, row=row, col=col),
        enc(Opcode.READ_ROW, row=row),
        enc(Opcode.SET_UPDATE_SHIFT, shift=2),
        enc(Opcode.UPDATE_RANK1, a=np.full(c.rows, x_max), b=np.full(c.cols, x_max)),
        enc(Opcode.UPDATE_RANK1, a=np.full(c.rows, x_max), b=np.full(c.cols, x_min)),
        # The factor's sign bit subtracts: a negative ``a`` with each sign of ``b``.
        enc(Opcode.UPDATE_RANK1, a=np.full(c.rows, x_min), b=np.full(c.cols, x_max)),
        enc(Opcode.READ_ROW, row=c.rows - 1),
        enc(Opcode.UPDATE_RANK1, a=np.full(c.rows, x_min), b=np.full(c.cols, x_min)),
        enc(Opcode.READ_ROW, row=0),
        enc(Opcode.WRITE_ROW, row=1, levels=np.where(np.arange(c.cols) % 2, top, 0)),
        enc(Opcode.SEED, seed=0xFFFFFFFF),  # every field register bit set by now: SET_ADC
        *adc_sweep,  # answers from its own field alone
        enc(Opcode.SET_ADC, bits=0, shift=0),
        enc(Opcode.LOAD_INPUT, x=x[0]),
        enc(Opcode.RUN_VMM),  # ideal cells: negative inputs give nothing
        enc(Opcode.SET_RECT, shift=3),
        enc(Opcode.RUN_VMM),  # leaky cells
        enc(Opcode.SET_RECT, shift=RECT_IDEAL),
        enc(Opcode.SET_SIGMA, table=0, scale=np.arange(16) * 50),
        enc(Opcode.SET_SIGMA, table=1, scale=np.arange(16) * 40),
        enc(Opcode.SEED, seed=0xDEADBEEF),
        enc(Opcode.SET_NOISE, flags=3),
        enc(Opcode.WRITE_ROW, row=5 % c.rows, levels=rng.integers(0, c.levels, c.cols)),
        enc(Opcode.RUN_BATCH, count=2, x=x[:2]),
        enc(Opcode.SET_NOISE, flags=0),
        enc(Opcode.STATUS),
    ]
    return b"".join(parts)
