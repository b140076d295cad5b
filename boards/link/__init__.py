"""The link layer of the board bridge in gateware: frames in, whole good frames to the
engine, response frames out (docs/link.md; constants in :mod:`molxbar.protocol.link`, the
same behaviour in Python in :mod:`molxbar.protocol.link_model`).

* :class:`LinkReceiver` (:mod:`.receiver`) -- SLIP-decodes the line bytes, checks escapes,
  length and CRC, writes a command frame's payload into the command buffer and commits it
  only when the frame is whole and good; every frame becomes one entry for the transmitter
  (:mod:`.entries`).
* :class:`BufferReader` (:mod:`.buffers`) -- hands the committed bytes of the frame being
  answered to the engine, one command beat each.
* :class:`LinkTransmitter` (:mod:`.transmitter`) -- answers each entry with a response
  frame: the engine's responses for a frame that runs (kept in the replay buffer), the
  replay buffer for a repeated frame, the counters for a control frame, nothing for a
  refused one.
* :class:`SlipEncoder` (:mod:`.slip`) -- escapes the response bytes and sends ``END`` for
  delimiters.
* :class:`LinkCounters` (:mod:`.counters`) -- the saturating link counters.
* :class:`SerialCRC` (:mod:`.crc`) -- the CRC register of the receiver and the
  transmitter, a bit a cycle.
"""

from .buffers import BufferReader, check_buffer_bytes
from .counters import COUNTERS_LAYOUT, LinkCounters
from .crc import SerialCRC
from .entries import Action, entry_layout
from .receiver import LinkReceiver
from .slip import TX_BYTE_LAYOUT, SlipEncoder
from .transmitter import LinkTransmitter

__all__ = [
    "COUNTERS_LAYOUT",
    "Action",
    "BufferReader",
    "LinkCounters",
    "LinkReceiver",
    "LinkTransmitter",
    "SlipEncoder",
    "TX_BYTE_LAYOUT",
    "check_buffer_bytes",
    "SerialCRC",
    "entry_layout",
]
