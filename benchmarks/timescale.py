"""Ticks stored and replayed: a TimescaleDB server against plain PostgreSQL.

The demo's data (``ticktape demo``: ``--symbols`` random-walk symbols of
``--ticks-per-symbol`` quotes each, 20 a second from 2024-01-02 09:00 UTC)
is written and read back the way the commands do it, on each server given,
in a new database each round (created, migrated, dropped):

* ``store``: ``store.TickWriter`` on one connection, symbol by symbol, in
  chunks of 200,000 (as ``ticktape demo`` stores its ticks); on TimescaleDB
  this includes compressing the chunks the import filled (``TickWriter``
  does it when it closes, see docs/timescaledb.md);
* ``replay``: ``store.read_ticks`` of each symbol on one connection in
  batches of 100,000 (as the replay agent reads a store-source run).

The servers take turns within each round, so a change of the machine's
load hits both; the table shows each path's median and best ticks/s over
the rounds and the ratio of the medians to the first server's.

Usage::

    python benchmarks/timescale.py --server plain=postgresql://postgres@127.0.0.1:55433/postgres \\
        --server timescaledb=postgresql://postgres@127.0.0.1:55432/postgres [--rounds 3] [--json PATH]

Each DSN names a database to connect to for ``CREATE DATABASE`` (the role
must be allowed to create databases). Not part of ``make bench``: it needs
a TimescaleDB server (docs/timescaledb.md says how one was built).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from pathlib import Path

import asyncpg
import numpy as np
from rich.console import Console
from rich.table import Table

from ticktape import store
from ticktape.config import with_database
from ticktape.data.synth import RandomWalkConfig, generate_walk


def demo_ticks(symbols: int, n: int) -> dict[str, list[np.ndarray]]:
    """The demo's ticks: chunks of 200,000 per symbol (``ticktape demo``'s seeds)."""
    names = [f"DEMO-{chr(ord('A') + i)}" for i in range(symbols)]
    return {
        s: list(generate_walk(RandomWalkConfig(symbol=s, n_ticks=n, seed=7 + i), chunk=200_000))
        for i, s in enumerate(names)
    }


async def one_round(dsn: str, data: dict[str, list[np.ndarray]], compress: bool) -> dict[str, float]:
    """Seconds to store and to replay ``data`` in a new database on ``dsn``'s server."""
    admin = await asyncpg.connect(dsn)
    name = f"tt_bench_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await store.connect(with_database(dsn, name))
        try:
            await store.migrate(conn)
            t0 = time.perf_counter()
            async with store.TickWriter(conn) as writer:
                for sym, chunks in data.items():
                    seq = 0
                    for chunk in chunks:
                        await writer.write(sym, chunk, seq)
                        seq += len(chunk)
            stored = time.perf_counter() - t0
            t0 = time.perf_counter()
            n = 0
            for sym in data:
                async for batch in store.read_ticks(conn, sym, batch_size=100_000):
                    n += len(batch)
            replayed = time.perf_counter() - t0
            want = sum(len(c) for chunks in data.values() for c in chunks)
            if n != want or writer.stored != want:
                raise AssertionError(f"stored {writer.stored:,}, read {n:,} of {want:,} ticks")
            out = {"store": stored, "replay": replayed}
            if compress and await store.has_timescale(conn):
                t0 = time.perf_counter()
                await conn.execute(
                    "SELECT count(compress_chunk(c, if_not_compressed => true)) FROM show_chunks('ticks') c"
                )
                out["compress"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                for sym in data:
                    async for batch in store.read_ticks(conn, sym, batch_size=100_000):
                        n -= len(batch)
                out["replay compressed"] = time.perf_counter() - t0
                if n != 0:
                    raise AssertionError("compressed chunks read back a different number of ticks")
            return out
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def server_version(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        pg = (await conn.fetchval("SHOW server_version")).split()[0]
        ts = await conn.fetchval(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
        )
        preload = await conn.fetchval("SHOW shared_preload_libraries")
        return f"PostgreSQL {pg}" + (f", TimescaleDB {ts}" if ts and "timescaledb" in preload else "")
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--server", action="append", required=True, help="LABEL=DSN (repeat; the first is the base)"
    )
    ap.add_argument("--symbols", type=int, default=2)
    ap.add_argument("--ticks-per-symbol", type=int, default=600_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--compress", action="store_true", help="TimescaleDB: also compress the chunks, then replay"
    )
    ap.add_argument("--json", type=Path, help="also write the table's figures here")
    args = ap.parse_args()
    servers = dict(s.split("=", 1) for s in args.server)
    data = demo_ticks(args.symbols, args.ticks_per_symbol)
    total = args.symbols * args.ticks_per_symbol
    times: dict[str, dict[str, list[float]]] = {label: {} for label in servers}
    for _ in range(args.rounds):
        for label, dsn in servers.items():
            for path, secs in asyncio.run(one_round(dsn, data, args.compress)).items():
                times[label].setdefault(path, []).append(secs)
    versions = {label: asyncio.run(server_version(dsn)) for label, dsn in servers.items()}
    base = next(iter(servers))
    rows = []
    for label in servers:
        if "compress" in times[label]:
            both = zip(times[label]["store"], times[label]["compress"], strict=True)
            times[label]["store + compress"] = [a + b for a, b in both]
    # each path is compared with the base server's store or replay
    for path in ("store", "store + compress", "replay", "replay compressed"):
        base_rate = total / statistics.median(times[base][path.split()[0]])
        for label in servers:
            secs = times[label].get(path)
            if not secs:
                continue
            rate = total / statistics.median(secs)
            rows.append(
                {
                    "path": path,
                    "server": label,
                    "version": versions[label],
                    "ticks": total,
                    "median_ticks_per_s": rate,
                    "best_ticks_per_s": total / min(secs),
                    "vs_base": rate / base_rate,
                    "seconds": secs,
                }
            )
    table = Table(
        title=f"benchmarks/timescale.py: {args.symbols} x {args.ticks_per_symbol:,} demo ticks, "
        f"{args.rounds} rounds, load {os.getloadavg()[0]:.1f}"
    )
    for col in ("path", "server", "ticks/s (median)", "best", f"vs {base}"):
        table.add_column(col, justify="left" if col in ("path", "server") else "right")
    for r in rows:
        table.add_row(
            r["path"],
            f"{r['server']} ({r['version']})",
            f"{r['median_ticks_per_s']:,.0f}",
            f"{r['best_ticks_per_s']:,.0f}",
            f"{r['vs_base']:.2f}",
        )
    Console(width=140).print(table)
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "timescale", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
