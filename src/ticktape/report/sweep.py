"""The sections of a stored sweep's report: what was swept, a heatmap
parameter x parameter -> a chosen metric, and the table of every set.

A stored sweep (docs/sweeps.md) has one run per valid parameter set, each
with its metrics; only the sets it kept (``--keep-top``) have their fills
and equity, so a set's own report (``ticktape report RUN``) has charts for
those only.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ticktape.compute import labels
from ticktape.errors import SpecError
from ticktape.report.document import Section
from ticktape.report.run import DOWN, UP, grid_width, portfolio_curve
from ticktape.store.report import equity_on_grid, equity_span, sweep_sets

#: The metric a sweep's heatmap shows unless another is asked for.
DEFAULT_METRIC = "sharpe"
#: Metrics where less is better: their heatmap's colours are reversed and
#: the table puts the least first.
LOWER_IS_BETTER = frozenset({"max_drawdown", "max_drawdown_pct", "max_drawdown_duration_ns", "volatility"})
#: The most kept sets whose equity the report draws (the best by the metric).
MAX_CURVES = 10
#: The metrics the sets table shows (besides the chosen one).
TABLE_METRICS = ("total_return", "sharpe", "max_drawdown_pct", "n_trades", "final_equity")


def varied(params: list[dict[str, Any]]) -> list[str]:
    """The parameters that take more than one value across the sets, in the
    order the first set names them.

    >>> varied([{"fast": 5, "slow": 50, "size": 1}, {"fast": 10, "slow": 50, "size": 1}])
    ['fast']
    """
    keys = list(dict.fromkeys(k for p in params for k in p))
    return [k for k in keys if len({repr(p.get(k)) for p in params}) > 1]


def _order(values: pd.Series) -> list[Any]:
    """A parameter's distinct values in order (numbers by value, others as text)."""
    distinct = list(dict.fromkeys(values.tolist()))
    try:
        return sorted(distinct)
    except TypeError:
        return sorted(distinct, key=str)


def heatmap(table: pd.DataFrame, x: str, y: str, metric: str) -> go.Figure:
    """``metric`` by ``x`` (columns) and ``y`` (rows), the mean over any
    other parameter's values; cells without a set are blank."""
    grid = table.pivot_table(index=y, columns=x, values=metric, aggfunc="mean", dropna=False)
    grid = grid.reindex(index=_order(table[y]), columns=_order(table[x]))
    z = grid.to_numpy(dtype=np.float64)
    scale = [[0, DOWN], [0.5, "#f7f3c9"], [1, UP]]
    if metric in LOWER_IS_BETTER:
        scale = [[0, UP], [0.5, "#f7f3c9"], [1, DOWN]]
    finite = z[np.isfinite(z)]
    # gains and losses on either side of 0 (a Sharpe ratio, a return), else the range's middle
    zmid = 0.0 if len(finite) and finite.min() < 0 < finite.max() else None
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(c) for c in grid.columns],
            y=[str(i) for i in grid.index],
            text=[[labels.show(metric, v) for v in row] for row in z],
            texttemplate="%{text}" if z.size <= 900 else None,
            hovertemplate=f"{x} %{{x}}, {y} %{{y}}: %{{text}}<extra></extra>",
            colorscale=scale,
            zmid=zmid,
            colorbar={"title": {"text": labels.label(metric)}},
            xgap=1,
            ygap=1,
        )
    )
    fig.update_xaxes(type="category", title_text=x)
    fig.update_yaxes(type="category", title_text=y)
    fig.update_layout(
        template="plotly_white",
        title={"text": f"{labels.label(metric)} by {x} and {y}", "x": 0.01},
        height=max(360, min(900, 140 + 30 * len(grid))),
        margin={"l": 80, "r": 30, "t": 60, "b": 60},
    )
    return fig


