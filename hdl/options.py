"""How an engine is built, as opposed to what it computes (its
:class:`~molxbar.emulator.config.CrossbarConfig`): one frozen set of options with its
defaults defined here, taken by the engine, the Verilog generator, the board builds and the
co-simulation cache."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from molxbar.emulator.noise import SPECK64_ROUNDS
from molxbar.protocol.beats import count_bits

from .mac import check_product_stages

__all__ = ["DEFAULT_SPECK_UNROLL", "EngineOptions"]

#: Speck rounds per cycle of the noise generator unless told otherwise.
DEFAULT_SPECK_UNROLL = 3


@dataclass(frozen=True, kw_only=True)
class EngineOptions:
    """Build options of an :class:`~molxbar.hdl.engine.Engine`; every response byte and
    every VMM's result are the same whatever they are.

    Parameters
    ----------
    stream_bytes
        Bytes per beat on both streams (1 .. 16); ``None``: the fewest that keep a batch of
        VMMs compute-bound for the configuration
        (:func:`~molxbar.hdl.engine.balanced_stream_bytes`).
    speck_unroll
        Speck rounds per cycle of the noise generator (1 .. 27): area against the time a
        noisy operation spends making its words.
    speck_pipeline
        Make the noise words with the pipelined generator instead (a row and a column word
        per cycle, two of each where one would fall behind a VMM, all 27 rounds unrolled;
        :class:`~molxbar.hdl.noise_words.NoiseWords`): about 4,300 LUT4 and 6,700
        flip-flops a way on an ECP5, for a batch of noisy VMMs at nearly the speed of ideal
        ones.
    product_stages
        Registers after each lane's multipliers, 1 or 2 (a cycle more per VMM, for a large
        FPGA whose multipliers are far from the rest of the lane).
    distributed_banks
        Keep the level banks in distributed RAM (LUTs) even where synthesis would take block
        RAM (:class:`~molxbar.hdl.banks.LevelBanks`).
    single_port_banks
        Keep each level bank in a single-port memory of the "huge" kind, the iCE40 UP5K's
        SPRAM (:class:`~molxbar.hdl.banks.LevelBanks`): a bank then needs no block RAM, and
        the engine writes every level to 0 in its first ``rows * cols / lanes`` cycles after
        reset (an SPRAM has no initial contents), answering no command until then.
    noise_multipliers
        Make each cell's noise amplitude product ``z * s`` (and a write's ``z * w``) in a
        multiplier block rather than in logic (:mod:`~molxbar.hdl.deviates`): for an FPGA
        whose logic, not its multipliers, runs out first.
    """

    stream_bytes: int | None = None
    speck_unroll: int = DEFAULT_SPECK_UNROLL
    speck_pipeline: bool = False
    product_stages: int = 1
    distributed_banks: bool = False
    single_port_banks: bool = False
    noise_multipliers: bool = False

    def __post_init__(self) -> None:
        if self.stream_bytes is not None:
            count_bits(self.stream_bytes)  # checks the range, naming the value
        unroll, rounds = self.speck_unroll, SPECK64_ROUNDS
        if isinstance(unroll, bool) or not isinstance(unroll, int) or not 1 <= unroll <= rounds:
            raise ValueError(f"speck_unroll = {unroll!r} must be an int in [1, {rounds}]")
        flags = ("speck_pipeline", "distributed_banks", "single_port_banks", "noise_multipliers")
        for name in flags:
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} = {getattr(self, name)!r} must be a bool")
        check_product_stages(self.product_stages)
        if self.distributed_banks and self.single_port_banks:
            raise ValueError("distributed_banks and single_port_banks exclude each other")

    def replace(self, **changes) -> EngineOptions:
        """A copy with ``changes`` (checked again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return asdict(self)
