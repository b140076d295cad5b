"""Errors of a conversation with an engine, whatever carries it."""

from __future__ import annotations

from .spec import STATUS_TEXT, Opcode, Status

__all__ = ["EngineError", "ProtocolError"]


class EngineError(RuntimeError):
    """The engine answered a command with an error status.

    Attributes
    ----------
    opcode
        The command's opcode byte.
    status
        The :class:`~molxbar.protocol.spec.Status` (its value is the engine's code).
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


class ProtocolError(RuntimeError):
    """The engine's bytes are not the response the protocol expects (a broken link)."""