def _line(table: pd.DataFrame, x: str, metric: str) -> go.Figure:
    """``metric`` against the one varied parameter."""
    points = table.groupby(x)[metric].mean()
    points = points.reindex(_order(table[x]))
    fig = go.Figure(
        go.Scatter(
            x=[str(v) for v in points.index],
            y=points.to_numpy(),
            mode="lines+markers",
            text=[labels.show(metric, v) for v in points.to_numpy()],
            hovertemplate=f"{x} %{{x}}: %{{text}}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", title_text=x)
    fig.update_yaxes(title_text=labels.label(metric))
    fig.update_layout(
        template="plotly_white",
        title={"text": f"{labels.label(metric)} by {x}", "x": 0.01},
        height=380,
        margin={"l": 80, "r": 30, "t": 60, "b": 60},
    )
    return fig


async def sections(
    conn: asyncpg.Connection, sweep_id: str | uuid.UUID, metric: str = DEFAULT_METRIC
) -> list[Section]:
    """The report's sections of one stored sweep (:func:`report`'s)."""
    return (await report(conn, sweep_id, metric))[1]


async def report(
    conn: asyncpg.Connection, sweep_id: str | uuid.UUID, metric: str = DEFAULT_METRIC
) -> tuple[str, list[Section]]:
    """The title and sections of one stored sweep's report.

    Raises
    ------
    SpecError
        No runs stored under ``sweep_id``, or ``metric`` is none of the
        metrics its sets have (the line lists them).
    """
    sets = await sweep_sets(conn, uuid.UUID(str(sweep_id)))
    if not sets:
        raise SpecError(f"sweep_id: no sweep {sweep_id}")
    sets.sort(key=lambda s: ((s["spec"].get("sweep") or {}).get("index", math.inf), s["created_at"]))
    names = list(dict.fromkeys(k for s in sets for k in s["metrics"]))
    if metric not in names:
        raise SpecError(
            f"--metric: the sets of sweep {sweep_id} have no metric {metric!r}; they have {', '.join(sorted(names))}"
        )
    params = [s["params"] for s in sets]
    moving = varied(params)
    table = pd.DataFrame(params).assign(
        set=[(s["spec"].get("sweep") or {}).get("index", i) for i, s in enumerate(sets)],
        run_id=[s["run_id"] for s in sets],
        detail=[s["detail"] for s in sets],
        **{m: [s["metrics"].get(m, math.nan) for s in sets] for m in dict.fromkeys((metric, *TABLE_METRICS))},
    )
    first = sets[0]
    heading = (
        f"Sweep {str(sweep_id)[:8]}: {first['strategy'] or 'a strategy'}, {len(sets):,} sets"
        f" on {', '.join(first['symbols'] or [])}"
    )
    curves = await _kept_curves(conn, sets, table, moving, metric)
    return heading, [
        _about(sweep_id, sets, moving),
        _chart(table, moving, metric),
        curves,
        _sets(table, moving, metric),
    ]


async def _kept_curves(
    conn: asyncpg.Connection, sets: list[dict[str, Any]], table: pd.DataFrame, moving: list[str], metric: str
) -> Section:
    """The equity of the best :data:`MAX_CURVES` kept sets, each divided by
    its starting cash, on one time grid (the store resamples each)."""
    kept = table[table["detail"]]
    if kept.empty:
        return Section(
            "Kept sets",
            notes=("No set was kept in full detail (`ticktape sweep --keep-top N` keeps the N best).",),
        )
    kept = kept.sort_values(metric, ascending=metric in LOWER_IS_BETTER, na_position="last").head(MAX_CURVES)
    engine = sets[0]["spec"].get("engine") or {}
    cash = float(engine.get("initial_cash") or 0.0)
    start, end = sets[0]["data_start"], sets[0]["data_end"]
    width = grid_width(int((end - start).total_seconds() * 1e9) if start and end else 0)
    fig = go.Figure()
    for _, row in kept.iterrows():
        rid = uuid.UUID(row["run_id"])
        if not (await equity_span(conn, rid))[2]:
            continue
        curve = portfolio_curve(await equity_on_grid(conn, rid, width), width, cash)
        base = cash * len(curve.positions) if cash else float(curve.equity[0])
        name = ", ".join(f"{p}={row[p]}" for p in moving) or str(row["set"])
        fig.add_trace(
            go.Scatter(
                x=curve.times(),
                y=curve.equity / base,
                name=f"{name} ({labels.label(metric)} {labels.show(metric, row[metric])})",
                line={"width": 1.3},
            )
        )
    fig.add_hline(y=1.0, line={"color": "#9aa5b1", "dash": "dot", "width": 1})
    fig.update_yaxes(title_text="equity / starting cash")
    fig.update_layout(
        template="plotly_white",
        title={"text": "Equity of the kept sets", "x": 0.01},
        height=460,
        margin={"l": 70, "r": 30, "t": 60, "b": 100},
        hovermode="x unified",
        showlegend=True,
        legend={"orientation": "h", "y": -0.2, "yanchor": "top"},
    )
    total = int(table["detail"].sum())
    which = f"the {len(kept)} best by {labels.label(metric)} of the {total}" if len(kept) < total else "each"
    return Section(
        "Kept sets",
        figures=(fig,),
        notes=(
            f"The equity of {which} of the sets kept in full detail (--keep-top), over its starting cash,"
            f" at the last sample of each {labels.duration(width)} (UTC).",
        ),
    )


def _about(sweep_id: Any, sets: list[dict[str, Any]], moving: list[str]) -> Section:
    first = sets[0]
    fixed = {k: v for k, v in first["params"].items() if k not in moving}
    kept = sum(bool(s["detail"]) for s in sets)
    start, end = first["data_start"], first["data_end"]
    when = (
        f"{start:%Y-%m-%d %H:%M:%S} → {end:%Y-%m-%d %H:%M:%S} UTC ({labels.duration((end - start).total_seconds() * 1e9)})"
        if start is not None and end is not None
        else "n/a"
    )
    rows = [
        ("sweep id", str(sweep_id)),
        ("strategy", first["strategy"] or ""),
        ("data", ", ".join(first["symbols"] or [])),
        ("period", when),
        ("sets stored", labels.number(len(sets))),
        ("kept in full detail", labels.number(kept)),
        ("varied", ", ".join(moving) or "none"),
        ("fixed", ", ".join(f"{k} = {v}" for k, v in fixed.items()) or "none"),
    ]
    engine = first["spec"].get("engine") or {}
    if engine:
        rows.append(("fees", f"{labels.number(engine.get('fee_bps', 0))} bps taker"))
        rows.append(("initial cash", labels.show("final_equity", engine.get("initial_cash"))))
    return Section(
        "Sweep",
        tables=(pd.DataFrame(rows, columns=["", "value"]),),
        notes=(
            "Every valid parameter set is stored as a run with its metrics, exactly those of a single backtest"
            " of its parameters (docs/sweeps.md); the sets kept in full detail have their own report"
            " (ticktape report RUN_ID).",
        ),
    )


def _chart(table: pd.DataFrame, moving: list[str], metric: str) -> Section:
    label = labels.label(metric)
    if not moving:
        return Section(f"{label} by parameters", notes=("Every set of this sweep has the same parameters.",))
    if len(moving) == 1:
        return Section(f"{label} by {moving[0]}", figures=(_line(table, moving[0], metric),))
    x, y = moving[0], moving[1]
    others = moving[2:]
    fig = heatmap(table, x, y, metric)
    notes = [
        f"Each cell is the mean over {', '.join(others)} (the other varied parameters)."
        if others
        else "One cell per set."
    ]
    blank = int(np.isnan(np.asarray(fig.data[0].z, dtype=np.float64)).sum())
    if blank:
        notes.append(
            f"{blank} blank cells: no set there (the strategy refused it, or it was not in the grid)."
        )
    return Section(f"{label} by {x} and {y}", figures=(fig,), notes=tuple(notes))


def _sets(table: pd.DataFrame, moving: list[str], metric: str) -> Section:
    ordered = table.sort_values(
        metric, ascending=metric in LOWER_IS_BETTER, na_position="last", kind="stable"
    )
    shown = pd.DataFrame({"set": ordered["set"].astype(str)})
    for p in moving:
        shown[p] = ordered[p].astype(str)
    for m in dict.fromkeys((metric, *TABLE_METRICS)):
        shown[labels.label(m)] = [labels.show(m, v) for v in ordered[m]]
    shown["run"] = [
        r + (" (kept)" if d else "") for r, d in zip(ordered["run_id"], ordered["detail"], strict=True)
    ]
    best = ordered.iloc[0]
    return Section(
        "Parameter sets",
        tables=(shown,),
        notes=(
            f"All {len(ordered):,} sets, best {labels.label(metric)} first; the best is run {best['run_id']}.",
        ),
    )
