"""What every page shares: the database, one-line errors, metric cards."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import asyncpg
import pandas as pd
import streamlit as st

from ticktape.compute import labels
from ticktape.dashboards import queries
from ticktape.errors import TicktapeError

#: Errors a page shows as one line (never a traceback): ours, the server's, the OS's.
SHOWN = (TicktapeError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ValueError)


def dsn() -> str:
    """The store the app reads (``ticktape dashboard`` sets it); stops the page without one."""
    url = os.environ.get("TICKTAPE_DATABASE_URL", "").strip()
    if not url:
        st.error("TICKTAPE_DATABASE_URL is not set: start the dashboard with `ticktape dashboard`.")
        st.stop()
    return url


def one_line(exc: BaseException) -> str:
    """An error as the one line a page shows."""
    text = str(exc).strip().splitlines()
    return f"{text[0] if text else type(exc).__name__}"


def guarded(page: Callable[[], Any]) -> Callable[[], None]:
    """``page`` with its errors shown as one line on the page, never a traceback."""

    def run() -> None:
        try:
            page()
        except SHOWN as exc:
            st.error(one_line(exc))

    run.__name__ = page.__name__
    return run


def metric_cards(metrics: dict[str, float], per_row: int = 4) -> None:
    """The run's metrics under human labels, in their units (ticktape.compute.labels)."""
    shown = labels.report(metrics)
    for start in range(0, len(shown), per_row):
        cols = st.columns(per_row)
        for col, (name, value) in zip(cols, shown[start : start + per_row], strict=False):
            col.metric(name, value)
    if note := labels.annualization_note(metrics):
        st.caption(note)


def readable_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table with readable columns (percentages, the return grid by name)."""
    out = pd.DataFrame(
        {
            "run": runs["run_id"].str[:8],
            "strategy": runs["strategy"],
            "symbols": runs["symbols"],
            "period": [_period(a, b) for a, b in zip(runs["data_start"], runs["data_end"], strict=True)],
            "status": runs["status"],
            "return %": runs["total_return"] * 100,
            "Sharpe": runs["sharpe"],
            "grid": [labels.grid(g) if pd.notna(g) else "" for g in runs["return_grid_ns"]],
            "max DD %": runs["max_drawdown_pct"] * 100,
            "trades": runs["n_trades"],
            "ticks/s": runs["ticks_per_s"],
            "created": runs["created_at"],
        }
    )
    return out


def _period(start: Any, end: Any) -> str:
    """``2024-01-02 09:00 (8 h 20 min)``: where the run's data starts and how long it spans."""
    if pd.isna(start):
        return ""
    a = pd.Timestamp(start)
    span = f" ({labels.duration((pd.Timestamp(end) - a).value)})" if pd.notna(end) else ""
    return a.strftime("%Y-%m-%d %H:%M") + span


def report_button(dsn: str, ident: str, key: str, metric: str = "sharpe") -> None:
    """Make the report on run or sweep ``ident`` (``ticktape report``'s HTML
    file) when asked, then offer it as a download."""
    if st.button("Make the report (HTML)", key=f"{key}_make", help="the same file as `ticktape report ID`"):
        st.session_state[f"{key}_page"] = (ident, metric, *queries.report(dsn, ident, metric))
    made = st.session_state.get(f"{key}_page")
    if made and made[:2] == (ident, metric):
        st.download_button(
            f"Download: {made[2]}",
            made[3],
            file_name=f"report-{ident}.html",
            mime="text/html",
            key=f"{key}_download",
            on_click="ignore",
        )


#: The app's pages by url path (filled by ticktape.dashboards.nav.register).
PAGES: dict[str, Any] = {}


def open_page(name: str, **query: str) -> None:
    """Switch to page ``name`` (url path) with ``query`` in its URL."""
    st.switch_page(PAGES[name], query_params=query)
