"""The house rules of ``vae/`` that a reader of the imports can check: no circle, no Streamlit, and long
files that say why they are long."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

VAE = REPO / "vae"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(VAE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """Every ``vae`` module ``name`` imports, at the top or inside a function: ``from a import b`` counts as
    ``a.b`` when that is a module, else as ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in MODULES and target != name}
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_finder_finds_a_planted_circle() -> None:
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_in_vae() -> None:
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    assert sum(map(len, graph.values())) > 40  # the reader really found the imports
    assert "vae.models" in graph["vae.training.trainer"]
    assert import_cycles(graph) == []


def test_vae_never_imports_streamlit() -> None:
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "streamlit" for n in names), name


def test_a_long_module_says_why_it_is_long() -> None:
    for name, path in MODULES.items():
        if len(path.read_text().splitlines()) > 650:
            docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "on purpose" in docstring, f"{name} is over 650 lines and its docstring does not say why"


def test_nothing_imports_the_train_command_so_vae_train_stays_the_function() -> None:
    # ``python -m vae.train`` needs a module of that name, and importing it would bind ``vae.train`` to
    # the module instead of the trainer's function: only ``-m`` may run it (runpy binds nothing).
    for folder in ("vae", "app", "app_pages", "tests", "benchmarks", "scripts"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    assert "vae.train" not in [alias.name for alias in node.names], path
                elif isinstance(node, ast.ImportFrom) and node.module == "vae.train":
                    raise AssertionError(f"{path} imports vae.train")
    import vae

    assert callable(vae.train) and vae.train.__module__ == "vae.training.trainer"
