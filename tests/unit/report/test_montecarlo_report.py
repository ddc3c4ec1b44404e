"""The Monte Carlo sections of a report, from a study as it is stored."""

import json

import numpy as np
import plotly.io as pio
import pytest

from ticktape.backtest.montecarlo import RunSeries, simulate
from ticktape.compute import metrics
from ticktape.compute.resample import FAN_POINTS
from ticktape.report.montecarlo import STATISTICS, study_section

RUN = "0190a1b2-0000-7000-8000-000000000001"


@pytest.mark.parametrize("method", ["trades", "blocks"])
def test_a_stored_study_makes_a_section(method):
    rng = np.random.default_rng(2)
    series = RunSeries(
        RUN,
        1e5,
        rng.normal(5, 50, 300),
        rng.normal(0, 0.01, 200),
        86_400 * 10**9,
        252.0,
        0,
        metrics.YEAR_NS,
        original={"final_equity": 101_000.0, "max_drawdown_pct": 0.05, "sharpe": float("nan")},
    )
    res = simulate(series, method, 200, seed=1, processes=1)
    row = json.loads(json.dumps(res.row(), allow_nan=False))  # what the store hands back
    section = study_section(row)
    assert section.title == f"Monte Carlo: {method}"
    fan, hists = section.figures
    assert [t.name for t in fan.data if t.name] == ["5-95%", "25-75%", "median"]
    assert len(fan.data[-1].y) == FAN_POINTS
    assert sum(1 for t in hists.data if t.type == "bar") == 4
    table, probabilities = section.tables
    assert list(table["statistic"]) == [label for label, _ in STATISTICS.values()]
    p50 = table.set_index("statistic").loc["max drawdown %", "p50"]
    assert p50 == pytest.approx(100 * res.summary["stats"]["max_drawdown_pct"]["p50"])
    own = table.set_index("statistic").loc["Sharpe", "run"]  # the run's own sequence, measured as a draw
    assert own == pytest.approx(res.summary["original"]["sharpe"])
    assert np.isnan(row["summary"]["run_metrics"]["sharpe"] or np.nan)  # (the NaN stored as null)
    assert list(probabilities["probability"]) == [res.summary["p_loss"], res.summary["p_drawdown_beyond"]]
    assert ("mean block length" in section.notes[0]) == (method == "blocks")
    html = pio.to_html(fan, include_plotlyjs=False) + pio.to_html(hists, include_plotlyjs=False)
    assert html.count("Plotly.newPlot") == 2
