"""The architecture, checked from the source: which packages may import MLflow and Optuna, which
layer may import which, no import cycles, and modules of a readable size."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "textclf"

# a module may import textclf modules of its own layer or below, never above (README, Development)
# "textclf": the package's __init__, which re-exports api/
LAYERS = {
    "errors": 0,
    "interrupts": 0,
    "environment": 0,
    "assets": 0,
    "pathnames": 0,
    "config": 1,
    "stats": 1,
    "data": 2,
    "model": 2,
    "training": 2,
    "tracking": 3,
    "run": 4,
    "predict": 4,
    "inspect": 4,
    "reporting": 4,
    "ops": 4,
    "studies": 5,
    "api": 6,
    "cli": 6,
    "__main__": 6,
    "textclf": 6,
}
# within layer 2, what each package may use of the other two (nothing: they meet in run.py)
SIBLINGS = {"data": set(), "model": set(), "training": set()}


@functools.cache
def modules() -> dict[str, ast.Module]:
    return {
        ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): ast.parse(
            p.read_text()
        )
        for p in sorted(PACKAGE.rglob("*.py"))
    }


def imports(tree: ast.Module, module_level_only: bool = False) -> set[str]:
    """Absolute names imported anywhere in the module (or only at its top level)."""
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def part(name: str) -> str:
    """textclf.tracking.runs -> tracking; textclf.cli -> cli."""
    return name.split(".")[1] if name.count(".") >= 1 else name


def owners_of(library: str) -> set[str]:
    return {
        part(m)
        for m, tree in modules().items()
        if any(i == library or i.startswith(library + ".") for i in imports(tree))
    }


def test_only_tracking_imports_mlflow():
    assert owners_of("mlflow") == {"tracking"}


def test_only_studies_imports_optuna():
    assert owners_of("optuna") == {"studies"}


def test_training_imports_neither_mlflow_nor_optuna_nor_data_nor_model():
    for name, tree in modules().items():
        if part(name) == "training":
            used = imports(tree)
            assert not {i for i in used if i.split(".")[0] in ("mlflow", "optuna")}, name
            assert not {
                i
                for i in used
                if i.startswith(("textclf.data", "textclf.model", "textclf.tracking"))
            }, name


@pytest.mark.parametrize("name", sorted(modules()))
def test_each_module_imports_only_its_own_layer_or_below(name):
    tree, mine = modules()[name], part(name)
    for used in imports(tree):
        if not used.startswith("textclf.") or used.count(".") < 1:
            continue
        other = part(used)
        if other not in LAYERS or other == mine:
            continue
        assert LAYERS[other] <= LAYERS[mine], (
            f"{name} imports {used}: layer {other} is above {mine}"
        )
        if mine in SIBLINGS and other in SIBLINGS:
            assert other in SIBLINGS[mine], (
                f"{name} imports {used}: {mine} and {other} meet in run.py"
            )


# what a command may import below the API: its error handling and what only prints a result
CLI_MAY_IMPORT = {
    "textclf.errors",
    "textclf.interrupts",
    "textclf.reporting.verdicts",
    "textclf.inspect",
}


def test_the_commands_go_through_the_api():
    """cli/ parses options, calls textclf.api and prints: it imports no package below api/ except
    to print (main: the tool commands called tracking/, model/ and config/ directly)."""
    for name, tree in modules().items():
        if part(name) != "cli":
            continue
        below = {
            i.rsplit(".", 1)[0] if i.rsplit(".", 1)[0] in modules() and i not in modules() else i
            for i in imports(tree)
            if i.startswith("textclf.") and part(i) not in ("cli", "api")
        }
        assert below <= CLI_MAY_IMPORT, f"{name} imports {sorted(below - CLI_MAY_IMPORT)}"


def test_operations_are_not_mlflow_io():
    """ops/ runs servers and their logins; it talks to MLflow only through tracking/."""
    assert "ops" not in owners_of("mlflow")
    assert (PACKAGE / "ops" / "server.py").exists() and not (
        PACKAGE / "tracking" / "server.py"
    ).exists()


def test_data_and_model_take_the_config_section_they_use():
    """data/ and model/ take DataConfig / ModelConfig (each says where its values were set, for
    error messages), not the whole Config (main took it mostly to call cfg.where)."""
    for name, tree in modules().items():
        if part(name) not in ("data", "model"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                annotated = [
                    a.annotation for a in node.args.args + node.args.kwonlyargs if a.annotation
                ]
                whole = [a for a in annotated if isinstance(a, ast.Name) and a.id == "Config"]
                assert not whole, f"{name}.{node.name} takes the whole Config"


def test_tracking_takes_plain_values_not_data_objects():
    for name, tree in modules().items():
        if part(name) == "tracking":
            assert not {i for i in imports(tree) if i.startswith("textclf.data")}, name


def test_no_import_cycles():
    """Imports inside functions count: a loop that only runs late is still a loop in the design."""
    # `from textclf import names` names the root package too; it runs before any module: not an edge
    graph = {
        name: {i for i in imports(tree) if i in modules() and i not in (name, "textclf")}
        for name, tree in modules().items()
    }
    for (
        name
    ) in graph:  # importing pkg.sub from outside pkg runs pkg/__init__ first: follow that too
        graph[name] |= {
            n.rsplit(".", 1)[0]
            for n in graph[name]
            if n.rsplit(".", 1)[0] in graph and not name.startswith(n.rsplit(".", 1)[0] + ".")
        } - {name}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError(
                    "import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt])
                )
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


# the walls the README's package map states: modules and functions of a readable size (line
# length is ruff's: pyproject.toml, tests/test_form.py)
MODULE_LINES, FUNCTION_LINES = 250, 50
LONGER_FUNCTIONS = {"fit": 65}  # the training loop reads best in one piece


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_modules_stay_readable(path):
    """Modules of at most 250 lines, functions of at most 50 (the training loop aside)."""
    lines = path.read_text().splitlines()
    assert len(lines) <= MODULE_LINES, f"{path.name}: {len(lines)} lines"
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= LONGER_FUNCTIONS.get(node.name, FUNCTION_LINES), (
                f"{node.name}: {length} lines"
            )


def test_the_readme_map_names_every_module():
    """README.md's package map (Development) matches the tree: every module is named in it."""
    readme = (SRC.parent / "README.md").read_text()
    start = readme.index("The packages under `src/textclf/` read top to bottom as layers")
    block = readme[readme.index("```", start) : readme.index("```", readme.index("```", start) + 3)]
    missing = [
        str(p.relative_to(PACKAGE))
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.stem not in ("__init__", "__main__")
        and not re.search(rf"\b{re.escape(p.stem)}\b", block)
    ]
    assert not missing, f"README.md's package map does not name {missing}"
