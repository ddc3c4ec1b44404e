"""The multipage app: Runs, Monitor, Build, Sweeps, SQL, Data (Streamlit's navigation).

Runs is the default page (served at ``/``); the others at ``/monitor``,
``/build``, ``/sweeps``, ``/sql``, ``/data``. Monitor takes ``?run=ID``,
Sweeps ``?sweep=ID``.
"""

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


def register() -> list:
    """The st.Page of every page (each guarded: errors are one line on the
    page), also kept in ``common.PAGES`` by url path for ``open_page``."""
    pages = []
    for path, title, fn, icon in PAGES:
        page = st.Page(common.guarded(fn), title=title, url_path=path, icon=icon, default=path == "runs")
        common.PAGES[path] = page
        pages.append(page)
    return pages


def main() -> None:
    st.set_page_config(page_title="ticktape", layout="wide")
    st.navigation(register()).run()
