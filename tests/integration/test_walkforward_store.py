"""Walk-forward studies in the real store (embedded PostgreSQL): the study and its
out-of-sample runs in one transaction, read back by the report's sections,
and the command storing them (from a file, or from the store's ticks)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ticktape import store
from ticktape.backtest import walkforward as wf
from ticktape.errors import SpecError
from ticktape.model.spec import new_run_id
from ticktape.report import walkforward as report
from ticktape.report.build import build
from ticktape.runtime.processes import run_coro
from ticktape.store import studies
from ticktape.testing import market

pytestmark = pytest.mark.integration

GRID = {"fast": [5, 10], "slow": [30, 60]}


def _bars(days: int = 4 * 252, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 40 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, days)))
    df = pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close},
        index=pd.bdate_range("2016-01-04", periods=days, name="date"),
    )
    return df.round(2).assign(high=lambda d: d[["open", "high", "close"]].max(axis=1))


@pytest.fixture(scope="module")
def study() -> wf.WalkForwardResult:
    return wf.walkforward(_bars(), "ma_crossover", GRID, train="1y", test="6m", processes=1)


async def _count(conn: Any, sql: str, *args: Any) -> int:
    return int(await conn.fetchval(sql, *args))


async def test_a_study_is_stored_with_its_out_of_sample_runs(conn: Any, study: wf.WalkForwardResult) -> None:
    res = copy.deepcopy(study)  # (ids of its own: each test stores its copy)
    res.study_id = new_run_id()
    for w in res.windows:
        w.run_id = new_run_id()
    await wf.store_study(conn, res, "bars")
    got = await studies.read_study(conn, res.study_id)
    assert got["status"] == "complete" and got["kind"] == "walkforward" and got["ended_at"] is not None
    assert (
        got["spec"]["data"] == "bars" and got["spec"]["train"] == "1y" and got["spec"]["select"] == "sharpe"
    )
    assert [r["run_id"] for r in got["runs"]] == [w.run_id for w in res.windows]
    assert {r["status"] for r in got["runs"]} == {"complete"}
    assert got["summary"] == json.loads(json.dumps(res.summary()))
    for w in res.windows:
        run = await store.run_with_metrics(conn, w.run_id)
        assert run["wall_seconds"] == pytest.approx(w.oos_seconds) and w.oos_seconds > 0
        assert run["ticks_in"] == w.test_rows and run["fills"] == len(w.out_of_sample.fills)
        m = run["metrics"]
        for k, v in w.out_of_sample.metrics.items():
            assert m[k] == pytest.approx(v, nan_ok=True), k
        eq = await store.read_results(conn, w.run_id, "bars", "equity")
        np.testing.assert_array_equal(eq["equity"], w.out_of_sample.extra["raw"]["equity"]["equity"])
    curve = await report.stitched_curve(conn, got)
    pd.testing.assert_series_equal(curve, res.stitched, check_freq=False, check_names=False)


async def test_the_report_sections_of_a_stored_study(conn: Any, study: wf.WalkForwardResult) -> None:
    res = copy.deepcopy(study)
    res.study_id = new_run_id()
    for w in res.windows:
        w.run_id = new_run_id()
    await wf.store_study(conn, res, "bars")
    sections = await report.sections(conn, res.study_id)
    assert [s.title for s in sections] == [
        "Walk-forward: in sample vs out of sample",
        "Stitched out-of-sample equity",
        "Walk-forward efficiency",
        "Parameter stability",
    ]
    windows = sections[0].tables[0]
    assert len(windows) == len(res.windows)
    assert list(windows["chosen set"]) == [
        ", ".join(f"{k}={v}" for k, v in w.params.items()) for w in res.windows
    ]
    assert "IS Sharpe ratio" in windows and "OOS Sharpe ratio" in windows
    (fig,) = sections[1].figures
    np.testing.assert_allclose(fig.data[0].y, res.stitched.to_numpy())
    assert all(len(s.notes) for s in sections)
    assert list(sections[3].tables[0]["parameter"]) == ["fast", "slow"]
    await store.delete_runs(conn, [res.windows[0].run_id])
    after = await report.sections(conn, res.study_id)
    assert f"1 of the {len(res.windows)} out-of-sample runs were deleted" in after[1].notes[-1]
    rest = wf.equity_series(res.windows[1].out_of_sample.equity)
    np.testing.assert_allclose(after[1].figures[0].data[0].y[: len(rest)], rest.to_numpy())
    with pytest.raises(SpecError, match=r"^study_id: no study"):
        await report.sections(conn, str(uuid.uuid4()))
    # `ticktape report STUDY_ID`: the id is found among runs, sweeps and studies
    title, found = await build(conn, res.study_id.upper())
    assert title == f"Walk-forward study {res.study_id}" and [s.title for s in found] == [
        s.title for s in after
    ]


async def test_a_study_that_fails_while_stored_leaves_nothing(conn: Any, study: wf.WalkForwardResult) -> None:
    first = copy.deepcopy(study)
    first.study_id = new_run_id()
    for w in first.windows:
        w.run_id = new_run_id()
    await wf.store_study(conn, first, "bars")
    second = copy.deepcopy(first)
    second.study_id = new_run_id()
    for w in second.windows[:-1]:
        w.run_id = new_run_id()  # the last keeps the first study's run id: refused when its turn comes
    with pytest.raises(SpecError, match=r"^run_id: run .* exists already"):
        await wf.store_study(conn, second, "bars")
    assert (
        await _count(conn, "SELECT count(*) FROM studies WHERE study_id = $1", uuid.UUID(second.study_id))
        == 0
    )
    ids = [uuid.UUID(w.run_id) for w in second.windows[:-1]]
    assert await _count(conn, "SELECT count(*) FROM runs WHERE run_id = ANY($1::uuid[])", ids) == 0
    assert await _count(conn, "SELECT count(*) FROM equity WHERE run_id = ANY($1::uuid[])", ids) == 0
    assert await _count(
        conn, "SELECT count(*) FROM runs WHERE study_id = $1", uuid.UUID(first.study_id)
    ) == len(first.windows)


def test_the_command_stores_a_study_of_the_store_s_ticks(
    cli: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", db_url)
    sym = f"WF{uuid.uuid4().hex[:6]}"
    ticks = market(40_000, seed=6, symbol=sym, trade_every=0)
    ticks["ts"] = ticks["ts"] // 1000 * 1000  # (the store keeps microseconds)

    async def write(c: Any) -> None:
        await store.write_ticks(c, sym, ticks)

    run_coro(lambda: _with(db_url, write))
    minutes = (ticks["ts"][-1] - ticks["ts"][0]) / 60e9
    args = ["walkforward", "--symbols", sym, "--strategy", "ma_crossover", "--grid", "fast=10,20"]
    res = cli(
        *args,
        "--grid",
        "slow=100,200",
        "--train",
        f"{int(minutes // 3)}min",
        "--test",
        f"{int(minutes // 4)}min",
        "--processes",
        "1",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert len(out["windows"]) >= 2

    async def read(c: Any) -> dict[str, Any]:
        return await studies.read_study(c, out["study_id"])

    got = run_coro(lambda: _with(db_url, read))
    assert got["spec"]["data"] == sym and got["status"] == "complete"
    assert [r["run_id"] for r in got["runs"]] == [w["run_id"] for w in out["windows"]]
    assert {tuple(r["symbols"]) for r in got["runs"]} == {(sym,)}


async def _with(dsn: str, fn: Any) -> Any:
    conn = await store.connect(dsn)
    try:
        return await fn(conn)
    finally:
        await conn.close()


def test_a_study_that_fails_part_way_stores_nothing(
    cli: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", db_url)
    bars = _bars()
    path = tmp_path / "holed.csv"
    bars[(bars.index < "2018-07-01") | (bars.index >= "2019-01-05")].to_csv(path)  # window 3's test span

    async def counts(c: Any) -> tuple[int, int]:
        return await _count(c, "SELECT count(*) FROM studies"), await _count(c, "SELECT count(*) FROM runs")

    before = run_coro(lambda: _with(db_url, counts))
    res = cli("walkforward", "--data", path, "--strategy", "ma_crossover", "--grid", "fast=5,10",
              "--grid", "slow=30,60", "--train", "1y", "--test", "6m", "--processes", "1")  # fmt: skip
    assert res.exit_code == 1
    assert res.stderr.splitlines()[-1].startswith("ticktape: error: window 3: no data in its test span")
    assert [line.split(":")[0] for line in res.stderr.splitlines()[:-1]] == [
        f"window {k} ({k + 1}/6)" for k in range(3)
    ]  # the windows done before
    assert run_coro(lambda: _with(db_url, counts)) == before
