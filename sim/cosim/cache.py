"""The engine's Verilog and the simulators' builds of it, cached on disk.

Generating the full 64x64, 64-lane engine takes minutes and building it with Verilator takes
minutes more, so both are kept in a cache folder and reused while nothing they depend on
changes. A cache entry is keyed by a hash of the configuration, the stream width, the
generator options, the source of :mod:`molxbar.hdl.generate` and of every molxbar module it
imports, and the Amaranth version: an edit to the gateware makes a new entry, never a stale
hit.

The folder is ``$MOLXBAR_CACHE`` if set, else ``$XDG_CACHE_HOME/molxbar`` (default
``~/.cache/molxbar``). Entries are written atomically under a file lock, so parallel test
workers generate each design once.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.metadata import version
from pathlib import Path

from molxbar.emulator.config import CrossbarConfig
from molxbar.hdl.options import EngineOptions

__all__ = ["announce", "cache_dir", "design_key", "source_digest", "verilog_file", "locked"]


def announce(text: str) -> None:
    """Say what a long step that runs once per design is doing (on standard error, where
    the command line's progress goes too)."""
    print(f"molxbar: {text}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """The cache folder (created on first use)."""
    root = os.environ.get("MOLXBAR_CACHE")
    if root:
        path = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(xdg) / "molxbar"
    path.mkdir(parents=True, exist_ok=True)
    return path


def imported_modules(name: str, path: Path) -> set[str]:
    """The ``molxbar`` modules that the module ``name`` (its source at ``path``) imports,
    anywhere in its source (inside functions too); a name imported from a module counts as
    a possible submodule."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # submodules
    return {m for m in found if m.startswith("molxbar.")}


@cache
def source_digest() -> str:
    """SHA-256 over the source of :mod:`molxbar.hdl.generate` and every molxbar module it
    imports, directly or not, and Amaranth's version: what the generated Verilog depends on
    (an edit to, say, the UART does not make new designs)."""
    digest = hashlib.sha256(f"amaranth {version('amaranth')}\n".encode())
    todo, seen = ["molxbar.hdl.generate"], {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:  # a name imported from a module, not a module
            continue
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue  # a name imported from a module, not a module
        seen[name] = path = Path(spec.origin)
        todo.extend(imported_modules(name, path))
    for name in sorted(seen):
        digest.update(f"{name}\n".encode())
        digest.update(seen[name].read_bytes())
    return digest.hexdigest()


def design_key(config: CrossbarConfig, options: EngineOptions | None = None) -> str:
    """The cache key of one generated design (24 hex digits)."""
    options = EngineOptions() if options is None else options
    description = json.dumps(
        {
            "config": config.as_dict(),
            "options": options.as_dict(),
            "source": source_digest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(description.encode()).hexdigest()[:24]


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a lock file next to a cache entry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def verilog_file(config: CrossbarConfig, options: EngineOptions | None = None) -> Path:
    """The engine for ``config`` as a Verilog file in the cache, generated if missing.

    Parameters
    ----------
    options
        How the engine is built (:class:`~molxbar.hdl.options.EngineOptions`; the defaults
        when ``None``).

    Returns the path of ``<cache>/verilog/<key>/molxbar_engine.v``; its folder also holds
    ``design.json`` (the configuration and the generation time in seconds).
    """
    if not isinstance(config, CrossbarConfig):
        raise TypeError(f"config must be a CrossbarConfig, not {config!r}")
    options = EngineOptions() if options is None else options
    key = design_key(config, options)
    folder = cache_dir() / "verilog" / key
    path = folder / "molxbar_engine.v"
    if path.is_file():
        return path
    with locked(folder.with_suffix(".lock")):
        if path.is_file():  # made by another process while this one waited
            return path
        announce(
            f"generating the Verilog of the {config.rows}x{config.cols}, {config.lanes}-lane "
            f"engine (once: then cached in {cache_dir()})"
        )
        start = time.perf_counter()
        from molxbar.hdl.generate import generate

        text = generate(config, "verilog", options)
        seconds = time.perf_counter() - start
        folder.mkdir(parents=True, exist_ok=True)
        info = {
            "config": config.as_dict(),
            "options": options.as_dict(),
            "generate_seconds": round(seconds, 3),
        }
        (folder / "design.json").write_text(json.dumps(info, indent=2) + "\n")
        partial = path.with_suffix(".v.partial")
        partial.write_text(text)
        partial.replace(path)
    return path
