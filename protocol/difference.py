"""The first difference between a backend's responses and the golden engine's, named by its
command: the one report every comparison with the golden engine gives on a mismatch."""

from __future__ import annotations

from molxbar.emulator.config import CrossbarConfig

from .framing import split_commands
from .golden_engine import GoldenEngine
from .spec import Layout

__all__ = ["first_difference"]


def first_difference(
    config: CrossbarConfig, commands: bytes, received: bytes, *, complete: bool = True
) -> str | None:
    """``None`` if ``received`` is the golden engine's response to ``commands`` (from reset);
    otherwise one line naming the first command whose response differs: its index, the
    offset of its first byte, its first bytes, what came and what the golden engine gives.

    With ``complete=False`` a prefix of the golden responses is no difference (the rest may
    still be on its way).
    """
    golden = GoldenEngine(config)
    pos = start = 0
    for index, command in enumerate(split_commands(Layout(config), commands)):
        want = golden.execute(command)
        got = received[pos : pos + len(want)]
        if got != want:
            if not complete and pos + len(got) == len(received) and want.startswith(got):
                return None  # the last response is still arriving
            more = " ..." if len(command) > 16 else ""
            return (
                f"command {index} (command byte {start}: {command[:16].hex(' ')}{more}) "
                f"answered {bytes(got[:24]).hex(' ')}, golden {want[:24].hex(' ')}"
                + ("" if got else " (no response)")
            )
        pos += len(want)
        start += len(command)
    if pos < len(received):
        return (
            f"{len(received) - pos} response byte(s) after the last command's response: "
            f"{bytes(received[pos : pos + 16]).hex(' ')}"
        )
    return None
