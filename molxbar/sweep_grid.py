"""The parameter grids of ``molxbar sweep``: what each sweep kind varies, the values each
parameter allows, and the points of a grid.

A grid maps parameter names to lists of values, from ``--grid NAME=V1,V2,...`` options and
a TOML file (``--grid-file``, top-level ``NAME = [V1, V2, ...]`` keys); the command line wins
over the file for a name given in both. The points are the Cartesian product, in the order of
the kind's parameters, the last parameter varying fastest. Every value is checked before
anything runs: an error names the parameter, the value and what is allowed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GridError", "Parameter", "PARAMETERS", "parse_grid", "grid_points", "point_key"]


class GridError(ValueError):
    """A grid name or value that the sweep kind does not allow."""


@dataclass(frozen=True)
class Parameter:
    """One swept parameter: its name, how a value is read, what is allowed and its default.

    ``convert`` turns a text or TOML value into the parameter's value, raising ``ValueError``
    when it is not one; ``allowed`` describes the allowed set in words for error messages.
    ``default`` is a value, or a callable of the point's other values (a board's own lanes).
    """

    name: str
    convert: Callable[[object], object]
    allowed: str
    default: object
    help: str


def _integer(low: int, high: int | None = None, powers_of_two: bool = False):
    def convert(value: object) -> int:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError
        number = int(str(value), 0) if isinstance(value, str) else int(value)
        if number < low or (high is not None and number > high):
            raise ValueError
        if powers_of_two and number & (number - 1):
            raise ValueError
        return number

    return convert


def _number(positive: bool):
    def convert(value: object) -> float:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if not number == number or number in (float("inf"), float("-inf")):
            raise ValueError
        if number < 0 or (positive and number == 0):
            raise ValueError
        return number

    return convert


def _choice(names: Sequence[str]):
    def convert(value: object) -> str:
        if str(value) not in names:
            raise ValueError
        return str(value)

    return convert


def _adc_bits(value: object) -> int | None:
    if value is None or str(value) == "full":
        return None
    return _integer(2, 63)(value)


def _board_parameters() -> tuple[Parameter, ...]:
    from molxbar.boards.targets import BOARDS, board_config

    boards = sorted(BOARDS)
    return (
        Parameter("board", _choice(boards), "one of " + ", ".join(boards), "icebreaker",
                  "FPGA board"),
        Parameter("lanes", _integer(1, 64, powers_of_two=True),
                  "a power of two from 1 to 64",
                  lambda point: board_config(BOARDS[point["board"]]).lanes,
                  "MAC lanes (default: the board's)"),
        Parameter("clock_mhz", _number(positive=True), "a frequency in MHz above 0",
                  lambda point: BOARDS[point["board"]].clock_hz / 1e6,
                  "engine clock in MHz (default: the board's)"),
        Parameter("seed", _integer(0, (1 << 31) - 1), "an integer from 0 to 2**31-1", 1,
                  "nextpnr placement seed"),
    )  # fmt: skip


def _device_parameters() -> tuple[Parameter, ...]:
    from .sweep_points import MAPPINGS, WORKLOADS

    return (
        Parameter("levels", _integer(2, 1 << 24), "an integer from 2 to 2**24", 1 << 14,
                  "conductance levels (the level code is the fewest bits that hold them)"),
        Parameter("read_sigma", _number(positive=False), "a number of levels >= 0", 0.0,
                  "read noise, standard deviation in levels (0: off)"),
        Parameter("write_sigma", _number(positive=False), "a number of levels >= 0", 0.0,
                  "write error, standard deviation in levels (0: off)"),
        Parameter("adc_bits", _adc_bits, "'full' or an integer from 2 to 63", None,
                  "ADC width in signed bits, ranged to the largest output ('full': none)"),
        Parameter("mapping", _choice(MAPPINGS), "one of " + ", ".join(MAPPINGS), "offset",
                  "signed-weight mapping"),
        Parameter("workload", _choice(WORKLOADS), "one of " + ", ".join(WORKLOADS), "dft",
                  "what runs on the crossbar"),
        Parameter("seed", _integer(0, (1 << 32) - 1), "an integer from 0 to 2**32-1", 0,
                  "seed of the noise generator and of the test signals"),
    )  # fmt: skip


#: The parameters of each sweep kind, in the order of the table's columns.
PARAMETERS: dict[str, Callable[[], tuple[Parameter, ...]]] = {
    "build": _board_parameters,
    "device": _device_parameters,
}


def _split(option: str) -> tuple[str, list[str]]:
    name, equals, values = option.partition("=")
    if not equals or not name.strip():
        raise GridError(f"--grid {option!r} is not NAME=V1,V2,...")
    items = [v.strip() for v in values.split(",")]
    if not values.strip() or "" in items:
        raise GridError(f"--grid {option!r} has an empty value")
    return name.strip(), items


def _read_file(path: str) -> dict[str, list]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise GridError(f"grid file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise GridError(f"grid file {path!r} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"grid file {path!r} is not TOML: {error}") from None
    grid = {}
    for name, values in data.items():
        values = values if isinstance(values, list) else [values]
        if not values or any(isinstance(v, dict | list) for v in values):
            raise GridError(f"grid file {path!r}: {name} must be a value or a list of values")
        grid[name] = values
    return grid


def parse_grid(
    kind: str, options: Iterable[str] = (), grid_file: str | None = None
) -> dict[str, list]:
    """The checked grid of a ``kind`` sweep from ``--grid`` options and a TOML file: each
    named parameter's converted values, duplicates dropped, in the order given."""
    parameters = {p.name: p for p in PARAMETERS[kind]()}
    raw: dict[str, list] = _read_file(grid_file) if grid_file is not None else {}
    for option in options:
        name, values = _split(option)
        raw[name] = values
    grid = {}
    for name, values in raw.items():
        if name not in parameters:
            raise GridError(
                f"{name!r} is not a parameter of a {kind} sweep: choose from "
                + ", ".join(parameters)
            )
        parameter = parameters[name]
        converted = []
        for value in values:
            try:
                value = parameter.convert(value)
            except (ValueError, TypeError, OverflowError):
                raise GridError(
                    f"{name}={value!r} is not allowed: {name} must be {parameter.allowed}"
                ) from None
            if value not in converted:
                converted.append(value)
        grid[name] = converted
    return grid


def grid_points(kind: str, grid: dict[str, list]) -> list[dict[str, object]]:
    """Every point of ``grid`` as a dict of all the kind's parameters (defaults filled in),
    in the order of the parameters, the last varying fastest."""
    parameters = PARAMETERS[kind]()
    given = [grid.get(p.name, [None]) for p in parameters]
    points = []
    for values in itertools.product(*given):
        point: dict[str, object] = {}
        for parameter, value in zip(parameters, values, strict=True):
            if parameter.name not in grid:
                value = (
                    parameter.default(point) if callable(parameter.default) else parameter.default
                )
            point[parameter.name] = value
        points.append(point)
    return points


def point_key(kind: str, point: dict[str, object], extra: dict[str, object]) -> str:
    """A name for ``point``'s cached result: a digest of the kind, the point and ``extra``
    (what else changes the result: the build mode, the workload sizes)."""
    text = json.dumps([kind, point, extra], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
