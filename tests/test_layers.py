"""The package's layers: every import points downwards and nothing imports in a circle.

    interfaces (simrun, api, cli, commands, robot, pytest plugin) -> report -> quant -> pipeline -> backends -> device | analysis -> base

`pipeline` is the one way through (backends -> compare -> diagnose -> policy) that the
CLI, the Robot library and the quantization A/B all run; `quant` converts and A/Bs models.

`device` (the emulated device) and `analysis` (compare, policy) stand side by
side and do not import each other. Function-local imports count as much as
module-level ones: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "simrun"

# (layer, rank): a module may import its own layer and any layer of lower rank.
LAYERS = {
    "base": 0, "device": 1, "analysis": 1, "backends": 2, "pipeline": 3, "quant": 4, "report": 5,
    "interfaces": 6,
}
BASE_MODULES = {"simrun.errors", "simrun.capture", "simrun.model", "simrun.inputs",
                "simrun.resources", "simrun.backend_id", "simrun.run_options", "simrun.version"}
# The package itself is the Python API's front door: `simrun.diff` (simrun.api), loaded lazily.
INTERFACE_MODULES = {"simrun", "simrun.cli", "simrun.__main__", "simrun.api", "simrun.pytest_plugin",
                     "simrun.testing"}


def layer_of(module: str) -> str:
    if module in BASE_MODULES:
        return "base"
    if module in INTERFACE_MODULES:
        return "interfaces"
    top = module.split(".")[1]
    if top in ("commands", "robot", "suite"):
        return "interfaces"
    if top in ("device", "analysis", "backends", "pipeline", "quant", "report"):
        return top
    raise AssertionError(f"{module}: not assigned to a layer; add it to tests/test_layers.py")


def modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        found[".".join(parts)] = (path, is_pkg)
    return found


def imports_of(module: str, path: Path, is_pkg: bool, known: set[str]) -> set[str]:
    """simrun modules that `module` imports, wherever in the file the import stands."""
    out = set()
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import name`: name may be a submodule of pkg or an attribute of it
            names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem for a in node.names]
        else:
            continue
        for name in names:
            # the longest known module that `name` is or lies inside
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


MODULES = modules()
GRAPH = {m: imports_of(m, p, pkg, set(MODULES)) for m, (p, pkg) in MODULES.items()}


def test_every_module_has_a_layer():
    for module in GRAPH:
        assert layer_of(module) in LAYERS


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_downwards(module):
    mine = layer_of(module)
    for imported in GRAPH[module]:
        theirs = layer_of(imported)
        if theirs == mine or imported == "simrun":
            continue
        assert LAYERS[theirs] < LAYERS[mine], (
            f"{module} ({mine}) imports {imported} ({theirs}): only lower layers may be imported")


def test_no_import_cycle():
    state: dict[str, int] = {}      # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The walk above must catch what it is for: a lower layer reaching up."""
    fake = tmp_path / "build.py"
    fake.write_text("def f():\n    from ..backends import run_backend\n")
    known = set(GRAPH) | {"simrun.device.build"}
    found = imports_of("simrun.device.build", fake, False, known)
    assert "simrun.backends" in found
    assert LAYERS[layer_of("simrun.backends")] > LAYERS[layer_of("simrun.device.build")]
