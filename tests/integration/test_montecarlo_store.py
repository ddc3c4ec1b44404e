"""Monte Carlo studies of stored runs (real PostgreSQL): the command stores
a study whole, equal to the in-process study; its report sections; bad
input is one line, exit 1, nothing stored."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from ticktape import store
from ticktape.backtest import montecarlo as mc
from ticktape.backtest.run import run_symbol
from ticktape.compute import metrics
from ticktape.data.readers import write_parquet
from ticktape.data.synth import generate_process
from ticktape.model.sources import process_config
from ticktape.model.spec import EngineConfig, RunSpec
from ticktape.report import montecarlo as mc_report
from ticktape.report.document import Section
from ticktape.runtime.processes import run_coro
from ticktape.store import montecarlo as mc_store
from ticktape.store import session

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SOURCE = {"kind": "generator", "n_ticks": 30_000, "seed": 4, "vol": 0.4, "regimes": True, "p_news": 1e-3}


async def _store_run(conn, params, symbols=("MC",)) -> str:
    """A complete run of ``params`` over the generator source, stored as the
    pipeline stores one (its results are the in-process run's: the e2e tests
    check that they are equal)."""
    spec = RunSpec(
        strategy="ma_crossover",
        symbols=symbols,
        params=params,
        engine=EngineConfig(initial_cash=100_000.0),
        source=SOURCE,
    )
    results = {s: run_symbol(spec, generate_process(process_config(s, spec.source))) for s in symbols}
    await store.create_run(conn, spec.run_id, spec.strategy, json_spec(spec), params, symbols, None, None)
    for s, r in results.items():
        await store.write_result_set(conn, spec.run_id, s, 0, {"fills": r.fills, "equity": r.equity})
    m, _ = metrics.run_metrics(
        {s: r.equity for s, r in results.items()}, {s: r.fills for s, r in results.items()}, 100_000.0
    )
    await store.write_metrics(conn, spec.run_id, {k: v for k, v in m.items() if isinstance(v, float)})
    await store.finish_run(conn, spec.run_id, "complete")
    return spec.run_id


def json_spec(spec):
    return json.loads(spec.to_json())


def _db(dsn, fn, *args):
    """``await fn(conn, *args)`` on a connection of its own (the tests are
    synchronous: the command runs its own event loop)."""

    async def go():
        conn = await store.connect(dsn)
        try:
            return await fn(conn, *args)
        finally:
            await conn.close()

    return run_coro(go)


@pytest.fixture
def env(db_url, tmp_path, monkeypatch):
    """The command's environment: the test store."""
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", db_url)
    monkeypatch.setenv("TICKTAPE_HOME", str(tmp_path))
    return {**os.environ, "TICKTAPE_DATABASE_URL": db_url, "TICKTAPE_HOME": str(tmp_path), "COLUMNS": "200"}


def test_the_command_stores_the_study_it_computed(db_url, env, cli):
    run_id = _db(db_url, _store_run, {"fast": 5, "slow": 40})
    assert _db(db_url, mc_report.sections, run_id) == []
    res = cli("montecarlo", run_id, "--n", "20", "--no-store")
    assert res.exit_code == 0 and "stored" not in res.stdout, res.output
    assert _db(db_url, mc_store.count_studies, run_id) == 0
    res = cli("montecarlo", run_id, "--method", "trades", "--n", "300", "--seed", "3", "--processes", "1")
    assert res.exit_code == 0, res.output
    assert "P(loss)" in res.stdout and "stored as study" in res.stdout
    (study,) = _db(db_url, mc_store.read_studies, run_id)
    assert (study["method"], study["n"], study["seed"], study["block_length"]) == ("trades", 300, 3, None)
    same = mc.montecarlo(run_id, "trades", 300, 3, processes=2, save=False, dsn=env["TICKTAPE_DATABASE_URL"])
    assert study["summary"]["stats"]["final_equity"]["p50"] == same.summary["stats"]["final_equity"]["p50"]
    assert study["fan"]["p95"] == pytest.approx(same.fan["p95"], rel=1e-15)
    # the run's own figures beside the distributions, and its trades are what was resampled
    run = _db(db_url, store.run_with_metrics, run_id)
    assert study["summary"]["run_metrics"]["final_equity"] == run["metrics"]["final_equity"]
    assert study["params"]["trades"] == run["metrics"]["n_trades"]
    # SQL a user types (the app's read-only role) reads the studies
    seen = session.run(
        lambda c: c.fetchval("SELECT count(*) FROM montecarlo_studies WHERE run_id = $1", uuid.UUID(run_id)),
        dsn=db_url,
        readonly=True,
    )
    assert seen == 1
    (section,) = _db(db_url, mc_report.sections, run_id)
    assert isinstance(section, Section) and section.title.startswith("Monte Carlo: trades")
    assert len(section.figures) == 2 and len(section.tables) == 2
    assert list(section.tables[0]["statistic"]) == [label for label, _ in mc_report.STATISTICS.values()]


