"""The layering, read from the source: every import statement (function-level ones included)
of every module in the five packages, parsed with ``ast``, never executed.

feeds → signals → strategies → reports, with pipeline (and the command line, run_backtest)
on top: a package imports only those below it. Also: no module grows past
:data:`MAX_LINES`, and no package's modules import each other in a circle.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("feeds", "signals", "strategies", "reports", "pipeline")
MAX_LINES = 560  # "about 500": a module past this wants splitting by concern

#: package → top-level names its modules must never import
FORBIDDEN = {
    "feeds": {"signals", "strategies", "reports", "pipeline", "run_backtest"},
    "signals": {"backtrader", "strategies", "reports", "pipeline", "run_backtest"},
    "strategies": {"reports", "pipeline", "run_backtest"},
    "reports": {"pipeline", "run_backtest"},
    "pipeline": {"run_backtest"},
}
#: the only feeds modules that may import Backtrader: the feed and its parts
BACKTRADER_FEEDS = ("feeds/btfeed.py", "feeds/btfeed_source.py", "feeds/btfeed_snapshots.py")
#: where the top (pipeline, the command line) may be imported from
TOP_IMPORTERS = ("run_backtest.py", "pipeline/", "tests/", "benchmarks/", "examples/")


def _modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Dotted names of everything ``path`` imports (relative imports resolved; ``from a import b``
    yields ``a.b`` too, since ``b`` may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" if base else alias.name for alias in node.names if alias.name != "*")
    return {name for name in found if name}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_packages_exist():
    for package in PACKAGES:
        assert (ROOT / package / "__init__.py").is_file(), package
    assert len(_modules(*PACKAGES)) > 30


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_the_layers_below_it(package):
    bad = []
    for path in _modules(package):
        for name in sorted(_imports(path)):
            if _top(name) in FORBIDDEN[package]:
                bad.append(f"{_rel(path)} imports {name}")
    assert not bad, "\n".join(bad)


def test_only_the_feed_imports_backtrader_in_feeds():
    bad = [f"{_rel(path)} imports backtrader" for path in _modules("feeds")
           if _rel(path) not in BACKTRADER_FEEDS and any(_top(n) == "backtrader" for n in _imports(path))]
    assert not bad, "\n".join(bad)


def test_only_the_command_line_and_its_users_import_pipeline_or_run_backtest():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = _rel(path)
        if rel.startswith(TOP_IMPORTERS) or any(part.startswith(".") or part in ("build", "dist")
                                                or part.endswith(".egg-info") for part in Path(rel).parts):
            continue
        hits = sorted(n for n in _imports(path) if _top(n) in ("pipeline", "run_backtest"))
        if hits:
            bad.append(f"{rel} imports {', '.join(hits)}")
    assert not bad, "\n".join(bad)


def test_no_module_is_over_the_size_limit():
    sizes = {_rel(p): len(p.read_text(encoding="utf-8").splitlines()) for p in _modules(*PACKAGES)}
    over = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not over, "modules over %d lines (split them by concern): %s" % (
        MAX_LINES, ", ".join(f"{name} ({n})" for name, n in sorted(over.items())))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module → modules it imports), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_between_the_modules_of_a_package(package):
    """A lazy import inside a function counts: it is still a circle (``feeds.daily`` and
    ``feeds.factor_library`` were one, by way of a private helper)."""
    modules = {_name(p): p for p in _modules(package)}
    graph = {}
    for name, path in modules.items():
        # a package's __init__ re-exports its modules; a module importing its own package is not a cycle
        targets = {n for n in _imports(path) if n in modules and n != package}
        graph[name] = targets - {name}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_import_parser_sees_relative_and_lazy_imports(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from .a import f\n")
    (package / "a.py").write_text("def f():\n    from .b import g\n    import os.path\n    from .. import top\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert _imports(package / "a.py") >= {"pkg.b", "pkg.b.g", "os.path", "top"}
    assert _imports(package / "__init__.py") == {"pkg.a", "pkg.a.f"}
