"""Market data against the real (embedded) PostgreSQL: import -> store -> read,
re-import, the bar views, book events, the catalogue and the ``data`` CLI."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import os
import shutil
import subprocess
import sys
import tracemalloc
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ticktape import store, testing
from ticktape.config import dbschema_dir
from ticktape.data import readers, synth
from ticktape.data.importers import Importer, TickBatch, import_to_store
from ticktape.errors import ImportFailed, KeyOrderError
from ticktape.model.batch import TICK_DTYPE
from ticktape.testing import market

pytestmark = pytest.mark.integration

BASE = 1_704_067_200 * 10**9  # 2024-01-01T00:00Z


def sym() -> str:
    return f"D{uuid.uuid4().hex[:8]}"


async def stored(conn: asyncpg.Connection, symbol: str, **kw) -> np.ndarray:
    parts = [b async for b in store.read_ticks(conn, symbol, **kw)]
    return np.concatenate(parts) if parts else np.empty(0, TICK_DTYPE)


def accepted(imp: Importer) -> np.ndarray:
    return np.concatenate([b.ticks for b in imp if isinstance(b, TickBatch)])


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert len(a) == len(b)
    for name in TICK_DTYPE.names or ():
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


async def test_import_round_trip_and_reimport_stores_nothing_new(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    s = sym()
    ticks = market(5_000, seed=3, symbol=s, trade_every=0)
    ticks["last"][::7] = ticks["bid"][::7]
    ticks["last_size"][::7] = 2.0
    ticks["ts"][100:110] = ticks["ts"][100]  # ticks sharing a microsecond
    path = tmp_path / "t.csv"

    pd.DataFrame(ticks).to_csv(path, index=False)
    rep = await import_to_store(conn, Importer(path, "csv", symbol=s, time_format="ns", block=1_000))
    assert rep.rejected == 0 and rep.stored == rep.accepted == len(ticks)
    assert_same(await stored(conn, s), ticks)
    again = await import_to_store(conn, Importer(path, "csv", symbol=s, time_format="ns", block=777))
    assert again.accepted == len(ticks) and again.stored == 0
    assert await conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = $1", s) == len(ticks)


async def test_several_files_in_one_import_store_what_one_by_one_stores(
    db_url: str, conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """Daily files of one month and a file of the next, as one import (one
    writer, two connections): the same rows as importing them one by one,
    the days' month loaded in bulk once, a bad row counted in its own file."""

    s, t = sym(), sym()
    day = 86_400 * 10**9
    ticks = np.concatenate(
        list(synth.generate_process(synth.ProcessConfig(symbol=s, n_ticks=4_000, seed=5, rate_per_s=0.001)))
    )
    assert (ticks["ts"][-1] - ticks["ts"][0]) > 32 * day  # into the next month
    cuts = [0, 1_000, 2_000, len(ticks)]
    paths = []
    for k, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        path = tmp_path / f"d{k}.csv"
        pd.DataFrame(ticks[lo:hi]).to_csv(path, index=False)
        paths.append(path)
    with open(paths[1], "a") as f:
        f.write(f"{int(ticks['ts'][1_999])},-1,1,1,1,,\n")  # non-positive bid: rejected in d1.csv
    importers = [Importer(p, "csv", symbol=s, time_format="ns", block=300, rejects_path=None) for p in paths]
    other = await store.connect(db_url)
    try:
        rep = await import_to_store(conn, importers, second=other)
    finally:
        await other.close()
    assert rep.stored == rep.accepted == len(ticks) and rep.rows == len(ticks) + 1
    assert rep.rejects == {"non_positive_price": 1} and importers[1].report.rejected == 1
    assert [i.report.accepted for i in importers] == [1_000, 1_000, 2_000]
    assert rep.path == ", ".join(str(p) for p in paths) and rep.symbols == {s: len(ticks)}
    assert_same(await stored(conn, s), ticks)
    if await partitioned(conn):  # January came in three files and was loaded in bulk, in key order, at once
        jan = int(np.sum(ticks["ts"] < (BASE + 31 * day)))
        assert jan > 2_000
        assert jan == await conn.fetchval(
            "SELECT rows FROM ticks_key_order WHERE partition = to_regclass($1)",
            store.tick_partition(s, np.datetime64("2024-01")),
        )
    for p in paths:  # one by one, as a second symbol: the same rows
        await import_to_store(conn, Importer(p, "csv", symbol=t, time_format="ns", block=300))
    assert_same(await stored(conn, t), ticks)
    again = await import_to_store(conn, [Importer(p, "csv", symbol=s, time_format="ns") for p in paths])
    assert again.accepted == len(ticks) and again.stored == 0
    with pytest.raises(ValueError, match="at least one"):
        await import_to_store(conn, [])


async def test_overlapping_writes_store_only_the_new_ticks_and_mixed_nulls_read_back(
    conn: asyncpg.Connection,
) -> None:
    """write_ticks compares keys with what is stored (new ticks inside an
    already stored range go in, stored ones do not); read_ticks decodes
    NULL layouts in runs and falls back to server-side NaN when quotes and
    trades alternate."""
    s = sym()
    ticks = market(3_000, seed=8, symbol=s, trade_every=0)
    ticks["last"][1_000:1_400] = ticks["bid"][1_000:1_400]  # a run of quotes with trades
    ticks["last_size"][1_000:1_400] = 3.0
    ticks["bid"][2_000::2] = np.nan  # trades alternating with quotes
    ticks["bid_size"][2_000::2] = np.nan
    seq = np.arange(len(ticks), dtype=np.int64)
    odd, even = seq % 2 == 1, seq % 2 == 0
    assert await store.write_ticks(conn, s, ticks[even], seq[even]) == even.sum()
    # the same range again with every tick: only the odd ones are new
    assert await store.write_ticks(conn, s, ticks, seq) == odd.sum()
    assert await store.write_ticks(conn, s, ticks, seq) == 0
    for batch_size in (7, 500, 5_000):
        back = await stored(conn, s, batch_size=batch_size)
        expect = ticks.copy()
        expect["ts"] = expect["ts"] // 1_000 * 1_000
        assert_same(back, expect)
    async with conn.transaction():  # inside an outer transaction, a repeated seq: staging path
        dup = ticks[:3].copy()
        dup["ts"] = ticks["ts"][-1] + 10**9
        assert await store.write_ticks(conn, s, dup, np.zeros(3, dtype=np.int64)) == 1


