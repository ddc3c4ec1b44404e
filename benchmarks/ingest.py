"""Market data throughput and memory, as one table: CSV -> store, store ->
batches, Parquet, the synthetic generators, and the floors of the server.

Usage::

    python benchmarks/ingest.py                          # n=2M, memory at 10M and 50M
    python benchmarks/ingest.py --n 1000000 --mem-sizes 1000000,5000000   # quick

Uses TICKTAPE_DATABASE_URL when set, else a throwaway embedded PostgreSQL in
a temporary folder (unix socket).

Columns:

* ``ticks/s``: wall clock, in this process (the machine's load average is
  printed before and after: on a shared machine wall figures move with it);
* ``client µs``: CPU time of this process (all its threads) per tick;
* ``server µs``: CPU time of the PostgreSQL backends per tick (both of the
  benchmark's connections, from ``/proc/<pid>/stat``; blank when the
  server is not on this machine).
  CPU per tick is what the paths cost whatever else runs: a path cannot go
  faster than one tick per ``server µs`` on one connection;
* ``RSS 10M`` / ``RSS 50M``: peak RSS (``VmHWM``) of a fresh process
  running that path over ``--mem-sizes`` ticks (the server's memory is not
  included). A flat pair shows memory does not grow with the length.

The ``floor:`` rows are the server alone: binary COPY of narrow rows (a
time and two floats: the "about 1.2M rows/s" the targets were set against),
binary COPY of the same ticks into a table like ``ticks`` without and with its primary key (the index
``write_ticks`` needs for de-duplication and ordered reads), into a table
created in the same transaction whose key is built afterwards (what
``TickWriter`` does for a month not stored yet), and COPY out in
primary-key order without decoding.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

NS = 1_000_000_000
CHUNK = 200_000
_TCK = os.sysconf("SC_CLK_TCK")


def _gen(n: int, symbol: str = "BENCH", regimes: bool = False, rate: float = 20.0):
    from ticktape.data import synth

    cfg = synth.ProcessConfig(symbol=symbol, n_ticks=n, seed=1, regimes=regimes, rate_per_s=rate)
    return synth.generate_process(cfg, chunk=CHUNK)


def _server_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) of a local process, None if not visible."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TCK


def _peak_rss_mb() -> float:
    """Peak RSS of this process: VmHWM (ru_maxrss survives exec, so a child
    forked from a big parent would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_csv(
    path: Path, n: int, symbol: str = "BENCH", rate: float = 20.0, monthly: bool = False
) -> list[Path]:
    """n GBM quotes as CSV (``ts`` int ns, six float columns, empty = missing).

    ``monthly``: one file per UTC month instead (``path``'s stem + ``-YYYY-MM``),
    as feeds publish them. Returns the files written."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = ["ts", "bid", "ask", "bid_size", "ask_size", "last", "last_size"]
    schema = pa.schema([("ts", pa.int64())] + [(k, pa.float64()) for k in names[1:]])
    writers: dict[Path, pacsv.CSVWriter] = {}  # (in the order the files were started)
    try:
        for c in _gen(n, symbol, rate=rate):
            months = c["ts"].astype("datetime64[ns]").astype("datetime64[M]")
            for month in np.unique(months) if monthly else [None]:
                part = c if month is None else c[months == month]
                out = path if month is None else path.with_name(f"{path.stem}-{month}{path.suffix}")
                if out not in writers:
                    writers[out] = pacsv.CSVWriter(
                        str(out), schema, write_options=pacsv.WriteOptions(quoting_style="none")
                    )
                cols = [pa.array(part["ts"])]
                for k in names[1:]:
                    v = np.ascontiguousarray(part[k])
                    cols.append(pa.array(v, mask=np.isnan(v)))
                writers[out].write_table(pa.Table.from_arrays(cols, names=names))
    finally:
        for w in writers.values():
            w.close()
    return list(writers)


# --------------------------------------------------------------------------
# children (peak memory)


def child(kind: str, n: int, path: str, dsn: str | None, symbol: str) -> dict:
    t0 = time.perf_counter()
    rows = 0
    if kind == "baseline":
        import pyarrow.csv
        import pyarrow.parquet  # noqa: F401

        from ticktape import store
        from ticktape.data import importers, readers, synth  # noqa: F401
    elif kind == "generate":
        for c in _gen(n):
            rows += len(c)
    elif kind == "gen_to_parquet":
        from ticktape.data.readers import write_parquet

        rows = write_parquet(path, ((symbol, c) for c in _gen(n)))
    elif kind == "parquet_read":
        from ticktape.data.readers import read_parquet

        for _, b in read_parquet(path, batch_size=CHUNK):
            rows += len(b)
    elif kind in ("csv_store", "store_read"):
        from ticktape import store
        from ticktape.data.importers import Importer, import_to_store

        async def go() -> int:
            conn = await store.connect(dsn)  # type: ignore[arg-type]
            try:
                if kind == "csv_store":
                    rep = await import_to_store(
                        conn, Importer(path, "csv", symbol=symbol, time_format="ns"), refresh=False
                    )
                    return rep.stored
                k = 0
                async for b in store.read_ticks(conn, symbol, batch_size=CHUNK):
                    k += len(b)
                return k
            finally:
                await conn.close()

        rows = asyncio.run(go())
    return {
        "kind": kind,
        "n": n,
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "maxrss_mb": _peak_rss_mb(),
    }


def run_child(kind: str, n: int, path: str = "", dsn: str | None = None, symbol: str = "BENCH") -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--n", str(n), "--path", path, "--symbol", symbol]
    if dsn:
        cmd += ["--dsn", dsn]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory(dsn: str, sizes: list[int], tmp: Path) -> dict[str, dict[int, dict]]:
    """Peak RSS per path and size, each in a fresh process."""
    out: dict[str, dict[int, dict]] = {}

    def put(key: str, size: int, r: dict) -> None:
        out.setdefault(key, {})[size] = r
        print(
            f"#   {key} {r['rows']:,} ticks: {r['seconds']:.1f} s, peak RSS {r['maxrss_mb']:.0f} MB",
            file=sys.stderr,
            flush=True,
        )

    put("baseline", 0, run_child("baseline", 0))
    for size in sizes:
        put("generate", size, run_child("generate", size))
        pq_path = tmp / f"mem{size}.parquet"
        put("gen_to_parquet", size, run_child("gen_to_parquet", size, str(pq_path)))
        put("parquet_read", size, run_child("parquet_read", size, str(pq_path)))
        pq_path.unlink()
        csv_path = tmp / f"mem{size}.csv"
        write_csv(csv_path, size)
        sym = f"BENCH_MEM_{size}"
        asyncio.run(_drop(dsn, sym))
        put("csv_store", size, run_child("csv_store", size, str(csv_path), dsn, sym))
        csv_path.unlink()
        asyncio.run(_sql(dsn, "ANALYZE ticks"))
        put("store_read", size, run_child("store_read", size, "", dsn, sym))
        asyncio.run(_drop(dsn, sym))
    return out


async def _drop(dsn: str, *symbols: str) -> None:
    """Remove the ticks of ``symbols`` (their partitions on plain PostgreSQL)."""
    from ticktape import store

    conn = await store.connect(dsn)
    try:
        for symbol in symbols:
            await store.delete_ticks(conn, symbol)
    finally:
        await conn.close()


async def _sql(dsn: str, query: str, *args: object) -> None:
    from ticktape import store

    conn = await store.connect(dsn)
    try:
        await conn.execute(query, *args)
    finally:
        await conn.close()


# --------------------------------------------------------------------------
# throughput


class Row:
    def __init__(self, key: str, name: str, ticks: int, wall: float, client: float, server: float | None):
        self.key, self.name, self.ticks, self.wall, self.client, self.server = (
            key,
            name,
            ticks,
            wall,
            client,
            server,
        )


async def throughput(dsn: str, n: int, tmp: Path) -> list[Row]:
    from ticktape import store
    from ticktape.data import synth
    from ticktape.data.importers import Importer, import_to_store
    from ticktape.data.readers import read_parquet, write_parquet

    rows: list[Row] = []
    conn = await store.connect(dsn)
    conn2 = await store.connect(dsn)  # for the two-connection rows
    pids: list[int] = [await c.fetchval("SELECT pg_backend_pid()") for c in (conn, conn2)]
    local = all(_server_cpu(p) is not None for p in pids)

    def server_cpu() -> float | None:
        # both backends: the one-connection rows leave the second idle
        return sum(_server_cpu(p) or 0.0 for p in pids) if local else None

    async def measure(key: str, name: str, work: Callable[[], Awaitable[int]], db: bool = True) -> None:
        s0, c0, t0 = server_cpu(), time.process_time(), time.perf_counter()
        k = await work()
        wall, client = time.perf_counter() - t0, time.process_time() - c0
        s1 = server_cpu()
        server = None if s0 is None or s1 is None or not db else s1 - s0
        rows.append(Row(key, name, k, wall, client, server))
        print(f"#   {name}: {k:,} ticks in {wall:.2f} s", file=sys.stderr, flush=True)

    async def gen(regimes: bool = False) -> int:
        return sum(len(c) for c in _gen(n, regimes=regimes))

    async def bars() -> int:
        m = max(1, n // 50)
        b = np.zeros(
            m, dtype=[("ts", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8")]
        )
        b["ts"] = 1_704_067_200 * NS + np.arange(m) * 60 * NS
        b["open"], b["high"], b["low"], b["close"] = 100, 101, 99, 100.5
        cfg = synth.BarSynthConfig(bar_ns=60 * NS, ticks_per_bar=46)
        return sum(len(c) for c in synth.from_bars([b], cfg))

    try:
        await store.migrate(conn)
        await measure("generate", "generator: GBM quotes -> batches", gen, db=False)
        await measure("regimes", "generator: calm/news regimes -> batches", lambda: gen(True), db=False)
        await measure("bars", "generator: bars, Brownian bridge -> batches", bars, db=False)

        bench_symbols = ("BENCH_COPY", "BENCH_MONTHS", "BENCH_CSV", "BENCH_CSV_SEQ")
        for s in bench_symbols:
            await store.delete_ticks(conn, s)
        batches = list(_gen(n, "BENCH_COPY"))

        async def write() -> int:
            k = 0
            for b in batches:
                k += await store.write_ticks(conn, "BENCH_COPY", b)
            return k

        await measure("write", "batches -> store (write_ticks, batch by batch)", write)
        await store.delete_ticks(conn, "BENCH_COPY")

        async def bulk() -> int:
            async with store.TickWriter(conn) as w:
                for b in batches:
                    await w.write("BENCH_COPY", b)
            return w.stored

        await measure("bulk", "batches -> store (TickWriter, new months in bulk)", bulk)
        await store.delete_ticks(conn, "BENCH_COPY")
        # the same number of ticks spread over four months (0.2 ticks/s)
        spread = list(_gen(n, "BENCH_MONTHS", rate=0.2))

        async def bulk_months(second: object = None) -> int:
            async with store.TickWriter(conn, second=second) as w:  # type: ignore[arg-type]
                for b in spread:
                    await w.write("BENCH_MONTHS", b)
            return w.stored

        await measure("bulk_months", "batches over 4 months -> store (TickWriter)", bulk_months)
        await store.delete_ticks(conn, "BENCH_MONTHS")
        await measure(
            "bulk_months2",
            "batches over 4 months -> store (TickWriter, two connections)",
            lambda: bulk_months(conn2),
        )
        await store.delete_ticks(conn, "BENCH_MONTHS")
        async with store.TickWriter(conn) as w:  # the rows the read rows read
            for b in batches:
                await w.write("BENCH_COPY", b)
        await conn.execute("ANALYZE ticks")

        async def read() -> int:
            k = 0
            async for b in store.read_ticks(conn, "BENCH_COPY", batch_size=CHUNK):
                k += len(b)
            return k

        await measure("read", "store -> batches (read_ticks)", read)

        async def read2() -> int:
            k = 0
            async for b in store.read_ticks(conn, "BENCH_COPY", batch_size=CHUNK, second=conn2):
                k += len(b)
            return k

        await measure("read2", "store -> batches (read_ticks, two connections)", read2)

        csv_path = tmp / "bench.csv"
        write_csv(csv_path, n)

        async def parse() -> int:
            return Importer(csv_path, "csv", symbol="BENCH_CSV", time_format="ns").run().accepted

        async def csv_import(prefetch: int = 2, symbol: str = "BENCH_CSV") -> int:
            imp = Importer(csv_path, "csv", symbol=symbol, time_format="ns")
            # (two connections, as `ticktape data import` does)
            rep = await import_to_store(conn, imp, refresh=False, prefetch=prefetch, second=conn2)
            return rep.accepted

        await measure("parse", "CSV -> validated batches (parse only)", parse, db=False)
        await measure("csv_store", "CSV -> store (import, fresh)", csv_import)
        await measure("reimport", "CSV -> store (re-import, all duplicates)", csv_import)
        # the same number of ticks over four months, one file per month (as
        # feeds publish them), in one import: a month's key is built while
        # the next file loads
        monthly = write_csv(tmp / "month.csv", n, rate=0.2, monthly=True)

        async def csv_months() -> int:
            imps = [Importer(p, "csv", symbol="BENCH_CSV_MONTHS", time_format="ns") for p in monthly]
            rep = await import_to_store(conn, imps, refresh=False, second=conn2)
            return rep.accepted

        await measure(
            "csv_months", f"CSV -> store ({len(monthly)} monthly file(s), one import, fresh)", csv_months
        )
        for p in monthly:
            p.unlink()
        await store.delete_ticks(conn, "BENCH_CSV_MONTHS")
        # one month in four files (daily files): each imported alone, the
        # later ones find the month's partition and go row by row; together
        # the month is loaded in bulk once
        lines = csv_path.read_bytes().splitlines(keepends=True)
        days = []
        for k in range(4):
            day = tmp / f"day{k}.csv"
            day.write_bytes(
                b"".join(
                    [lines[0], *lines[1 + k * (len(lines) - 1) // 4 : 1 + (k + 1) * (len(lines) - 1) // 4]]
                )
            )
            days.append(day)
        del lines

        async def csv_days(together: bool) -> int:
            imps = [Importer(p, "csv", symbol="BENCH_CSV_DAYS", time_format="ns") for p in days]
            if together:
                return (await import_to_store(conn, imps, refresh=False, second=conn2)).accepted
            k = 0
            for imp in imps:
                k += (await import_to_store(conn, imp, refresh=False, second=conn2)).accepted
            return k

        await measure(
            "csv_days1", "CSV -> store (one month in 4 files, imported one by one)", lambda: csv_days(False)
        )
        await store.delete_ticks(conn, "BENCH_CSV_DAYS")
        await measure("csv_days", "CSV -> store (one month in 4 files, one import)", lambda: csv_days(True))
        await store.delete_ticks(conn, "BENCH_CSV_DAYS")
        for p in days:
            p.unlink()
        # a symbol never written before: keys deleted a moment ago still sit in
        # the index (dead until vacuumed) and would slow the unique checks
        await measure(
            "csv_store_seq",
            "CSV -> store (fresh, parse and write in turn)",
            lambda: csv_import(0, "BENCH_CSV_SEQ"),
        )
        for s in ("BENCH_CSV", "BENCH_CSV_SEQ"):
            await store.delete_ticks(conn, s)

        pq_path = tmp / "bench.parquet"

        async def to_parquet() -> int:
            return write_parquet(pq_path, (("BENCH", c) for c in _gen(n)))

        async def from_parquet() -> int:
            return sum(len(b) for _, b in read_parquet(pq_path, batch_size=CHUNK))

        await measure("gen_to_parquet", "generator -> Parquet file", to_parquet, db=False)
        await measure("parquet_read", "Parquet -> batches", from_parquet, db=False)

        # the server alone
        names = ["symbol", "ts", "seq", "bid", "ask", "bid_size", "ask_size", "last", "last_size"]
        payloads = []
        for b in batches:
            cols = [
                b"BENCH_COPY",
                store.codec.to_pg_us(b["ts"]).astype(">i8"),
                np.arange(len(b), dtype=">i8"),
            ]
            cols += [b[k].astype(">f8") for k in names[3:]]
            payloads.append(store.encode_copy(cols, len(b)))
        # the yardstick ("about 1.2M rows/s for narrow rows"): a time and two floats
        narrow = [
            store.encode_copy(
                [store.codec.to_pg_us(b["ts"]).astype(">i8"), b["bid"].astype(">f8"), b["ask"].astype(">f8")],
                len(b),
            )
            for b in batches
        ]
        await conn.execute("DROP TABLE IF EXISTS bench_narrow")
        await conn.execute("CREATE TABLE bench_narrow (ts timestamptz, bid float8, ask float8)")

        async def copy_narrow() -> int:
            for p in narrow:
                await conn.copy_to_table(
                    "bench_narrow", source=p, columns=["ts", "bid", "ask"], format="binary"
                )
            return sum(len(b) for b in batches)

        await measure(
            "floor_narrow", "floor: COPY of narrow rows (a time, two floats), no index", copy_narrow
        )
        await conn.execute("DROP TABLE bench_narrow")
        for key, name, ddl in (
            ("floor_noindex", "floor: COPY into ticks' columns, no index", ""),
            (
                "floor_pk",
                "floor: COPY into ticks' columns + its primary key",
                ", PRIMARY KEY (symbol, ts, seq)",
            ),
        ):
            await conn.execute("DROP TABLE IF EXISTS bench_floor")
            await conn.execute(f"CREATE TABLE bench_floor (LIKE ticks INCLUDING DEFAULTS{ddl})")

            async def copy_in() -> int:
                for p in payloads:
                    await conn.copy_to_table("bench_floor", source=p, columns=names, format="binary")
                return sum(len(b) for b in batches)

            await measure(key, name, copy_in)

        await conn.execute("DROP TABLE IF EXISTS bench_floor")

        async def copy_bulk() -> int:
            async with conn.transaction():
                await conn.execute("CREATE TABLE bench_floor (LIKE ticks INCLUDING DEFAULTS)")
                for p in payloads:
                    await conn.copy_to_table(
                        "bench_floor", source=p, columns=names, format="binary", freeze=True
                    )
                await conn.execute("ALTER TABLE bench_floor ADD PRIMARY KEY (symbol, ts, seq)")
            return sum(len(b) for b in batches)

        await measure("floor_bulk", "floor: COPY into a new table, then its primary key", copy_bulk)

        async def copy_out() -> int:
            size = 0

            async def sink(data: bytes) -> None:
                nonlocal size
                size += len(data)

            async with conn.transaction():
                await conn.execute(store.tickread._INDEX_WALK)
                await conn.copy_from_query(
                    "SELECT ts, seq, bid, ask, bid_size, ask_size, last, last_size FROM bench_floor "
                    "WHERE symbol = 'BENCH_COPY' ORDER BY symbol, ts, seq",
                    output=sink,
                    format="binary",
                )
            return n

        await conn.execute("ANALYZE bench_floor")
        await measure("floor_out", "floor: COPY out in key order, no decoding", copy_out)
        await conn.execute("DROP TABLE bench_floor")
        for s in bench_symbols:
            await store.delete_ticks(conn, s)
    finally:
        await conn.close()
        await conn2.close()
    return rows


TARGETS = {
    "generate": 5_000_000,
    "write": 1_000_000,
    "bulk": 1_000_000,
    "bulk_months2": 1_000_000,
    "csv_store": 1_000_000,
    "csv_months": 1_000_000,
    "read": 2_000_000,
    "read2": 2_000_000,
}
MEMORY_OF = {
    "generate": "generate",
    "csv_store": "csv_store",
    "read": "store_read",
    "parquet_read": "parquet_read",
    "gen_to_parquet": "gen_to_parquet",
}


def table(rows: list[Row], mem: dict[str, dict[int, dict]], sizes: list[int]) -> str:
    def label(size: int) -> str:
        return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size:,}"

    head = ["path", "ticks", "ticks/s", "target", "client µs/tick", "server µs/tick"]
    head += [f"RSS MB {label(s)}" for s in sizes]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" + " ---: |" * (len(head) - 1)]
    for r in rows:
        cells = [
            r.name,
            f"{r.ticks:,}",
            f"{r.ticks / r.wall:,.0f}",
            f"{TARGETS[r.key] / 1e6:g}M" if r.key in TARGETS else "",
            f"{1e6 * r.client / r.ticks:.2f}",
            "" if r.server is None else f"{1e6 * r.server / r.ticks:.2f}",
        ]
        m = mem.get(MEMORY_OF.get(r.key, ""), {})
        cells += [f"{m[s]['maxrss_mb']:.0f}" if s in m else "" for s in sizes]
        lines.append("| " + " | ".join(cells) + " |")
    base = mem.get("baseline", {}).get(0)
    if base is not None:
        lines.append(
            "| baseline: a process that only imports the modules | | | | | |"
            + "".join(f" {base['maxrss_mb']:.0f} |" for _ in sizes)
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2_000_000, help="ticks for the throughput rows")
    ap.add_argument("--mem-sizes", default="10000000,50000000", help="sizes for the peak-memory columns")
    ap.add_argument("--child")
    ap.add_argument("--path", default="")
    ap.add_argument("--symbol", default="BENCH")
    ap.add_argument("--dsn")
    args = ap.parse_args()
    from ticktape.runtime.processes import keep_freed_memory

    keep_freed_memory()  # as the `ticktape` command does
    if args.child:
        print(json.dumps(child(args.child, args.n, args.path, args.dsn, args.symbol)))
        return

    from ticktape.config import Settings
    from ticktape.runtime.embedded import Runtime

    sizes = [int(x) for x in args.mem_sizes.split(",") if x]
    with tempfile.TemporaryDirectory(prefix="ticktape-ingest-") as tmpdir:
        tmp = Path(tmpdir)
        settings = Settings.from_env()
        rt = None
        if settings.database_url:
            dsn = settings.database_url
        else:
            rt = Runtime(settings.with_home(tmp / "home"), kafka=False).start()
            dsn = str(rt.database_url)
        try:
            load0 = os.getloadavg()
            rows = asyncio.run(throughput(dsn, args.n, tmp))
            mem = memory(dsn, sizes, tmp) if sizes else {}
            load1 = os.getloadavg()
        finally:
            if rt is not None:
                rt.stop()
    print(
        f"# ticktape ingest benchmark: {os.cpu_count()} CPUs, n={args.n:,} GBM quotes, "
        f"load average {load0[0]:.1f} before, {load1[0]:.1f} after\n"
    )
    print(table(rows, mem, sizes))


if __name__ == "__main__":
    main()
