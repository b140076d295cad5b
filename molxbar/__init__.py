"""molxbar: an FPGA digital twin of the 64x64 Ru-azo molecular memristor crossbar.

Subpackages: :mod:`molxbar.emulator` (NumPy golden model, device view, workloads, metrics),
:mod:`molxbar.hdl` (Amaranth gateware), :mod:`molxbar.firmware` (command protocol and host
programs) and :mod:`molxbar.boards` (FPGA boards and the open toolchain).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("molxbar")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
