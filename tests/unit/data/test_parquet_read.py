"""read_parquet: row groups skipped by their statistics and symbols matched by
dictionary code give exactly the rows a plain filter of the file gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.data import readers
from ticktape.model.batch import TICK_DTYPE

FLOATS = ("bid", "ask", "bid_size", "ask_size", "last", "last_size")


def write(path: Path, groups: list[list[tuple[str, int]]]) -> pa.Table:
    """One row group per list of (symbol, ts); returns the whole table."""
    tables = []
    for rows in groups:
        n = len(rows)
        cols = {
            "symbol": pa.array([s for s, _ in rows], pa.string()),
            "ts": pa.array([t for _, t in rows], pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        }
        for k, name in enumerate(FLOATS):
            cols[name] = pa.array(np.arange(n, dtype=float) + k, pa.float64())
        tables.append(pa.table(cols))
    with pq.ParquetWriter(str(path), tables[0].schema) as w:
        for t in tables:
            w.write_table(t)  # (one row group each)
    return pa.concat_tables(tables)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(["A", "B", "CC"]), st.integers(0, 50)), min_size=1, max_size=8),
        min_size=1,
        max_size=4,
    ),
    st.one_of(st.none(), st.sets(st.sampled_from(["A", "B", "CC", "Z"]), max_size=3)),
    st.one_of(st.none(), st.integers(0, 50)),
    st.one_of(st.none(), st.integers(0, 50)),
    st.sampled_from([1, 3, 100]),
)
def test_read_parquet_gives_the_filtered_rows_in_file_order(
    tmp_path_factory: pytest.TempPathFactory,
    groups: list[list[tuple[str, int]]],
    symbols: set[str] | None,
    start: int | None,
    end: int | None,
    batch: int,
) -> None:
    path = tmp_path_factory.mktemp("pq") / "t.parquet"
    table = write(path, groups)
    got: dict[str, list[np.ndarray]] = {}
    for s, b in readers.read_parquet(path, symbols=symbols, start_ns=start, end_ns=end, batch_size=batch):
        assert b.dtype == TICK_DTYPE and len(b)
        got.setdefault(s, []).append(b)
    sym = np.array(table.column("symbol").to_pylist())
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    keep = np.ones(len(sym), bool)
    if start is not None:
        keep &= ts >= start
    if end is not None:
        keep &= ts < end
    for s in ("A", "B", "CC"):
        sel = keep & (sym == s) & (symbols is None or s in symbols)
        mine = np.concatenate(got.pop(s)) if s in got else np.empty(0, TICK_DTYPE)
        np.testing.assert_array_equal(mine["ts"], ts[sel])
        for name in FLOATS:
            np.testing.assert_array_equal(mine[name], table.column(name).to_numpy()[sel])
    assert not got


def test_read_parquet_names_the_file_of_a_row_without_symbol(tmp_path: Path) -> None:
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"symbol": pa.array(["A", None]), "ts": pa.array([1, 2], pa.int64())}), str(path))
    with pytest.raises(ValueError, match=r"n\.parquet.*without a symbol"):
        list(readers.read_parquet(path))
