"""resnet_core must run alone on a GPU box that has only torch and torchvision; search/ is a stack
of packages whose imports run one way (lowest first), each kept off the engines it must not load.

The import-direction checker reads the source with `ast` (it never imports the modules), so it
sees the tree as it is at test time, files added by others included.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import resnet_core

ENGINES = ("ray", "optuna", "mlflow", "pydantic", "sklearn", "typer")
REPO = Path(resnet_core.__file__).resolve().parent.parent


def test_resnet_core_trains_without_importing_any_engine():
    # A fresh interpreter: what the package imports on its own, not what the test session has.
    code = (
        "import sys\n"
        "from resnet_core import TrainConfig, DataConfig, load_data, Trainer\n"
        "data = load_data(DataConfig(dataset='synthetic', synthetic_size=128))\n"
        "trainer = Trainer(TrainConfig(depth=20, width=0.25, batch_size=64, epochs=1), data)\n"
        "print(next(iter(trainer.fit()))['epoch'])\n"
        f"print(sorted(m for m in {ENGINES!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    epoch, loaded = done.stdout.strip().splitlines()[-2:]
    assert epoch == "1"
    assert loaded == "[]", f"resnet_core imported engines: {loaded}"


def test_no_source_file_imports_an_engine():
    root = Path(resnet_core.__file__).parent
    for path in root.rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.strip().split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                top = words[1].split(".")[0]
                assert top not in ENGINES or top == "sklearn", f"{path}: {line.strip()}"


# --- the layer table: the one written truth of what may import what ---------------------------

# search's packages, lowest first: a package may import itself and those before it, never after.
LAYERS = ("wait", "spec", "experiment", "engine", "replay", "tracking", "remote", "report",
          "winner", "run", "api", "cli")
# What each package may not load through its module-level imports, however indirectly.
_HEAVY = frozenset({"torch", "torchvision"})
FORBIDDEN: dict[str, frozenset[str]] = {
    # resnet_core also may not import search at all (a direction rule, below everything)
    "resnet_core": frozenset(ENGINES),  # sklearn: inside the digits reader only
    "wait": frozenset({"ray", "optuna", "mlflow", "pydantic"}) | _HEAVY,  # pure, used by all
    "spec": frozenset({"ray", "optuna", "mlflow"}) | _HEAVY,
    "experiment": frozenset({"ray", "optuna", "mlflow", "pydantic"}) | _HEAVY,
    "engine": frozenset({"mlflow"}) | _HEAVY,
    "replay": frozenset({"mlflow"}) | _HEAVY,  # searches replayed without training
    "tracking": frozenset({"optuna"}) | _HEAVY,
    "remote": frozenset({"mlflow", "optuna"}) | _HEAVY,
    "report": frozenset({"ray"}) | _HEAVY,  # a report of a cluster's search runs anywhere
    "winner": frozenset({"ray", "optuna"}),  # retrain is one process: torch, no Ray
    "run": frozenset(),
    # `import search` in a notebook stays instant: engines load inside the API's functions
    "api": frozenset({"ray", "optuna", "mlflow", "pandas"}) | _HEAVY,
    "cli": frozenset({"ray", "optuna", "mlflow"}) | _HEAVY,  # `--help` stays instant
}
# Modules held to more than their package: Ray workers import these, and they have no Pydantic.
PURE_SPEC = ("schema", "objective", "job", "problems", "outcome")
MODULE_FORBIDDEN: dict[str, frozenset[str]] = {
    f"search.spec.{name}": frozenset({"pydantic"}) for name in PURE_SPEC}

# Rank in the import direction: resnet_core below everything, then search's own (empty) root.
_RANK = {"resnet_core": 0, "search": 1, **{name: 2 + i for i, name in enumerate(LAYERS)}}
_OURS = ("search", "resnet_core")


@dataclass
class Module:
    name: str
    path: str  # relative to the root, e.g. "search/run/launch.py"
    is_package: bool
    imports: list[tuple[str, int]] = field(default_factory=list)  # (dotted target, line)


@dataclass
class Violations:
    direction: list[str] = field(default_factory=list)  # (a) upward or unresolvable imports
    transitive: list[str] = field(default_factory=list)  # (b) forbidden third-party imports
    layout: list[str] = field(default_factory=list)  # (c) packages and files the table misses

    def __bool__(self) -> bool:
        return bool(self.direction or self.transitive or self.layout)


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def module_level_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements that run when the module is imported: everywhere but function bodies
    and `if TYPE_CHECKING:` (its `else:` runs); class bodies and top-level try/if/with count."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue  # runs when called (decorators and defaults hold no import statement)
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]))
            else:
                visit(child)

    visit(tree)
    return found


def _module_name(relative: Path) -> tuple[str, bool]:
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _targets(node: ast.Import | ast.ImportFrom, module: Module, known: set[str]) -> list[str]:
    """Dotted modules an import statement loads: `from search.x import y` is search.x.y when
    that is a module of the tree, else search.x."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = module.name.split(".")
        if not module.is_package:
            package = package[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base == "__future__":
        return []
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        target = sub if alias.name != "*" and sub in known else base
        if target not in out:
            out.append(target)
    return out


def _layer(name: str) -> str | None:
    """resnet_core, search (the root package), a package of search, or None (not in the table:
    reported as layout)."""
    parts = name.split(".")
    if parts[0] == "resnet_core":
        return "resnet_core"
    if parts == ["search"]:
        return "search"
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def check_imports(root: Path) -> Violations:
    """Every import-direction, forbidden-import and layout violation of `root`/search and
    `root`/resnet_core, read with `ast`."""
    root = Path(root)
    found = Violations()
    modules: dict[str, Module] = {}
    trees: dict[str, ast.AST] = {}
    for top in _OURS:
        for path in sorted((root / top).rglob("*.py")):
            relative = path.relative_to(root)
            if any(part == "__pycache__" or part.startswith(".") for part in relative.parts):
                continue
            name, is_package = _module_name(relative)
            try:
                trees[name] = ast.parse(path.read_text(), filename=str(relative))
            except (SyntaxError, UnicodeDecodeError, ValueError) as err:
                found.layout.append(f"{relative} cannot be parsed: {err}")
                continue
            modules[name] = Module(name, relative.as_posix(), is_package)

    # (c) every package of search has a row in the table, and no module sits outside a package
    search_dir = root / "search"
    packages = sorted(p.name for p in search_dir.iterdir()
                      if p.is_dir() and p.name != "__pycache__" and not p.name.startswith(".")
                      and any(p.rglob("*.py"))) if search_dir.is_dir() else []
    for name in packages:
        if name not in LAYERS:
            found.layout.append(f"search/{name}/ is a package with no row in the layer table "
                                f"(LAYERS and FORBIDDEN in tests/resnet_core/test_boundary.py)")
    for name in LAYERS:
        if name not in packages:
            found.layout.append(f"the layer table names search/{name}/, which does not exist")
    for path in sorted(search_dir.glob("*.py")) if search_dir.is_dir() else []:
        if path.name != "__init__.py":
            found.layout.append(f"search/{path.name} is a module directly in search/: every "
                                f"module belongs to a package of the layer table")
    for name in MODULE_FORBIDDEN:
        if name not in modules:
            found.layout.append(f"MODULE_FORBIDDEN names {name}, which is no module of the tree")

    # the graph of module-level imports
    known = set(modules)
    for name, tree in trees.items():
        module = modules[name]
        for node in module_level_imports(tree):
            for target in _targets(node, module, known):
                if target:
                    module.imports.append((target, node.lineno))

    # (a) no import runs upward; every import of our own code names a module of the tree
    for module in modules.values():
        importer = _layer(module.name)
        for target, line in module.imports:
            if target.split(".")[0] not in _OURS:
                continue
            where = f"{module.path}:{line} imports {target}"
            if target not in modules:
                found.direction.append(f"{where}, which is no module of this tree")
                continue
            imported = _layer(target)
            if importer is None or imported is None:
                continue  # a module outside the table: reported as layout
            if _RANK[importer] < _RANK[imported]:
                label = "search" if importer == "resnet_core" else imported
                found.direction.append(f"{where} ({importer} may not import {label})")

    # (b) forbidden imports, through every module-level import of our modules; importing a
    # module first runs its packages' __init__, so a module also depends on its package
    def edges(name: str) -> list[tuple[str, str]]:
        module = modules[name]
        out = [(t, f"{module.path}:{line} imports {t}") for t, line in module.imports]
        parent = name.rpartition(".")[0]
        if parent in modules:
            out.append((parent, f"{module.path} runs its package {parent} first"))
        return out

    def forbidden(name: str) -> frozenset[str]:
        layer = _layer(name)
        rule = FORBIDDEN.get(layer, frozenset()) if layer else frozenset()
        return rule | MODULE_FORBIDDEN.get(name, frozenset())

    for name, module in modules.items():
        banned = forbidden(name)
        if not banned:
            continue
        via: dict[str, tuple[str, str]] = {}  # node -> (previous node, hop)
        queue, seen, reached = deque([name]), {name}, {}
        while queue:
            current = queue.popleft()
            if current not in modules:
                top = current.split(".")[0]
                if top in banned and top not in reached:
                    reached[top] = current
                continue
            for target, hop in edges(current):
                if target not in seen:
                    seen.add(target)
                    via[target] = (current, hop)
                    queue.append(target)
        for top, leaf in sorted(reached.items()):
            hops, node = [], leaf
            while node != name:
                node, hop = via[node]
                hops.append((node, hop))
            hops.reverse()  # [(name, first hop), (next module, second hop), ...]
            # a chain through another module under the same rule is reported there, once
            after = hops[1][0] if len(hops) > 1 else None
            if after is not None and _layer(after) == _layer(name) and top in forbidden(after):
                continue
            layer_rule = FORBIDDEN.get(_layer(name) or "", frozenset())
            rule = _layer(name) if top in layer_rule else name
            found.transitive.append(f"{module.path} loads {top} ({rule} may not import {top}): "
                                    + "; ".join(hop for _, hop in hops))
    return found


@pytest.fixture(scope="module")
def tree_violations() -> Violations:
    return check_imports(REPO)


def test_imports_run_one_way(tree_violations):
    """(a) spec < experiment < engine < tracking < remote < run < cli, resnet_core below all."""
    assert not tree_violations.direction, "\n".join(tree_violations.direction)


def test_forbidden_imports_hold_through_module_level_imports(tree_violations):
    """(b) each package's forbidden third-party imports, through every chain of module-level
    imports of search and resnet_core modules (the chain is in the message)."""
    assert not tree_violations.transitive, "\n".join(tree_violations.transitive)


def test_every_search_package_has_a_row_in_the_layer_table(tree_violations):
    """(c) a new package without a rule fails; no flat module sits directly in search/."""
    assert not tree_violations.layout, "\n".join(tree_violations.layout)


# --- the checker itself, on a small tree written here --------------------------------------------

def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _clean_tree(root: Path) -> None:
    _write(root, {"search/__init__.py": "", "resnet_core/__init__.py": "",
                  "resnet_core/config.py": "import dataclasses\n",
                  **{f"search/{p}/__init__.py": "" for p in LAYERS},
                  **{f"search/spec/{m}.py": "" for m in PURE_SPEC}})


def test_the_checker_passes_a_clean_tree(tmp_path):
    _clean_tree(tmp_path)
    _write(tmp_path, {
        "search/spec/job.py": "from resnet_core.config import dataclasses\n"
                              "from search.spec import schema, objective\n",
        "search/spec/model.py": "import pydantic\nimport yaml\n",
        "search/engine/space.py": "import optuna\nfrom search.spec import model\n",
        "search/run/launch.py": "import torch, mlflow\nfrom ..engine import space\nimport search\n",
        # not module-level, or only for type checkers: none of these count
        "search/cli/__init__.py": "from typing import TYPE_CHECKING\nimport typing\n"
                                  "if TYPE_CHECKING:\n    import optuna\n"
                                  "if typing.TYPE_CHECKING:\n    from search.run import launch\n"
                                  "def go():\n    from search.run.launch import x\n"
                                  "    import ray\n"
                                  "class C:\n    def m(self):\n        import torch\n",
    })
    assert check_imports(tmp_path) == Violations()


def test_the_checker_finds_each_kind_of_violation(tmp_path):
    _clean_tree(tmp_path)
    _write(tmp_path, {
        # (a) upward, absolute and relative; resnet_core reaching into search
        "search/cli/y.py": "",
        "search/run/x.py": "import os\nfrom search.cli import y\n",
        "search/tracking/w.py": "from ..run import x\n",
        "resnet_core/models.py": "from search.spec import job\n",
        "search/remote/gone.py": "from search.engine.nothing import z\n",
        # (b) transitive: experiment -> spec.model -> pydantic; cli -> engine.space -> optuna
        # (cli/__main__ reaches optuna through its package: reported once, at the package)
        "search/spec/model.py": "from search.spec import problems\nimport pydantic.fields\n",
        "search/experiment/a.py": "import json\n\nfrom search.spec import model\n",
        "search/engine/space.py": "import optuna\n",
        "search/cli/__init__.py": "import typer\nfrom search.engine.space import describe\n",
        "search/cli/__main__.py": "from search.cli import main\n",
        # a try block and a class body run at import time
        "search/spec/problems.py": "try:\n    import torch\nexcept ImportError:\n    pass\n",
        "search/spec/objective.py": "class K:\n    from search.spec import model\n",
        # (c) an unknown package, a flat module
        "search/extra/__init__.py": "", "search/flat.py": "",
    })
    (tmp_path / "search/remote/__init__.py").unlink()  # a namespace package still counts
    found = check_imports(tmp_path)
    assert sorted(found.direction) == sorted([
        "search/run/x.py:2 imports search.cli.y (run may not import cli)",
        "search/tracking/w.py:1 imports search.run.x (tracking may not import run)",
        "resnet_core/models.py:1 imports search.spec.job (resnet_core may not import search)",
        "search/remote/gone.py:1 imports search.engine.nothing, which is no module of this tree",
    ])
    assert sorted(found.transitive) == sorted([
        "search/experiment/a.py loads pydantic (experiment may not import pydantic): "
        "search/experiment/a.py:3 imports search.spec.model; "
        "search/spec/model.py:2 imports pydantic.fields",
        "search/experiment/a.py loads torch (experiment may not import torch): "
        "search/experiment/a.py:3 imports search.spec.model; "
        "search/spec/model.py:1 imports search.spec.problems; "
        "search/spec/problems.py:2 imports torch",
        "search/cli/__init__.py loads optuna (cli may not import optuna): "
        "search/cli/__init__.py:2 imports search.engine.space; "
        "search/engine/space.py:1 imports optuna",
        "search/spec/problems.py loads torch (spec may not import torch): "
        "search/spec/problems.py:2 imports torch",
        "search/spec/objective.py loads pydantic (search.spec.objective may not import "
        "pydantic): search/spec/objective.py:2 imports search.spec.model; "
        "search/spec/model.py:2 imports pydantic.fields",
        "search/tracking/w.py loads optuna (tracking may not import optuna): "
        "search/tracking/w.py:1 imports search.run.x; search/run/x.py:2 imports search.cli.y; "
        "search/cli/y.py runs its package search.cli first; "
        "search/cli/__init__.py:2 imports search.engine.space; "
        "search/engine/space.py:1 imports optuna",
        # not reported again: spec/model and spec/objective reaching torch through
        # spec/problems, cli/__main__ and cli/y reaching optuna through their package
    ])
    assert sorted(found.layout) == sorted([
        "search/extra/ is a package with no row in the layer table "
        "(LAYERS and FORBIDDEN in tests/resnet_core/test_boundary.py)",
        "search/flat.py is a module directly in search/: every module belongs to a package of "
        "the layer table",
    ])


def test_the_checker_reports_a_table_row_without_a_package(tmp_path):
    _clean_tree(tmp_path)
    for name in ("__init__", *PURE_SPEC):
        (tmp_path / f"search/spec/{name}.py").unlink()
    (tmp_path / "search/spec").rmdir()
    assert check_imports(tmp_path).layout == [
        "the layer table names search/spec/, which does not exist",
        *[f"MODULE_FORBIDDEN names search.spec.{m}, which is no module of the tree"
          for m in PURE_SPEC]]


# --- what a fresh interpreter actually loads ----------------------------------------------------

def _loaded(imports: str, names: tuple[str, ...]) -> str:
    code = f"import sys, {imports}; print(sorted(m for m in {names!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_importing_the_cli_loads_no_engine():
    # `resnet-search --help` stays instant: the engines load inside the command functions
    assert _loaded("search.cli", ("ray", "optuna", "mlflow", "torch", "torchvision")) == "[]"


def test_the_pure_spec_modules_load_no_pydantic():
    # Ray workers import these to build a trial's config
    loaded = _loaded("search.spec.job, search.spec.schema, search.spec.objective, "
                     "search.spec.outcome",
                     ("pydantic", "ray", "optuna", "mlflow", "torch", "torchvision"))
    assert loaded == "[]"
