"""The engine's registers, declared once: shape, reset value, the command that sets each, and
the STATUS response that reports them.

A register's reset value comes from the :class:`~molxbar.emulator.config.CrossbarConfig`
(what the golden engine starts from), its new value from the fields of its ``SET_*`` command
(:data:`REGISTERS`). The STATUS image is made from the protocol's list of STATUS fields: a
field named like a register reports it, one named like a configuration property reports that
constant, and :data:`STATUS_REPORTS` says how the others are made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from amaranth.hdl import Module, Mux, ShapeLike, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from molxbar.emulator.config import SIGMA_SCALE_BITS, SIGMA_SEGMENTS, CrossbarConfig
from molxbar.protocol import spec
from molxbar.protocol.spec import (
    COMMANDS,
    NOISE_READ,
    NOISE_WRITE,
    PROTOCOL_VERSION,
    RECT_IDEAL,
    TABLE_READ,
    Layout,
    Status,
    hardware_flags,
)

from .jobs import JOB_LAYOUT, Opcode, fields_layout
from .mac import shift_bits
from .sender import response_bytes

__all__ = [
    "REGISTERS",
    "STATUS_REPORTS",
    "EngineRegisters",
    "Register",
    "register_port_signature",
    "status_length",
]

_SIGMA_TABLE = data.ArrayLayout(unsigned(SIGMA_SCALE_BITS), SIGMA_SEGMENTS)


@dataclass(frozen=True)
class Register:
    """One register of the engine.

    ``value`` and ``when`` take the written command's inputs (``fields``, ``sigma`` and
    ``load_slot`` of :class:`EngineRegisters`); a register whose ``hardware`` flag the
    configuration does not have keeps its reset value (its command only accepts that value).
    """

    name: str
    shape: Callable[[CrossbarConfig], ShapeLike]
    init: Callable[[CrossbarConfig], object]
    command: Opcode
    value: Callable[[SimpleNamespace], Value | int]
    when: Callable[[SimpleNamespace], Value] | None = None
    hardware: str | None = None


REGISTERS = (
    Register("adc_bits", shift_bits, lambda c: c.adc_bits or 0, Opcode.SET_ADC,
             lambda w: w.fields.bits),
    Register("adc_shift", shift_bits, lambda c: c.adc_shift, Opcode.SET_ADC,
             lambda w: w.fields.shift),
    Register("rect_ideal", lambda c: 1, lambda c: c.rect_shift is None, Opcode.SET_RECT,
             lambda w: w.fields.shift == RECT_IDEAL, hardware="leakage_hardware"),
    Register("rect_shift", shift_bits, lambda c: c.rect_shift or 0, Opcode.SET_RECT,
             lambda w: w.fields.shift, hardware="leakage_hardware"),
    Register("update_shift", shift_bits, lambda c: c.update_shift, Opcode.SET_UPDATE_SHIFT,
             lambda w: w.fields.shift),
    Register("read_noise", lambda c: 1, lambda c: c.read_noise, Opcode.SET_NOISE,
             lambda w: (w.fields.flags & NOISE_READ) != 0, hardware="noise_hardware"),
    Register("write_noise", lambda c: 1, lambda c: c.write_noise, Opcode.SET_NOISE,
             lambda w: (w.fields.flags & NOISE_WRITE) != 0, hardware="noise_hardware"),
    Register("read_table", lambda c: _SIGMA_TABLE, lambda c: list(c.read_sigma_table),
             Opcode.SET_SIGMA, lambda w: w.sigma, lambda w: w.fields.table == TABLE_READ),
    Register("write_table", lambda c: _SIGMA_TABLE, lambda c: list(c.write_sigma_table),
             Opcode.SET_SIGMA, lambda w: w.sigma, lambda w: w.fields.table != TABLE_READ),
    Register("seed", lambda c: 32, lambda c: c.seed, Opcode.SEED, lambda w: w.fields.seed),
    # (also counts the noisy operations: see ``advance``)
    Register("counter", lambda c: 32, lambda c: 0, Opcode.SEED, lambda w: 0),
    # The input slot RUN_VMM uses (2 or 3); LOAD_INPUT fills the other one.
    Register("loaded_slot", lambda c: 2, lambda c: 2, Opcode.LOAD_INPUT, lambda w: w.load_slot),
)  # fmt: skip

#: STATUS fields that are neither a register nor a configuration property, from the
#: configuration and the registers.
STATUS_REPORTS: dict[str, Callable[[CrossbarConfig, SimpleNamespace], Value | int]] = {
    "version": lambda c, r: PROTOCOL_VERSION,
    "rect_shift": lambda c, r: Mux(r.rect_ideal, RECT_IDEAL, r.rect_shift),
    "noise": lambda c, r: Mux(r.read_noise, NOISE_READ, 0) | Mux(r.write_noise, NOISE_WRITE, 0),
    "output_bytes": lambda c, r: Layout(c).output_bytes,
    "hardware": lambda c, r: hardware_flags(c),
}


#: The registers the executor reads (the others go to the datapath, the rank-1 unit and
#: the noise generator).
EXECUTOR_READS = ("read_noise", "write_noise", "write_table", "loaded_slot")


def register_port_signature(config: CrossbarConfig) -> wiring.Signature:
    """The executor's port on the registers (members from the executor's side): ``write``,
    the ``job`` (checked OK) sets its command's registers in this cycle; ``advance``, a noisy
    operation has made its words (the counter counts it); and the registers it reads."""
    registers = {r.name: r for r in REGISTERS}
    return wiring.Signature(
        {
            "write": Out(1),
            "job": Out(JOB_LAYOUT),
            "advance": Out(1),
            **{
                name: In(registers[name].shape(config), init=registers[name].init(config))
                for name in EXECUTOR_READS
            },
        }
    )


def status_length(config: CrossbarConfig) -> int:
    """Bytes of the STATUS response."""
    return Layout(config).response_length(spec.Opcode.STATUS)


class EngineRegisters(wiring.Component):
    """The registers of :data:`REGISTERS`, one ``Out`` member each, and the STATUS image.

    Members
    -------
    port : ``In(register_port_signature(config))``
        The executor's port.
    fields : ``In(fields_layout())``, sigma : ``In(ArrayLayout(12, 16))``, load_slot : ``In(2)``
        The job's fields, received noise table, and filled input slot (from the receiver).
    <name> : ``Out(...)``
        Each register, with its reset value.
    status : ``Out(8 * status_length(config))``
        The STATUS response: header and report.
    """

    def __init__(self, config: CrossbarConfig) -> None:
        self.config = config
        registers = {
            r.name: Out(r.shape(config), init=r.init(config)) for r in REGISTERS
        }
        super().__init__(
            {
                "port": In(register_port_signature(config)),
                "fields": In(fields_layout()),
                "sigma": In(_SIGMA_TABLE),
                "load_slot": In(2),
                **registers,
                "status": Out(8 * status_length(config)),
            }
        )

    def elaborate(self, platform) -> Module:
        c = self.config
        m = Module()
        written = SimpleNamespace(fields=self.fields, sigma=self.sigma, load_slot=self.load_slot)
        m.d.comb += [getattr(self.port, name).eq(getattr(self, name)) for name in EXECUTOR_READS]
        with m.If(self.port.advance):
            m.d.sync += self.counter.eq(self.counter + 1)
        for r in REGISTERS:
            if r.hardware is not None and not getattr(c, r.hardware):
                continue
            enable = self.port.write & (self.port.job.opcode == r.command)
            if r.when is not None:
                enable = enable & r.when(written)
            with m.If(enable):
                m.d.sync += getattr(self, r.name).eq(r.value(written))
        m.d.comb += self.status.eq(response_bytes(*self.status_parts()))
        return m

    def status_parts(self) -> list[tuple[Value | int, int]]:
        """The STATUS response as (value, bytes) parts, from the protocol's field list."""
        c, layout = self.config, Layout(self.config)
        registers = SimpleNamespace(**{r.name: getattr(self, r.name) for r in REGISTERS})
        parts = [(Opcode.STATUS.value, 1), (Status.OK, 1)]
        for field in COMMANDS[spec.Opcode.STATUS].response:
            if field.name in STATUS_REPORTS:
                value = STATUS_REPORTS[field.name](c, registers)
            elif hasattr(registers, field.name):
                value = getattr(registers, field.name)
            else:
                value = getattr(c, field.name)
            parts.append((value, layout.width(field.kind)))
        return parts
