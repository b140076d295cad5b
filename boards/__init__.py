"""FPGA boards: the engine behind a UART, board tops, and bitstreams from the open toolchain.

* :mod:`~molxbar.boards.bridge` -- :class:`UARTBridge`, the engine between a UART receiver
  and transmitter (the logic every board carries);
* :mod:`~molxbar.boards.clocks` -- PLL settings and the engine clock domain;
* :mod:`~molxbar.boards.top` -- :class:`BoardTop`: clock, reset, UART pins, status LEDs;
* :mod:`~molxbar.boards.targets` -- the supported boards (``icebreaker``, ``ulx3s-85f``);
* :mod:`~molxbar.boards.build` -- build trees, the YoWASP or system toolchain, ``report.json``;
* :mod:`~molxbar.boards.commands` -- ``molxbar build`` and ``molxbar program``.

The bridge in the Amaranth simulator, bit-serial, is :mod:`molxbar.sim.bridge`.

Amaranth is imported by these modules, not by this package.
"""
