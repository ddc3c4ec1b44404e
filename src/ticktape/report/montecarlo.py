"""The Monte Carlo sections of a run's report: for each stored study of the
run (``ticktape montecarlo``), its fan chart, the histograms of its
statistics and a table of their percentiles and probabilities."""

from __future__ import annotations

import itertools
from typing import Any

import asyncpg
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ticktape.report.document import Section
from ticktape.store.montecarlo import read_studies

#: Each statistic of a study: its label, and the factor to its unit.
STATISTICS = {
    "final_equity": ("final equity", 1.0),
    "max_drawdown_pct": ("max drawdown %", 100.0),
    "sharpe": ("Sharpe", 1.0),
    "longest_drawdown_ns": ("longest drawdown (days)", 1 / 86_400e9),
}
_METHODS = {
    "trades": "the closed trades' net PnL resampled",
    "returns": "the returns on the run's return grid resampled (i.i.d. bootstrap)",
    "blocks": "the returns on the run's return grid resampled in blocks (stationary bootstrap)",
    "paths": "the strategy rerun on synthetic ticks calibrated to the run's data",
}


async def sections(conn: asyncpg.Connection, run_id: str) -> list[Section]:
    """One section per Monte Carlo study stored for ``run_id``, oldest first
    ([] when there is none)."""
    return [study_section(s) for s in await read_studies(conn, run_id)]


def _fan(study: dict[str, Any]) -> go.Figure:
    fan = study["fan"]
    x = [100 * v for v in fan["x"]]
    fig = go.Figure()
    for lo, hi, name in (("p5", "p95", "5-95%"), ("p25", "p75", "25-75%")):
        fig.add_trace(go.Scatter(x=x, y=fan[hi], mode="lines", line={"width": 0}, showlegend=False))
        fig.add_trace(
            go.Scatter(
                x=x,
                y=fan[lo],
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(31,119,180,0.2)",
                name=name,
            )
        )
    fig.add_trace(go.Scatter(x=x, y=fan["p50"], mode="lines", line={"color": "#1f77b4"}, name="median"))
    start = study["summary"]["initial_equity"]
    fig.add_hline(y=start, line={"dash": "dot", "color": "grey"})
    along = "time" if study["params"].get("fan_x") == "time" else "steps (trades or returns)"
    fig.update_layout(
        title="equity: percentiles of the draws",
        xaxis_title=f"% of the run ({along})",
        yaxis_title="equity",
        height=380,
        margin={"t": 40, "b": 40},
    )
    return fig


def _histograms(study: dict[str, Any]) -> go.Figure:
    fig = make_subplots(rows=2, cols=2, subplot_titles=[label for label, _ in STATISTICS.values()])
    summary = study["summary"]
    for i, (name, (_label, unit)) in enumerate(STATISTICS.items()):
        row, col = divmod(i, 2)
        hist = summary["stats"][name].get("hist")
        if hist:
            edges = [e * unit for e in hist["edges"]]
            mids = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
            widths = [b - a for a, b in itertools.pairwise(edges)]
            fig.add_trace(
                go.Bar(x=mids, y=hist["counts"], width=widths, marker_color="#1f77b4", showlegend=False),
                row=row + 1,
                col=col + 1,
            )
        own = summary["original"].get(name)
        if own is not None:
            fig.add_vline(x=own * unit, line={"color": "#d62728", "dash": "dash"}, row=row + 1, col=col + 1)
    fig.update_layout(
        title="distributions over the draws (dashed: the run itself)", height=560, margin={"t": 60, "b": 30}
    )
    return fig


def _table(study: dict[str, Any]) -> pd.DataFrame:
    summary = study["summary"]
    rows = []
    for name, (label, unit) in STATISTICS.items():
        entry = summary["stats"][name]
        own = summary["original"].get(name)
        rows.append(
            {
                "statistic": label,
                **{q: _scaled(entry.get(q), unit) for q in ("p5", "p25", "p50", "p75", "p95", "mean")},
                "run": _scaled(own, unit),
                "undefined draws": entry.get("undefined", 0),
            }
        )
    return pd.DataFrame(rows)


def _scaled(value: float | None, unit: float) -> float | None:
    return None if value is None else value * unit


def _probabilities(study: dict[str, Any]) -> pd.DataFrame:
    s = study["summary"]
    return pd.DataFrame(
        [
            {"event": "a loss (final equity below the initial)", "probability": s["p_loss"]},
            {
                "event": f"a max drawdown beyond {s['drawdown_threshold']:.0%} of the peak",
                "probability": s["p_drawdown_beyond"],
            },
        ]
    )


def study_section(study: dict[str, Any]) -> Section:
    """The section of one stored study (a row of ``montecarlo_studies`` as
    :func:`ticktape.store.montecarlo.read_studies` returns it)."""
    params = study["params"]
    method = study["method"]
    how = f"{study['n']:,} draws of {_METHODS.get(method, method)}, seed {study['seed']}"
    if study["block_length"] is not None:
        how += f", mean block length {study['block_length']:.1f} returns"
        if params.get("block_length_auto"):
            how += " (Politis-White, from the data)"
    notes = [how + "."]
    if params.get("return_grid_ns") is not None:
        width = params["return_grid_ns"]
        grid = f"on a {width / 1e9:g} s grid" if width else "between consecutive equity samples"
        notes.append(
            f"{params['returns']:,} returns {grid} (the run's return grid); a step stands for"
            f" {params['step_ns'] / 1e9:,.0f} s of the run."
        )
    if params.get("trades") is not None:
        notes.append(
            f"{params['trades']:,} closed trades; Sharpe per trade, annualised at the run's"
            " trade rate; a step stands for the run's mean time between trades."
        )
    if method == "paths":
        notes.append(
            "Each symbol's generator calibrated on the run's own ticks (volatility, spread,"
            " arrival rate, calm/news regimes), no drift; the settings are in the study's params."
        )
    created = study.get("created_at")
    when = f" ({created:%Y-%m-%d %H:%M} UTC)" if created is not None else ""
    return Section(
        title=f"Monte Carlo: {method}{when}",
        figures=(_fan(study), _histograms(study)),
        tables=(_table(study), _probabilities(study)),
        notes=tuple(notes),
    )
