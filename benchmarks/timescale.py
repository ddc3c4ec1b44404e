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
import contextlib
import json
import os
import statistics
import time
import uuid
from collections.abc import Iterator
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


_TCK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    """CPU seconds of a process on this machine (a server backend); NaN if not visible."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TCK


class Clock:
    """Wall time, the backend's CPU and this process's CPU of one step."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.steps: dict[str, tuple[float, float, float]] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        s0, c0, t0 = _cpu(self.pid), time.process_time(), time.perf_counter()
        yield
        self.steps[name] = (time.perf_counter() - t0, _cpu(self.pid) - s0, time.process_time() - c0)


async def one_round(
    dsn: str, data: dict[str, list[np.ndarray]], compress: bool
) -> dict[str, tuple[float, float, float]]:
    """(wall s, server CPU s, client CPU s) of storing and replaying ``data``
    in a new database on ``dsn``'s server."""
    admin = await asyncpg.connect(dsn)
    name = f"tt_bench_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    want = sum(len(c) for chunks in data.values() for c in chunks)
    try:
        conn = await store.connect(with_database(dsn, name))
        try:
            await store.migrate(conn)
            clock = Clock(await conn.fetchval("SELECT pg_backend_pid()"))

            async def replay(path: str) -> None:
                n = 0
                with clock.step(path):
                    for sym in data:
                        async for batch in store.read_ticks(conn, sym, batch_size=100_000):
                            n += len(batch)
                if n != want:
                    raise AssertionError(f"{path}: read {n:,} of {want:,} ticks")

            with clock.step("store"):
                async with store.TickWriter(conn) as writer:
                    for sym, chunks in data.items():
                        seq = 0
                        for chunk in chunks:
                            await writer.write(sym, chunk, seq)
                            seq += len(chunk)
            if writer.stored != want:
                raise AssertionError(f"stored {writer.stored:,} of {want:,} ticks")
            await replay("replay")
            if compress and await store.has_timescale(conn):
                with clock.step("compress"):
                    await conn.execute(
                        "SELECT count(compress_chunk(c, if_not_compressed => true)) FROM show_chunks('ticks') c"
                    )
                await replay("replay compressed")
            return clock.steps
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
    steps: dict[str, dict[str, list[tuple[float, float, float]]]] = {label: {} for label in servers}
    for _ in range(args.rounds):
        for label, dsn in servers.items():
            for path, measured in asyncio.run(one_round(dsn, data, args.compress)).items():
                steps[label].setdefault(path, []).append(measured)
    versions = {label: asyncio.run(server_version(dsn)) for label, dsn in servers.items()}
    base = next(iter(servers))
    for label in servers:
        if "compress" in steps[label]:
            both = zip(steps[label]["store"], steps[label]["compress"], strict=True)
            steps[label]["store + compress"] = [
                tuple(x + y for x, y in zip(a, b, strict=True)) for a, b in both
            ]

    def median(label: str, path: str, i: int) -> float:
        return statistics.median(m[i] for m in steps[label][path])

    rows = []
    # each path is compared with the base server's store or replay, by wall time and by CPU per tick
    for path in ("store", "store + compress", "replay", "replay compressed"):
        ref = path.split()[0]
        base_wall = median(base, ref, 0)
        base_cpu = median(base, ref, 1) + median(base, ref, 2)
        for label in servers:
            if path not in steps[label]:
                continue
            wall, server, client = (median(label, path, i) for i in range(3))
            rows.append(
                {
                    "path": path,
                    "server": label,
                    "version": versions[label],
                    "ticks": total,
                    "median_ticks_per_s": total / wall,
                    "best_ticks_per_s": total / min(m[0] for m in steps[label][path]),
                    "vs_base": base_wall / wall,
                    "server_us": server / total * 1e6,
                    "client_us": client / total * 1e6,
                    "vs_base_cpu": base_cpu / (server + client),
                    "measured": steps[label][path],
                }
            )
    table = Table(
        title=f"benchmarks/timescale.py: {args.symbols} x {args.ticks_per_symbol:,} demo ticks, "
        f"{args.rounds} rounds (medians), load {os.getloadavg()[0]:.1f}",
        caption="server/client µs: CPU per tick of the server backend and of this process; "
        f"vs {base} by CPU: the ratio of their sums (what the rate would be with a core each)",
    )
    cols = ("path", "server", "ticks/s", "best", f"vs {base}", "server µs", "client µs", f"vs {base} by CPU")
    for col in cols:
        table.add_column(col, justify="left" if col in ("path", "server") else "right")
    for r in rows:
        table.add_row(
            r["path"],
            f"{r['server']} ({r['version']})",
            f"{r['median_ticks_per_s']:,.0f}",
            f"{r['best_ticks_per_s']:,.0f}",
            f"{r['vs_base']:.2f}",
            f"{r['server_us']:.2f}",
            f"{r['client_us']:.2f}",
            f"{r['vs_base_cpu']:.2f}",
        )
    Console(width=160).print(table)
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "timescale", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
