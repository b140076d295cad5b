"""Command protocol, golden engine and host programs (NumPy only, no Amaranth)."""
