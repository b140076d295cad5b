"""Amaranth gateware of the crossbar engine (no components yet)."""
