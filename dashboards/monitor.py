"""Monitor: one run's price, fills, position, equity and drawdown, live or played back.

Price is drawn as bars when zoomed out and as ticks when zoomed in, never
more than :data:`MAX_POINTS` points per trace: the run's own event-time bars
(``run_bars``) merged into buckets wide enough, or the stored ticks of the
window when it holds at most :data:`MAX_POINTS`. While the run is live the
charts are a fragment re-run every :data:`LIVE_EVERY_S` seconds that reads
only the equity samples newer than those already shown (the fill markers and
bars of the window are counted and merged in SQL, a bounded answer). Playback
animates the same charts through a stored run at 1x to 1000x event time.
"""

from __future__ import annotations

import math
import time
import uuid

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from ticktape import store
from ticktape.compute.labels import duration
from ticktape.compute.metrics import portfolio_equity
from ticktape.dashboards import common, queries
from ticktape.store import session
from ticktape.store.runs import ACTIONS

#: The most points a price trace holds (bars or ticks).
MAX_POINTS = 2_000
#: Seconds between two refreshes of a live run's charts.
LIVE_EVERY_S = 2.0
#: Seconds between two frames of a playback.
FRAME_S = 0.5
SPEEDS = (1, 10, 100, 1000)
#: The most fill markers a price chart shows (more are merged per time bucket).
MAX_FILL_MARKERS = 300


def page() -> None:
    st.title("Monitor")
    dsn = common.dsn()
    run = _chosen_run(dsn)
    if run is None:
        return
    run_id = run["run_id"]
    unfinished = run["status"] in store.UNFINISHED
    st.markdown(
        f"**{run['strategy']}** on {', '.join(run['symbols'] or [])}"
        + (
            " · live (its status below, re-read every 2 s)"
            if unfinished
            else f" · status **{run['status']}**"
        )
        + (f" · error: {run['error']}" if run.get("error") else "")
    )
    if unfinished:
        _controls(dsn, run_id)
    symbols = list(run["symbols"] or [])
    if not symbols:
        st.info("This run has no symbols.")
        return
    symbol = st.selectbox("symbol", symbols, key="mon_symbol")
    mode = st.radio(
        "view", ["live" if unfinished else "whole run", "playback"], horizontal=True, key="mon_mode"
    )
    if mode == "playback":
        _playback(dsn, run, symbol)
    else:
        _live(dsn, run, symbol, unfinished)
    if not unfinished:
        st.subheader("Metrics")
        m = queries.metrics_of(dsn, run_id)
        if m:
            common.metric_cards(m)
        else:
            st.info("No metrics stored for this run.")


def _chosen_run(dsn: str) -> dict | None:
    """The run named by ``?run=`` in the URL, else one picked from the latest."""
    asked = st.query_params.get("run")
    if asked:
        try:
            uuid.UUID(asked)
        except ValueError:
            st.error(f"run {asked!r} in the URL is not a run id (a UUID); pick a run below.")
            asked = None
    if asked:
        run = queries.run_row(dsn, asked)
        if run is not None:
            return run
        st.error(f"no run {asked} in this store; pick a run below.")
    runs = queries.runs(dsn, limit=200)
    if runs.empty:
        st.info("No runs stored yet: run `ticktape demo`, or build one on the Build page.")
        return None
    pick = st.selectbox(
        "run",
        runs["run_id"].tolist(),
        format_func=lambda r: (
            f"{r[:8]} {runs.set_index('run_id').loc[r, 'strategy']} ({runs.set_index('run_id').loc[r, 'status']})"
        ),
        key="mon_run",
    )
    return queries.run_row(dsn, pick)


def _controls(dsn: str, run_id: str) -> None:
    """Pause, resume, cancel: the run control `ticktape runs pause|resume|cancel` uses."""
    cols = st.columns(3)
    for col, action in zip(cols, ACTIONS, strict=True):
        if col.button(action, key=f"mon_{action}"):
            status = session.run(
                lambda conn, a=action: store.request_control(conn, run_id, a), dsn=dsn, migrate=False
            )
            st.toast(f"{action} requested (status {status})")


