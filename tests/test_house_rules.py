"""The layout's rules, read from the source: who may import whom, and how big a module gets.

``core/`` packages sit on floors and import only downward (or within their own package):
errors < settings, device < store < model < ingest | learn < search < jobs | front < cli. ``app/`` uses
only ``core``'s and ``tiles``' public names; ``bench/`` never imports ``tests/``.
No modules of ``core/``, ``tiles/`` or ``app/`` import one another in a circle, not even within a
package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

import core
import tiles

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {
    "core.errors": 0,
    "core.settings": 1,
    "core.device": 1,
    "core.store": 2,
    "core.model": 3,
    "core.ingest": 4,
    "core.learn": 4,
    "core.search": 5,
    "core.jobs": 6,
    "core.front": 6,
    "core.cli": 7,
    "core.__main__": 8,
}
MAX_LINES = 400


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file, at any depth (lazy imports count too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
    return found


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "core" and len(parts) > 1 else module


def _sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _sources("core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_only_downward_and_never_streamlit(path: Path) -> None:
    module = _module(path)
    own = _package(module)
    for imported, _ in _imports(path):
        assert not imported.startswith("streamlit"), f"{module} imports {imported}"
        if not imported.startswith("core.") or module == "core":
            continue
        target = _package(imported)
        if target == own:
            continue
        assert FLOORS[target] < FLOORS[own], f"{module} ({own}) imports {imported}: runs back up"


def test_ingest_and_learn_stay_apart() -> None:
    for a, b in (("ingest", "learn"), ("learn", "ingest")):
        for path in _sources(f"core/{a}"):
            assert not any(m.startswith(f"core.{b}") for m, _ in _imports(path)), path


def _import_graph(folders: tuple[str, ...]) -> nx.DiGraph:
    """Module -> the modules it imports; ``from pkg import name`` counts as ``pkg.name`` if one."""
    paths = {_module(p): p for folder in folders for p in _sources(folder)}
    graph = nx.DiGraph()
    graph.add_nodes_from(paths)
    for module, path in paths.items():
        for imported, names in _imports(path):
            for name in names or [""]:
                target = f"{imported}.{name}" if f"{imported}.{name}" in paths else imported
                if target in paths and target != module:
                    graph.add_edge(module, target)
    return graph


def test_no_import_cycles() -> None:
    """A cycle makes import order matter, and its modules can only be read and moved together."""
    graph = _import_graph(("core", "tiles", "app"))
    cycles = []
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            loop = [a for a, _ in nx.find_cycle(graph.subgraph(component))]
            members = ", ".join(sorted(component))
            cycles.append(f"{' -> '.join([*loop, loop[0]])}  (all {len(component)}: {members})")
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))


@pytest.mark.parametrize("path", _sources("app"), ids=lambda p: str(p.relative_to(ROOT)))
def test_app_uses_only_the_public_api(path: Path) -> None:
    for imported, names in _imports(path):
        if imported == "core":
            assert set(names) <= set(core.__all__), f"{path}: {set(names) - set(core.__all__)}"
        elif imported == "tiles":
            assert set(names) <= set(tiles.__all__), f"{path}: {set(names) - set(tiles.__all__)}"
        else:
            assert not imported.startswith(("core.", "tiles.")), f"{path} imports {imported}"
        assert imported != "torch", f"{path} imports torch"


def test_every_public_name_resolves() -> None:
    for package in (core, tiles):
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"


@pytest.mark.parametrize("path", _sources("app"), ids=lambda p: str(p.relative_to(ROOT)))
def test_app_fragments_check_the_session(path: Path) -> None:
    """A fragment's own reruns skip the entry file's sign-in check: use the checked one."""
    if path == ROOT / "app" / "fragments.py":
        return
    for node in ast.walk(ast.parse(path.read_text())):
        plain = isinstance(node, ast.Attribute) and node.attr == "fragment"
        imported = isinstance(node, ast.ImportFrom) and (node.module or "").startswith("streamlit")
        assert not plain, f"{path}:{node.lineno}: use app.fragments.signed_in_fragment"
        assert not (imported and "fragment" in [a.name for a in node.names]), path


@pytest.mark.parametrize("path", _sources("bench"), ids=lambda p: str(p.relative_to(ROOT)))
def test_bench_never_imports_tests(path: Path) -> None:
    assert not any(m == "tests" or m.startswith("tests.") for m, _ in _imports(path)), path


@pytest.mark.parametrize(
    "path",
    _sources("core") + _sources("tiles") + _sources("app"),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_no_module_over_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_importing_core_is_cheap() -> None:
    code = "import core, sys; assert 'torch' not in sys.modules and 'core.jobs' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_core_root_keeps_only_its_entry_modules() -> None:
    root = {p.stem for p in (ROOT / "core").glob("*.py")}
    assert root == {"__init__", "__main__", "errors", "settings", "device", "jobs"}


def test_every_project_import_resolves() -> None:
    """Lazy imports inside functions are checked too, so a move cannot leave one dangling."""
    import importlib

    missing = []
    for folder in ("core", "app", "bench", "tiles", "tests"):
        for path in _sources(folder):
            for imported, names in _imports(path):
                if imported.split(".")[0] not in ("core", "tiles", "bench", "app"):
                    continue
                if imported.startswith("app"):
                    continue  # Streamlit pages run only under Streamlit
                module = importlib.import_module(imported)
                missing += [f"{path}: {imported}.{n}" for n in names if not hasattr(module, n)]
    assert not missing
