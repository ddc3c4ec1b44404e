"""The package layout: one import package, no top-level shadowing."""

import importlib.util
from pathlib import Path

import ticktape

REPO = Path(__file__).resolve().parents[2]


def test_repo_folders_install_under_ticktape():
    import ticktape.agents.replay
    import ticktape.dashboards.queries
    import ticktape.tables.state

    pkg = Path(ticktape.__file__).parent
    assert Path(ticktape.agents.replay.__file__).parent == pkg / "agents"
    assert Path(ticktape.tables.state.__file__).parent == pkg / "tables"
    assert (pkg / "dbschema").is_dir()


def test_import_tables_is_not_this_repo():
    # `tables` is PyTables' import name; this repo's tables/ must never answer it
    for name in ("tables", "agents", "dashboards", "native"):
        spec = importlib.util.find_spec(name)
        origin = "" if spec is None else str(spec.origin or spec.submodule_search_locations)
        assert REPO.as_posix() + "/" + name not in origin, f"`import {name}` resolves to {origin}"
    site = Path(ticktape.__file__).parents[1]
    for name in ("agents", "tables", "dashboards"):
        assert not (site / name / "state.py").exists() and not (site / name / "replay.py").exists()


def test_native_module_is_compiled():
    from ticktape import _native

    assert Path(_native.__file__).suffix in (".so", ".pyd")


def test_rooms_are_layered_and_strategy_compute_model_stay_pure():
    """The import-linter contracts of pyproject.toml (DESIGN.md "Layout"):
    each room imports only the rooms below it, lazy imports included; strategy,
    compute and model never import faust, aiokafka, asyncpg or mode."""
    import subprocess
    import sys

    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


def test_no_import_cycles():
    """No module imports itself through others (the package's lazy public
    names ``ticktape.backtest`` / ``ticktape.Strategy`` aside)."""
    import grimp

    graph = grimp.build_graph("ticktape")
    edges = {
        m: set() if m == "ticktape" else graph.find_modules_directly_imported_by(m) for m in graph.modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = [stack.pop()]
            while comp[-1] != v:
                comp.append(stack.pop())
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(edges):
        if m not in index:
            visit(m)
    assert not cycles, cycles
