"""The package's shape: imports form no cycle and no module reaches into another's privates."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "seq2seq_cli"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.with_suffix("").relative_to(PACKAGE.parent).parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, str]]:
    """(imported module, imported name or '') of every import of the package, lazy ones
    included (a lazy import still makes a cycle)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("seq2seq_cli")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("seq2seq_cli"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule, "") if submodule in modules
                             else (node.module, alias.name))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {target for target, _ in _imports(path, modules) if target in modules}
            for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_import_graph_has_no_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_a_private_name_of_another():
    modules = _modules()
    # The tests and benchmarks too: they use the package as its callers would.
    callers = {**{str(p): p for p in (PACKAGE.parent / "tests").glob("*.py")},
               **{str(p): p for p in (PACKAGE.parent / "benchmarks").glob("*.py")}}
    private = [(name, target, imported)
               for name, path in {**modules, **callers}.items()
               for target, imported in _imports(path, modules)
               if imported.startswith("_") and not imported.startswith("__")]
    assert private == []


# ------------------------------------------------------------ the shape of the tree

MAX_MODULE_LINES = 500
MAX_TOP_LEVEL_MODULES = 10
# Sub-packages and top-level modules from the top of the data flow down: a module may
# import its own layer or any layer below it, never one above.
LAYERS = [
    {"__main__", "cli"},
    {"ui"},
    {"serving", "deploy", "tuning"},
    {"training"},
    {"inference"},
    {"checkpoint"},
    {"model"},
    {"data"},
    {"config"},
    {"run_dir", "runtime", "atomic", "errors", "version"},
]


def _room(module: str) -> str:
    """The sub-package or top-level module a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(package)"


def _rank(room: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if room in layer)


def test_no_module_is_longer_than_the_limit():
    long = {str(path.relative_to(PACKAGE)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_the_top_level_holds_few_modules_beside_its_sub_packages():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_every_room_has_a_layer():
    rooms = {_room(name) for name in _modules()} - {"(package)"}
    assert rooms == set().union(*LAYERS)


def test_imports_point_down_the_data_flow():
    upward = sorted((name, target) for name, targets in _graph().items()
                    for target in targets
                    if name != "seq2seq_cli" and (
                        _room(target) == "(package)"  # the API facade is for callers
                        or _rank(_room(target)) < _rank(_room(name))))
    assert upward == []


def test_the_layer_check_finds_an_upward_import():
    assert _rank(_room("seq2seq_cli.data.store")) > _rank(_room("seq2seq_cli.training.loop"))
    assert _rank(_room("seq2seq_cli.cli.app")) < _rank(_room("seq2seq_cli.ui.train_view"))


def test_the_training_step_takes_nothing_from_decoding():
    """Its index conventions come from the vocabulary; only validation uses the search."""
    modules = _modules()
    step = [target for target, _ in _imports(modules["seq2seq_cli.training.step"], modules)]
    assert [t for t in step if t.startswith("seq2seq_cli.inference")] == []


def test_ui_only_renders():
    """Signal handling and reading input files belong to the commands, not the views."""
    for path in (PACKAGE / "ui").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert "signal" not in imported, path.name
