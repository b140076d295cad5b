"""Command streams for one-pass backends: a matrix programmed and a batch of inputs run
(:func:`vmm_program`), and the outputs decoded from the responses (:func:`decode_outputs`)."""

from __future__ import annotations

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.errors import EngineError
from molxbar.protocol.spec import (
    MAX_BATCH,
    RECT_IDEAL,
    Layout,
    Opcode,
    decode_responses,
    encode_command,
)

__all__ = ["vmm_program", "decode_outputs"]


def vmm_program(
    config: CrossbarConfig,
    levels: np.ndarray,
    inputs: np.ndarray,
    *,
    adc_bits: int | None = None,
    adc_shift: int = 0,
    rect_shift: int | None = None,
) -> bytes:
    """Program ``levels`` row by row, set the ADC and rectification, run ``inputs`` as
    batches. The responses hold one OK per setting command, then one output vector per input.
    """
    layout = Layout(config)
    parts = [
        encode_command(layout, Opcode.WRITE_ROW, row=r, levels=levels[r])
        for r in range(config.rows)
    ]
    parts.append(encode_command(layout, Opcode.SET_ADC, bits=adc_bits or 0, shift=adc_shift))
    shift = RECT_IDEAL if rect_shift is None else rect_shift
    parts.append(encode_command(layout, Opcode.SET_RECT, shift=shift))
    for start in range(0, inputs.shape[0], MAX_BATCH):
        chunk = inputs[start : start + MAX_BATCH]
        parts.append(encode_command(layout, Opcode.RUN_BATCH, count=len(chunk), x=chunk))
    return b"".join(parts)


def decode_outputs(config: CrossbarConfig, responses: bytes) -> np.ndarray:
    """The ``(batch, cols)`` outputs of every VMM response; any error raises EngineError."""
    outputs = []
    for response in decode_responses(Layout(config), responses):
        if not response.ok:
            raise EngineError(response.opcode, response.status)
        if "y" in response.fields:
            outputs.append(response.fields["y"])
    return np.array(outputs, dtype=np.int64).reshape(-1, config.cols)
