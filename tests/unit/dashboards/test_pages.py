"""Every page of the app under Streamlit's AppTest, against the real store:
no exception, the key widgets, the actions call the right functions, and bad
input (unknown run id, a run without fills, an empty store, a database that
is down, a value out of bounds, a sentence nobody can read) is one clear line.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ticktape import store
from ticktape.backtest import sweep as sweeps
from ticktape.dashboards import build, common, queries
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.model.batch import DTYPES
from ticktape.model.spec import RunSpec
from ticktape.runtime.processes import run_coro

pytestmark = pytest.mark.timeout(300)

PAGES = ("runs", "monitor", "build", "sweeps", "sql", "data")


def script(page: str) -> str:
    """An app of one page (the pages registered, as the real app does)."""
    return (
        "from ticktape.dashboards import nav, common, " + page + "\n"
        "nav.register()\n"
        "common.guarded(" + page + ".page)()\n"
    )


def app(page: str, dsn: str, monkeypatch: pytest.MonkeyPatch, **query: str) -> AppTest:
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", dsn)
    at = AppTest.from_string(script(page), default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


@pytest.fixture(scope="module")
def seeded(db_url: str) -> dict[str, Any]:
    """A symbol's ticks, a stored sweep of 4 complete runs on them, and a run without fills."""
    symbol = f"APP{uuid.uuid4().hex[:6].upper()}"
    ticks = np.concatenate(list(generate_walk(RandomWalkConfig(symbol=symbol, n_ticks=20_000))))
    res = sweeps.sweep(ticks, "sma_crossover", sweeps.grid({"fast": [5, 10], "slow": [50, 100]}), keep_top=4)
    no_fills, running = str(uuid.uuid4()), str(uuid.uuid4())

    async def seed() -> list[str]:
        conn = await store.connect(db_url)
        try:
            await store.write_ticks(conn, symbol, ticks, 0)
            ids = await sweeps.store_sweep(conn, res, symbol)
            await store.create_run(
                conn,
                no_fills,
                "sma_crossover",
                {"engine": {"initial_cash": 1e6}},
                {},
                [symbol],
                int(ticks["ts"][0]),
                int(ticks["ts"][-1]),
            )
            eq = np.zeros(40, DTYPES["equity"])
            eq["ts"] = ticks["ts"][::500]
            eq["equity"] = 1e6
            await store.write_result_set(conn, no_fills, symbol, 0, {"equity": eq})
            await store.finish_run(conn, no_fills, "complete", ticks_processed=len(ticks))
            await store.create_run(
                conn,
                running,
                "sma_crossover",
                {"engine": {"initial_cash": 1e6}},
                {},
                [symbol],
                int(ticks["ts"][0]),
                int(ticks["ts"][-1]),
                status="running",
            )
            await store.write_result_set(conn, running, symbol, 0, {"equity": eq[:10]})
            return ids
        finally:
            await conn.close()

    ids = run_coro(seed)
    return {"symbol": symbol, "runs": ids, "sweep": res.sweep_id, "no_fills": no_fills, "running": running}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_loads_without_an_exception(page, seeded, db_url, monkeypatch):
    at = app(page, db_url, monkeypatch)
    assert not at.exception, at.exception
    assert not errors(at), errors(at)
    assert at.title[0].value


def test_runs_lists_readable_columns_and_opens_a_run_in_monitor(seeded, db_url, monkeypatch):
    opened = []
    monkeypatch.setattr(common, "open_page", lambda name, **q: opened.append((name, q)))
    at = app("runs", db_url, monkeypatch)
    at.multiselect(key="f_symbol").set_value([seeded["symbol"]]).run()  # (filtered in SQL)
    table = at.dataframe[0].value
    assert len(table) == 6 and set(table["symbols"]) == {seeded["symbol"]}  # the sweep's 4, no fills, live
    at.multiselect(key="f_status").set_value(["running"]).run()
    assert at.dataframe[0].value["status"].tolist() == ["running"]
    at.multiselect(key="f_status").set_value([]).run()
    table = at.dataframe[0].value
    for col in (
        "strategy",
        "symbols",
        "period",
        "status",
        "return %",
        "Sharpe",
        "max DD %",
        "trades",
        "ticks/s",
    ):
        assert col in table.columns
    at.selectbox(key="runs_open").set_value(seeded["runs"][0]).run()
    at.button(key="runs_open_button").click().run()
    assert opened == [("monitor", {"run": seeded["runs"][0]})]


def test_monitor_draws_price_fills_equity_and_the_metrics_with_their_grid(seeded, db_url, monkeypatch):
    at = app("monitor", db_url, monkeypatch, run=seeded["runs"][0])
    assert not at.exception and not errors(at)
    labels = [m.label for m in at.metric]
    assert "Sharpe ratio" in labels and "Return grid" in labels
    assert any(
        m.label == "Return grid" and m.value in ("by second", "by minute", "hourly") for m in at.metric
    )
    assert at.get("plotly_chart"), "no chart drawn"
    at.radio(key="mon_mode").set_value("playback").run()
    assert not at.exception
    assert at.button(key="mon_play")


