"""The sections of a walk-forward study's report: in-sample vs out-of-sample per
window, the stitched out-of-sample equity, walk-forward efficiency and
parameter stability (docs/walkforward.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ticktape import store
from ticktape.backtest.walkforward import STITCH_RULE, stitch
from ticktape.compute import labels
from ticktape.report.document import Section
from ticktape.store import studies

#: The most points of a curve drawn (a report stays small whatever the runs' length).
CURVE_POINTS = 2_000

#: Height of each figure, in pixels.
HEIGHT = 420

#: The metrics of the per-window table, in and out of sample.
WINDOW_METRICS = ("annualized_return", "sharpe", "max_drawdown_pct", "n_trades")


def _thin(s: pd.Series, points: int = CURVE_POINTS) -> pd.Series:
    """At most ``points`` of ``s``, evenly spaced by position (the first and last kept)."""
    if len(s) <= points:
        return s
    return s.iloc[np.unique(np.linspace(0, len(s) - 1, points).round().astype(np.int64))]


async def stitched_curve(conn: Any, study: dict[str, Any]) -> pd.Series:
    """The study's stitched out-of-sample equity, from its stored runs (every
    sample; the pieces of runs deleted since are left out)."""
    symbols = {r["run_id"]: r["symbols"][0] for r in study["runs"]}
    pieces = []
    for w in study["summary"]["windows"]:
        if w["run_id"] not in symbols:
            continue
        eq = await store.read_results(conn, w["run_id"], symbols[w["run_id"]], "equity")
        s = pd.Series(eq["equity"], index=pd.to_datetime(eq["ts"], unit="ns", utc=True))
        pieces.append(s[~s.index.duplicated(keep="last")])
    return stitch(pieces, float(study["spec"]["engine"]["initial_cash"]))


def _window_table(summary: dict[str, Any], select: str) -> pd.DataFrame:
    rows = []
    keys = [select, *(k for k in WINDOW_METRICS if k != select)]
    for w in summary["windows"]:
        row: dict[str, Any] = {
            "window": w["index"],
            "train": f"{w['train_start']} to {w['train_end']}",
            "test": f"{w['test_start']} to {w['test_end']}",
            "chosen set": ", ".join(f"{k}={v}" for k, v in w["params"].items()),
        }
        for k in keys:
            row[f"IS {labels.label(k)}"] = labels.show(k, w["in_sample"].get(k))
            row[f"OOS {labels.label(k)}"] = labels.show(k, w["out_of_sample"].get(k))
        row["efficiency"] = labels.number(w["efficiency"])
        rows.append(row)
    return pd.DataFrame(rows)


def _equity_figure(curve: pd.Series, summary: dict[str, Any]) -> go.Figure:
    shown = _thin(curve)
    fig = go.Figure(go.Scatter(x=shown.index, y=shown.to_numpy(), mode="lines", name="stitched OOS equity"))
    for w in summary["windows"]:
        if w["index"] % 2:
            fig.add_vrect(x0=w["test_start"], x1=w["test_end"], fillcolor="grey", opacity=0.08, line_width=0)
    fig.update_layout(
        title="Stitched out-of-sample equity", xaxis_title="time (UTC)", yaxis_title="equity", height=HEIGHT
    )
    return fig


def _efficiency_figure(summary: dict[str, Any]) -> go.Figure:
    ws = summary["windows"]
    x = [f"window {w['index']}" for w in ws]

    def pct(side: str) -> list[float]:
        values = [w[side].get("annualized_return") for w in ws]
        return [np.nan if v is None else 100 * v for v in values]

    fig = go.Figure(
        [
            go.Bar(x=x, y=pct("in_sample"), name="in sample"),
            go.Bar(x=x, y=pct("out_of_sample"), name="out of sample"),
        ]
    )
    fig.update_layout(
        title="Annualized return per window",
        barmode="group",
        yaxis_title="annualized return (%)",
        height=HEIGHT,
    )
    return fig


def _stability_figure(summary: dict[str, Any]) -> go.Figure:
    ws = summary["windows"]
    fig = go.Figure()
    for name in dict.fromkeys(k for w in ws for k in w["params"]):
        fig.add_trace(
            go.Scatter(
                x=[w["index"] for w in ws],
                y=[w["params"].get(name) for w in ws],
                mode="lines+markers",
                name=name,
            )
        )
    fig.update_layout(
        title="Chosen parameters per window", xaxis_title="window", yaxis_title="value", height=HEIGHT
    )
    return fig


async def sections(conn: Any, study_id: str) -> list[Section]:
    """The report's sections of the stored walk-forward study ``study_id``.

    Raises
    ------
    SpecError
        ``study_id`` is not a UUID, or no such study.
    """
    study = await studies.read_study(conn, study_id)
    spec, summary = study["spec"], study["summary"]
    if summary is None:
        return [
            Section(f"Walk-forward study {study_id}", notes=(f"The study is {study['status']}: no results.",))
        ]
    select = spec["select"]
    curve = await stitched_curve(conn, study)
    stitched = summary["stitched"]["metrics"]
    stab = pd.DataFrame(summary["stability"])
    if len(stab):
        for col in ("share", "mean", "std", "cv"):
            stab[col] = [labels.number(v) for v in stab[col]]
    return [
        Section(
            "Walk-forward: in sample vs out of sample",
            tables=(_window_table(summary, select),),
            notes=(
                f"{spec['strategy']} on {spec.get('data', 'the data')}: {len(summary['windows'])} windows, "
                f"train {spec['train']}, test {spec['test']}, step {spec['step']}"
                f"{', anchored' if spec['anchored'] else ', rolling'}; in each window the set with the best "
                f"{labels.label(select)} in sample ({spec['n_sets']} sets) ran out of sample.",
                "IS: the chosen set's metrics on the training span; OOS: its run on the test span "
                "(a fresh run: flat, indicators warming up inside the span).",
            ),
        ),
        Section(
            "Stitched out-of-sample equity",
            figures=(_equity_figure(curve, summary),),
            tables=(pd.DataFrame(labels.report(stitched), columns=["metric", "value"]),),
            notes=(
                f"Stitching: {STITCH_RULE}.",
                f"{len(curve):,} equity samples ({min(len(curve), CURVE_POINTS):,} drawn); "
                "alternate test windows shaded.",
                *(
                    [
                        f"{gone} of the {len(summary['windows'])} out-of-sample runs were deleted: the curve leaves them out."
                    ]
                    if (gone := len(summary["windows"]) - len(study["runs"]))
                    else []
                ),
            ),
        ),
        Section(
            "Walk-forward efficiency",
            figures=(_efficiency_figure(summary),),
            notes=(
                "Efficiency = out-of-sample annualized return / in-sample annualized return, per window "
                "(n/a when the in-sample one is not above zero).",
                "Study: the stitched curve's annualized return / the windows' mean in-sample one = "
                f"{labels.number(summary['efficiency'])}.",
            ),
        ),
        Section(
            "Parameter stability",
            figures=(_stability_figure(summary),),
            tables=(stab,),
            notes=(
                "Per parameter: the value chosen in each window, how many distinct values, how often it "
                "changed from one window to the next, the most chosen value and its share of windows, "
                "and for numbers the mean, standard deviation and coefficient of variation (std / |mean|).",
            ),
        ),
    ]
