"""The dashboard page: the list of runs and one run's price, fills and equity."""

from __future__ import annotations

import os

import plotly.graph_objects as go
import streamlit as st

from ticktape import store
from ticktape.compute.metrics import portfolio_equity
from ticktape.dashboards import queries

#: Run metrics shown side by side (24 in one row were cut to two characters each).
METRICS_PER_ROW = 6


def _dsn() -> str:
    dsn = os.environ.get("TICKTAPE_DATABASE_URL", "").strip()
    if not dsn:
        st.error("TICKTAPE_DATABASE_URL is not set: start the dashboard with `ticktape dashboard`.")
        st.stop()
    return dsn


def _progress(dsn: str, run_id: str, unfinished: bool) -> None:
    """The run's progress per symbol, read again every 2 s while it runs."""

    @st.fragment(run_every=2.0 if unfinished else None)
    def show() -> None:
        status, table = queries.progress(dsn, run_id)
        st.caption(f"status: {status}")
        if not table.empty:
            st.dataframe(table, hide_index=True, width="stretch")

    show()


def main() -> None:
    st.set_page_config(page_title="ticktape", layout="wide")
    st.title("ticktape runs")
    dsn = _dsn()
    runs = queries.runs(dsn)
    if note := queries.readonly_note(dsn):
        st.warning(note)
    if runs.empty:
        st.info("No runs stored yet. Run `ticktape demo` first.")
        return
    st.dataframe(runs, hide_index=True, width="stretch")
    run_id = st.selectbox("run", runs["run_id"].tolist())
    run = runs.set_index("run_id").loc[run_id]
    _progress(dsn, run_id, run["status"] in store.UNFINISHED)
    metrics = queries.metrics(dsn, run_id)
    for start in range(0, len(metrics), METRICS_PER_ROW):  # a row holds a few readable figures
        cols = st.columns(METRICS_PER_ROW)
        for col, (_, m) in zip(cols, metrics.iloc[start : start + METRICS_PER_ROW].iterrows(), strict=False):
            col.metric(m["name"], f"{m['value']:,.4g}")
    symbols = list(run["symbols"] or [])
    if not symbols:
        return
    symbol = st.selectbox("symbol", symbols)
    fills = queries.fills(dsn, run_id, symbol)
    eq = queries.equity(dsn, run_id)
    if eq.empty:
        st.warning("This run has no equity samples yet.")
        return
    bucket = st.selectbox("bar", ["1 minute", "5 minutes", "1 hour"])
    bars = queries.run_bars(dsn, run_id, symbol, bucket)
    if bars.empty:  # a run without its own bars: from the stored ticks (slower: every tick is read)
        bars = queries.price_bars(dsn, symbol, eq["ts"].min(), eq["ts"].max(), bucket)
    price = go.Figure()
    if not bars.empty:
        price.add_trace(
            go.Candlestick(
                x=bars["bucket"],
                open=bars["open"],
                high=bars["high"],
                low=bars["low"],
                close=bars["close"],
                name=f"{symbol} mid",
            )
        )
    if not fills.empty:
        for side, name, color in ((1, "buy", "green"), (-1, "sell", "red")):
            f = fills[fills["side"] == side]
            price.add_trace(
                go.Scatter(
                    x=f["ts"],
                    y=f["price"],
                    mode="markers",
                    name=f"{name} fills",
                    marker={"color": color, "size": 6},
                )
            )
    price.update_layout(title=f"{symbol}: price and fills", xaxis_rangeslider_visible=False, height=450)
    st.plotly_chart(price, width="stretch")
    total = portfolio_equity(eq, float(run["initial_cash"]))
    when = eq.drop_duplicates("ts_ns").set_index("ts_ns")["ts"]
    eq_fig = go.Figure()
    eq_fig.add_trace(go.Scatter(x=when.loc[total.index], y=total.values, name="portfolio equity"))
    for sym, g in eq.groupby("symbol"):
        eq_fig.add_trace(go.Scatter(x=g["ts"], y=g["equity"], name=f"{sym} equity", visible="legendonly"))
    eq_fig.update_layout(title="equity", height=350)
    st.plotly_chart(eq_fig, width="stretch")