def test_monitor_with_an_unknown_or_malformed_run_id_says_so(seeded, db_url, monkeypatch):
    unknown = str(uuid.uuid4())
    at = app("monitor", db_url, monkeypatch, run=unknown)
    assert not at.exception
    assert errors(at) == [f"no run {unknown} in this store; pick a run below."]
    at = app("monitor", db_url, monkeypatch, run="not-a-run")
    assert not at.exception
    assert "is not a run id" in errors(at)[0]


def test_monitor_of_a_run_without_fills(seeded, db_url, monkeypatch):
    at = app("monitor", db_url, monkeypatch, run=seeded["no_fills"])
    assert not at.exception and not errors(at)


def test_monitor_of_a_live_run_pauses_it_through_the_run_control(seeded, db_url, monkeypatch):
    asked = []
    real = store.request_control
    monkeypatch.setattr(store, "request_control", lambda conn, r, a: asked.append((r, a)) or real(conn, r, a))
    at = app("monitor", db_url, monkeypatch, run=seeded["running"])
    assert not at.exception and not errors(at), errors(at)
    assert at.radio(key="mon_mode").value == "live"
    at.button(key="mon_pause").click().run()
    assert not at.exception
    assert asked == [(seeded["running"], "pause")]
    at.button(key="mon_cancel").click().run()
    assert asked[-1] == (seeded["running"], "cancel")
    assert run_coro(lambda: _status(db_url, seeded["running"])) == "cancelled"


async def _status(dsn: str, run_id: str) -> str:
    conn = await store.connect(dsn)
    try:
        return await store.run_status(conn, run_id)
    finally:
        await conn.close()


def test_an_empty_store_says_what_to_do_on_every_page(fresh_db, monkeypatch):
    run_coro(lambda: store.migrate(fresh_db))
    for page in PAGES:
        at = app(page, fresh_db, monkeypatch)
        assert not at.exception, (page, at.exception)
        assert not errors(at), (page, errors(at))
        if page not in ("build", "sql"):
            assert at.info, page


def test_a_database_that_is_down_is_one_line_on_every_page(monkeypatch):
    down = "postgresql://postgres@127.0.0.1:9/ticktape"
    for page in PAGES:
        at = app(page, down, monkeypatch)
        assert not at.exception, (page, at.exception)
        if page != "build":  # (build shows its form first; the data section then says it)
            assert len(errors(at)) == 1 and "\n" not in errors(at)[0], (page, errors(at))


def test_build_form_out_of_bounds_is_refused_naming_the_field(seeded, db_url, monkeypatch):
    at = app("build", db_url, monkeypatch)
    at.selectbox(key="b_template").set_value("sma_crossover").run()
    at.number_input(key="b_p_sma_crossover_fast").set_value(0).run()
    assert not at.exception
    assert any("params.fast" in e and ">= 1" in e for e in errors(at)), errors(at)


