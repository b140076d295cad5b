"""What the commands share: user errors, input arrays, output files and folders checked before
any work, and the record of what a run created (removed if it stops on an error or Ctrl-C)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np

__all__ = [
    "CliError",
    "created",
    "load_array",
    "output_file",
    "output_folder",
    "write_file",
    "positive_int",
]


class CliError(Exception):
    """A user error: printed as ``molxbar: error: ...`` with exit status 2."""


#: The first bytes of every .npy file.
_NPY_MAGIC = b"\x93NUMPY"

#: What this run created (folders, partial files): removed if it stops on an error or Ctrl-C.
created: list[Path] = []


def load_array(path: str, what: str) -> np.ndarray:
    try:
        with open(path, "rb") as file:
            magic = file.read(len(_NPY_MAGIC))
    except FileNotFoundError:
        raise CliError(f"{what} file {path!r} does not exist") from None
    except OSError as error:
        raise CliError(f"{what} file {path!r} cannot be read: {error.strerror}") from None
    if magic != _NPY_MAGIC:
        raise CliError(
            f"{what} file {path!r} is not a .npy file (no NumPy header): save the array "
            f"with numpy.save"
        )
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise CliError(f"{what} file {path!r} is not a readable .npy array: {error}") from None
    if not isinstance(array, np.ndarray):
        raise CliError(f"{what} file {path!r} holds several arrays; give one .npy array")
    return array


def output_file(path: str, what: str) -> Path:
    """``path`` as a file to write, checked before any work: its folder exists and is
    writable, and it is not a folder itself."""
    file = Path(path)
    folder = file.parent
    if file.is_dir():
        raise CliError(f"{what} {path!r} is a folder, not a file")
    if not folder.is_dir():
        raise CliError(f"{what} {path!r}: the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK) or (file.exists() and not os.access(file, os.W_OK)):
        raise CliError(f"{what} {path!r} cannot be written (permission denied)")
    return file


def output_folder(path: str, what: str) -> Path:
    """``path`` as a folder to write into, checked before any work and made if missing (and
    then removed again if the run stops on an error or Ctrl-C)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{what} {path!r} is a file, not a folder")
    parent = folder if folder.is_dir() else folder.parent
    if not parent.is_dir():
        raise CliError(f"{what} {path!r}: the folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise CliError(f"{what} {path!r} cannot be written (permission denied)")
    if not folder.exists():
        try:  # made now: some folders refuse children that os.access allows (/proc)
            folder.mkdir()
        except OSError as error:
            raise CliError(f"{what} {path!r} cannot be made: {error.strerror}") from None
        created.append(folder)
    return folder


def write_file(file: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``file`` through ``write`` into a neighbour, renamed when complete: an
    interrupted run leaves no partial file."""
    partial = file.with_name(f".{file.name}.partial")
    created.append(partial)
    with open(partial, "wb") as stream:
        write(stream)
    os.replace(partial, file)
    created.remove(partial)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value