# ------------------------------------------------------------------ live / whole run
def _no_samples(run: dict, unfinished: bool) -> str:
    """Why a run shows no charts: not started yet, or a sweep's set stored as a summary."""
    sweep = run["spec"].get("sweep") if not unfinished else None
    if not sweep:
        return "This run has no equity samples yet."
    grid = " ".join(f"--grid {k}={v}" for k, v in run["spec"].get("params", {}).items())
    return (
        f"Parameter set {sweep.get('index')} of sweep {str(sweep.get('id'))[:8]} was stored as a "
        "summary: its metrics are below; the sweep kept fills and equity only for its best sets "
        f"(--keep-top). For this set's, store it in full: `ticktape sweep --data FILE --strategy "
        f"{run['strategy']} {grid} --keep-top 1 --store` (the same figures as in the sweep)."
    )


def _live(dsn: str, run: dict, symbol: str, unfinished: bool) -> None:
    @st.fragment(run_every=LIVE_EVERY_S if unfinished else None)
    def show() -> None:
        eq = _incremental(dsn, run["run_id"])
        _progress(dsn, run["run_id"])
        if eq.empty:
            st.info(_no_samples(run, unfinished))
            return
        _charts(dsn, run, symbol, eq, upto_ns=None)

    show()


def _incremental(dsn: str, run_id: str) -> pd.DataFrame:
    """The equity samples shown so far, extended by only the rows newer than
    the last shown (thinned to every other sample when they pass twice
    :data:`MAX_POINTS` per symbol; the latest always kept)."""
    key = f"mon_cache_{run_id}"
    eq = st.session_state.get(key)
    if eq is None:
        eq = queries.equity(dsn, run_id, points=MAX_POINTS)
    else:
        last = int(eq["ts_ns"].max()) if not eq.empty else -(2**62)
        new = queries.equity_after(dsn, run_id, last)
        if not new.empty:
            eq = pd.concat([eq, new], ignore_index=True)
            n_sym = max(eq["symbol"].nunique(), 1)
            if len(eq) > 2 * MAX_POINTS * n_sym:
                keep = (np.arange(len(eq)) % 2 == 0) | (eq["ts_ns"] == eq["ts_ns"].max()).to_numpy()
                eq = eq[keep].reset_index(drop=True)
    st.session_state[key] = eq
    return eq


def _progress(dsn: str, run_id: str) -> None:
    """The run's status now (re-read with the live charts) and its progress per symbol."""
    status, table = queries.progress(dsn, run_id)
    st.caption(f"now: {status}")
    if table.empty:
        return
    table = table.rename(
        columns={"hot_lag_s": "hot path lag s", "sink_lag_s": "sink lag s", "ticks_per_s": "ticks/s"}
    )
    with st.expander(f"progress ({status})", expanded=status in store.UNFINISHED):
        st.dataframe(
            table,
            hide_index=True,
            key=None,
            column_config={
                "ticks/s": st.column_config.NumberColumn(format="%.0f"),
                "read": st.column_config.NumberColumn(format="localized"),
                "processed": st.column_config.NumberColumn(format="localized"),
                "hot path lag s": st.column_config.NumberColumn(format="%.3f"),
                "sink lag s": st.column_config.NumberColumn(format="%.3f"),
            },
        )


