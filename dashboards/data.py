"""Data: stored symbols, their coverage by day, tick counts and gaps; import a
file with the importers and reject counts of `ticktape data import`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from ticktape.dashboards import common, queries
from ticktape.data.importers import FORMATS, Importer, import_to_store
from ticktape.errors import ImportFailed
from ticktape.store import session

SHOWN_GAPS = 20


def page() -> None:
    st.title("Data")
    dsn = common.dsn()
    cat = queries.catalogue(dsn)
    if not cat:
        st.info("No ticks stored yet: import a file below, or run `ticktape demo`.")
    else:
        table = pd.DataFrame(
            {
                "symbol": [c["symbol"] for c in cat],
                "ticks": [c["ticks"] for c in cat],
                "first": [pd.Timestamp(c["first_ns"], unit="ns", tz="UTC") for c in cat],
                "last": [pd.Timestamp(c["last_ns"], unit="ns", tz="UTC") for c in cat],
                "gaps over 1 h": [c["n_gaps"] for c in cat],
            }
        )
        st.dataframe(
            table,
            hide_index=True,
            key="d_symbols",
            column_config={"ticks": st.column_config.NumberColumn(format="%d")},
        )
        symbol = st.selectbox("symbol", table["symbol"].tolist(), key="d_symbol")
        days = queries.coverage(dsn, symbol)
        if not days.empty:
            days["day"] = pd.to_datetime(days["day"], utc=True).dt.strftime("%Y-%m-%d")  # (one bar a day)
            st.plotly_chart(
                px.bar(days, x="day", y="ticks", title=f"{symbol}: ticks per day (UTC)").update_xaxes(
                    type="category"
                ),
                key="d_coverage",
            )
        gaps = next(c for c in cat if c["symbol"] == symbol)["gaps"]
        if gaps:
            st.caption(f"longest gaps (of {next(c for c in cat if c['symbol'] == symbol)['n_gaps']:,})")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "from": pd.Timestamp(a, unit="ns", tz="UTC"),
                            "to": pd.Timestamp(b, unit="ns", tz="UTC"),
                            "length": pd.Timedelta(b - a, "ns"),
                        }
                        for a, b in gaps[:SHOWN_GAPS]
                    ]
                ),
                hide_index=True,
                key="d_gaps",
            )
        else:
            st.caption("no gap over an hour")
    _import(dsn)


def _import(dsn: str) -> None:
    st.subheader("Import a file")
    up = st.file_uploader("a market data file", key="d_file")
    cols = st.columns(3)
    fmt = cols[0].selectbox("format", FORMATS, key="d_fmt")
    symbol = cols[1].text_input("symbol (when the file has none)", key="d_sym").strip() or None
    strict = cols[2].checkbox("all or nothing (strict)", key="d_strict")
    if up is None or not st.button("Import", type="primary", key="d_go"):
        return
    where = Path(tempfile.mkdtemp(prefix="ticktape-import-"))
    path = where / up.name
    path.write_bytes(up.getvalue())
    rejects = where / (up.name + ".rejects.csv")
    imp = Importer(path, fmt, symbol=symbol, strict=strict, rejects_path=rejects)

    async def go(conn: Any, other: Any = None) -> Any:
        return await import_to_store(conn, [imp], second=other)

    try:
        report = session.run(go, dsn=dsn, migrate=False, second=not strict, what=f"import {up.name}")
    except ImportFailed as exc:
        st.error(f"nothing stored: {common.one_line(exc)}")
        return
    counts = {
        "rows read": report.rows,
        "accepted": report.accepted,
        "stored (new)": report.stored,
        "rejected": report.rejected,
    }
    counts.update({f"rejected: {reason}": n for reason, n in sorted(report.rejects.items())})
    (st.warning if report.rejected else st.success)(
        f"{up.name}: {report.stored:,} ticks stored, {report.rejected:,} rows rejected"
        + (
            " (" + ", ".join(f"{r}: {n:,}" for r, n in sorted(report.rejects.items())) + ")"
            if report.rejected
            else ""
        )
    )
    st.dataframe(
        pd.DataFrame({"": list(counts), "count": list(counts.values())}), hide_index=True, key="d_report"
    )
    if report.rejected and rejects.exists():
        st.download_button(
            "rejected rows (CSV)", rejects.read_bytes(), file_name=rejects.name, key="d_rejects"
        )
