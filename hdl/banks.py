"""The crossbar's levels: one memory bank per MAC lane.

Column ``j`` of the array is in bank ``j % lanes`` at address ``row << q_bits | j // lanes``
(``q_bits`` the address bits of a lane's group of columns), so that one address reads a row's
level for every lane at once: a VMM walks the rows and the groups of ``lanes`` columns; a
command on one cell reads (and writes) that cell's bank.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from molxbar.emulator.config import CrossbarConfig

__all__ = ["LEVEL_LATENCY", "CHOICE_WIDTH", "LevelBanks", "cell_port_signature"]

#: Cycles from a cell's address on the cell port to its level.
LEVEL_LATENCY = 3
#: Banks among which the first step of a cell's level choice chooses.
CHOICE_WIDTH = 8


def cell_port_signature(config: CrossbarConfig) -> wiring.Signature:
    """The executor's port on the banks (members from the executor's side).

    ``row``, ``col``: the cell (for a VMM, the row and the first column of the group),
    the address of every bank, straight from the executor's registers; ``level``: the cell's
    level, :data:`LEVEL_LATENCY` cycles after the address; ``write`` with ``new_level``:
    stored in the cycle after."""
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

    ready : ``Out(1)``
        The banks answer the cell port (always, except while ``single_port`` banks are
        cleared after reset).

    With ``distributed``, the banks ask synthesis for distributed RAM (LUTs) rather than
    block RAM (``ram_style``). With ``single_port``, each bank is a single-port memory of
    the "huge" kind (the iCE40's SPRAM): one address a cycle, the write's in a write cycle
    (whose read is dropped: the executor never needs it) and the cell port's otherwise. Such
    a memory has no initial contents, so the banks write 0 to every address after reset
    (``rows * cols / lanes`` cycles, ``ready`` low), as the levels of the other kinds start.
    """

    def __init__(
        self, config: CrossbarConfig, *, distributed: bool = False, single_port: bool = False
    ) -> None:
        exact_log2(config.lanes)  # (a power of two, checked by the engine)
        if distributed and single_port:
            raise ValueError("distributed and single_port banks exclude each other")
        self.config = config
        self.distributed = distributed
        self.single_port = single_port
        super().__init__(
            {
                "cell": In(cell_port_signature(config)),
                "levels": Out(unsigned(config.g_bits * config.lanes)),
                "ready": Out(1),
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

        depth = c.rows << q_bits
        # The write: the cell port's in the cycle after. Single-port banks first write 0
        # everywhere, one address a cycle.
        write_addr = Signal(range(depth))
        write_data = Signal(c.g_bits)
        write_en = Signal(c.lanes)
        m.d.sync += [
            write_addr.eq(addr),
            write_data.eq(self.cell.new_level),
            write_en.eq(Cat(self.cell.write & (bank_of_cell == p) for p in range(c.lanes))),
        ]
        read_addr = addr
        if self.single_port:
            clearing = Signal(init=1)
            clear_addr = Signal(range(depth))
            m.d.comb += self.ready.eq(~clearing)
            with m.If(clearing):
                m.d.sync += clear_addr.eq(clear_addr + 1)
                with m.If(clear_addr == depth - 1):
                    m.d.sync += clearing.eq(0)
            write_data = Mux(clearing, 0, write_data)
            write_en = Mux(clearing, (1 << c.lanes) - 1, write_en)
            # One address for both ports; the read keeps its data in a write cycle.
            write_addr = read_addr = Mux(
                write_en.any(), Mux(clearing, clear_addr, write_addr), addr
            )
        else:
            m.d.comb += self.ready.eq(1)

        attrs = None
        if self.distributed:
            attrs = {"ram_style": "distributed"}
        elif self.single_port:
            attrs = {"ram_style": "huge"}
        read_ports = []
        for p in range(c.lanes):
            bank = Memory(shape=unsigned(c.g_bits), depth=depth, init=[], attrs=attrs)
            m.submodules[f"bank{p}"] = bank
            read, write = bank.read_port(), bank.write_port()
            read_ports.append(read)
            m.d.comb += [
                read.addr.eq(read_addr),
                write.addr.eq(write_addr),
                write.data.eq(write_data),
                write.en.eq(write_en[p]),
            ]
            if self.single_port:
                m.d.comb += read.en.eq(~write_en.any())
        m.d.comb += self.levels.eq(Cat(read.data for read in read_ports))
        # The cell's level, chosen in two registered steps: a bank's read data arrives late in
        # the cycle (a block RAM's clock-to-output), so the first step only chooses among
        # ``CHOICE_WIDTH`` banks, the second among those choices.
        width = min(CHOICE_WIDTH, c.lanes)
        step_bits = exact_log2(width)
        chosen = [Signal(c.g_bits, name=f"chosen{k}") for k in range(c.lanes // width)]
        bank_group = Signal(max(1, lane_bits - step_bits))
        datas = [read.data for read in read_ports]
        within = bank_of_cell[:step_bits] if step_bits else Const(0, 1)
        m.d.sync += [
            register.eq(Array(datas[k * width : (k + 1) * width])[within])
            for k, register in enumerate(chosen)
        ]
        m.d.sync += bank_group.eq(bank_of_cell[step_bits:] if lane_bits > step_bits else 0)
        m.d.sync += self.cell.level.eq(Array(chosen)[bank_group])
        return m
