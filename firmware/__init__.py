"""Command protocol and host programs (no modules yet)."""
