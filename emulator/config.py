"""Crossbar configuration: one frozen object for the golden model and the gateware.

Every width and default of molxbar derives from a :class:`CrossbarConfig`. The fields that the
engine can change at run time (ADC, rectification, noise switches, seed) give the values its
registers hold after reset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

__all__ = [
    "CrossbarConfig",
    "PRESETS",
    "preset",
    "NOISE_FRAC_BITS",
    "SIGMA_SEGMENTS",
    "SIGMA_SCALE_BITS",
    "MAX_SHIFT",
    "MAX_ADC_BITS",
]

#: Fraction bits of read-noise values and of the noisy accumulator (units of 2**-10 level).
NOISE_FRAC_BITS = 10
#: Number of conductance segments with their own noise amplitude (top 4 bits of the level).
SIGMA_SEGMENTS = 16
#: Width of one noise amplitude entry (unsigned).
SIGMA_SCALE_BITS = 12
#: Standard deviation of the integer Gaussian ``z = popcount(w) - 32`` of a 64-bit word.
Z_SIGMA = 4.0
#: Largest ``|z|``.
Z_MAX = 32
#: Largest value of any shift register (ADC, rectification, rank-1 update): 6 bits.
MAX_SHIFT = 63
#: Widest ADC output, in bits (outputs are signed 64-bit at most).
MAX_ADC_BITS = 63


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < low or (high is not None and value > high):
        limit = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} = {value} is out of range: must be {limit}")


def _check_sigma(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} = {value} must be finite and >= 0")


@dataclass(frozen=True, kw_only=True)
class CrossbarConfig:
    """Shape, widths and register defaults of one crossbar.

    Parameters
    ----------
    rows, cols
        Array size. Rows take the input vector, columns give the outputs.
    g_bits
        Width of a stored conductance level code (unsigned).
    levels
        Number of usable levels, ``2 <= levels <= 2**g_bits``; codes are ``0 .. levels-1``.
        ``None`` means ``2**g_bits``.
    x_bits
        Width of an input code (signed, two's complement): the DAC.
    lanes
        Parallel multiply-accumulate lanes of the gateware; must divide ``cols``. It does not
        change any result.
    adc_bits
        Signed output width after the ADC; ``None`` keeps full precision (no saturation).
    adc_shift
        Right shift, rounded half away from zero, before the ADC saturates.
    rect_shift
        Reverse leakage of the unidirectional cells: a negative input ``x`` contributes
        ``(x*g) >> rect_shift`` (arithmetic shift). ``None``: ideal cells, negative inputs
        contribute nothing.
    update_shift
        Default shift ``s`` of the rank-1 pulse update ``round(a_i*b_j / 2**s)``.
    read_sigma, read_sigma_slope
        Read noise, in levels: ``sigma(g) = read_sigma + read_sigma_slope * g``.
    write_sigma, write_sigma_slope
        Error of a direct write, in levels, as a function of the requested level.
    read_noise, write_noise
        Whether the noise is on after reset.
    noise_hardware
        Whether the engine has noise at all. ``False`` builds it without the noise generator
        and the noise arithmetic (for small FPGAs): the noise stays off, and switching it on
        (``SET_NOISE`` with a flag set) is refused with ``BAD_VALUE``.
    leakage_hardware
        Whether the engine can model reverse leakage at all. ``False`` builds it without the
        per-lane shifters of negative-input products (for small FPGAs): the cells stay ideal
        (``rect_shift = None``), and ``SET_RECT`` with a shift is refused with ``BAD_SHIFT``.
    seed
        32-bit seed of the noise generator after reset.
    """

    rows: int = 64
    cols: int = 64
    g_bits: int = 14
    levels: int | None = None
    x_bits: int = 16
    lanes: int = 8
    adc_bits: int | None = None
    adc_shift: int = 0
    rect_shift: int | None = None
    update_shift: int = 0
    read_sigma: float = 0.0
    read_sigma_slope: float = 0.0
    write_sigma: float = 0.0
    write_sigma_slope: float = 0.0
    read_noise: bool = False
    write_noise: bool = False
    noise_hardware: bool = True
    leakage_hardware: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("rows", self.rows, 1, 4096)
        _check_int("cols", self.cols, 1, 4096)
        _check_int("g_bits", self.g_bits, SIGMA_SEGMENTS.bit_length() - 1, 24)
        if self.levels is None:
            object.__setattr__(self, "levels", 1 << self.g_bits)
        _check_int("levels", self.levels, 2, 1 << self.g_bits)
        _check_int("x_bits", self.x_bits, 2, 24)
        _check_int("lanes", self.lanes, 1, self.cols)
        if self.cols % self.lanes:
            raise ValueError(f"lanes = {self.lanes} must divide cols = {self.cols}")
        _check_int("adc_shift", self.adc_shift, 0, self.max_shift)
        if self.adc_bits is not None:
            _check_int("adc_bits", self.adc_bits, 2, MAX_ADC_BITS)
        if self.rect_shift is not None:
            _check_int("rect_shift", self.rect_shift, 0, self.max_shift)
        _check_int("update_shift", self.update_shift, 0, self.max_shift)
        for name in ("read_sigma", "read_sigma_slope", "write_sigma", "write_sigma_slope"):
            _check_sigma(name, getattr(self, name))
        for name in ("read_noise", "write_noise", "noise_hardware", "leakage_hardware"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, not {getattr(self, name)!r}")
        if not self.noise_hardware:
            for name in ("read_noise", "write_noise"):
                if getattr(self, name):
                    raise ValueError(f"{name} = True needs noise_hardware = True")
        if not self.leakage_hardware and self.rect_shift is not None:
            raise ValueError(
                f"rect_shift = {self.rect_shift} needs leakage_hardware = True (None: ideal cells)"
            )
        _check_int("seed", self.seed, 0, (1 << 32) - 1)
        # Every exact result must fit a signed 64-bit integer.
        if self.acc_fine_bits > 63:
            raise ValueError(
                f"the noisy accumulator needs {self.acc_fine_bits} bits, more than 63: "
                f"reduce rows ({self.rows}), x_bits ({self.x_bits}) or g_bits ({self.g_bits})"
            )
        for name, sigma, slope in (
            ("read", self.read_sigma, self.read_sigma_slope),
            ("write", self.write_sigma, self.write_sigma_slope),
        ):
            top = sigma + slope * (self.levels - 1)
            if top > self.sigma_max:
                raise ValueError(
                    f"{name} noise sigma reaches {top:.3g} levels at the top level, "
                    f"above the limit of {self.sigma_max:.3g}"
                )

    # Ranges -----------------------------------------------------------------------------

    @property
    def g_max(self) -> int:
        """Highest level code."""
        return self.levels - 1

    @property
    def x_min(self) -> int:
        """Lowest input code."""
        return -(1 << (self.x_bits - 1))

    @property
    def x_max(self) -> int:
        """Highest input code."""
        return (1 << (self.x_bits - 1)) - 1

    @property
    def pulse_bits(self) -> int:
        """Width of a signed pulse count: any count that can cross the whole range."""
        return self.g_bits + 1

    @property
    def pulse_min(self) -> int:
        return -(1 << (self.pulse_bits - 1))

    @property
    def pulse_max(self) -> int:
        return (1 << (self.pulse_bits - 1)) - 1

    @property
    def max_shift(self) -> int:
        """Largest shift any shift register accepts."""
        return MAX_SHIFT

    # Widths -----------------------------------------------------------------------------

    @property
    def row_bits(self) -> int:
        """Width of a row index."""
        return max(1, (self.rows - 1).bit_length())

    @property
    def col_bits(self) -> int:
        """Width of a column index."""
        return max(1, (self.cols - 1).bit_length())

    @property
    def product_bits(self) -> int:
        """Signed width of one product ``x * g``."""
        return self.x_bits + self.g_bits

    @property
    def acc_bits(self) -> int:
        """Signed accumulator width for noise-free VMMs; overflow is impossible.

        ``g_bits + x_bits + ceil(log2 rows)``: ``|x*g| < 2**(x_bits-1+g_bits)``, a sum of
        ``rows`` of them stays below ``2**(x_bits-1+g_bits+ceil(log2 rows))``, plus a sign bit.
        """
        return self.g_bits + self.x_bits + math.ceil(math.log2(self.rows))

    @property
    def noise_max(self) -> int:
        """Largest ``|n|`` of one read-noise value, in units of ``2**-NOISE_FRAC_BITS`` level."""
        return Z_MAX * ((1 << SIGMA_SCALE_BITS) - 1)

    @property
    def noise_bits(self) -> int:
        """Signed width of one read-noise value ``n`` (``|n| <= noise_max``)."""
        return self.noise_max.bit_length() + 1

    @property
    def noise_acc_bits(self) -> int:
        """Signed width of a column's noise sum ``sum_i contrib(x_i, n_ij)``."""
        return (self.rows * (1 << (self.x_bits - 1)) * self.noise_max).bit_length() + 1

    @property
    def acc_fine_bits(self) -> int:
        """Signed width of the noisy accumulator ``acc * 2**F + noise``."""
        x_mag = 1 << (self.x_bits - 1)
        bound = self.rows * x_mag * ((self.g_max << NOISE_FRAC_BITS) + self.noise_max)
        return bound.bit_length() + 1

    @property
    def out_bits(self) -> int:
        """Signed width of an output word: the accumulator, or ``adc_bits`` when set."""
        return self.acc_fine_bits if self.adc_bits is None else self.adc_bits

    @property
    def segment_shift(self) -> int:
        """A level ``g`` uses noise amplitude ``g >> segment_shift`` (its top 4 bits)."""
        return self.g_bits - (SIGMA_SEGMENTS.bit_length() - 1)

    @property
    def sigma_max(self) -> float:
        """Largest noise sigma, in levels, that the amplitude tables hold."""
        return ((1 << SIGMA_SCALE_BITS) - 1) * Z_SIGMA / (1 << NOISE_FRAC_BITS)

    # Noise amplitude tables -------------------------------------------------------------

    def _sigma_table(self, sigma: float, slope: float) -> tuple[int, ...]:
        # Segment m covers codes [m << shift, (m+1) << shift); its amplitude is sigma at the
        # midpoint, so a noise value n = z * table[m] has std ~= sigma(g) * 2**F.
        table = []
        for m in range(SIGMA_SEGMENTS):
            g_mid = (m + 0.5) * (1 << self.segment_shift)
            scale = (sigma + slope * g_mid) * (1 << NOISE_FRAC_BITS) / Z_SIGMA
            table.append(min(round(scale), (1 << SIGMA_SCALE_BITS) - 1))
        return tuple(table)

    @property
    def read_sigma_table(self) -> tuple[int, ...]:
        """Read-noise amplitude per segment (``SIGMA_SEGMENTS`` unsigned ints)."""
        return self._sigma_table(self.read_sigma, self.read_sigma_slope)

    @property
    def write_sigma_table(self) -> tuple[int, ...]:
        """Write-error amplitude per segment (``SIGMA_SEGMENTS`` unsigned ints)."""
        return self._sigma_table(self.write_sigma, self.write_sigma_slope)

    # Convenience --------------------------------------------------------------------------

    def replace(self, **changes: object) -> CrossbarConfig:
        """A copy with some fields changed (validated again)."""
        if self.levels == 1 << self.g_bits and "g_bits" in changes and "levels" not in changes:
            changes["levels"] = None
        return replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        """The fields, for reports."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# Read noise of the Ru-azo device (DESIGN §1): sigma_G = 27 nS + 1.87e-5 * G with
# G = G_min + g * dG, G_min = 200 nS, dG = 0.357 uS. In levels:
#   sigma(g) = (27e-9 + 1.87e-5 * 200e-9) / 0.357e-6 + 1.87e-5 * g
_RU_AZO_DG = 0.357e-6
_RU_AZO_READ_SIGMA = (27e-9 + 1.87e-5 * 200e-9) / _RU_AZO_DG
_RU_AZO_READ_SLOPE = 1.87e-5
# Direct-write error: 5.1 % of a level at G_min rising to 12.6 % at G_max (the per-pulse
# figures of the third-party model, applied to one-step writes).
_RU_AZO_LEVELS = 16520
_RU_AZO_WRITE_SIGMA = 0.051
_RU_AZO_WRITE_SLOPE = (0.126 - 0.051) / (_RU_AZO_LEVELS - 1)

#: Named configurations. ``ideal14`` is the default.
PRESETS: dict[str, CrossbarConfig] = {
    "ideal14": CrossbarConfig(),
    "ru_azo_2024": CrossbarConfig(
        g_bits=15,
        levels=_RU_AZO_LEVELS,
        read_sigma=_RU_AZO_READ_SIGMA,
        read_sigma_slope=_RU_AZO_READ_SLOPE,
        write_sigma=_RU_AZO_WRITE_SIGMA,
        write_sigma_slope=_RU_AZO_WRITE_SLOPE,
        read_noise=True,
        write_noise=True,
        seed=0x2024,
    ),
}


def preset(name: str, **changes: object) -> CrossbarConfig:
    """The preset ``name``, optionally with some fields changed."""
    try:
        config = PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}: choose one of {', '.join(sorted(PRESETS))}"
        ) from None
    return config.replace(**changes) if changes else config
