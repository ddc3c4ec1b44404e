"""Sweeps: a heatmap parameter x parameter -> a chosen metric; a cell opens its run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ticktape.compute import labels
from ticktape.dashboards import common, queries


def page() -> None:
    st.title("Sweeps")
    dsn = common.dsn()
    all_sweeps = queries.sweeps(dsn)
    if all_sweeps.empty:
        st.info("No sweeps stored yet: launch one from the Build page (or `ticktape sweep --store`).")
        return
    ids = all_sweeps["sweep_id"].tolist()
    asked = st.query_params.get("sweep")
    sweep_id = st.selectbox(
        "sweep",
        ids,
        index=ids.index(asked) if asked in ids else 0,
        format_func=lambda s: (
            f"{s[:8]} {all_sweeps.set_index('sweep_id').loc[s, 'strategy']} "
            f"({all_sweeps.set_index('sweep_id').loc[s, 'runs']} runs)"
        ),
        key="s_sweep",
    )
    runs = queries.sweep_runs(dsn, sweep_id)
    if runs.empty:
        st.info("This sweep has no runs.")
        return
    params = pd.json_normalize(runs["params"].tolist())
    varied = [c for c in params.columns if params[c].astype(str).nunique() > 1]
    metric_names = [c for c in runs.columns if c not in ("run_id", "params")]
    cols = st.columns(3)
    metric = cols[0].selectbox(
        "metric",
        metric_names,
        index=metric_names.index("sharpe") if "sharpe" in metric_names else 0,
        format_func=labels.label,
        key="s_metric",
    )
    common.report_button(dsn, sweep_id, "s_report", metric=metric)
    if not varied:
        st.info("Every run of this sweep has the same parameters.")
        st.dataframe(runs.drop(columns="params"), hide_index=True)
        return
    x = cols[1].selectbox("x", varied, key="s_x")
    y = cols[2].selectbox("y", [v for v in varied if v != x] or varied, key="s_y")
    table = params.assign(run_id=runs["run_id"], value=runs[metric])
    grid = table.pivot_table(index=y, columns=x, values="value", aggfunc="mean")
    ids_grid = table.pivot_table(index=y, columns=x, values="run_id", aggfunc="first")
    xs, ys = [str(c) for c in grid.columns], [str(i) for i in grid.index]
    shown = [[labels.show(metric, v) for v in row] for row in grid.values]
    fig = go.Figure(
        go.Heatmap(
            z=grid.values,
            x=xs,
            y=ys,
            text=shown,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            colorbar={"title": labels.label(metric)},
            hoverinfo="skip",
        )
    )
    # a heatmap cannot be selected (plotly selects points): a transparent
    # marker on each cell carries the click, and the cell's label on hover
    cx, cy = np.meshgrid(xs, ys)
    fig.add_trace(
        go.Scatter(
            x=cx.ravel(),
            y=cy.ravel(),
            text=np.array(shown).ravel(),
            mode="markers",
            marker={"symbol": "square", "size": 40, "opacity": 0},
            hovertemplate=f"{x}=%{{x}}, {y}=%{{y}}<br>{labels.label(metric)}: %{{text}}<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_layout(
        title=f"{labels.label(metric)} by {x} and {y}", xaxis_title=x, yaxis_title=y, height=480
    )
    fig.update_xaxes(type="category")  # one cell per value, evenly spaced
    fig.update_yaxes(type="category")
    event = st.plotly_chart(fig, key="s_heatmap", on_select="rerun", selection_mode="points")
    points: list[dict[str, Any]] = event["selection"]["points"] if isinstance(event, dict) else []
    picked = None
    if points:
        p = points[0]
        picked = ids_grid.loc[_key(grid.index, p["y"]), _key(grid.columns, p["x"])]
    cells = table.assign(label=table[x].astype(str) + " × " + table[y].astype(str))
    if picked in cells["run_id"].tolist() and picked != st.session_state.get("s_picked"):
        # a new click: the box shows its cell (a widget with a key keeps its
        # own value over `index`; the click stays selected, so only a new one moves it)
        st.session_state["s_cell"] = st.session_state["s_picked"] = picked
    choice = st.selectbox(
        "open the run of a cell",
        cells["run_id"].tolist(),
        format_func=lambda r: (
            f"{x}={cells.set_index('run_id').loc[r, x]}, {y}={cells.set_index('run_id').loc[r, y]}"
        ),
        key="s_cell",
    )
    if st.button("Open in Monitor", key="s_open"):
        common.open_page("monitor", run=choice)


def _key(index: pd.Index, shown: str) -> Any:
    """The index value drawn as ``shown``."""
    return next(v for v in index if str(v) == str(shown))
