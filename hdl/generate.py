"""Verilog and RTLIL of the engine, for simulators and FPGA toolchains."""

from __future__ import annotations

from amaranth.back import rtlil, verilog

from molxbar.emulator.config import CrossbarConfig

from .engine import Engine
from .options import EngineOptions

__all__ = ["FORMATS", "TOP_NAME", "generate"]

FORMATS = ("verilog", "rtlil")
#: Name of the generated top-level module.
TOP_NAME = "molxbar_engine"


def generate(
    config: CrossbarConfig, fmt: str = "verilog", options: EngineOptions | None = None, **changes
) -> str:
    """The engine for ``config`` as Verilog or RTLIL text.

    The output is deterministic (the same bytes for the same arguments) and carries no source
    paths. Ports: ``clk``, ``rst`` (synchronous, active high), ``cmd__valid``,
    ``cmd__ready``, ``cmd__payload``, ``rsp__valid``, ``rsp__ready``, ``rsp__payload``
    (beats of ``stream_bytes``, see :mod:`molxbar.protocol.beats`), ``idle`` and
    ``vmm_cycles[31:0]``. ``options`` and ``changes`` are the :class:`Engine`'s.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format = {fmt!r} is unknown: choose one of {FORMATS}")
    engine = Engine(config, options, **changes)
    if fmt == "verilog":
        return verilog.convert(engine, name=TOP_NAME, emit_src=False)
    return rtlil.convert(engine, name=TOP_NAME, emit_src=False)
