"""Amaranth gateware of the crossbar engine.

:class:`~molxbar.hdl.engine.Engine` is the top: command bytes in, response bytes out,
bit-exact with :class:`~molxbar.protocol.golden_engine.GoldenEngine`. Its parts:
:mod:`~molxbar.hdl.receiver` (command parsing), :mod:`~molxbar.hdl.mac` (MAC lanes and the
ADC stage), :mod:`~molxbar.hdl.speck` (noise words). :mod:`~molxbar.hdl.generate` writes
Verilog or RTLIL; :mod:`~molxbar.sim.simulate` runs command streams in the Amaranth simulator.
"""