def test_build_runs_the_form_in_process_on_a_stored_symbol(seeded, db_url, monkeypatch):
    calls = []
    real = build.backtest
    monkeypatch.setattr(build, "backtest", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    at = app("build", db_url, monkeypatch)
    at.selectbox(key="b_template").set_value("sma_crossover").run()
    at.number_input(key="b_p_sma_crossover_fast").set_value(5).run()
    at.number_input(key="b_p_sma_crossover_slow").set_value(50).run()
    at.selectbox(key="b_symbol").set_value(seeded["symbol"]).run()
    at.button(key="b_run").click().run()
    assert not at.exception and not errors(at), errors(at)
    assert len(calls) == 1
    (data, name, params), _ = calls[0]
    assert (data.symbol, name, params["fast"], params["slow"]) == (seeded["symbol"], "sma_crossover", 5, 50)
    assert any(m.label == "Sharpe ratio" for m in at.metric)


def test_build_from_a_sentence_and_from_one_it_cannot_read(seeded, db_url, monkeypatch):
    at = app("build", db_url, monkeypatch)
    at.radio(key="b_mode").set_value("sentence").run()
    at.text_input(key="b_text").set_value("the moon is made of cheese").run()
    at.button(key="b_read").click().run()
    assert not at.exception
    assert any(e.startswith("could not read the sentence:") for e in errors(at)), errors(at)
    at.text_input(key="b_text").set_value(
        "buy when the 5 period moving average crosses above the 50 and sell when RSI is above 70"
    ).run()
    at.button(key="b_read").click().run()
    assert not at.exception and not errors(at)
    spec = json.loads(at.text_area(key="b_spec_text").value)
    assert spec["strategy"] == "rules" and spec["params"]["entry"]["op"] == "crosses_above"
    rows = at.dataframe[0].value
    assert rows["condition"].tolist()[0] == "sma(n=5) crosses above sma(n=50)"


def test_sweeps_heatmap_and_opening_a_cell(seeded, db_url, monkeypatch):
    opened = []
    monkeypatch.setattr(common, "open_page", lambda name, **q: opened.append((name, q)))
    at = app("sweeps", db_url, monkeypatch, sweep=seeded["sweep"])
    assert not at.exception and not errors(at)
    assert at.selectbox(key="s_sweep").value == seeded["sweep"]
    assert {at.selectbox(key="s_x").value, at.selectbox(key="s_y").value} == {"fast", "slow"}
    at.button(key="s_open").click().run()
    assert opened and opened[0][0] == "monitor" and opened[0][1]["run"] in seeded["runs"]


def test_sql_box_runs_a_select_and_refuses_a_write(seeded, db_url, monkeypatch):
    at = app("sql", db_url, monkeypatch)
    at.text_area(key="q_sql").set_value("SELECT run_id::text, status FROM runs LIMIT 3").run()
    at.button(key="q_go").click().run()
    assert not at.exception and not errors(at)
    assert len(at.dataframe[0].value) == 3
    at.text_area(key="q_sql").set_value("DELETE FROM runs").run()
    at.button(key="q_go").click().run()
    assert not at.exception
    assert errors(at) and errors(at)[0].startswith("refused:")
    assert run_coro(lambda: _count_runs(db_url)) >= 5  # nothing deleted


async def _count_runs(dsn: str) -> int:
    conn = await store.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM runs")
    finally:
        await conn.close()


def test_sql_ready_queries_run_on_a_run(seeded, db_url, monkeypatch):
    at = app("sql", db_url, monkeypatch)
    for ready in ("PnL by day", "Fills by hour", "Fill ratio of limit orders", "Drawdown periods"):
        at.selectbox(key="q_ready").set_value(ready).run()
        at.selectbox(key="q_run_a").set_value(seeded["runs"][0]).run()
        at.button(key="q_go").click().run()
        assert not at.exception and not errors(at), (ready, errors(at))


def test_data_page_lists_symbols_coverage_and_gaps(seeded, db_url, monkeypatch):
    at = app("data", db_url, monkeypatch)
    assert seeded["symbol"] in at.dataframe[0].value["symbol"].tolist()
    at.selectbox(key="d_symbol").set_value(seeded["symbol"]).run()
    assert not at.exception and not errors(at)
    assert at.get("plotly_chart")


def test_build_launches_a_sweep_that_is_stored_and_opens_on_the_sweeps_page(seeded, db_url, monkeypatch):
    opened = []
    monkeypatch.setattr(common, "open_page", lambda name, **q: opened.append((name, q)))
    at = app("build", db_url, monkeypatch)
    at.selectbox(key="b_template").set_value("sma_crossover").run()
    at.selectbox(key="b_symbol").set_value(seeded["symbol"]).run()
    at.text_input(key="b_grid").set_value("fast=5,10 slow=50,100").run()
    at.button(key="b_sweep").click().run()
    assert not at.exception and not errors(at), errors(at)
    ((name, query),) = opened
    assert name == "sweeps"
    runs = queries.sweep_runs(db_url, query["sweep"])
    assert len(runs) == 4 and {(p["fast"], p["slow"]) for p in runs["params"]} == {
        (5, 50),
        (5, 100),
        (10, 50),
        (10, 100),
    }


def test_build_starts_a_paced_replay_over_the_pipeline_and_opens_it(seeded, db_url, monkeypatch):
    started, opened = [], []

    def start(argv, log):  # the command's first step: its run row
        started.append(argv)
        spec = RunSpec.from_json(Path(argv[2]).read_text())
        run_coro(lambda: _create(db_url, spec))
        return SimpleNamespace(poll=lambda: None)  # (still running)

    monkeypatch.setattr(build, "start_replay", start)
    monkeypatch.setattr(common, "open_page", lambda name, **q: opened.append((name, q)))
    at = app("build", db_url, monkeypatch)
    at.selectbox(key="b_template").set_value("sma_crossover").run()
    at.selectbox(key="b_symbol").set_value(seeded["symbol"]).run()
    at.selectbox(key="b_speed").set_value("100").run()
    at.button(key="b_pipeline").click().run()
    assert not at.exception and not errors(at), errors(at)
    ((argv,),) = [started]
    assert argv[1:3] == ["run", argv[2]] and argv[3:] == ["--speed", "100"]
    spec = RunSpec.from_json(Path(argv[2]).read_text())
    assert (spec.strategy, spec.symbols, spec.speed) == ("sma_crossover", (seeded["symbol"],), None)
    assert opened == [("monitor", {"run": spec.run_id})]


def test_a_replay_that_dies_before_its_run_exists_is_one_line(seeded, db_url, monkeypatch):
    def start(argv, log):
        log.write(b"ticktape: error: the broker would not start\n")
        log.flush()
        return SimpleNamespace(poll=lambda: 1)  # (exited)

    monkeypatch.setattr(build, "start_replay", start)
    at = app("build", db_url, monkeypatch)
    at.selectbox(key="b_symbol").set_value(seeded["symbol"]).run()
    at.button(key="b_pipeline").click().run()
    assert not at.exception
    assert errors(at)[0].startswith("the replay did not start: ticktape: error: the broker would not start")


async def _create(dsn: str, spec: RunSpec) -> None:
    conn = await store.connect(dsn)
    try:
        await store.create_run(conn, spec.run_id, spec.strategy, {}, {}, list(spec.symbols), None, None)
    finally:
        await conn.close()
