"""Programs: high-level operations compiled into command streams, and their results decoded."""

from __future__ import annotations

import numpy as np

from molxbar.emulator.config import CrossbarConfig

from .protocol import (
    RECT_IDEAL,
    STATUS_TEXT,
    Layout,
    Opcode,
    Status,
    decode_response,
    encode_command,
)

__all__ = ["EngineError", "vmm_program", "decode_outputs", "MAX_BATCH"]

#: Vectors per RUN_BATCH command (its count field is 16 bits).
MAX_BATCH = 0xFFFF


class EngineError(RuntimeError):
    """The engine answered a command with an error status.

    Attributes
    ----------
    opcode
        The command's opcode byte.
    status
        The :class:`~molxbar.firmware.protocol.Status` (its value is the engine's code).
    text
        What the status means (``STATUS_TEXT``).
    """

    def __init__(self, opcode: int, status: Status, detail: str = "") -> None:
        self.opcode = int(opcode)
        self.status = Status(status)
        self.text = STATUS_TEXT[self.status]
        name = Opcode(opcode).name if opcode in {int(op) for op in Opcode} else f"{opcode:#04x}"
        where = f" ({detail})" if detail else ""
        super().__init__(
            f"{name} failed{where}: {self.status.name} ({int(self.status):#04x}), {self.text}"
        )

    @property
    def code(self) -> int:
        """The status byte."""
        return int(self.status)


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
    layout = Layout(config)
    outputs = []
    pos = 0
    while pos < len(responses):
        response, pos = decode_response(layout, responses, pos)
        if not response.ok:
            raise EngineError(response.opcode, response.status)
        if "y" in response.fields:
            outputs.append(response.fields["y"])
    return np.array(outputs, dtype=np.int64).reshape(-1, config.cols)
