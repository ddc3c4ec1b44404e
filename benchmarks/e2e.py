"""Ticks/s of the demo pipeline, end to end and in process.

Generates synthetic ticks for 2 symbols into the store (embedded PostgreSQL
unless TICKTAPE_DATABASE_URL is set), replays them through the Faust pipeline
(embedded broker unless TICKTAPE_KAFKA_URL is set) with the SMA-crossover
strategy, and prints one table:

- pipeline: ticks / (run finished - run started), as the sink records it;
- pipeline incl. worker start: wall time from submitting the run;
- in process: the same stage functions without broker or DB (ticktape.stages).

Usage: python benchmarks/e2e.py [--ticks-per-symbol N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from ticktape import store
from ticktape.config import Settings
from ticktape.demo import execute, migrate
from ticktape.generator import RandomWalkConfig, generate
from ticktape.runtime import Runtime
from ticktape.spec import RunSpec
from ticktape.stages import run_symbol


async def load(dsn: str, symbols: list[str], n: int) -> float:
    conn = await store.connect(dsn)
    try:
        t0 = time.perf_counter()
        for i, sym in enumerate(symbols):
            seq = 0
            for chunk in generate(RandomWalkConfig(symbol=sym, n_ticks=n, seed=i), chunk=200_000):
                await store.write_ticks(conn, sym, chunk, seq)
                seq += len(chunk)
        return time.perf_counter() - t0
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks-per-symbol", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=50_000)
    args = ap.parse_args()
    n = args.ticks_per_symbol
    console = Console(stderr=True)
    symbols = ["BENCH-A", "BENCH-B"]
    params = {"fast": 50, "slow": 400, "size": 100.0}
    rows = []
    with tempfile.TemporaryDirectory(prefix="ticktape-bench-") as home:
        settings = Settings.from_env().with_home(home)
        with Runtime(settings) as rt:
            migrate(rt, console)
            load_s = asyncio.run(load(rt.database_url, symbols, n))
            rows.append(("generate + store (COPY)", 2 * n, load_s))
            spec = RunSpec(
                strategy="sma_crossover", symbols=tuple(symbols), params=params, batch_size=args.batch_size
            )
            t0 = time.perf_counter()
            run = execute(rt, settings, spec, console)
            total_s = time.perf_counter() - t0
            rows.append(("pipeline (run start -> complete)", run["ticks_processed"], run["wall_seconds"]))
            rows.append(("pipeline incl. worker start", run["ticks_processed"], total_s))
    data = {
        s: np.concatenate(list(generate(RandomWalkConfig(symbol=s, n_ticks=n, seed=i))))
        for i, s in enumerate(symbols)
    }
    spec = RunSpec(strategy="sma_crossover", symbols=tuple(symbols), params=params)
    t0 = time.perf_counter()
    for s in symbols:
        run_symbol(spec, (data[s][i : i + args.batch_size] for i in range(0, n, args.batch_size)))
    rows.append(("in process (same stages, no broker/DB)", 2 * n, time.perf_counter() - t0))

    table = Table(
        title=f"benchmarks/e2e.py: SMA crossover, 2 symbols x {n:,} ticks, batch {args.batch_size:,}"
    )
    table.add_column("path")
    table.add_column("ticks", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("ticks/s", justify="right")
    for name, ticks, secs in rows:
        table.add_row(name, f"{ticks:,}", f"{secs:.2f}", f"{ticks / secs:,.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
