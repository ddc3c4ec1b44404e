"""Market data throughput and memory: CSV -> store, store -> batches, Parquet,
and the synthetic generator; peak memory of the streaming paths at two sizes.

Usage::

    python benchmarks/ingest.py                 # defaults below
    python benchmarks/ingest.py --n 2000000 --mem-sizes 10000000,50000000

Uses TICKTAPE_DATABASE_URL when set, else a throwaway embedded PostgreSQL in
a temporary folder. Throughput is measured in this process; peak memory
(``ru_maxrss``) in a fresh subprocess per (path, size), next to the RSS of a
subprocess that only imports the same modules (the baseline).
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
from pathlib import Path

import numpy as np

NS = 1_000_000_000


def _gen(n: int, symbol: str = "BENCH"):
    from ticktape.data import synth

    return synth.generate_process(synth.ProcessConfig(symbol=symbol, n_ticks=n, seed=1), chunk=200_000)


# --------------------------------------------------------------------------
# children (peak memory)


def child(kind: str, n: int, path: str, dsn: str | None) -> dict:
    t0 = time.perf_counter()
    rows = 0
    if kind == "baseline":
        import pyarrow.parquet  # noqa: F401

        from ticktape.data import importers, readers, synth  # noqa: F401
    elif kind == "generate":
        for c in _gen(n):
            rows += len(c)
    elif kind == "gen_to_parquet":
        from ticktape.data.readers import write_parquet

        rows = write_parquet(path, (("BENCH", c) for c in _gen(n)))
    elif kind == "parquet_read":
        from ticktape.data.readers import read_parquet

        for _, b in read_parquet(path, batch_size=200_000):
            rows += len(b)
    elif kind == "csv_parse":
        from ticktape.data.importers import Importer

        rows = Importer(path, "csv", symbol="BENCH", time_format="ns").run().accepted
    elif kind == "store_read":
        from ticktape import store

        async def go() -> int:
            conn = await store.connect(dsn)  # type: ignore[arg-type]
            k = 0
            async for b in store.read_ticks(conn, path, batch_size=200_000):
                k += len(b)
            await conn.close()
            return k

        rows = asyncio.run(go())
    return {
        "kind": kind,
        "n": n,
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "maxrss_mb": _peak_rss_mb(),
    }


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


def run_child(kind: str, n: int, path: str = "", dsn: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--n", str(n), "--path", path]
    if dsn:
        cmd += ["--dsn", dsn]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# throughput


def write_csv(path: Path, n: int) -> None:
    import pandas as pd

    with open(path, "w") as f:
        for i, c in enumerate(_gen(n)):
            pd.DataFrame(c).to_csv(f, header=i == 0, index=False)


async def throughput(dsn: str, n: int, tmp: Path) -> list[tuple[str, int, float]]:
    from ticktape import store
    from ticktape.data.importers import Importer, import_to_store
    from ticktape.data.readers import read_parquet, write_parquet

    rows: list[tuple[str, int, float]] = []
    t = time.perf_counter()
    k = sum(len(c) for c in _gen(n))
    rows.append(("generator (GBM quotes) -> batches", k, time.perf_counter() - t))

    from ticktape.data import synth

    m = max(1, n // 50)
    bars = np.zeros(
        m, dtype=[("ts", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8")]
    )
    bars["ts"] = 1_704_067_200 * NS + np.arange(m) * 60 * NS
    bars["open"], bars["high"], bars["low"], bars["close"] = 100, 101, 99, 100.5
    t = time.perf_counter()
    k = sum(len(c) for c in synth.from_bars([bars], synth.BarSynthConfig(bar_ns=60 * NS, ticks_per_bar=46)))
    rows.append(("generator (bars, Brownian bridge) -> batches", k, time.perf_counter() - t))

    conn = await store.connect(dsn)
    try:
        await store.migrate(conn)
        await conn.execute("DELETE FROM ticks WHERE symbol LIKE 'BENCH%'")
        batches = list(_gen(n, "BENCH_COPY"))
        t = time.perf_counter()
        k = 0
        for b in batches:
            k += await store.write_ticks(conn, "BENCH_COPY", b)
        rows.append(("batches -> store (write_ticks, binary COPY)", k, time.perf_counter() - t))
        del batches
        await conn.execute("ANALYZE ticks")

        t = time.perf_counter()
        k = 0
        async for b in store.read_ticks(conn, "BENCH_COPY", batch_size=200_000):
            k += len(b)
        rows.append(("store -> batches (read_ticks, binary COPY)", k, time.perf_counter() - t))

        csv_path = tmp / "bench.csv"
        write_csv(csv_path, n)
        t = time.perf_counter()
        k = Importer(csv_path, "csv", symbol="BENCH_CSV", time_format="ns").run().accepted
        rows.append(("CSV -> validated batches (parse only)", k, time.perf_counter() - t))
        t = time.perf_counter()
        rep = await import_to_store(conn, Importer(csv_path, "csv", symbol="BENCH_CSV", time_format="ns"))
        rows.append(("CSV -> store (import, fresh)", rep.stored, time.perf_counter() - t))
        t = time.perf_counter()
        rep = await import_to_store(conn, Importer(csv_path, "csv", symbol="BENCH_CSV", time_format="ns"))
        rows.append(("CSV -> store (re-import, all duplicates)", rep.accepted, time.perf_counter() - t))

        pq_path = tmp / "bench.parquet"
        t = time.perf_counter()
        k = write_parquet(pq_path, (("BENCH", c) for c in _gen(n)))
        rows.append(("generator -> Parquet file", k, time.perf_counter() - t))
        t = time.perf_counter()
        k = sum(len(b) for _, b in read_parquet(pq_path, batch_size=200_000))
        rows.append(("Parquet -> batches", k, time.perf_counter() - t))
        await conn.execute("DELETE FROM ticks WHERE symbol = 'BENCH_CSV'")
    finally:
        await conn.close()
    return rows


async def load_store(dsn: str, symbol: str, n: int) -> None:
    from ticktape import store

    conn = await store.connect(dsn)
    try:
        await conn.execute("DELETE FROM ticks WHERE symbol = $1", symbol)
        for c in _gen(n, symbol):
            await store.write_ticks(conn, symbol, c)
        await conn.execute("ANALYZE ticks")
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2_000_000, help="ticks for the throughput rows")
    ap.add_argument("--mem-sizes", default="10000000,50000000", help="sizes for generator/Parquet memory")
    ap.add_argument("--csv-mem-sizes", default="1000000,5000000", help="sizes for CSV parse memory")
    ap.add_argument("--store-mem-sizes", default="2000000,10000000", help="sizes for store read memory")
    ap.add_argument("--child")
    ap.add_argument("--path", default="")
    ap.add_argument("--dsn")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.path, args.dsn)))
        return

    from ticktape.config import Settings
    from ticktape.runtime import Runtime

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
            print(f"# ticktape ingest benchmark, {os.cpu_count()} CPUs, n={args.n:,}\n")
            print("| path | ticks | seconds | ticks/s |")
            print("| --- | ---: | ---: | ---: |")
            for name, k, s in asyncio.run(throughput(dsn, args.n, tmp)):
                print(f"| {name} | {k:,} | {s:.2f} | {k / s:,.0f} |", flush=True)

            print("\n| streaming path (fresh process) | ticks | seconds | peak RSS MB |")
            print("| --- | ---: | ---: | ---: |")
            base = run_child("baseline", 0)
            print(
                f"| baseline (imports only) | 0 | {base['seconds']:.2f} | {base['maxrss_mb']:.0f} |",
                flush=True,
            )
            for size in [int(x) for x in args.mem_sizes.split(",") if x]:
                for kind in ("generate", "gen_to_parquet", "parquet_read"):
                    r = run_child(kind, size, str(tmp / f"mem{size}.parquet"))
                    print(
                        f"| {kind} | {r['rows']:,} | {r['seconds']:.1f} | {r['maxrss_mb']:.0f} |", flush=True
                    )
                (tmp / f"mem{size}.parquet").unlink(missing_ok=True)
            for size in [int(x) for x in args.csv_mem_sizes.split(",") if x]:
                path = tmp / f"mem{size}.csv"
                write_csv(path, size)
                r = run_child("csv_parse", size, str(path))
                print(
                    f"| csv_parse (importer, validation) | {r['rows']:,} | {r['seconds']:.1f} | {r['maxrss_mb']:.0f} |",
                    flush=True,
                )
                path.unlink()
            for size in [int(x) for x in args.store_mem_sizes.split(",") if x]:
                sym = f"BENCH_MEM_{size}"
                asyncio.run(load_store(dsn, sym, size))
                r = run_child("store_read", size, sym, dsn)
                print(
                    f"| store_read (read_ticks) | {r['rows']:,} | {r['seconds']:.1f} | {r['maxrss_mb']:.0f} |",
                    flush=True,
                )

                async def drop(sym: str = sym) -> None:
                    from ticktape import store

                    c = await store.connect(dsn)
                    await c.execute("DELETE FROM ticks WHERE symbol = $1", sym)
                    await c.close()

                asyncio.run(drop())
        finally:
            if rt is not None:
                rt.stop()


if __name__ == "__main__":
    main()
