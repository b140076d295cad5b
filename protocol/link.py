"""The boards' serial link, as both ends know it: the bridge gateware (:mod:`molxbar.boards`)
and the host's :class:`~molxbar.host.transports.SerialTransport` take these from here."""

__all__ = ["BOARD_BAUD", "BOARD_FIFO_DEPTH"]

#: UART bit rate of the boards' bridge (``molxbar build``): exact on the FTDI bridges of both
#: boards (3 MHz / 3), and a whole number of cycles per bit at their engine clocks.
BOARD_BAUD = 1_000_000

#: Command FIFO depth of the boards' bridge, bytes: one iCE40 block RAM (512 x 8), a whole
#: VMM command of a 64-row, 16-bit-input crossbar and then some. The serial transport's
#: default window: a host with no more command bytes unanswered cannot overrun the bridge.
BOARD_FIFO_DEPTH = 512
