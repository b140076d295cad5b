"""The crossbar's levels: one memory bank per MAC lane.

Column ``j`` of the array is in bank ``j % lanes`` at address ``row << q_bits | j // lanes``
(``q_bits`` the address bits of a lane's group of columns), so that one address reads a row's
level for every lane at once: a VMM walks the rows and the groups of ``lanes`` columns; a
command on one cell reads (and writes) that cell's bank.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from molxbar.emulator.config import CrossbarConfig

__all__ = ["LevelBanks", "cell_port_signature"]


def cell_port_signature(config: CrossbarConfig) -> wiring.Signature:
    """The executor's port on the banks (members from the executor's side).

    ``row``, ``col``: the cell (for a VMM, the row and the first column of the group),
    the address of every bank, straight from the executor's registers; ``level``: the cell's
    level, two cycles after the address; ``write`` with ``new_level``: stored in the cycle
    after."""
    return wiring.Signature(
        {
            "row": Out(range(max(2, config.rows))),
            "col": Out(range(max(2, config.cols))),
            "level": In(config.g_bits),
            "write": Out(1),
            "new_level": Out(config.g_bits),
        }
    )


class LevelBanks(wiring.Component):
    """``lanes`` banks of ``rows * cols / lanes`` levels.

    Members
    -------
    cell : ``In(cell_port_signature(config))``
        The executor's cell port.
    levels : ``Out(unsigned(g_bits * lanes))``
        Every bank's level at the cell port's address, a cycle after it (lane ``p`` in bits
        ``p * g_bits ...``): the row's levels of the group, for the datapath.

    With ``distributed``, the banks ask synthesis for distributed RAM (LUTs) rather than
    block RAM, whose read data arrives late in the cycle (``ram_style``).
    """

    def __init__(self, config: CrossbarConfig, *, distributed: bool = False) -> None:
        exact_log2(config.lanes)  # (a power of two, checked by the engine)
        self.config = config
        self.distributed = distributed
        super().__init__(
            {
                "cell": In(cell_port_signature(config)),
                "levels": Out(unsigned(config.g_bits * config.lanes)),
            }
        )

    def elaborate(self, platform) -> Module:
        c = self.config
        m = Module()
        lane_bits = exact_log2(c.lanes)
        q_bits = ceil_log2(c.cols // c.lanes)
        group = self.cell.col >> lane_bits
        bank_of_cell = self.cell.col[:lane_bits] if lane_bits else Const(0, 1)
        addr = (self.cell.row << q_bits) | group

        read_ports = []
        for p in range(c.lanes):
            bank = Memory(
                shape=unsigned(c.g_bits),
                depth=c.rows << q_bits,
                init=[],
                attrs={"ram_style": "distributed"} if self.distributed else None,
            )
            m.submodules[f"bank{p}"] = bank
            read, write = bank.read_port(), bank.write_port()
            read_ports.append(read)
            m.d.comb += read.addr.eq(addr)
            m.d.sync += [
                write.addr.eq(addr),
                write.data.eq(self.cell.new_level),
                write.en.eq(self.cell.write & (bank_of_cell == p)),
            ]
        m.d.comb += self.levels.eq(Cat(read.data for read in read_ports))
        m.d.sync += self.cell.level.eq(Array(read.data for read in read_ports)[bank_of_cell])
        return m