async def test_import_leaves_the_session_settings_as_they_were(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    s = sym()
    path = tmp_path / "x.csv"
    path.write_text("ts,bid,ask\n" + "".join(f"{1_704_186_000 + i},{100 + i},{101 + i}\n" for i in range(50)))
    await conn.execute("SET synchronous_commit = remote_apply")
    rep = await import_to_store(conn, Importer(path, "csv", symbol=s, time_format="s", block=7))
    assert rep.stored == 50
    assert await conn.fetchval("SHOW synchronous_commit") == "remote_apply"
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text() + "1704186100,-1,2\n")
    with pytest.raises(ImportFailed, match="non positive price"):
        await import_to_store(conn, Importer(bad, "csv", symbol=s, time_format="s", strict=True, block=7))
    assert await conn.fetchval("SHOW synchronous_commit") == "remote_apply"
    assert await conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = $1", s) == 50


async def test_parquet_export_and_read_back(conn: asyncpg.Connection, tmp_path: Path) -> None:
    s = sym()
    ticks = market(3_000, seed=4, symbol=s, trade_every=0)
    await store.write_ticks(conn, s, ticks)  # default seq: the importers' convention
    out = tmp_path / "x.parquet"
    mid = int(ticks["ts"][1_000])
    assert await readers.export_parquet(conn, out, [s], start_ns=mid) == 2_000
    back = np.concatenate([b for _, b in readers.read_parquet(out, batch_size=512)])
    assert_same(back, ticks[1_000:])
    # the parquet importer takes it back in (nothing new)
    rep = await import_to_store(conn, Importer(out, "parquet"))
    assert rep.accepted == 2_000 and rep.stored == 0 and set(rep.symbols) == {s}


async def test_bar_views_on_plain_postgres(conn: asyncpg.Connection) -> None:
    s = sym()
    t = np.zeros(5, dtype=TICK_DTYPE)
    t["ts"] = [BASE + 1, BASE + 2 * 10**9, BASE + 30 * 10**9, BASE + 61 * 10**9, BASE + 3_601 * 10**9]
    t["bid"] = [10, 12, 8, np.nan, 30]
    t["ask"] = [12, 14, 10, np.nan, 32]
    t[["bid_size", "ask_size"]] = (1, 1)
    t["last"] = [np.nan, 13, np.nan, 50, np.nan]
    t["last_size"] = [np.nan, 2, np.nan, 5, np.nan]
    await store.write_ticks(conn, s, t)
    # plain views: nothing to refresh; TimescaleDB refreshes its three continuous aggregates
    assert await store.refresh_bars(conn) == (3 if await store.has_timescale(conn) else 0)
    q = "SELECT open, high, low, close, ticks, volume, trades FROM {} WHERE symbol = $1 ORDER BY bucket"
    m = [tuple(r) for r in await conn.fetch(q.format("bars_1m"), s)]
    assert m == [
        (11.0, 13.0, 9.0, 9.0, 3, 2.0, 1),
        (50.0, 50.0, 50.0, 50.0, 1, 5.0, 1),
        (31.0, 31.0, 31.0, 31.0, 1, None, 0),
    ]
    h = [tuple(r) for r in await conn.fetch(q.format("bars_1h"), s)]
    assert h == [(11.0, 50.0, 9.0, 50.0, 4, 7.0, 2), (31.0, 31.0, 31.0, 31.0, 1, None, 0)]
    assert await conn.fetchval("SELECT count(*) FROM bars_1s WHERE symbol = $1", s) == 5


async def test_binance_capture_book_events_and_catalogue(conn: asyncpg.Connection, tmp_path: Path) -> None:
    s = sym()
    lines = []
    for i in range(6):
        lines.append(
            f"{10**18 + i * 10**9} {json.dumps({'data': {'u': i, 's': s, 'b': '10', 'B': '1', 'a': '11', 'A': '2'}})}"
        )
    lines.append(
        f"{10**18 + 9_000 * 10**9} {json.dumps({'data': {'e': 'depthUpdate', 'E': 1, 's': s, 'b': [['10', '3']], 'a': []}})}"
    )
    lines.append(
        f"{10**18 + 9_001 * 10**9} {json.dumps({'data': {'e': 'trade', 's': s, 'p': '10.5', 'q': '1'}})}"
    )
    path = tmp_path / "cap.gz"
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    rep = await import_to_store(conn, Importer(path, "binance-ws"))
    assert (rep.stored, rep.book_stored) == (7, 1)
    again = await import_to_store(conn, Importer(path, "binance-ws"))
    assert (again.stored, again.book_stored) == (0, 0)
    row = await conn.fetchrow("SELECT kind, side, price, size FROM book_events WHERE symbol = $1", s)
    assert tuple(row) == (10, 1, 10.0, 3.0)
    cat = await store.tick_catalogue(conn, gap_ns=60 * 10**9, symbols=[s])
    assert len(cat) == 1 and cat[0]["ticks"] == 7 and cat[0]["n_gaps"] == 1
    assert cat[0]["gaps"] == [(10**18 + 5 * 10**9, 10**18 + 9_001 * 10**9)]


