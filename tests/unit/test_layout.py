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
