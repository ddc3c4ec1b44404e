"""The Runs and Sweeps pages offer the report (``ticktape report``'s HTML
file) as a download, made when asked, under Streamlit's AppTest against the
real store."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ticktape import store
from ticktape.backtest import sweep as sweeps
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.runtime.processes import run_coro

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def swept(db_url: str) -> dict[str, Any]:
    symbol = f"DL{uuid.uuid4().hex[:6].upper()}"
    ticks = np.concatenate(list(generate_walk(RandomWalkConfig(symbol=symbol, n_ticks=10_000))))
    res = sweeps.sweep(ticks, "sma_crossover", sweeps.grid({"fast": [5, 10], "slow": [50, 100]}), keep_top=1)

    async def go() -> list[str]:
        conn = await store.connect(db_url)
        try:
            return await sweeps.store_sweep(conn, res, symbol)
        finally:
            await conn.close()

    ids = run_coro(go)
    kept = next(rid for s, rid in zip(res.sets, ids, strict=True) if s.index in res.detail)
    return {"sweep": res.sweep_id, "kept": kept, "other": next(r for r in ids if r != kept)}


def page(name: str, dsn: str, monkeypatch: pytest.MonkeyPatch, **query: str) -> AppTest:
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", dsn)
    at = AppTest.from_string(
        f"from ticktape.dashboards import nav, common, {name}\nnav.register()\ncommon.guarded({name}.page)()\n",
        default_timeout=120,
    )
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def downloads(at: AppTest) -> list:
    return [e for e in at.get("download_button")]


def test_the_runs_page_makes_the_report_of_the_chosen_run(swept, db_url, monkeypatch):
    at = page("runs", db_url, monkeypatch)
    run_id = swept["kept"]
    at.selectbox(key="runs_open").set_value(run_id).run()
    assert at.selectbox(key="runs_open").value == run_id
    assert not downloads(at)  # (made only when asked: a report reads the whole run)
    at.button(key="runs_report_make").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    ident, _, title, html = at.session_state["runs_report_page"]
    assert ident == run_id and title.startswith(f"Run {run_id[:8]}: sma_crossover")
    assert html.startswith("<!DOCTYPE html>") and html.count("Plotly.newPlot(") >= 1
    assert len(downloads(at)) == 1
    at.selectbox(key="runs_open").set_value(swept["other"]).run()
    assert not downloads(at)  # (another run: its own report, when asked)


def test_the_sweeps_page_makes_the_report_with_the_chosen_metric(swept, db_url, monkeypatch):
    at = page("sweeps", db_url, monkeypatch, sweep=swept["sweep"])
    at.selectbox(key="s_metric").set_value("total_return").run()
    at.button(key="s_report_make").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    ident, metric, title, html = at.session_state["s_report_page"]
    assert (ident, metric) == (swept["sweep"], "total_return")
    assert "Total return by fast and slow" in html and title.startswith(f"Sweep {swept['sweep'][:8]}")
    assert len(downloads(at)) == 1
