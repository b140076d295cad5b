"""The layers import one way: each package imports only itself and the layers before it,
at module level or inside a function alike.

    emulator <- protocol <- {hdl, host} <- boards <- sim <- molxbar (the application)

``hdl`` and ``host`` stand side by side and import neither each other."""

import subprocess
import sys
from pathlib import Path

import pytest

from molxbar.sim.cosim.cache import imported_modules

ROOT = Path(__file__).resolve().parents[2]
#: Folder, package and rank of each layer.
LAYERS = {
    "emulator": ("molxbar.emulator", 0),
    "protocol": ("molxbar.protocol", 1),
    "hdl": ("molxbar.hdl", 2),
    "host": ("molxbar.host", 2),
    "boards": ("molxbar.boards", 3),
    "sim": ("molxbar.sim", 4),
    "molxbar": ("molxbar", 5),
}


def layer_of(module: str) -> str:
    """The layer a ``molxbar`` module belongs to."""
    for folder, (package, _) in LAYERS.items():
        if package != "molxbar" and (module == package or module.startswith(package + ".")):
            return folder
    return "molxbar"


def modules():
    for folder, (package, _) in LAYERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield folder, ".".join((package, *parts)).rstrip("."), path


@pytest.mark.parametrize(("folder", "module", "path"), list(modules()), ids=lambda v: str(v))
def test_imports_point_down_the_layers(folder, module, path):
    rank = LAYERS[folder][1]
    wrong = sorted(
        imported
        for imported in imported_modules(module, path)
        if (target := layer_of(imported)) != folder and LAYERS[target][1] >= rank
    )
    assert not wrong, f"{module} ({folder}) imports {wrong} against the layers"


def test_every_folder_of_the_package_is_a_layer():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = project["tool"]["setuptools"]["package-dir"].values()
    assert {f.split("/")[0] for f in folders} == set(LAYERS)


def test_protocol_and_host_run_without_amaranth():
    code = (
        "import sys, molxbar.host.driver, molxbar.host.transports, molxbar.host.programs, "
        "molxbar.protocol.framing, molxbar.protocol.difference\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'amaranth' "
        "or m.startswith('molxbar.hdl'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_layer_check_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from molxbar.sim.simulate import simulate_engine\n")
    assert "molxbar.sim.simulate" in imported_modules("molxbar.protocol.lazy", source)
    assert layer_of("molxbar.sim.simulate") == "sim" and layer_of("molxbar.cli") == "molxbar"
