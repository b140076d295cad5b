"""FPGA board platforms and the open toolchain (no modules yet)."""