def test_blocks_and_paths_are_stored_and_go_with_their_run(db_url, env, cli):
    """(A run of two symbols: the portfolio is resampled; each symbol gets its own generator.)"""
    run_id = _db(db_url, _store_run, {"fast": 5, "slow": 40}, ("MC", "MD"))
    res = cli("montecarlo", run_id, "--method", "blocks", "--n", "50", "--seed", "1")
    assert res.exit_code == 0, res.output
    res = cli("montecarlo", run_id, "--method", "paths", "--n", "3", "--seed", "1", "--processes", "2")
    assert res.exit_code == 0, res.output
    blocks, paths = _db(db_url, mc_store.read_studies, run_id)
    assert blocks["block_length"] >= 1 and blocks["params"]["block_length_auto"]
    cal = paths["params"]["calibration"]
    assert cal["MC"]["n_ticks"] == cal["MD"]["n_ticks"] == SOURCE["n_ticks"] and cal["MC"]["regimes"]
    assert cal["MC"]["price0"] != cal["MD"]["price0"]  # (each symbol's own data)
    assert blocks["summary"]["initial_equity"] == paths["summary"]["initial_equity"] == 2 * 100_000.0
    assert len(_db(db_url, mc_report.sections, run_id)) == 2
    deleted = _db(db_url, store.delete_runs, [run_id])
    assert deleted.rows["montecarlo_studies"] == 2
    assert _db(db_url, mc_store.count_studies, run_id) == 0


@pytest.mark.parametrize("kind", ["store", "parquet"])
def test_paths_calibrate_on_the_runs_own_ticks(db_url, tmp_path, kind):
    """A run of the store (or a Parquet) source: its symbol's ticks there
    are what the generator is calibrated on (the same settings as from the
    ticks in memory)."""
    symbol = f"MC{uuid.uuid4().hex[:8]}"
    ticks = np.concatenate(list(generate_process(process_config(symbol, SOURCE))))
    source = {"kind": "store"}
    if kind == "parquet":
        write_parquet(tmp_path / "t.parquet", [("OTHER", ticks[:500]), (symbol, ticks)])
        source = {"kind": "parquet", "path": str(tmp_path / "t.parquet")}

    async def seed(conn):
        if kind == "store":
            await store.write_ticks(conn, symbol, ticks, 0)
        spec = RunSpec(
            strategy="ma_crossover", symbols=(symbol,), params={"fast": 5, "slow": 40}, source=source
        )
        await store.create_run(
            conn, spec.run_id, spec.strategy, json_spec(spec), spec.params, [symbol], None, None
        )
        await store.finish_run(conn, spec.run_id, "complete")
        return spec.run_id

    run_id = _db(db_url, seed)
    data = _db(db_url, mc.load_paths, run_id)
    assert data.configs[symbol] == mc.calibrate([ticks], symbol, 0.01)
    assert data.spec.source == source


def _ticktape(args, env):
    return subprocess.run(
        [str(Path(sys.executable).with_name("ticktape")), *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_input_is_one_line_and_stores_nothing(db_url, env, cli):
    run_id = _db(db_url, _store_run, {"fast": 5, "slow": 40})
    idle = _db(db_url, _store_run, {"fast": 1, "slow": 30_000})  # never crosses: no trade
    absent = "0190a1b2-0000-7000-8000-0000000000ff"
    pending = str(uuid.uuid4())
    _db(db_url, store.create_run, pending, "ma_crossover", {}, {}, ["MC"], None, None)
    cases = [
        ([pending], f"run {pending}: it is pending; a Monte Carlo study needs a complete run"),
        ([absent], f"run_id: no run {absent}"),
        (["not-a-run"], "run_id: 'not-a-run' is not a run id"),
        ([idle, "--method", "trades"], f"run {idle}: no closed trades"),
        ([run_id, "--n", "0"], "--n: the number of draws must be 1"),
        ([run_id, "--n", "-3"], "--n: the number of draws must be 1"),
        (
            [run_id, "--method", "blocks", "--block-length", "1e6"],
            "--block-length 1e+06: longer than the run's",
        ),
        ([run_id, "--method", "bootstrap"], "--method 'bootstrap': unknown method"),
    ]
    for args, message in cases:
        res = cli("montecarlo", *args)
        assert res.exit_code == 1, (args, res.output)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("ticktape: error: ") and message in lines[0], lines
    for args, message in cases[3:5] + cases[7:]:  # the installed command too
        proc = _ticktape(["montecarlo", *args], env)
        assert proc.returncode == 1, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and message in lines[0], lines
    assert _db(db_url, mc_store.count_studies, run_id) == 0
    assert _db(db_url, mc_store.count_studies, idle) == 0