@pytest.mark.shared_data
async def test_real_tardis_trades_round_trip(conn: asyncpg.Connection, shared_data) -> None:
    s = sym()
    path = shared_data("ticks/tardis_binance_btcusdt_trades.csv")
    expect = accepted(Importer(path, "tardis"))
    # the file's symbol column names the symbol; re-key it for an isolated test
    rep = await import_to_store(conn, Importer(path, "tardis"))
    assert rep.accepted == len(expect) == 9_999
    back = await stored(conn, "BTCUSDT")
    assert len(back) >= len(expect)
    got = back[np.isin(back["ts"], expect["ts"])]
    np.testing.assert_array_equal(np.sort(got["last"]), np.sort(expect["last"]))
    assert np.isnan(got["bid"]).all()
    again = await import_to_store(conn, Importer(path, "tardis"))
    assert again.stored == 0
    del s


# -- the CLI ------------------------------------------------------------------


def test_cli_generate_import_list_stats_export(
    cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    s = sym()
    gen = cli("data", *["generate", "--symbol", s, "--ticks", "20000", "--out", "g.parquet"])
    assert gen.exit_code == 0, gen.output
    imp = cli("data", *["import", "g.parquet", "--format", "parquet"])
    assert imp.exit_code == 0, imp.output
    assert "20,000" in imp.output
    lst = cli("data", *["list"])
    assert lst.exit_code == 0 and s in lst.output
    st = cli("data", *["stats", "--symbol", s, "--json"])
    assert st.exit_code == 0, st.output
    assert '"ticks": 20000' in st.output
    ex = cli("data", *["export", "e.parquet", "--symbol", s])
    assert ex.exit_code == 0 and "20,000" in ex.output
    a = np.concatenate([b for _, b in readers.read_parquet(tmp_path / "g.parquet")])
    b = np.concatenate([b for _, b in readers.read_parquet(tmp_path / "e.parquet")])
    assert_same(a, b)
    st2 = cli("data", *["stats", "--file", "e.parquet"])
    assert st2.exit_code == 0 and "by hour" in st2.output
    g2 = cli("data", *["generate", "--symbol", s + "B", "--ticks", "500", "--depth", "3"])
    assert g2.exit_code == 0, g2.output
    for new in ("3,000", "0"):  # into the store (bulk months), then again: nothing new
        g3 = cli("data", *["generate", "--symbol", s + "C", "--ticks", "3000", "--rate", "0.001"])
        assert g3.exit_code == 0, g3.output
        assert f"{new} new in the store" in " ".join(g3.output.split()), g3.output


def test_cli_import_rejects_and_strict(
    cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)
    s = sym()
    src = tmp_path / "q.csv"
    src.write_text(
        "ts,bid,ask\n2024-01-02T09:00:00Z,1,2\n2024-01-02T09:00:01Z,3,2\n2024-01-02T09:00:02Z,0,2\n"
    )
    res = cli("data", *["import", str(src), "--symbol", s])
    assert res.exit_code == 0, res.output
    assert "crossed_quote" in res.output and "non_positive_price" in res.output
    assert (tmp_path / "q.csv.rejects.csv").read_text().count("\n") == 3
    res = cli("data", *["import", str(src), "--symbol", s, "--strict", "--dry-run"])
    assert res.exit_code == 1
    res = cli("data", *["import", str(tmp_path / "missing.csv")])
    assert res.exit_code == 1
    # two files, one import: the total, and each file's rejects under its own name
    other = tmp_path / "r.csv"
    other.write_text("ts,bid,ask\n2024-01-02T09:00:03Z,1,2\n2024-01-02T09:00:04Z,-1,2\n")
    res = cli("data", *["import", str(src), str(other), "--symbol", s])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "rows read │ 5" in out and "stored (new) │ 1" in out, out
    assert "2 rejected rows of q.csv" in out and "1 rejected rows of r.csv" in out, out
    assert (tmp_path / "r.csv.rejects.csv").read_text().count("\n") == 2
    res = cli("data", *["import", str(src), str(other), "--rejects", "x.csv"])
    assert res.exit_code == 1 and "--rejects names one file" in " ".join(res.output.split())


def test_strict_import_is_all_or_nothing_through_the_installed_command(db_url: str, tmp_path: Path) -> None:
    """``--strict``: one transaction. A bad last row after three months of
    good ticks stores nothing (the months loaded before it included), exits
    non-zero and names file:line:field; the same file made good stores all."""
    s = sym()
    env = {**os.environ, "TICKTAPE_DATABASE_URL": db_url, "TICKTAPE_HOME": str(tmp_path / "home")}

    def ticktape(*args: str) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("ticktape")
        return subprocess.run(
            [str(exe), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )

    async def count() -> int:
        c = await store.connect(db_url)
        try:
            return int(await c.fetchval("SELECT count(*) FROM ticks WHERE symbol = $1", s))
        finally:
            await c.close()

    december = tmp_path / "dec.csv"
    december.write_text("ts,bid,ask\n" + "".join(f"2023-12-31T23:59:{i:02d}Z,99,100\n" for i in range(10)))
    res = ticktape("data", "import", str(december), "--symbol", s, "--strict")
    assert res.returncode == 0, res.stderr
    before = asyncio.run(count())
    assert before == 10
    n = 210_000  # over three months, more than one block of lines (200,000)
    ts = BASE + np.arange(n, dtype=np.int64) * (90 * 86_400 * 10**9 // n)
    iso = np.datetime_as_string(ts.astype("datetime64[ns]"), unit="us")
    rows = [f"{t}Z,{100 + i % 50},{101 + i % 50}" for i, t in enumerate(iso.tolist())]
    src = tmp_path / "q1.csv"
    src.write_text("ts,bid,ask\n" + "\n".join([*rows, f"{iso[-1]}Z,-5,101"]) + "\n")
    res = ticktape("data", "import", str(src), "--symbol", s, "--strict")
    assert res.returncode == 1, res.stdout
    assert "Traceback" not in res.stderr
    (line,) = [x for x in res.stderr.splitlines() if x.strip()]
    assert line.startswith(f"ticktape: error: {src}:{n + 2}: bid: non positive price"), line
    assert asyncio.run(count()) == before  # nothing of the three months
    src.write_text("ts,bid,ask\n" + "\n".join(rows) + "\n")
    res = ticktape("data", "import", str(src), "--symbol", s, "--strict")
    assert res.returncode == 0, res.stderr
    assert asyncio.run(count()) == before + n


def test_cli_import_database_errors_are_one_line_naming_file_and_database(
    cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "q.csv"
    src.write_text("ts,bid,ask\n2024-01-02T09:00:00Z,1,2\n")
    # nothing listens on port 1: connection refused
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", "postgresql://someone:secret@127.0.0.1:1/nowhere")
    res = cli("data", *["import", str(src), "--symbol", sym()])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    out = " ".join(res.output.split())
    assert "ticktape: error:" in out and "q.csv" in out and "127.0.0.1:1" in out, out
    assert "refused" in out and "secret" not in out, out

    # a role that may log in but not write ticks: permission denied
    role = f"ro_{uuid.uuid4().hex[:8]}"

    async def make_role() -> str:
        c = await store.connect(db_url)
        try:
            await c.execute(f"CREATE ROLE {role} LOGIN")
            return str(await c.fetchval("SELECT current_database()"))
        finally:
            await c.close()

    asyncio.run(make_role())
    parts = urlsplit(db_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", urlunsplit(parts._replace(netloc=f"{role}@{host}")))
    try:
        res = cli("data", *["import", str(src), "--symbol", sym()])
        assert res.exit_code == 1
        assert "Traceback" not in res.output
        out = " ".join(res.output.split())
        assert "ticktape: error:" in out and "q.csv" in out and "permission denied" in out, out
        assert "Traceback" not in res.output
    finally:

        async def drop_role() -> None:
            c = await store.connect(db_url)
            try:
                await c.execute(f"DROP ROLE {role}")
            finally:
                await c.close()

        asyncio.run(drop_role())


# -- partitions and the bulk writer (plain PostgreSQL) ------------------------

MONTHS = np.array(["2024-01", "2024-02", "2024-03"], dtype="datetime64[M]")
MONTH_NS = MONTHS.astype("datetime64[ns]").astype(np.int64)


async def partitioned(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT relkind = 'p' FROM pg_class WHERE oid = 'ticks'::regclass"))


def quotes(n: int, t0: int, step_ns: int = 1_000_000, seed: int = 0) -> np.ndarray:
    """Quotes 0.01 wide on the 0.01 grid, one every ``step_ns`` from ``t0``."""
    return testing.quotes(n, t0=t0, step_ns=step_ns, walk=0.01, decimals=2, seed=seed)


async def test_tick_writer_loads_new_months_in_bulk_and_reimports_nothing(conn: asyncpg.Connection) -> None:
    if not await partitioned(conn):
        pytest.skip("ticks is not partitioned here (TimescaleDB): TickWriter writes batch by batch")
    s = sym()
    # 3 batches in January, the 3rd running into February, then March
    ticks = np.concatenate(
        [quotes(3000, int(MONTH_NS[1]) - 2500 * 1_000_000_000, step_ns=10**9), quotes(500, int(MONTH_NS[2]))]
    )
    parts = np.array_split(np.arange(len(ticks)), 4)
    async with store.TickWriter(conn) as w:
        for idx in parts:
            await w.write(s, ticks[idx], seq=np.zeros(len(idx), np.int64))  # one tick per µs
    assert w.stored == len(ticks) and w.bulk_rows == len(ticks)
    names = {
        r["relname"]
        for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'ticks'::regclass AND c.relname LIKE '%' || left(md5($1), 12)",
            s,
        )
    }
    assert names == {store.tick_partition(s, m) for m in MONTHS}
    for m in MONTHS:  # Python and SQL name a partition alike; each has the primary key
        assert store.tick_partition(s, m) == await conn.fetchval(
            "SELECT ticktape_tick_partition($1, $2::text::timestamptz)", s, f"{m}-01T00:00:00+00:00"
        )
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_index WHERE indrelid = to_regclass($1) AND indisprimary",
            store.tick_partition(s, m),
        )
        assert not await conn.fetchval(  # (the symbol was the column's default while loading)
            "SELECT atthasdef FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'symbol'",
            store.tick_partition(s, m),
        )
        assert not await conn.fetchval(  # (nor is the CHECK of its bounds left once it is attached)
            "SELECT count(*) FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'c'",
            store.tick_partition(s, m),
        )
    assert_same(await stored(conn, s, batch_size=777), ticks)
    # again, with a writer and batch by batch: nothing new
    async with store.TickWriter(conn) as w:
        for idx in parts:
            await w.write(s, ticks[idx], seq=np.zeros(len(idx), np.int64))
    assert w.stored == 0 and w.bulk_rows == 0
    assert await store.write_ticks(conn, s, ticks, seq=np.zeros(len(ticks), np.int64)) == 0
    assert await store.delete_ticks(conn, s) == len(ticks)
    assert await conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = $1", s) == 0
    assert await conn.fetchval("SELECT to_regclass($1) IS NULL", store.tick_partition(s, MONTHS[0]))


async def test_tick_writer_keeps_the_first_of_a_repeated_key_and_rolls_back_on_error(
    conn: asyncpg.Connection,
) -> None:
    if not await partitioned(conn):
        pytest.skip("ticks is not partitioned here (TimescaleDB)")
    s = sym()
    first = quotes(100, int(MONTH_NS[0]))
    again = first[40:60].copy()
    again["bid"] += 1  # same keys, other values: not stored
    async with store.TickWriter(conn) as w:
        await w.write(s, first, seq=np.zeros(100, np.int64))
        await w.write(s, again, seq=np.zeros(20, np.int64))
    assert w.stored == 100
    assert_same(await stored(conn, s), first)
    # an error inside the writer: the open month is not stored
    s2 = sym()
    with pytest.raises(RuntimeError, match="boom"):
        async with store.TickWriter(conn) as w:
            await w.write(s2, quotes(50, int(MONTH_NS[1])), seq=0)
            raise RuntimeError("boom")
    assert await conn.fetchval("SELECT count(*) FROM ticks WHERE symbol = $1", s2) == 0
    assert await conn.fetchval("SELECT to_regclass($1) IS NULL", store.tick_partition(s2, MONTHS[1]))
    assert not conn.is_in_transaction()
    with pytest.raises(TypeError, match="TICK_DTYPE"):
        async with store.TickWriter(conn) as w:
            await w.write(s2, np.zeros(3))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["writer", "write_ticks"]),
            st.integers(0, 1),  # symbol
            st.lists(
                st.tuples(st.integers(0, 2), st.integers(0, 40), st.integers(0, 2)),
                min_size=1,
                max_size=40,
                unique=True,
            ),
            st.integers(0, 3),  # value
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),  # TickWriter on two connections
)
# (found by it: a batch whose first and last ticks share a month, another month between)
@example(writes=[("write_ticks", 0, [(0, 0, 1), (1, 0, 0), (0, 0, 0)], 0)], two=False)
# (and: a count of write_ticks lost while a month was being finished on the other connection)
@example(writes=[("writer", 0, [(0, 0, 0), (1, 0, 0)], 0), ("writer", 0, [(0, 0, 1)], 1)], two=True)
def test_any_mix_of_writes_stores_each_key_once_first_write_wins(
    db_url: str, writes: list, two: bool
) -> None:
    """Batches of (month, µs, seq) keys over two symbols and three months, written
    by TickWriter (on one or two connections) or write_ticks in any order,
    repeats included: the store holds each key once, with the values of its
    first write, read back in order."""

    async def go() -> None:
        conn = await store.connect(db_url)
        other = await store.connect(db_url) if two else None
        try:
            symbols = [sym(), sym()]
            model: dict[tuple[int, int, int], float] = {}
            writer: store.TickWriter | None = None
            inserted = 0
            for how, k, keys, value in writes:
                arr = np.array(keys, dtype=np.int64)
                ticks = np.empty(len(arr), dtype=TICK_DTYPE)
                ticks["ts"] = MONTH_NS[arr[:, 0]] + arr[:, 1] * 1000
                ticks["bid"] = value
                ticks["ask"] = value + 1
                ticks["bid_size"] = ticks["ask_size"] = 1.0
                ticks["last"] = np.where(arr[:, 1] % 3 == 0, value, np.nan)  # trades interleaved
                ticks["last_size"] = np.nan
                for (m, us, q), last in zip(keys, ticks["last"], strict=True):
                    model.setdefault((k, int(MONTH_NS[m]) + us * 1000, q), (value, last))
                if how == "writer":
                    writer = writer or store.TickWriter(conn, second=other)
                    await writer.write(symbols[k], ticks, seq=arr[:, 2])
                else:
                    if writer is not None:
                        await writer.close()
                        inserted += writer.stored
                        writer = None
                    inserted += await store.write_ticks(conn, symbols[k], ticks, seq=arr[:, 2])
            if writer is not None:
                await writer.close()
                inserted += writer.stored
            assert inserted == len(model)
            for k, s in enumerate(symbols):
                got = await stored(conn, s, batch_size=5)
                want = sorted((ts, q, v) for (kk, ts, q), v in model.items() if kk == k)
                assert got["ts"].tolist() == [ts for ts, _, _ in want]
                assert got["bid"].tolist() == [v[0] for _, _, v in want]
                np.testing.assert_array_equal(got["last"], [v[1] for _, _, v in want])
                await store.delete_ticks(conn, s)
        finally:
            await conn.close()
            if other is not None:
                await other.close()

    asyncio.run(go())


def migrations_before(number: int, tmp_path: Path) -> Path:
    """A folder with the project's migrations numbered below ``number``."""

    before = tmp_path / "before"
    before.mkdir()
    for path in dbschema_dir().glob("*.sql"):
        if int(path.name[:4]) < number:
            shutil.copy(path, before / path.name)
    return before


async def test_migration_0030_moves_stored_ticks_into_partitions(fresh_db: str, tmp_path: Path) -> None:
    c = await store.connect(fresh_db)
    try:
        await store.migrate(c, folder=migrations_before(30, tmp_path))
        if await c.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"):
            pytest.skip("0030 changes nothing on TimescaleDB")
        assert not await partitioned(c)
        a = quotes(2000, int(MONTH_NS[1]) - 1000 * 10**9, step_ns=10**9)  # January and February
        b = quotes(10, int(MONTH_NS[2]))
        assert await store.write_ticks(c, "A", a) == 2000
        assert await store.write_ticks(c, "B'x", b) == 10
        bars = await c.fetch("SELECT * FROM bars_1h ORDER BY symbol, bucket")
        assert "0030_ticks_partitions" in await store.migrate(c)
        assert await partitioned(c)
        assert [dict(r) for r in await c.fetch("SELECT * FROM bars_1h ORDER BY symbol, bucket")] == [
            dict(r) for r in bars
        ]
        assert_same(await stored(c, "A"), a)
        assert_same(await stored(c, "B'x"), b)
        assert await c.fetchval("SELECT count(*) FROM pg_inherits WHERE inhparent = 'ticks'::regclass") == 3
        assert await store.write_ticks(c, "A", a) == 0  # the key still holds
        assert await store.migrate(c) == []
    finally:
        await c.close()


@pytest.mark.parametrize("n", [0, 1, 6, 7, 8, 23, 300])
async def test_read_ticks_on_two_connections_gives_what_one_gives(
    conn: asyncpg.Connection, db_url: str, n: int
) -> None:
    s = sym()
    ticks = quotes(n, int(MONTH_NS[1]) - 150 * 10**9, step_ns=10**9)  # across a month boundary
    ticks["last"] = np.where(np.arange(n) % 5 == 0, ticks["bid"], np.nan)  # trades interleaved
    await store.write_ticks(conn, s, ticks)
    other = await store.connect(db_url)
    try:
        for kw in (
            {},
            {"start_ns": int(ticks["ts"][n // 3]) if n else 0, "end_ns": int(MONTH_NS[1]) + 10**9},
        ):
            one = [b async for b in store.read_ticks(conn, s, batch_size=7, **kw)]
            two = [b async for b in store.read_ticks(conn, s, batch_size=7, second=other, **kw)]
            assert [len(b) for b in two] == [len(b) for b in one]
            assert all(len(b) == 7 for b in two[:-1])
            if one:
                assert_same(np.concatenate(two), np.concatenate(one))
        # leaving early (closing the generator) frees both connections
        async with contextlib.aclosing(store.read_ticks(conn, s, batch_size=2, second=other)) as it:
            async for _ in it:
                break
        assert await conn.fetchval("SELECT 1") == 1 and await other.fetchval("SELECT 1") == 1
    finally:
        await other.close()


async def test_import_on_two_connections_stores_what_one_does(
    conn: asyncpg.Connection, db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "months.csv"
    step = 86_400 * 9  # 9 days: 40 ticks over a year
    path.write_text(
        "ts,bid,ask\n" + "".join(f"{1_704_186_000 + i * step},{100 + i},{101 + i}\n" for i in range(40))
    )
    a, b = sym(), sym()
    other = await store.connect(db_url)
    try:
        await other.execute("SET synchronous_commit = remote_write")
        one = await import_to_store(conn, Importer(path, "csv", symbol=a, time_format="s", block=7))
        two = await import_to_store(
            conn, Importer(path, "csv", symbol=b, time_format="s", block=7), second=other
        )
        assert one.stored == two.stored == 40
        assert await other.fetchval("SHOW synchronous_commit") == "remote_write"
        assert_same(await stored(conn, b), await stored(conn, a))
        again = await import_to_store(
            conn, Importer(path, "csv", symbol=b, time_format="s", block=7), second=other
        )
        assert again.stored == 0
    finally:
        await other.close()


async def test_two_writers_importing_the_same_ticks_at_once_store_them_once(
    conn: asyncpg.Connection, db_url: str
) -> None:
    s = sym()
    ticks = quotes(3000, int(MONTH_NS[1]) - 1500 * 10**9, step_ns=10**9)  # January and February
    parts = np.array_split(np.arange(len(ticks)), 6)
    other = await store.connect(db_url)
    try:

        async def run(c: asyncpg.Connection) -> int:
            async with store.TickWriter(c) as w:
                for idx in parts:
                    await w.write(s, ticks[idx], seq=np.zeros(len(idx), np.int64))
            return w.stored

        counts = await asyncio.gather(run(conn), run(other))
        assert sum(counts) == len(ticks)
        assert_same(await stored(conn, s), ticks)
    finally:
        await other.close()


# -- months stored in key order, read by blocks (plain PostgreSQL, 0032) -----


async def listed(conn: asyncpg.Connection, symbol: str) -> set[str]:
    """The partitions of ``symbol`` listed in ticks_key_order."""
    rows = await conn.fetch(
        "SELECT partition::text FROM ticks_key_order WHERE right(partition::text, 13) = '_' || left(md5($1), 12)",
        symbol,
    )
    return {r[0] for r in rows}


def three_months(counts: tuple[int, int, int], trades: bool, ties: bool = False) -> list[np.ndarray]:
    """Ticks in January, February and March (1 ms apart, from the 2nd of the
    month; with ``ties``, two by two at the same time)."""
    out = []
    for m, n in enumerate(counts):
        t = quotes(n, int(MONTH_NS[m]) + 86_400 * 10**9, seed=m)
        if ties:
            t["ts"] = int(MONTH_NS[m]) + 86_400 * 10**9 + np.arange(n) // 2 * 1_000_000
        if trades:  # trades interleaved: NULLs vary row by row
            t["last"] = np.where(np.arange(n) % 3 == 0, t["bid"], np.nan)
        out.append(t)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.tuples(st.integers(0, 700), st.integers(0, 300), st.integers(1, 700)),  # ticks per month
    st.sampled_from(["writer", "write_ticks", "shuffled"]),  # how February is written
    st.booleans(),  # trades interleaved
    st.booleans(),  # ticks sharing a time
    st.sampled_from([1, 7, 60, 250, 5000]),  # batch size
    st.tuples(st.integers(-1, 1800), st.integers(-1, 1800)),  # start and end: tick index, -1 none
    st.booleans(),  # second connection
)
@example(counts=(700, 0, 1), feb="writer", trades=True, ties=False, batch=60, bounds=(30, 700), two=True)
def test_months_stored_in_key_order_read_back_as_written(
    db_url: str,
    counts: tuple[int, int, int],
    feb: str,
    trades: bool,
    ties: bool,
    batch: int,
    bounds: tuple[int, int],
    two: bool,
) -> None:
    """Months TickWriter loaded in key order are listed and read by blocks,
    the others by the key; any range, batch size, one or two connections:
    exactly the stored ticks of the range in order, in batches of
    ``batch`` (the last one fewer)."""

    async def go() -> None:
        conn = await store.connect(db_url)
        other = await store.connect(db_url) if two else None
        try:
            if not await partitioned(conn):
                return
            s = sym()
            jan, feb_ticks, mar = three_months(counts, trades, ties)
            async with store.TickWriter(conn) as w:
                await w.write(s, jan, seq=0)
            if feb == "writer":
                async with store.TickWriter(conn) as w:
                    await w.write(s, feb_ticks, seq=0)
            elif feb == "write_ticks":
                await store.write_ticks(conn, s, feb_ticks, seq=0)
            elif len(feb_ticks) > 1:  # loaded out of order: not listed
                async with store.TickWriter(conn) as w:
                    await w.write(s, feb_ticks[1:], seq=1)
                    await w.write(s, feb_ticks[:1], seq=0)
            else:
                await store.write_ticks(conn, s, feb_ticks, seq=0)
            async with store.TickWriter(conn) as w:
                for part in np.array_split(np.arange(len(mar)), 3):  # three batches, in order
                    await w.write(s, mar[part], seq=int(part[0]) if len(part) else 0)
            want_listed = {store.tick_partition(s, MONTHS[0])} if len(jan) else set()
            if feb == "writer" and len(feb_ticks):
                want_listed.add(store.tick_partition(s, MONTHS[1]))
            want_listed.add(store.tick_partition(s, MONTHS[2]))
            assert await listed(conn, s) == want_listed
            every = np.concatenate([jan, feb_ticks, mar])
            start, end = (None if i < 0 else int(every["ts"][min(i, len(every) - 1)]) for i in bounds)
            keep = np.ones(len(every), bool)
            if start is not None:
                keep &= every["ts"] >= start
            if end is not None:
                keep &= every["ts"] < end
            assert await store.count_ticks(conn, s, start, end) == int(keep.sum())
            got = [b async for b in store.read_ticks(conn, s, start, end, batch_size=batch, second=other)]
            assert all(len(b) == batch for b in got[:-1]) and all(len(b) for b in got)
            assert_same(np.concatenate(got) if got else np.empty(0, TICK_DTYPE), every[keep])
            await store.delete_ticks(conn, s)
            assert await listed(conn, s) == set()
        finally:
            await conn.close()
            if other is not None:
                await other.close()

    asyncio.run(go())


async def test_a_month_in_key_order_is_listed_with_its_ties_and_empty_columns(
    conn: asyncpg.Connection,
) -> None:
    """What a reader may leave out: seq when no two ticks share a time, and
    the float columns NULL on every row."""
    if not await partitioned(conn):
        pytest.skip("ticks is not partitioned here (TimescaleDB)")
    s = sym()
    jan = three_months((50, 0, 0), trades=False)[0]
    feb = three_months((0, 50, 0), trades=True, ties=True)[1]
    async with store.TickWriter(conn) as w:
        await w.write(s, jan, seq=0)
        await w.write(s, feb[:25], seq=0)
        await w.write(s, feb[25:], seq=25)
    listing = {
        r["partition"]: (r["ts_unique"], r["null_columns"])
        for r in await conn.fetch("SELECT partition::text, ts_unique, null_columns FROM ticks_key_order")
    }
    assert listing[store.tick_partition(s, MONTHS[0])] == (True, ["last", "last_size"])
    assert listing[store.tick_partition(s, MONTHS[1])] == (False, ["last_size"])
    assert_same(await stored(conn, s, batch_size=20), np.concatenate([jan, feb]))
    await store.delete_ticks(conn, s)


async def test_writing_into_a_month_in_key_order_unlists_it(conn: asyncpg.Connection) -> None:
    """write_ticks, a hand-written INSERT or UPDATE: the month is no longer
    listed (its new rows may be anywhere on disk) and reads back right."""
    if not await partitioned(conn):
        pytest.skip("ticks is not partitioned here (TimescaleDB)")
    for how in ("write_ticks", "insert", "update", "delete", "truncate", "nothing new"):
        s = sym()
        ticks = quotes(500, int(MONTH_NS[0]))
        async with store.TickWriter(conn) as w:
            await w.write(s, ticks[100:], seq=0)
        table = store.tick_partition(s, MONTHS[0])
        assert await listed(conn, s) == {table}
        want = ticks[100:]
        if how == "write_ticks":
            assert await store.write_ticks(conn, s, ticks[:100], seq=0) == 100
            want = ticks
        elif how == "insert":
            await conn.execute(
                f"INSERT INTO {table} (symbol, ts, seq, bid, ask) VALUES ($1, $2, 0, 1, 2)",
                s,
                store.ns_to_datetime(int(ticks["ts"][0])),
            )
            want = ticks.copy()[:401]
            want[0] = ticks[0]
            want[0]["bid_size"] = want[0]["ask_size"] = np.nan
            want[0]["bid"], want[0]["ask"] = 1, 2
            want[1:] = ticks[100:]
        elif how == "update":
            await conn.execute("UPDATE ticks SET bid = bid + 1 WHERE symbol = $1", s)
            want = ticks[100:].copy()
            want["bid"] += 1
        elif how == "delete":  # (the listing's number of rows would be wrong)
            await conn.execute(
                "DELETE FROM ticks WHERE symbol = $1 AND ts = $2",
                s,
                store.ns_to_datetime(int(ticks["ts"][100])),
            )
            want = ticks[101:]
        elif how == "truncate":
            await conn.execute(f"TRUNCATE {table}")
            want = ticks[:0]
        else:  # a re-import storing nothing keeps the listing
            assert await store.write_ticks(conn, s, ticks[100:], seq=0) == 0
        assert await listed(conn, s) == (set() if how != "nothing new" else {table})
        assert_same(await stored(conn, s, batch_size=64), want)
        assert await store.count_ticks(conn, s) == len(want)
        await store.delete_ticks(conn, s)


async def test_a_listed_month_found_out_of_order_is_an_error_then_unlisted(conn: asyncpg.Connection) -> None:
    """Rows moved out of key order behind the trigger's back (triggers
    disabled): reading the month raises, naming the partition, and unlists
    it; reading again walks the key and gives the ticks in order."""
    if not await partitioned(conn):
        pytest.skip("ticks is not partitioned here (TimescaleDB)")
    s = sym()
    ticks = quotes(3000, int(MONTH_NS[0]))
    async with store.TickWriter(conn) as w:
        await w.write(s, ticks[1:], seq=0)
    table = store.tick_partition(s, MONTHS[0])
    await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ticks_key_order_lost")
    await conn.execute(
        f"INSERT INTO {table} (symbol, ts, seq, bid, ask, bid_size, ask_size) VALUES ($1, $2, 0, 1, 2, 1, 1)",
        s,
        store.ns_to_datetime(int(ticks["ts"][0])),
    )
    assert await listed(conn, s) == {table}
    with pytest.raises(KeyOrderError, match=table):
        [b async for b in store.read_ticks(conn, s, batch_size=500)]
    assert await listed(conn, s) == set()
    got = await stored(conn, s, batch_size=500)
    assert len(got) == 3000 and (np.diff(got["ts"]) > 0).all()
    await store.delete_ticks(conn, s)


async def test_tick_span_is_the_first_and_last_stored_tick_of_the_range(conn: asyncpg.Connection) -> None:
    s = sym()
    ticks = quotes(10, int(MONTH_NS[0]), step_ns=10**9)
    assert await store.tick_span(conn, s) is None
    await store.write_ticks(conn, s, ticks)
    t = ticks["ts"].tolist()
    assert await store.tick_span(conn, s) == (t[0], t[9])
    assert await store.tick_span(conn, s, t[3] - 1) == (t[3], t[9])
    assert await store.tick_span(conn, s, t[3] + 1000, t[5]) == (t[4], t[4])  # (bounds in µs)
    assert await store.tick_span(conn, s, t[3] + 1000, t[4]) is None
    assert await store.tick_span(conn, s, t[9] + 1000) is None
    assert await store.tick_span(conn, s, None, t[2]) == (t[0], t[1])


async def test_reading_a_month_by_blocks_holds_a_few_pages_whatever_its_length(
    conn: asyncpg.Connection, db_url: str
) -> None:
    """Memory: reading 300,000 ticks in batches of 2,000 (by blocks, on two
    connections) never holds much more than a few batches."""

    if not await partitioned(conn):
        pytest.skip("ticks is not partitioned here (TimescaleDB)")
    s = sym()
    async with store.TickWriter(conn) as w:
        for k in range(3):
            await w.write(s, quotes(100_000, int(MONTH_NS[0]) + k * 100_000 * 10**6, seed=k), seq=k * 100_000)
    assert await listed(conn, s) == {store.tick_partition(s, MONTHS[0])}
    other = await store.connect(db_url)
    try:
        tracemalloc.start()
        n = 0
        async for b in store.read_ticks(conn, s, batch_size=2000, second=other):
            n += len(b)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await other.close()
    assert n == 300_000
    whole = 300_000 * TICK_DTYPE.itemsize  # 16.8 MB
    assert peak < whole / 4, f"peak {peak:,} bytes"
    await store.delete_ticks(conn, s)


async def test_migration_0033_counts_and_guards_the_months_listed_before_it(
    fresh_db: str, tmp_path: Path
) -> None:
    """A month listed under 0032 (no number of rows, a trigger blind to
    DELETE) is counted after 0033, and a DELETE unlists it."""
    c = await store.connect(fresh_db)
    try:
        await store.migrate(c, folder=migrations_before(33, tmp_path))
        if not await partitioned(c):
            pytest.skip("ticks is not partitioned here (TimescaleDB)")
        ticks = quotes(300, int(MONTH_NS[0]))
        assert await store.write_ticks(c, "L", ticks) == 300
        table = store.tick_partition("L", MONTHS[0])
        await c.execute(  # what 0032's TickWriter left on a month it loaded in order
            f"CREATE TRIGGER ticks_key_order_lost AFTER INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION ticktape_ticks_key_order_lost(); "
            f"INSERT INTO ticks_key_order VALUES ('{table}'::regclass, true, ARRAY['last', 'last_size'])"
        )
        assert (await store.migrate(c))[:1] == ["0033_ticks_key_order_rows"]
        assert await store.count_ticks(c, "L") == 300  # (no number listed: counted)
        assert_same(await stored(c, "L", batch_size=64), ticks)  # still read by blocks
        await c.execute(
            "DELETE FROM ticks WHERE symbol = 'L' AND ts = $1", store.ns_to_datetime(int(ticks["ts"][0]))
        )
        assert not await c.fetchval("SELECT count(*) FROM ticks_key_order")
        assert await store.count_ticks(c, "L") == 299
    finally:
        await c.close()
