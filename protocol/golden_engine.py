"""The golden engine: the command protocol executed on the NumPy golden model.

``GoldenEngine.execute(commands) -> responses`` is the reference every other backend (the
Amaranth simulation, Verilator, Icarus, a board) is compared with, byte for byte.
"""

from __future__ import annotations

import numpy as np

from molxbar.emulator.config import CrossbarConfig
from molxbar.emulator.golden import Crossbar

from .spec import (
    NOISE_READ,
    NOISE_WRITE,
    PROTOCOL_VERSION,
    RECT_IDEAL,
    TABLE_READ,
    Layout,
    Opcode,
    Status,
    decode_command_fields,
    encode_response,
    hardware_flags,
)

__all__ = ["GoldenEngine"]

_OPCODES = frozenset(int(op) for op in Opcode)


class GoldenEngine:
    """A crossbar that speaks the molxbar protocol.

    Parameters
    ----------
    config
        The crossbar; registers start at its values, levels and the input vector at 0.

    :attr:`layout` follows the ADC width register (the width of the VMM outputs).

    ``execute`` may be called with any split of the byte stream: an incomplete command at
    the end waits for the next call.
    """

    def __init__(self, config: CrossbarConfig | None = None) -> None:
        self.crossbar = Crossbar(config)
        self.config = self.crossbar.config
        self.layout = Layout(self.config)
        self.input = np.zeros(self.config.rows, dtype=np.int64)
        self._pending = bytearray()
        self._batch_left = 0

    @property
    def idle(self) -> bool:
        """No partial command or batch is waiting for bytes."""
        return not self._pending and not self._batch_left

    def execute(self, commands: bytes) -> bytes:
        """Run the commands in ``commands`` and return the responses."""
        self._pending += commands
        buffer = self._pending
        out = bytearray()
        pos = 0
        while pos < len(buffer):
            if self._batch_left:
                consumed = self._run_batch_vectors(buffer, pos, out)
                if not consumed:
                    break
                pos += consumed
                continue
            opcode = buffer[pos]
            if opcode not in _OPCODES:
                out += bytes([opcode, Status.UNKNOWN_OPCODE])
                pos += 1
                continue
            opcode = Opcode(opcode)
            length = self.layout.header_length(opcode)
            if len(buffer) - pos < length:
                break
            fields = decode_command_fields(self.layout, opcode, buffer, pos + 1)
            out += self._handle(opcode, fields)
            pos += length
        del buffer[:pos]
        return bytes(out)

    # Commands -----------------------------------------------------------------------------

    def _handle(self, opcode: Opcode, f: dict) -> bytes:
        xb = self.crossbar
        status = self.layout.validate(opcode, f)
        if status is not Status.OK:
            return encode_response(self.layout, opcode, status)
        result: dict = {}
        if opcode is Opcode.SYNC:
            result = {"value": f["value"]}
        elif opcode is Opcode.STATUS:
            result = self._status()
        elif opcode is Opcode.WRITE_CELL:
            xb.write_cell(f["row"], f["col"], f["level"])
        elif opcode is Opcode.WRITE_ROW:
            xb.write_row(f["row"], f["levels"])
        elif opcode is Opcode.PULSE_CELL:
            xb.pulse_cell(f["row"], f["col"], f["count"])
        elif opcode is Opcode.UPDATE_RANK1:
            xb.update_rank1(f["a"], f["b"])
        elif opcode is Opcode.READ_CELL:
            result = {"level": xb.read_cell(f["row"], f["col"])}
        elif opcode is Opcode.READ_ROW:
            result = {"levels": xb.read_row(f["row"])}
        elif opcode is Opcode.LOAD_INPUT:
            self.input = f["x"]
        elif opcode is Opcode.RUN_VMM:
            result = {"y": xb.vmm(self.input)}
        elif opcode is Opcode.RUN_BATCH:
            self._batch_left = f["count"]
            return b""  # each vector is answered on its own
        elif opcode is Opcode.SET_ADC:
            xb.set_adc(f["bits"] or None, f["shift"])
            self.layout = self.layout.at_adc(f["bits"])  # the outputs' width from now on
            result = {"width": self.layout.output_width}
        elif opcode is Opcode.SET_RECT:
            xb.set_rectification(None if f["shift"] == RECT_IDEAL else f["shift"])
        elif opcode is Opcode.SET_UPDATE_SHIFT:
            xb.set_update_shift(f["shift"])
        elif opcode is Opcode.SET_NOISE:
            xb.set_noise(read=bool(f["flags"] & NOISE_READ), write=bool(f["flags"] & NOISE_WRITE))
        elif opcode is Opcode.SET_SIGMA:
            if f["table"] == TABLE_READ:
                xb.set_noise(read_table=f["scale"])
            else:
                xb.set_noise(write_table=f["scale"])
        elif opcode is Opcode.SEED:
            xb.seed(f["seed"])
        else:  # pragma: no cover - every opcode is handled above
            raise AssertionError(opcode)
        return encode_response(self.layout, opcode, Status.OK, **result)

    def _status(self) -> dict:
        c, xb = self.config, self.crossbar
        return {
            "version": PROTOCOL_VERSION,
            "rows": c.rows,
            "cols": c.cols,
            "lanes": c.lanes,
            "g_bits": c.g_bits,
            "x_bits": c.x_bits,
            "levels": c.levels,
            "adc_bits": xb.adc_bits or 0,
            "adc_shift": xb.adc_shift,
            "rect_shift": RECT_IDEAL if xb.rect_shift is None else xb.rect_shift,
            "update_shift": xb.update_shift,
            "noise": (NOISE_READ if xb.read_noise else 0) | (NOISE_WRITE if xb.write_noise else 0),
            "seed": xb.noise_seed,
            "counter": xb.noise_counter,
            "output_bytes": self.layout.output_bytes,
            "hardware": hardware_flags(c),
        }

    def _run_batch_vectors(self, buffer: bytearray, pos: int, out: bytearray) -> int:
        """Run the complete batch vectors at ``buffer[pos:]``; returns the bytes consumed."""
        c, layout = self.config, self.layout
        width = layout.input_bytes
        vector_bytes = c.rows * width
        count = min(self._batch_left, (len(buffer) - pos) // vector_bytes)
        if count == 0:
            return 0
        raw = np.frombuffer(bytes(buffer[pos : pos + count * vector_bytes]), dtype=np.uint8)
        raw = raw.reshape(count, c.rows, width).astype(np.int64)
        codes = np.zeros((count, c.rows), dtype=np.int64)
        for byte in range(width):
            codes |= raw[:, :, byte] << (8 * byte)
        sign = np.int64(1) << (8 * width - 1)
        codes = (codes ^ sign) - sign
        valid = np.all((codes >= c.x_min) & (codes <= c.x_max), axis=1)
        outputs = self.crossbar.vmm_batch(codes[valid]).reshape(-1, c.cols)
        # Responses: opcode, OK, then every output as output_width little-endian bytes.
        y_bytes = layout.output_width
        packed = outputs.astype("<i8").view(np.uint8).reshape(-1, c.cols, 8)[:, :, :y_bytes]
        frames = np.empty((packed.shape[0], 2 + c.cols * y_bytes), dtype=np.uint8)
        frames[:, 0] = Opcode.RUN_BATCH
        frames[:, 1] = Status.OK
        frames[:, 2:] = packed.reshape(packed.shape[0], c.cols * y_bytes)
        if valid.all():
            out += frames.tobytes()
        else:
            error = bytes([Opcode.RUN_BATCH, Status.BAD_INPUT])
            good = iter(frames)
            for ok in valid:
                out += next(good).tobytes() if ok else error
        self._batch_left -= count
        return count * vector_bytes