# ------------------------------------------------------------------ playback
def _playback(dsn: str, run: dict, symbol: str) -> None:
    """Play/pause and a speed animate the charts through the run in event time."""
    eq = queries.equity(dsn, run["run_id"], points=MAX_POINTS)
    if eq.empty:
        st.info("This run has no equity samples to play back.")
        return
    t0, t1 = int(eq["ts_ns"].min()), int(eq["ts_ns"].max())
    state = st.session_state.setdefault(
        f"mon_play_{run['run_id']}", {"pos": t0, "playing": False, "wall": None}
    )
    cols = st.columns([1, 1, 2, 4])
    if cols[0].button("⏸ pause" if state["playing"] else "▶ play", key="mon_play"):
        state["playing"] = not state["playing"]
        state["wall"] = time.monotonic()
        if state["pos"] >= t1:
            state["pos"] = t0
    if cols[1].button("⏮ restart", key="mon_restart"):
        state.update(pos=t0, wall=time.monotonic())
    speed = cols[2].selectbox(
        "speed (event time)", SPEEDS, index=3, format_func=lambda k: f"{k}×", key="mon_speed"
    )

    @st.fragment(run_every=FRAME_S if state["playing"] else None)
    def frame() -> None:
        now = time.monotonic()
        if state["playing"] and state["wall"] is not None:
            state["pos"] = min(t1, state["pos"] + int((now - state["wall"]) * speed * 1e9))
            if state["pos"] >= t1:
                state["playing"] = False
        state["wall"] = now
        done = (state["pos"] - t0) / (t1 - t0) if t1 > t0 else 1.0
        st.progress(
            done, text=f"playback position {pd.Timestamp(state['pos'], unit='ns', tz='UTC')} ({done:.1%})"
        )
        _charts(dsn, run, symbol, eq, upto_ns=state["pos"])

    frame()


# ------------------------------------------------------------------ the charts
def _charts(dsn: str, run: dict, symbol: str, eq: pd.DataFrame, upto_ns: int | None) -> None:
    if upto_ns is not None:
        eq = eq[eq["ts_ns"] <= upto_ns]
    if eq.empty:
        st.info("Nothing to show before this position yet.")
        return
    lo, hi = int(eq["ts_ns"].min()), int(eq["ts_ns"].max())
    start, end = _zoom(lo, hi, run["run_id"])
    price, how = _price(dsn, run["run_id"], symbol, start, end, (run.get("spec") or {}).get("bar_ns"))
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.5, 0.15, 0.2, 0.15],
        vertical_spacing=0.03,
        subplot_titles=(f"{symbol}: price ({how}) and fills", "position", "portfolio equity", "drawdown"),
    )
    if how.startswith("bars"):
        fig.add_trace(
            go.Candlestick(
                x=price["bucket"],
                open=price["open"],
                high=price["high"],
                low=price["low"],
                close=price["close"],
                name="mid",
            ),
            row=1,
            col=1,
        )
    elif not price.empty:
        fig.add_trace(
            go.Scatter(x=price["ts"], y=price["mid"], mode="lines", name="mid (ticks)"), row=1, col=1
        )
    width = _nice(max(1, math.ceil((end - start) / 1e9 / (MAX_FILL_MARKERS / 2))))
    window, merged = queries.fill_markers(
        dsn, run["run_id"], symbol, start, end, MAX_FILL_MARKERS, width * 10**9
    )
    grouped = _label(width) if merged else ""
    if not window.empty:
        biggest = float(window["qty"].max()) or 1.0
        for side, name, color in ((1, "buy", "#1a9850"), (-1, "sell", "#d73027")):
            f = window[window["side"] == side]
            fig.add_trace(
                go.Scatter(
                    x=f["ts"],
                    y=f["price"],
                    mode="markers",
                    name=f"{name} fills" + (f" (per {grouped})" if grouped else ""),
                    customdata=np.stack([f["n"].to_numpy(), f["qty"].to_numpy()], axis=-1),
                    hovertemplate="%{customdata[1]:,} units in %{customdata[0]} fills at %{y}<extra></extra>",
                    marker={
                        "color": color,
                        "symbol": "triangle-up" if side > 0 else "triangle-down",
                        "size": 5 + 15 * np.sqrt(f["qty"].to_numpy() / biggest),
                        "line": {"width": 0},
                        "opacity": 0.65,
                    },
                ),
                row=1,
                col=1,
            )
    mine = eq[eq["symbol"] == symbol]
    fig.add_trace(
        go.Scatter(x=mine["ts"], y=mine["position"], line_shape="hv", name="position"), row=2, col=1
    )
    total = portfolio_equity(eq, float(run["initial_cash"] or 0.0))
    when = eq.drop_duplicates("ts_ns").set_index("ts_ns")["ts"].loc[total.index]
    fig.add_trace(go.Scatter(x=when, y=total.values, name="equity"), row=3, col=1)
    dd = total / total.cummax() - 1.0
    fig.add_trace(
        go.Scatter(
            x=when, y=dd.to_numpy() * 100, fill="tozeroy", name="drawdown %", line={"color": "#d73027"}
        ),
        row=4,
        col=1,
    )
    fig.update_layout(height=760, xaxis_rangeslider_visible=False, showlegend=True, margin={"t": 40, "b": 20})
    fig.update_xaxes(range=[pd.Timestamp(start, unit="ns", tz="UTC"), pd.Timestamp(end, unit="ns", tz="UTC")])
    st.plotly_chart(fig, key=f"mon_chart_{upto_ns is not None}")
    left, right = st.columns(2)
    with left:
        st.caption("open orders" + (" at the playback position" if upto_ns is not None else ""))
        st.dataframe(queries.open_orders(dsn, run["run_id"], symbol, upto_ns or hi), hide_index=True)
    with right:
        st.caption("recent fills")
        st.dataframe(queries.recent_fills(dsn, run["run_id"], symbol, upto_ns or hi), hide_index=True)


