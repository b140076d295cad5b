"""The device (physics) view of a crossbar: siemens, volts, amperes and joules.

Maps the golden model's level codes and input codes onto the Ru-azo device of Sharma et al.,
Nature 633, 560 (2024) (DESIGN §1): ``G = g_min_s + g * g_step_s``, column currents, read and
programming energy, and a digital multiply-accumulate engine to compare with. It serves plots
and energy reports; no bit-exact result depends on it (DESIGN §3).

The paper gives neither the read voltage nor the read-pulse length. Their defaults (0.1 V,
16.5 ns) make a half-scale 64x64 array read at full-scale input cost 1.99 nJ per VMM, i.e.
4.1 TOPS/W, the press figure (~2 nJ per VMM).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from .checks import check_codes
from .config import CrossbarConfig

__all__ = ["DeviceModel", "DigitalBaseline", "RU_AZO_2024", "HOROWITZ_45NM", "energy_report"]
__all__ += ["PAPER_TOPS_PER_W", "PAPER_ENERGY_RATIO", "PAPER_SNR_DB"]

#: Press figure for the crossbar's efficiency, tera-operations per second per watt.
PAPER_TOPS_PER_W = 4.1
#: "460x less energy than digital computers" (abstract); the digital system is not specified.
PAPER_ENERGY_RATIO = 460.0
#: The SNR of the paper's vector-matrix multiplies and Fourier transforms: "> 73 dB", in dB.
PAPER_SNR_DB = 73.0


def _check_shift(rect_shift: int | None, config: CrossbarConfig) -> float:
    """The fraction ``2**-rect_shift`` that a reverse-biased cell conducts (0 when None)."""
    if rect_shift is None:
        return 0.0
    if isinstance(rect_shift, bool) or not isinstance(rect_shift, (int, np.integer)):
        raise TypeError(f"rect_shift must be an int or None, not {rect_shift!r}")
    if not 0 <= rect_shift <= config.max_shift:
        raise ValueError(
            f"rect_shift = {rect_shift} is out of range: must be in [0, {config.max_shift}]"
        )
    return 2.0 ** -int(rect_shift)


def _check_numbers(obj: object, positive: tuple[str, ...], non_negative: tuple[str, ...]) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{f.name} must be a number, not {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{f.name} = {value} must be finite")
        if f.name in positive and value <= 0:
            raise ValueError(f"{f.name} = {value} must be > 0")
        if f.name in non_negative and value < 0:
            raise ValueError(f"{f.name} = {value} must be >= 0")


@dataclass(frozen=True, kw_only=True)
class DeviceModel:
    """Electrical parameters of one molecular memristor cell (SI units).

    Parameters
    ----------
    g_min_s
        Conductance of level code 0, siemens (200 nS, DESIGN §1).
    g_step_s
        Conductance step per level, siemens (0.357 uS; top code 16519 gives 5.9 mS).
    v_read
        Read voltage at full-scale input code, volts. Not given by the paper; see the module
        docstring.
    t_read
        Duration of one read pulse (one VMM), seconds. Not given by the paper; 16.5 ns makes a
        half-scale 64x64 read at full input cost the press figure of ~2 nJ (4.1 TOPS/W).
    v_potentiate, t_potentiate
        Potentiation pulse: +0.90 V for 80 ns (third-party model, DESIGN §1).
    v_depress, t_depress
        Depression pulse: -0.75 V for 62.5 ns (60-65 ns in the third-party model). Negative.
    depress_ratio
        Depression/potentiation rate ratio of the physical device (0.986). Recorded only: the
        level arithmetic treats pulses as exactly symmetric (+-1 level, DESIGN §3).
    periphery_pj_per_vmm
        Energy of DACs, ADCs and drivers per VMM, picojoules; unknown, so 0 by default.
    """

    g_min_s: float = 200e-9
    g_step_s: float = 0.357e-6
    v_read: float = 0.1
    t_read: float = 16.5e-9
    v_potentiate: float = 0.90
    t_potentiate: float = 80e-9
    v_depress: float = -0.75
    t_depress: float = 62.5e-9
    depress_ratio: float = 0.986
    periphery_pj_per_vmm: float = 0.0

    def __post_init__(self) -> None:
        positive = ("g_min_s", "g_step_s", "v_read", "t_read", "v_potentiate")
        positive += ("t_potentiate", "t_depress", "depress_ratio")
        _check_numbers(self, positive, ("periphery_pj_per_vmm",))
        if self.v_depress >= 0:
            raise ValueError(f"v_depress = {self.v_depress} must be < 0")

    def conductance(
        self, levels: npt.ArrayLike, config: CrossbarConfig | None = None
    ) -> np.ndarray:
        """Conductance in siemens of level codes (any shape); codes must be ``>= 0``, and
        ``<= config.g_max`` when ``config`` is given."""
        codes = check_codes("levels", levels, 0, None if config is None else config.g_max)
        return self.g_min_s + codes * self.g_step_s

    def levels_from_conductance(
        self, g_siemens: npt.ArrayLike, config: CrossbarConfig
    ) -> np.ndarray:
        """The nearest level codes (``int64``) of conductances in siemens, clipped to
        ``[0, config.g_max]``."""
        g = np.asarray(g_siemens, dtype=np.float64)
        if not np.all(np.isfinite(g)):
            raise ValueError("g_siemens must be finite")
        codes = np.rint((g - self.g_min_s) / self.g_step_s)
        return np.clip(codes, 0, config.g_max).astype(np.int64)

    def input_voltages(self, x_codes: npt.ArrayLike, config: CrossbarConfig) -> np.ndarray:
        """Row voltages in volts, ``v_read * x / 2**(x_bits-1)``, sign kept; codes must lie in
        ``[config.x_min, config.x_max]``."""
        x = check_codes("x_codes", x_codes, config.x_min, config.x_max)
        return x * (self.v_read / (1 << (config.x_bits - 1)))

    def _operands(self, levels, x_codes, config) -> tuple[np.ndarray, np.ndarray, bool]:
        """The ``(rows, cols)`` conductances, ``(batch, rows)`` voltages and whether the
        input was a single vector."""
        shape = (config.rows, config.cols)
        if np.shape(levels) != shape:
            raise ValueError(f"levels has shape {np.shape(levels)}, expected {shape}")
        g = self.conductance(levels, config)
        x = np.asarray(x_codes)
        if x.ndim not in (1, 2) or x.shape[-1] != config.rows:
            raise ValueError(
                f"x_codes has shape {x.shape}, expected ({config.rows},) or (batch, {config.rows})"
            )
        return g, np.atleast_2d(self.input_voltages(x, config)), x.ndim == 1

    def column_currents(
        self,
        levels: npt.ArrayLike,
        x_codes: npt.ArrayLike,
        config: CrossbarConfig,
        rect_shift: int | None = None,
    ) -> np.ndarray:
        """Column currents in amperes, ``I_j = sum_i V_i G_ij``.

        Parameters
        ----------
        levels
            ``(rows, cols)`` level codes.
        x_codes
            ``(rows,)`` or ``(batch, rows)`` signed input codes.
        config
            Shape and widths.
        rect_shift
            A reverse-biased cell (``V_i < 0``) conducts ``2**-rect_shift`` of ``V_i G_ij``;
            ``None`` (ideal cells): nothing. The golden model's convention; pass
            ``config.rect_shift`` to follow the configured register.

        Returns
        -------
        ``(cols,)`` or ``(batch, cols)`` currents, amperes.
        """
        g, v, single = self._operands(levels, x_codes, config)
        leak = _check_shift(rect_shift, config)
        current = np.maximum(v, 0.0) @ g
        if leak:
            current += (np.minimum(v, 0.0) * leak) @ g
        return current[0] if single else current

    def vmm_energy(
        self,
        levels: npt.ArrayLike,
        x_codes: npt.ArrayLike,
        config: CrossbarConfig,
        rect_shift: int | None = None,
    ) -> float | np.ndarray:
        """Energy of one VMM in joules: ``t_read * sum_ij V_i**2 G_ij`` over conducting cells
        (reverse-biased ones at ``2**-rect_shift`` of ``G``) plus the periphery.

        Arguments as in :meth:`column_currents`. Returns a float for one input vector, a
        ``(batch,)`` array for a batch.
        """
        g, v, single = self._operands(levels, x_codes, config)
        leak = _check_shift(rect_shift, config)
        weight = np.where(v >= 0, 1.0, leak)
        energy = (v * v * weight) @ g.sum(axis=1) * self.t_read
        energy += self.periphery_pj_per_vmm * 1e-12
        return float(energy[0]) if single else energy

    def pulse_trace(
        self, start_level: int, pulses: npt.ArrayLike, config: CrossbarConfig
    ) -> np.ndarray:
        """Conductance in siemens after each pulse of a sequence of ``+1`` (potentiation) and
        ``-1`` (depression) pulses: each moves one level, saturating at 0 and ``g_max``."""
        (level,) = check_codes("start_level", [start_level], 0, config.g_max).tolist()
        steps = check_codes("pulses", pulses, -1, 1)
        if steps.ndim != 1:
            raise ValueError(f"pulses has shape {steps.shape}, expected (count,)")
        if (steps == 0).any():
            index = int(np.flatnonzero(steps == 0)[0])
            raise ValueError(f"pulses value 0 at index {index} is not a pulse: must be +1 or -1")
        trace = np.empty(steps.size, dtype=np.int64)
        for n, step in enumerate(steps.tolist()):
            level = min(max(level + step, 0), config.g_max)
            trace[n] = level
        return self.g_min_s + trace * self.g_step_s

    def pulse_energy(
        self, level: int, potentiate: bool, config: CrossbarConfig | None = None
    ) -> float:
        """Energy in joules of one programming pulse applied at ``level``: ``V**2 G t``."""
        if not isinstance(potentiate, (bool, np.bool_)):
            raise TypeError(f"potentiate must be a bool, not {potentiate!r}")
        if np.ndim(level) != 0:
            raise ValueError(f"level has shape {np.shape(level)}, expected a scalar")
        g = float(self.conductance(level, config))
        if potentiate:
            return self.v_potentiate**2 * g * self.t_potentiate
        return self.v_depress**2 * g * self.t_depress


#: The Ru-azo device with the defaults above.
RU_AZO_2024 = DeviceModel()


@dataclass(frozen=True, kw_only=True)
class DigitalBaseline:
    """Energy of a digital multiply-accumulate engine, 45 nm (Horowitz, ISSCC 2014,
    "Computing's energy problem").

    Per MAC: one multiply, one add, and the fetch of one weight from SRAM. The input element is
    fetched once per row and reused across the columns, so it is left out. There is no
    instruction, control or DRAM energy: this is a lower bound for a digital engine, whereas
    the paper's 460x compares with unspecified "digital computers".

    Parameters
    ----------
    multiply_pj
        Integer multiply, picojoules. Horowitz gives 0.2 pJ at 8 bits and 3.1 pJ at 32 bits;
        array-multiplier energy grows with the square of the width (0.2 * 4**2 = 3.2 ~ 3.1),
        so 16x16 bits (the 16-bit inputs times the 14/15-bit levels) is 0.2 * 2**2 = 0.8 pJ.
    add_pj
        Accumulate, picojoules: a 32-bit integer add, 0.1 pJ.
    sram_pj_per_64_bits
        Reading 64 bits from an 8 KB SRAM, picojoules: 10 pJ.
    weight_bits
        Bits fetched per weight: 16 (a 14- or 15-bit level in a 16-bit word).
    """

    multiply_pj: float = 0.8
    add_pj: float = 0.1
    sram_pj_per_64_bits: float = 10.0
    weight_bits: int = 16

    def __post_init__(self) -> None:
        _check_numbers(self, ("multiply_pj", "add_pj", "sram_pj_per_64_bits"), ())
        if not isinstance(self.weight_bits, (int, np.integer)) or self.weight_bits < 1:
            raise ValueError(f"weight_bits = {self.weight_bits} must be an int >= 1")

    @property
    def mac_energy_j(self) -> float:
        """Energy of one multiply-accumulate, joules."""
        fetch = self.weight_bits / 64 * self.sram_pj_per_64_bits
        return (self.multiply_pj + self.add_pj + fetch) * 1e-12

    def vmm_energy(self, rows: int, cols: int) -> float:
        """Energy of one ``rows x cols`` VMM, joules: ``rows * cols`` MACs."""
        for name, value in (("rows", rows), ("cols", cols)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} = {value} must be an int >= 1")
        return rows * cols * self.mac_energy_j


#: Horowitz's 45 nm figures with 16-bit operands.
HOROWITZ_45NM = DigitalBaseline()


def energy_report(
    levels: npt.ArrayLike,
    x_codes: npt.ArrayLike,
    config: CrossbarConfig,
    device: DeviceModel = RU_AZO_2024,
    baseline: DigitalBaseline = HOROWITZ_45NM,
    rect_shift: int | None = None,
) -> dict[str, float | int]:
    """Energy of the device against the digital baseline and the paper, for JSON reports.

    Arguments as in :meth:`DeviceModel.column_currents`. A MAC counts as two operations.
    Energies are joules per VMM (the device's is the mean over the batch); ``energy_ratio``
    is digital/device. Raises ValueError when the inputs draw no energy at all.
    """
    energy = np.atleast_1d(device.vmm_energy(levels, x_codes, config, rect_shift))
    device_j = float(energy.mean())
    if not device_j > 0:
        raise ValueError(f"device energy per VMM = {device_j} J: must be > 0 for TOPS/W")
    ops = 2 * config.rows * config.cols
    digital_j = baseline.vmm_energy(config.rows, config.cols)
    return {
        "rows": config.rows,
        "cols": config.cols,
        "vmm_count": int(energy.size),
        "ops_per_vmm": ops,
        "device_energy_per_vmm_j": device_j,
        "device_energy_per_op_j": device_j / ops,
        "device_tops_per_w": ops / device_j / 1e12,
        "digital_mac_energy_j": baseline.mac_energy_j,
        "digital_energy_per_vmm_j": digital_j,
        "digital_tops_per_w": ops / digital_j / 1e12,
        "energy_ratio": digital_j / device_j,
        "paper_tops_per_w": PAPER_TOPS_PER_W,
        "paper_energy_per_vmm_j": ops / (PAPER_TOPS_PER_W * 1e12),
        "paper_energy_ratio": PAPER_ENERGY_RATIO,
    }
