"""A stored sweep's report: the sets table and the heatmap parameter x
parameter -> metric, equal to the sets' stored metrics."""

from __future__ import annotations

import math
import uuid

import pytest

from ticktape.backtest import sweep as sweeps
from ticktape.compute import labels
from ticktape.errors import SpecError
from ticktape.report import sweep
from ticktape.report.build import build

pytestmark = pytest.mark.timeout(300)


async def test_the_heatmap_and_the_table_show_every_set(stored, conn):
    res = stored["sweep_result"]
    title, sections = await build(conn, res.sweep_id)
    assert title == f"Sweep {res.sweep_id[:8]}: sma_crossover, 4 sets on {stored['symbol']}"
    about, chart, kept, table = sections
    assert chart.title == "Sharpe ratio by fast and slow"
    heat = chart.figures[0].data[0]
    assert list(heat.x) == ["5", "10"] and list(heat.y) == ["50", "100"]  # (by value, not as text)
    want = {(s.params["fast"], s.params["slow"]): s.metrics["sharpe"] for s in res.sets}
    for i, slow in enumerate((50, 100)):
        for j, fast in enumerate((5, 10)):
            assert heat.z[i][j] == pytest.approx(want[fast, slow], rel=1e-12, nan_ok=True)
            assert heat.text[i][j] == labels.show("sharpe", want[fast, slow])
    sets = table.tables[0]
    assert len(sets) == 4 and list(sets.columns[:3]) == ["set", "fast", "slow"]
    best = sorted(want.values(), key=lambda v: -v if not math.isnan(v) else math.inf)[0]
    assert sets["Sharpe ratio"].iloc[0] == labels.show("sharpe", best)
    assert sum(r.endswith("(kept)") for r in sets["run"]) == 3
    assert set(sets["run"].str.split().str[0]) == set(stored["sweep_runs"])
    facts = about.tables[0].set_index("")["value"]
    assert facts["sets stored"] == "4" and facts["kept in full detail"] == "3"
    assert facts["varied"] == "fast, slow"
    curves = kept.figures[0].data  # the kept sets' equity, best first, each over its starting cash
    finals = {
        f"fast={s.params['fast']}, slow={s.params['slow']}": s.metrics
        for s in res.sets
        if s.index in res.detail
    }
    assert len(curves) == 3
    for c in curves:
        name = c.name.split(" (")[0]
        assert c.y[-1] == pytest.approx(finals[name]["final_equity"] / 1e6, rel=1e-12)
        assert c.y[0] == pytest.approx(1.0, abs=1e-3)
    ranked = sorted(finals.values(), key=lambda m: -m["sharpe"] if not math.isnan(m["sharpe"]) else math.inf)
    assert curves[0].y[-1] == pytest.approx(ranked[0]["final_equity"] / 1e6, rel=1e-12)


async def test_another_metric_and_one_that_is_not_there(stored, conn):
    res = stored["sweep_result"]
    _, (_, chart, _, table) = await build(conn, res.sweep_id, metric="max_drawdown_pct")
    assert chart.title == "Max drawdown by fast and slow"
    shown = table.tables[0]["Max drawdown"].tolist()
    lowest = min(s.metrics["max_drawdown_pct"] for s in res.sets)
    assert shown[0] == labels.show("max_drawdown_pct", lowest)  # (less is better: first)
    with pytest.raises(
        SpecError, match=r"^--metric: the sets of sweep .* have no metric 'sharpness'; they have .*sharpe"
    ):
        await build(conn, res.sweep_id, metric="sharpness")


def test_varied_parameters_keep_their_order():
    assert sweep.varied([{"b": 1, "a": 1, "c": 1}, {"b": 2, "a": 3, "c": 1}]) == ["b", "a"]
    assert sweep.varied([{"a": 1}]) == []


async def test_one_varied_parameter_is_a_line_and_a_sweep_without_kept_sets_has_no_run_charts(
    conn, random_walk
):
    symbol = f"ONE{uuid.uuid4().hex[:6].upper()}"
    ticks = random_walk(symbol, 5_000, 4, rate_per_s=1.0)
    res = sweeps.sweep(ticks, "sma_crossover", sweeps.grid({"fast": [5, 10, 20], "slow": [80]}))
    await sweeps.store_sweep(conn, res, symbol)
    _, (about, chart, kept, table) = await build(conn, res.sweep_id)
    assert chart.title == "Sharpe ratio by fast"
    assert not kept.figures and "--keep-top N" in kept.notes[0]
    line = chart.figures[0].data[0]
    assert list(line.x) == ["5", "10", "20"]
    by_fast = {s.params["fast"]: s.metrics["sharpe"] for s in res.sets}
    assert list(line.y) == pytest.approx([by_fast[f] for f in (5, 10, 20)], nan_ok=True)
    facts = about.tables[0].set_index("")["value"]
    assert facts["varied"] == "fast" and facts["fixed"] == "slow = 80" and facts["kept in full detail"] == "0"
    assert not any(r.endswith("(kept)") for r in table.tables[0]["run"])