def _zoom(lo: int, hi: int, run_id: str) -> tuple[int, int]:
    """The shown window: a part of the span chosen on a slider in percent of
    it (so a window reaching 100 % follows a live run's growing end)."""
    if hi <= lo:
        return lo, hi
    a, b = st.slider(
        "zoom (% of the run so far)", 0.0, 100.0, (0.0, 100.0), step=0.01, key=f"mon_zoom_{run_id}"
    )
    start, end = lo + int((hi - lo) * a / 100), lo + int((hi - lo) * b / 100)
    if end <= start:
        end = min(hi, start + 1)
    show = lambda ns: pd.Timestamp(ns, unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    st.caption(f"{show(start)} → {show(end)} UTC ({duration(end - start)})")
    return start, end


def _price(
    dsn: str, run_id: str, symbol: str, start: int, end: int, bar_ns: int | None
) -> tuple[pd.DataFrame, str]:
    """Ticks when the window holds at most MAX_POINTS of them, else bars of
    a width that gives at most MAX_POINTS (the run's own bars; the stored
    ticks' when it recorded none)."""
    if queries.tick_count(dsn, symbol, start, end) <= MAX_POINTS:
        ticks = queries.ticks(dsn, symbol, start, end, MAX_POINTS)
        if not ticks.empty:
            return ticks, "ticks"
    seconds = max(1, math.ceil((end - start) / 1e9 / MAX_POINTS), math.ceil((bar_ns or 0) / 1e9))
    width = _nice(seconds)
    bucket = f"{width} seconds"
    bars = queries.run_bars(dsn, run_id, symbol, bucket)
    if bars.empty:
        bars = queries.price_bars(
            dsn,
            symbol,
            pd.Timestamp(start, unit="ns", tz="UTC"),
            pd.Timestamp(end, unit="ns", tz="UTC"),
            bucket,
        )
    if not bars.empty:
        b = pd.to_datetime(bars["bucket"], utc=True)
        first = pd.Timestamp(
            start - max(width * 10**9, bar_ns or 60 * 10**9), unit="ns", tz="UTC"
        )  # (overlapping it)
        bars = bars[(b > first) & (b <= pd.Timestamp(end, unit="ns", tz="UTC"))]
    return bars, f"bars of {_label(width)}"


_NICE = (1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)


def _nice(seconds: int) -> int:
    """The smallest round bar width (s) of at least ``seconds``."""
    return next((w for w in _NICE if w >= seconds), math.ceil(seconds / 86400) * 86400)


def _label(seconds: int) -> str:
    return duration(seconds * 1e9)
