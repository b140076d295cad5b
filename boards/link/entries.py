"""A received frame as the transmitter is told of it: one entry per frame, from the
:class:`~molxbar.boards.link.receiver.LinkReceiver` to the
:class:`~molxbar.boards.link.transmitter.LinkTransmitter`."""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, enum

__all__ = ["Action", "entry_layout"]


class Action(enum.Enum, shape=3):
    """What the transmitter does for an entry."""

    RUN = 0  # OK: the engine's responses to the frame's commands
    REPLAY = 1  # REPLAY (or REPLAY_LOST): the replay buffer
    COUNTERS = 2  # OK: the counters
    CLEAR = 3  # OK: the counters, then cleared
    REFUSE = 4  # the status alone


def entry_layout(pointer_bits: int) -> data.StructLayout:
    """One received frame for the transmitter: its ``seq``, status, action, and for
    ``RUN`` the buffer pointer just past its payload."""
    return data.StructLayout(
        {"seq": 8, "status": 8, "action": Action, "end": unsigned(pointer_bits)}
    )
