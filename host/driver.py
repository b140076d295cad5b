"""The host driver: one crossbar API over any transport.

:class:`CrossbarDriver` turns calls (``program_levels``, ``pulse``, ``vmm_batch``, ...) into
commands of :mod:`~molxbar.protocol.spec`, sends them through a transport
(:mod:`~molxbar.host.transports`: the golden engine, the Amaranth simulation, a serial
port) and decodes the responses. An error status from the engine raises
:class:`~molxbar.host.programs.EngineError` with the opcode, status code and text; a
rejected command changes nothing. Operations made of several commands check their arguments
first, so they are sent whole or not at all.

Example::

    from molxbar.host.driver import CrossbarDriver
    from molxbar.host.transports import GoldenTransport

    xbar = CrossbarDriver(GoldenTransport())
    xbar.program_levels(levels)          # (64, 64) level codes
    y = xbar.vmm_batch(x)                # (batch, 64) input codes -> (batch, 64) outputs
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from molxbar.emulator.checks import check_codes
from molxbar.emulator.config import SIGMA_SCALE_BITS, SIGMA_SEGMENTS, CrossbarConfig
from molxbar.protocol.errors import EngineError, ProtocolError
from molxbar.protocol.spec import (
    MAX_BATCH,
    NOISE_READ,
    NOISE_WRITE,
    PROTOCOL_VERSION,
    RECT_IDEAL,
    TABLE_READ,
    TABLE_WRITE,
    Layout,
    Opcode,
    Response,
    Status,
    decode_response,
    encode_command,
)

from .transports import Transport, config_from_status

__all__ = ["CrossbarDriver", "ProtocolError"]


class CrossbarDriver:
    """A crossbar behind a transport.

    Parameters
    ----------
    transport
        Where the commands go (:class:`~molxbar.host.transports.Transport`).
    config
        The crossbar's configuration, for field widths. By default the transport's
        ``config``; failing that, the engine is asked (``STATUS``) for its shape and widths.

    Methods that read return NumPy ``int64`` arrays or ints; level codes are
    ``0 .. levels-1``, input codes ``x_min .. x_max`` of the configuration.
    """

    def __init__(self, transport: Transport, config: CrossbarConfig | None = None) -> None:
        self.transport = transport
        config = config or getattr(transport, "config", None)
        adc_bits = None  # the ADC width register: the configuration's unless STATUS says
        if config is None:
            config, adc_bits = self._discover()
        if not isinstance(config, CrossbarConfig):
            raise TypeError(f"config must be a CrossbarConfig, not {config!r}")
        self.config = config
        #: The field widths; they follow the ADC width register (the outputs' width).
        self.layout = Layout(config) if adc_bits is None else Layout(config).at_adc(adc_bits)
        #: Commands sent and response bytes received, for reports.
        self.commands_sent = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def close(self) -> None:
        """Close the transport (a serial port, a waveform file)."""
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> CrossbarDriver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # Transactions -------------------------------------------------------------------------

    def _discover(self) -> tuple[CrossbarConfig, int]:
        """A configuration with the engine's shape and widths, and its ADC width register,
        from its STATUS response."""
        self.transport.send(bytes([Opcode.STATUS]))
        head = self.transport.receive(2)
        if head != bytes([Opcode.STATUS, Status.OK]):
            raise ProtocolError(f"STATUS answered {head.hex(' ')}")
        # STATUS fields have fixed widths: any layout decodes them.
        layout = Layout(CrossbarConfig(rows=1, cols=1, lanes=1))
        body = self.transport.receive(layout.response_length(Opcode.STATUS) - 2)
        fields = decode_response(layout, head + body)[0].fields
        self._check_version(fields)
        return config_from_status(fields), fields["adc_bits"]

    @staticmethod
    def _check_version(fields: dict) -> None:
        if fields["version"] != PROTOCOL_VERSION:
            raise ProtocolError(
                f"the engine speaks protocol version {fields['version']}, "
                f"this driver version {PROTOCOL_VERSION}"
            )

    def _receive(self, opcode: Opcode) -> Response:
        """One response to ``opcode``: the head, then the fields when the status is OK."""
        head = self.transport.receive(2)
        self.bytes_received += 2
        if head[0] != opcode:
            raise ProtocolError(
                f"expected a response to {opcode.name} ({opcode:#04x}), got opcode {head[0]:#04x}"
            )
        try:
            status = Status(head[1])
        except ValueError:
            raise ProtocolError(f"{opcode.name} answered unknown status {head[1]:#04x}") from None
        if status is not Status.OK:
            return Response(opcode, status, {})
        rest = self.layout.response_length(opcode) - 2
        body = self.transport.receive(rest) if rest else b""
        self.bytes_received += rest
        response = decode_response(self.layout, head + body)[0]
        self.layout = self.layout.after(response)  # SET_ADC: the outputs' width from now on
        return response

    def _send(self, commands: Sequence[bytes]) -> None:
        data = b"".join(commands)
        self.transport.send(data)
        self.commands_sent += len(commands)
        self.bytes_sent += len(data)

    def execute(self, opcode: Opcode, **fields) -> dict:
        """Send one command and return its response fields; an error status raises
        :class:`EngineError`."""
        return self.execute_many([(opcode, fields)])[0]

    def execute_many(self, commands: Sequence[tuple[Opcode, dict]]) -> list[dict]:
        """Send several commands at once (no round trip between them), then read every
        response. The first error status raises :class:`EngineError` once all responses
        are in, so the link stays in step."""
        self._send([encode_command(self.layout, op, **f) for op, f in commands])
        responses = [self._receive(Opcode(op)) for op, _ in commands]
        for response in responses:
            if not response.ok:
                raise EngineError(response.opcode, response.status)
        return [r.fields for r in responses]

    # Link and registers -------------------------------------------------------------------

    def sync(self, value: int = 0xA5) -> None:
        """Echo ``value`` through the engine: checks the link and the command boundary."""
        echo = self.execute(Opcode.SYNC, value=value)["value"]
        if echo != value:
            raise ProtocolError(f"SYNC {value:#04x} echoed {echo:#04x}")

    def status(self) -> dict:
        """The engine's configuration and registers (``STATUS`` fields, as ints)."""
        fields = self.execute(Opcode.STATUS)
        self._check_version(fields)
        self.layout = self.layout.at_adc(fields["adc_bits"])
        return fields

    def set_adc(self, bits: int | None = None, shift: int = 0) -> None:
        """ADC output width (``None``: full precision) and its right shift."""
        self.execute(Opcode.SET_ADC, bits=0 if bits is None else bits, shift=shift)

    def set_rect(self, shift: int | None = None) -> None:
        """Reverse leakage of negative inputs, ``(x*g) >> shift``; ``None``: ideal cells.
        ``ValueError``, before anything is sent, for a shift on an engine without leakage
        hardware."""
        if shift is not None and not self.config.leakage_hardware:
            raise ValueError(
                f"shift = {shift}: the engine has no leakage hardware (its cells are ideal); "
                f"only None is possible"
            )
        self.execute(Opcode.SET_RECT, shift=RECT_IDEAL if shift is None else shift)

    def set_update_shift(self, shift: int) -> None:
        """Shift ``s`` of rank-1 updates, ``round(a_i*b_j / 2**s)``."""
        self.execute(Opcode.SET_UPDATE_SHIFT, shift=shift)

    def set_noise(self, read: bool, write: bool) -> None:
        """Switch the read noise and the write error on or off. ``ValueError``, before
        anything is sent, for noise on an engine without noise hardware."""
        if (read or write) and not self.config.noise_hardware:
            raise ValueError(
                f"read = {read}, write = {write}: the engine has no noise hardware (an ideal "
                f"bitstream); only noise off is possible"
            )
        self.execute(
            Opcode.SET_NOISE, flags=(NOISE_READ * bool(read)) | (NOISE_WRITE * bool(write))
        )

    def set_sigma(self, table: str, scale: Sequence[int]) -> None:
        """Set the ``"read"`` or ``"write"`` noise amplitude table (``SIGMA_SEGMENTS``
        entries of ``0 .. 2**SIGMA_SCALE_BITS - 1``)."""
        selector = {"read": TABLE_READ, "write": TABLE_WRITE}.get(table)
        if selector is None:
            raise ValueError(f"table = {table!r} must be 'read' or 'write'")
        scale = check_codes("scale", scale, 0, (1 << SIGMA_SCALE_BITS) - 1, (SIGMA_SEGMENTS,))
        self.execute(Opcode.SET_SIGMA, table=selector, scale=scale)

    def seed(self, value: int) -> None:
        """Set the 32-bit noise seed; the operation counter restarts at 0."""
        self.execute(Opcode.SEED, seed=value)

    # Levels ----------------------------------------------------------------------------------

    def write_cell(self, row: int, col: int, level: int) -> None:
        """Direct write of one cell (plus the write error when it is on)."""
        self.execute(Opcode.WRITE_CELL, row=row, col=col, level=level)

    def write_row(self, row: int, levels: Sequence[int]) -> None:
        """Direct write of a whole row in one operation."""
        self.execute(Opcode.WRITE_ROW, row=row, levels=np.asarray(levels))

    def program_levels(self, levels, rows: Sequence[int] | None = None) -> None:
        """Direct write of a ``(rows, cols)`` level matrix, one WRITE_ROW per row, sent
        together. Every code is checked first: nothing is written if one is out of range.

        ``rows`` writes only those rows (of the full-size ``levels``).
        """
        c = self.config
        codes = check_codes("levels", levels, 0, c.g_max, (c.rows, c.cols))
        rows = range(c.rows) if rows is None else [int(r) for r in rows]
        self.execute_many([(Opcode.WRITE_ROW, {"row": r, "levels": codes[r]}) for r in rows])

    def pulse(self, row: int, col: int, count: int) -> None:
        """``count`` potentiation pulses (``> 0``) or ``-count`` depression pulses on one
        cell, saturating at 0 and ``levels - 1``."""
        self.execute(Opcode.PULSE_CELL, row=row, col=col, count=count)

    def pulse_cells(self, counts) -> int:
        """A pulse count for every cell, ``(rows, cols)``; zeros send nothing. Returns the
        number of PULSE_CELL commands sent. Counts are checked first."""
        c = self.config
        counts = check_codes("counts", counts, c.pulse_min, c.pulse_max, (c.rows, c.cols))
        rows, cols = np.nonzero(counts)
        self.execute_many(
            [
                (Opcode.PULSE_CELL, {"row": int(r), "col": int(k), "count": int(counts[r, k])})
                for r, k in zip(rows, cols, strict=True)
            ]
        )
        return len(rows)

    def update_rank1(self, a, b, shift: int | None = None) -> None:
        """Rank-1 pulse update ``g_ij += round(a_i*b_j / 2**shift)``, saturating; ``a``
        (rows) and ``b`` (cols) are input codes. ``shift`` first sets the update-shift
        register; by default the register is used as it is."""
        if shift is not None:
            self.set_update_shift(shift)
        self.execute(Opcode.UPDATE_RANK1, a=np.asarray(a), b=np.asarray(b))

    def update_rank1_batch(self, a, b) -> None:
        """Several rank-1 updates in a row, ``a`` ``(k, rows)`` and ``b`` ``(k, cols)``, sent
        together: ``g += round(a_k b_k^T / 2**s)`` for each ``k`` in turn, with the
        update-shift register's ``s``."""
        c = self.config
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
            raise ValueError(f"a and b must be (k, rows) and (k, cols), not {a.shape}, {b.shape}")
        check_codes("a", a, c.x_min, c.x_max, (a.shape[0], c.rows))
        check_codes("b", b, c.x_min, c.x_max, (b.shape[0], c.cols))
        self.execute_many(
            [(Opcode.UPDATE_RANK1, {"a": ak, "b": bk}) for ak, bk in zip(a, b, strict=True)]
        )

    def read_cell(self, row: int, col: int) -> int:
        """The level code of one cell."""
        return int(self.execute(Opcode.READ_CELL, row=row, col=col)["level"])

    def read_row(self, row: int) -> np.ndarray:
        """The ``(cols,)`` level codes of one row."""
        return self.execute(Opcode.READ_ROW, row=row)["levels"]

    def read_levels(self) -> np.ndarray:
        """Every level code, ``(rows, cols)``: one READ_ROW per row, sent together."""
        rows = self.execute_many([(Opcode.READ_ROW, {"row": r}) for r in range(self.config.rows)])
        return np.stack([f["levels"] for f in rows])

    # Vector-matrix multiplication -----------------------------------------------------------

    def load_input(self, x) -> None:
        """Load the ``(rows,)`` input vector of RUN_VMM."""
        self.execute(Opcode.LOAD_INPUT, x=np.asarray(x))

    def vmm(self, x) -> np.ndarray:
        """One VMM of input codes ``x`` (rows,): LOAD_INPUT then RUN_VMM; ``(cols,)``."""
        load, run = self.execute_many(
            [(Opcode.LOAD_INPUT, {"x": np.asarray(x)}), (Opcode.RUN_VMM, {})]
        )
        return run["y"]

    def vmm_batch(
        self,
        inputs,
        *,
        chunk: int = MAX_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """A batch of VMMs, ``(batch, rows)`` input codes to ``(batch, cols)`` outputs.

        Sent as RUN_BATCH commands of at most ``chunk`` vectors; ``progress`` is called with
        the vectors done after each. A vector the engine rejects raises
        :class:`EngineError` (after the whole chunk is answered).
        """
        c = self.config
        x = np.asarray(inputs)
        if x.ndim != 2 or x.shape[1] != c.rows:
            raise ValueError(f"inputs have shape {x.shape}, expected (batch, {c.rows})")
        if not 1 <= chunk <= MAX_BATCH:
            raise ValueError(f"chunk = {chunk} must be in [1, {MAX_BATCH}]")
        width = self.layout.response_length(Opcode.RUN_BATCH)
        out = np.empty((x.shape[0], c.cols), dtype=np.int64)
        for start in range(0, x.shape[0], chunk):
            part = x[start : start + chunk]
            self._send([encode_command(self.layout, Opcode.RUN_BATCH, count=len(part), x=part)])
            frames = bytearray()
            error = None
            for index in range(len(part)):
                head = self.transport.receive(2)
                if head[0] != Opcode.RUN_BATCH:
                    raise ProtocolError(f"expected a RUN_BATCH response, got opcode {head[0]:#04x}")
                if head[1] == Status.OK:
                    frames += self.transport.receive(width - 2)
                elif error is None:
                    try:
                        error = (start + index, Status(head[1]))
                    except ValueError:
                        raise ProtocolError(
                            f"RUN_BATCH answered unknown status {head[1]:#04x}"
                        ) from None
            self.bytes_received += len(frames) + 2 * len(part)
            if error is not None:
                raise EngineError(Opcode.RUN_BATCH, error[1], f"vector {error[0]}")
            out[start : start + len(part)] = _decode_outputs(self.layout, frames, len(part))
            if progress is not None:
                progress(start + len(part))
        return out


def _decode_outputs(layout: Layout, frames: bytes, count: int) -> np.ndarray:
    """The outputs of ``count`` OK batch responses with their heads removed."""
    c = layout.config
    width = layout.output_width
    raw = np.frombuffer(bytes(frames), dtype=np.uint8).reshape(count, c.cols, width)
    values = np.zeros((count, c.cols), dtype=np.int64)
    for byte in range(width):
        values |= raw[:, :, byte].astype(np.int64) << (8 * byte)
    if width < 8:
        sign = np.int64(1) << (8 * width - 1)
        values = (values ^ sign) - sign
    return values
