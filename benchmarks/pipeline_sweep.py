"""Ticks x sets/s of a pipeline sweep (the data replayed once, the sets in
groups) against the same sets as separate pipeline runs (the data replayed
once per set), back to back on one worker.

Generates synthetic ticks for 2 symbols into the store (embedded PostgreSQL
unless TICKTAPE_DATABASE_URL is set), starts one Faust worker with all
stages (embedded broker unless TICKTAPE_KAFKA_URL is set) and, for 8 and 32
parameter sets of the SMA crossover, times from submitting until every run
is complete:

- sweep: one sweep request (docs/sweeps.md, "Over the pipeline"), in
  ``--groups`` groups (default 4: one per partition) and in 1 group;
- separate runs: one run request per set, all sent at once (what a pipeline
  sweep did before: every set replays the data, the sink stores every row
  and computes each run's metrics from them);
- then, with ``--workers`` N > 1 (default 2), the sweep in ``--groups``
  groups again with N workers sharing the groups' partitions (peak RSS: the
  largest worker's).

ticks x sets/s = ticks of both symbols x sets / seconds. Every sweep set's
metrics are checked equal to its separate run's. Prints one table, with
the worker's peak resident memory so far (VmHWM) after each row.

Usage: python benchmarks/pipeline_sweep.py [--ticks-per-symbol N] [--sets 8,32] [--workers 2]
       python benchmarks/pipeline_sweep.py --quick     # a small smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ticktape import store
from ticktape.config import Settings
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.model.spec import RunSpec, new_run_id
from ticktape.model.sweep import SweepRequest
from ticktape.pipeline.demo import migrate, submit_and_watch_many
from ticktape.pipeline.sweep import pipeline_specs, sweep_request
from ticktape.pipeline.topics import topic_partitions
from ticktape.pipeline.worker import WorkerProcess, ready_path
from ticktape.runtime.embedded import Runtime
from ticktape.runtime.processes import keep_freed_memory

SYMBOLS = ("BENCH-A", "BENCH-B")


def grid(n: int) -> list[dict]:
    """``n`` sets of fast x slow (8: 4 x 2, 32: 8 x 4)."""
    fasts = [10, 20, 30, 50, 70, 100, 150, 200][: max(1, n // (2 if n <= 8 else 4))]
    slows = [400, 800, 1200, 1600][: n // len(fasts)]
    return [{"fast": f, "slow": s, "size": 100.0} for f in fasts for s in slows]


async def load(dsn: str, n: int) -> None:
    conn = await store.connect(dsn)
    try:
        async with store.TickWriter(conn) as writer:
            for i, sym in enumerate(SYMBOLS):
                seq = 0
                for chunk in generate_walk(RandomWalkConfig(symbol=sym, n_ticks=n, seed=i), chunk=200_000):
                    await writer.write(sym, chunk, seq)
                    seq += len(chunk)
    finally:
        await conn.close()


async def create(dsn: str, specs: list[RunSpec], sweep_id: str | None) -> None:
    conn = await store.connect(dsn)
    try:
        for spec in specs:
            await store.create_run(
                conn,
                spec.run_id,
                spec.strategy,
                json.loads(spec.to_json()),
                spec.params,
                list(spec.symbols),
                None,
                None,
                sweep_id=sweep_id,
            )
    finally:
        await conn.close()


def timed(
    rt: Runtime,
    worker: WorkerProcess,
    specs: list[RunSpec],
    total: int,
    console: Console,
    req: SweepRequest | None,
) -> tuple[float, list[dict]]:
    """Seconds from submitting ``specs`` (one sweep request ``req``, or a request each) until all complete."""
    asyncio.run(create(rt.database_url, specs, req.sweep_id if req else None))
    t0 = time.perf_counter()
    rows = asyncio.run(
        submit_and_watch_many(
            rt.kafka_url, rt.database_url, specs, total * len(specs), worker, console, 7200, request=req
        )
    )
    seconds = time.perf_counter() - t0
    bad = [r for r in rows if r["status"] != "complete"]
    if bad:
        raise SystemExit(f"run {bad[0]['run_id']} {bad[0]['status']}: {bad[0]['error']}")
    return seconds, rows


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ticks-per-symbol", type=int, default=500_000)
    ap.add_argument("--sets", default="8,32")
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2, help="then the sweeps again on this many workers")
    ap.add_argument("--quick", action="store_true", help="20,000 ticks per symbol, 8 sets")
    args = ap.parse_args()
    if args.quick:
        args.ticks_per_symbol, args.sets = 20_000, "8"
    keep_freed_memory()
    console = Console(stderr=True)
    n = args.ticks_per_symbol
    total = len(SYMBOLS) * n
    table = Table(
        title=f"pipeline sweep vs separate runs: {total:,} ticks (2 symbols), SMA crossover, one worker"
        f" (then {args.workers})"
    )
    for col in ("what", "sets", "seconds", "ticks x sets/s", "÷ separate runs", "worker peak RSS"):
        table.add_column(col, justify="left" if col == "what" else "right")
    sizes = [int(x) for x in args.sets.split(",")]
    base = RunSpec(strategy="sma_crossover", symbols=SYMBOLS, params={}, batch_size=args.batch_size)
    results: dict[int, dict[str, tuple[float, list[dict], float]]] = {k: {} for k in sizes}
    with tempfile.TemporaryDirectory(prefix="ticktape-bench-") as home:
        settings = Settings.from_env().with_home(home)
        with Runtime(settings) as rt:
            migrate(rt, console)
            asyncio.run(load(rt.database_url, n))
            rt.ensure_topics(topic_partitions())
            env = {**rt.env(), "TICKTAPE_HOME": home}
            with WorkerProcess(env, Path(home) / "worker.log") as worker:
                worker.wait_ready(120)
                assert worker.proc is not None
                pid = worker.proc.pid
                for k in sizes:
                    sets = grid(k)
                    for what, groups in (
                        (f"sweep, {args.groups} groups", args.groups),
                        ("sweep, 1 group", 1),
                    ):
                        specs = pipeline_specs(base, sets)
                        req = sweep_request(base, sets, specs, groups)
                        results[k][what] = (*timed(rt, worker, specs, total, console, req), peak_rss_mb(pid))
                    specs = [dataclasses.replace(s, run_id=new_run_id()) for s in pipeline_specs(base, sets)]
                    results[k]["separate runs"] = (
                        *timed(rt, worker, specs, total, console, None),
                        peak_rss_mb(pid),
                    )
                if args.workers > 1:  # the same sweeps with more workers sharing the groups' partitions
                    more = [WorkerProcess(env, Path(home) / f"worker{i}.log") for i in range(1, args.workers)]
                    ready_path(Path(home) / "faust", pid).unlink()  # ready again after the rebalance
                    try:
                        for w in more:
                            w.start()
                        for w in more:
                            w.wait_ready(120)
                        worker.wait_ready(120)
                        for k in sizes:
                            sets = grid(k)
                            specs = pipeline_specs(base, sets)
                            req = sweep_request(base, sets, specs, args.groups)
                            what = f"sweep, {args.groups} groups, {args.workers} workers"
                            secs, rows = timed(rt, worker, specs, total, console, req)
                            rss = max(peak_rss_mb(w.proc.pid) for w in [worker, *more] if w.proc is not None)
                            results[k][what] = (secs, rows, rss)
                    finally:
                        for w in more:
                            w.stop()
    for k in sizes:
        sep_s, sep_rows, _ = results[k]["separate runs"]
        for what, (secs, rows, rss) in results[k].items():
            for x, y in zip(rows, sep_rows, strict=True):
                assert same(x["metrics"], y["metrics"]), (x["params"], x["metrics"], y["metrics"])
            table.add_row(
                what,
                str(k),
                f"{secs:.1f}",
                f"{total * k / secs / 1e6:.2f}M",
                f"{secs / sep_s:.2f}",
                f"{rss:,.0f} MB",
            )
    Console(width=max(Console().width, 120)).print(table)


if __name__ == "__main__":
    main()
