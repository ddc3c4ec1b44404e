"""The multipage app: Runs, Monitor, Build, Sweeps, SQL, Data (Streamlit's navigation)."""

from __future__ import annotations

import streamlit as st

from ticktape.dashboards import build, common, data, monitor, runs, sql, sweeps

#: (url path, title, page function, icon)
PAGES = (
    ("runs", "Runs", runs.page, ":material/table_rows:"),
    ("monitor", "Monitor", monitor.page, ":material/monitoring:"),
    ("build", "Build", build.page, ":material/construction:"),
    ("sweeps", "Sweeps", sweeps.page, ":material/grid_on:"),
    ("sql", "SQL", sql.page, ":material/database:"),
    ("data", "Data", data.page, ":material/dataset:"),
)


def main() -> None:
    st.set_page_config(page_title="ticktape", layout="wide")
    pages = []
    for path, title, fn, icon in PAGES:
        page = st.Page(common.guarded(fn), title=title, url_path=path, icon=icon, default=path == "runs")
        common.PAGES[path] = page
        pages.append(page)
    st.navigation(pages).run()
