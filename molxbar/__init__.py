"""molxbar: an FPGA digital twin of the 64x64 Ru-azo molecular memristor crossbar.

The layers, each a subpackage that imports only those before it: :mod:`molxbar.emulator`
(NumPy golden model, device view, workloads, metrics), :mod:`molxbar.protocol` (the command
protocol and the golden engine), :mod:`molxbar.hdl` (Amaranth gateware) and
:mod:`molxbar.host` (driver, transports, programs), :mod:`molxbar.boards` (FPGA boards and
the open toolchain), :mod:`molxbar.sim` (simulators and backends); this package holds the
application (command line, demo, benchmarks). See docs/architecture.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("molxbar")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
