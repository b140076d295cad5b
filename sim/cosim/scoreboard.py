"""The scoreboard of the co-simulations: the response bytes of the engine under test held to
the golden engine's, as they arrive (the cocotb bench) or after a run (the native driver)."""

from __future__ import annotations

from molxbar.emulator.config import CrossbarConfig
from molxbar.protocol.difference import first_difference
from molxbar.protocol.golden_engine import GoldenEngine

__all__ = ["Scoreboard"]


class Scoreboard:
    """Compares the DUT's response bytes with the golden engine's, as they arrive.

    Parameters
    ----------
    config
        The crossbar; each :meth:`expect` starts a fresh golden engine (as after a reset).
    """

    def __init__(self, config: CrossbarConfig) -> None:
        self.config = config
        self.commands = b""
        self.expected = b""
        self.checked = 0

    def expect(self, commands: bytes) -> None:
        """The DUT is about to get ``commands`` after a reset."""
        self.commands = bytes(commands)
        self.expected = GoldenEngine(self.config).execute(self.commands)
        self.checked = 0

    def check(self, received: bytes | bytearray) -> None:
        """Compare the bytes received since the last call (``received`` holds all of them)."""
        end = len(received)
        if end == self.checked:
            return
        if received[self.checked : end] != self.expected[self.checked : end]:
            raise AssertionError(self.describe(bytes(received)))
        self.checked = end

    def check_prefix(self, received: bytes, taken: int) -> None:
        """After a reset in mid-traffic: ``received`` must start the golden responses of the
        ``taken`` command bytes the DUT took before the reset."""
        golden = GoldenEngine(self.config).execute(self.commands[:taken])
        if not golden.startswith(received):
            raise AssertionError(
                f"before the reset (after {taken} command bytes): "
                + self.describe(received, self.commands[:taken])
            )

    def finish(self, received: bytes) -> None:
        """At the end of a stream: every expected byte, and nothing more, arrived."""
        self.check(received)
        if len(received) != len(self.expected):
            raise AssertionError(
                f"{len(received)} response bytes, golden {len(self.expected)}: "
                + self.describe(received)
            )

    def describe(self, received: bytes, commands: bytes | None = None) -> str:
        """Name the first command whose response differs from the golden engine's
        (:func:`~molxbar.protocol.difference.first_difference`); the last response may
        still be arriving."""
        commands = self.commands if commands is None else commands
        difference = first_difference(self.config, commands, received, complete=False)
        if difference is None:  # a prefix of the golden responses: the rest is missing
            difference = first_difference(self.config, commands, received)
        return difference or "no difference"
