"""SQL: ready queries and a free SQL box, run as the read-only role with a
statement timeout and a row limit; results as a table, a chart and a CSV."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from ticktape.dashboards import common, queries

#: The longest a typed query may run (ms) and the most rows it returns.
TIMEOUT_MS = 10_000
ROW_LIMIT = 10_000


def page() -> None:
    st.title("SQL")
    dsn = common.dsn()
    if note := queries.readonly_note(dsn):
        st.warning(note)
    st.caption(
        f"Runs as the read-only role `ticktape_reader` in a read-only transaction: SELECT only, "
        f"at most {TIMEOUT_MS / 1000:g} s and {ROW_LIMIT:,} rows. Tables: runs, run_metrics, signals, "
        "orders, fills, equity, run_bars, ticks, run_progress."
    )
    runs = queries.runs(dsn, limit=200)
    ready = st.selectbox("ready query", ["(type your own)", *queries.READY], key="q_ready")
    args: tuple = ()
    if ready != "(type your own)":
        if runs.empty:
            st.info("No runs stored yet: the ready queries read one.")
            return
        ids = runs["run_id"].tolist()
        show = lambda r: f"{r[:8]} {runs.set_index('run_id').loc[r, 'strategy']}"  # noqa: E731
        a = st.selectbox("run", ids, format_func=show, key="q_run_a")
        args = (a,)
        if "$2" in queries.READY[ready]:
            b = st.selectbox("second run", ids, index=min(1, len(ids) - 1), format_func=show, key="q_run_b")
            args = (a, b)
        st.session_state["q_sql"] = queries.READY[ready]
    sql = st.text_area(
        "SQL", key="q_sql", height=180, placeholder="SELECT run_id, status, strategy FROM runs LIMIT 10"
    )
    if not st.button("Run", type="primary", key="q_go") or not sql.strip():
        return
    try:
        rows, cut = queries.user_sql(dsn, sql, args, limit=ROW_LIMIT, timeout_ms=TIMEOUT_MS)
    except common.SHOWN as exc:
        st.error(f"refused: {common.one_line(exc)}")
        return
    st.caption(f"{len(rows):,} rows" + (f" (cut at {ROW_LIMIT:,})" if cut else ""))
    st.dataframe(rows, hide_index=True, key="q_rows")
    st.download_button("Download CSV", rows.to_csv(index=False), file_name="query.csv", key="q_csv")
    numeric = [c for c in rows.columns if rows[c].dtype.kind in "if"]
    if len(rows) > 1 and numeric:
        x = rows.columns[0]
        st.plotly_chart(
            px.line(rows, x=x, y=[c for c in numeric if c != x][:4] or numeric[:1]), key="q_chart"
        )
