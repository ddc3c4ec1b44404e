"""Runs: every run with readable columns, filters, several overlaid, one opened in Monitor."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ticktape.compute import labels
from ticktape.compute.metrics import portfolio_equity
from ticktape.dashboards import common, queries


def page() -> None:
    st.title("Runs")
    dsn = common.dsn()
    if note := queries.readonly_note(dsn):
        st.warning(note)
    if not queries.runs(dsn, limit=1).empty:
        runs = queries.runs_overview(dsn, **_filters(queries.run_choices(dsn)))
    else:
        runs = pd.DataFrame()
    if runs.empty:
        st.info(
            "No runs stored yet (or none pass the filters): run `ticktape demo`, or build one on the Build page."
        )
        return
    table = common.readable_runs(runs)
    picked = st.dataframe(
        table,
        hide_index=True,
        key="runs_table",
        on_select="rerun",
        selection_mode="multi-row",
        column_config={
            "return %": st.column_config.NumberColumn(format="%.2f"),
            "Sharpe": st.column_config.NumberColumn(format="%.2f"),
            "max DD %": st.column_config.NumberColumn(format="%.2f"),
            "trades": st.column_config.NumberColumn(format="%d"),
            "ticks/s": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    rows = list(picked.selection.rows) if picked is not None else []
    chosen = runs.iloc[rows] if rows else runs.iloc[:0]
    st.caption(
        "Select rows to overlay their equity and compare their metrics; open one in Monitor, or make its report."
    )
    one = st.selectbox(  # (whole ids: the runs of one sweep share their first digits)
        "open in Monitor or report on",
        runs["run_id"].tolist(),
        format_func=lambda r: f"{r} {runs.set_index('run_id').loc[r, 'strategy']}",
        key="runs_open",
    )
    if st.button("Open in Monitor", key="runs_open_button"):
        common.open_page("monitor", run=one)
    common.report_button(dsn, one, "runs_report")
    if not chosen.empty:
        _compare(dsn, chosen)


def _filters(choices: dict[str, list[str]]) -> dict:
    """The filters' widgets; their values as ``queries.runs_overview`` keywords (filtered in SQL)."""
    cols = st.columns(5)
    since = cols[4].date_input("created since", value=None, key="f_since")
    return {
        "strategies": cols[0].multiselect("strategy", choices["strategies"], key="f_strategy"),
        "symbols": cols[1].multiselect("symbol", choices["symbols"], key="f_symbol"),
        "statuses": cols[2].multiselect("status", choices["statuses"], key="f_status"),
        "sweeps": cols[3].multiselect("sweep", choices["sweeps"], format_func=lambda s: s[:8], key="f_sweep"),
        "since": pd.Timestamp(since, tz="UTC").to_pydatetime() if since is not None else None,
    }


def _compare(dsn: str, chosen: pd.DataFrame) -> None:
    fig = go.Figure()
    side = {}
    for _, run in chosen.iterrows():
        eq = queries.equity(dsn, run["run_id"])
        if eq.empty:
            continue
        total = portfolio_equity(eq, float(run["initial_cash"] or 0.0))
        when = eq.drop_duplicates("ts_ns").set_index("ts_ns")["ts"]
        fig.add_trace(
            go.Scatter(
                x=when.loc[total.index],
                y=total.values / total.iloc[0],
                name=f"{run['run_id'][:8]} {run['strategy']}",
            )
        )
        side[run["run_id"][:8]] = dict(labels.report(queries.metrics_of(dsn, run["run_id"])))
    fig.update_layout(title="equity, normalised to 1 at the start", height=380)
    st.plotly_chart(fig, key="runs_overlay")
    if side:
        st.dataframe(pd.DataFrame(side), key="runs_side_by_side")
