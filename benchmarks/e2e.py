"""Ticks/s of the pipeline end to end and in process, peak memory, and
backtrader on the same ticks as the reference.

Generates synthetic ticks for 2 symbols into the store (embedded PostgreSQL
unless TICKTAPE_DATABASE_URL is set), replays them through the Faust pipeline
(embedded broker unless TICKTAPE_KAFKA_URL is set; all stages in one worker)
with the SMA-crossover strategy, and prints one table:

- pipeline (store): ticks / the run's ``wall_seconds``, as the sink
  records it: from the run's start until its last results are stored (the
  in-process and backtrader rows time the processing too, no metrics), with
  the Faust worker's peak resident memory (VmHWM) and the CPU time per tick
  of the worker, the broker and the database (each with its children) from
  submit to completion: on 2 cores these say what a run can reach whatever
  else the machine does;
- pipeline, submit -> complete: wall time from submitting the run until it
  is ``complete``, which includes the run's metrics computed at its end
  from the stored fills and equity (a few seconds: docs/metrics.md);
- pipeline (generator source) at two sizes (``--memory-ticks``, total over
  the 2 symbols): the worker's peak memory must not grow with the ticks;
  the embedded broker's resident memory after each run is shown too: its
  memory storage keeps every message (docs/architecture.md, "Processes");
- in process: the same stage functions without broker or DB (ticktape.stages);
- backtrader (if installed): the same SMA crossover over the first
  ``--backtrader-ticks`` ticks of one symbol fed as one bar per tick.

Usage: python benchmarks/e2e.py [--ticks-per-symbol N] [--memory-ticks A,B] [--batch-size B]
       python benchmarks/e2e.py --quick     # a small smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ticktape import store
from ticktape.backtest.run import run_symbol
from ticktape.config import Settings
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.model.spec import RunSpec
from ticktape.pipeline.demo import migrate, submit_and_watch
from ticktape.pipeline.topics import topic_partitions
from ticktape.pipeline.worker import WorkerProcess
from ticktape.runtime.embedded import Runtime
from ticktape.runtime.processes import keep_freed_memory

PARAMS = {"fast": 50, "slow": 400, "size": 100.0}


async def load(dsn: str, symbols: list[str], n: int) -> float:
    conn, second = await store.connect(dsn), await store.connect(dsn)
    try:
        t0 = time.perf_counter()
        # as `ticktape data import` stores them: one writer, the key of a month
        # built on one connection while the next month loads on the other
        async with store.TickWriter(conn, second=second) as writer:
            for i, sym in enumerate(symbols):
                seq = 0
                for chunk in generate_walk(RandomWalkConfig(symbol=sym, n_ticks=n, seed=i), chunk=200_000):
                    await writer.write(sym, chunk, seq)
                    seq += len(chunk)
        return time.perf_counter() - t0
    finally:
        await conn.close()
        await second.close()


async def export(dsn: str, path: Path, symbols: list[str]) -> None:
    from ticktape.data.readers import export_parquet

    conn = await store.connect(dsn)
    try:
        await export_parquet(conn, path, symbols)
    finally:
        await conn.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int | None) -> float:
    """Resident memory now (the embedded broker keeps every message it was sent)."""
    import psutil

    try:
        return psutil.Process(pid).memory_info().rss / 2**20
    except (psutil.Error, TypeError, ValueError):
        return float("nan")


def cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """CPU time (user + system) so far of each named process and its descendants."""
    import psutil

    out = {}
    for name, pid in pids.items():
        total = 0.0
        try:
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()  # children_*: descendants that ended (database backends)
                    total += t.user + t.system + t.children_user + t.children_system
        except (psutil.Error, TypeError):
            total = float("nan")
        out[name] = total
    return out


def _run(rt, home: str, spec: RunSpec, total: int, console: Console) -> tuple[dict, float, float, str]:
    """One run through a fresh worker: (run row, seconds from submit, worker peak
    RSS MB, CPU µs per tick of the worker / broker / database during the run)."""
    env = {**rt.env(), "TICKTAPE_HOME": home}
    with WorkerProcess(env, Path(home) / f"worker-{spec.run_id[:8]}.log") as worker:
        worker.wait_ready(120)
        pids = {"worker": worker.proc.pid, "broker": rt.pids.get("kafka"), "db": rt.pids.get("postgres")}
        before = cpu_seconds(pids)
        t0 = time.perf_counter()
        run = asyncio.run(submit_and_watch(rt.kafka_url, rt.database_url, spec, total, worker, console, 7200))
        total_s = time.perf_counter() - t0
        after = cpu_seconds(pids)
        rss = peak_rss_mb(worker.proc.pid)
    n = max(1, run["ticks_processed"])
    cpu = ", ".join(f"{k} {(after[k] - before[k]) / n * 1e6:.2f}" for k in pids)
    broker = rss_mb(rt.pids.get("kafka"))
    return run, total_s, rss, f"CPU µs/tick: {cpu}; broker RSS {broker:,.0f} MB"


def pipeline(
    n: int, batch: int, memory_ticks: list[int], console: Console
) -> list[tuple[str, int, float, str]]:
    symbols = ["BENCH-A", "BENCH-B"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ticktape-bench-") as home:
        settings = Settings.from_env().with_home(home)
        with Runtime(settings) as rt:
            migrate(rt, console)
            rows.append(
                ("generate + store (TickWriter)", 2 * n, asyncio.run(load(rt.database_url, symbols, n)), "")
            )
            spec = RunSpec(strategy="sma_crossover", symbols=tuple(symbols), params=PARAMS, batch_size=batch)
            rt.ensure_topics(topic_partitions())
            run, total_s, rss, cpu = _run(rt, home, spec, 2 * n, console)
            rows.append(
                (
                    "pipeline, store source (run start -> last results stored)",
                    run["ticks_processed"],
                    run["wall_seconds"],
                    f"worker peak RSS {rss:,.0f} MB; {cpu}",
                )
            )
            rows.append(
                (
                    "pipeline, submit -> complete (incl. end-of-run metrics)",
                    run["ticks_processed"],
                    total_s,
                    "",
                )
            )
            parquet = Path(home) / "ticks.parquet"
            asyncio.run(export(rt.database_url, parquet, symbols))
            spec = RunSpec(
                strategy="sma_crossover",
                symbols=tuple(symbols),
                params=PARAMS,
                batch_size=batch,
                source={"kind": "parquet", "path": str(parquet)},
            )
            run, _, rss, cpu = _run(rt, home, spec, 2 * n, console)
            rows.append(
                (
                    "pipeline, Parquet source (the same ticks)",
                    run["ticks_processed"],
                    run["wall_seconds"],
                    f"worker peak RSS {rss:,.0f} MB; {cpu}",
                )
            )
            for total in memory_ticks:
                gen = {"kind": "generator", "n_ticks": total // 2, "seed": 1}
                spec = RunSpec(
                    strategy="sma_crossover",
                    symbols=tuple(symbols),
                    params=PARAMS,
                    batch_size=batch,
                    source=gen,
                )
                run, _, rss, cpu = _run(rt, home, spec, total, console)
                rows.append(
                    (
                        f"pipeline, generator source, {total / 1e6:g}M ticks",
                        run["ticks_processed"],
                        run["wall_seconds"],
                        f"worker peak RSS {rss:,.0f} MB; {cpu}",
                    )
                )
    return rows


def in_process(n: int, batch: int) -> tuple[str, int, float, str]:
    symbols = ["BENCH-A", "BENCH-B"]
    spec = RunSpec(strategy="sma_crossover", symbols=tuple(symbols), params=PARAMS)
    elapsed = 0.0
    for i, s in enumerate(symbols):  # one symbol's ticks in memory at a time
        data = np.concatenate(list(generate_walk(RandomWalkConfig(symbol=s, n_ticks=n, seed=i))))
        t0 = time.perf_counter()
        run_symbol(spec, (data[j : j + batch] for j in range(0, n, batch)))
        elapsed += time.perf_counter() - t0
    return ("in process (same stages, no broker/DB)", 2 * n, elapsed, "")


def backtrader_reference(n: int) -> tuple[str, int, float, str] | None:
    try:
        import backtrader as bt
    except ImportError:
        return None
    import pandas as pd

    t = np.concatenate(list(generate_walk(RandomWalkConfig(symbol="BENCH-A", n_ticks=n, seed=0))))
    mid = (t["bid"] + t["ask"]) / 2
    df = pd.DataFrame(
        {"open": mid, "high": mid, "low": mid, "close": mid, "volume": 1.0},
        index=pd.to_datetime(t["ts"], unit="ns"),
    )

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.cross = bt.ind.CrossOver(
                bt.ind.SMA(period=PARAMS["fast"]), bt.ind.SMA(period=PARAMS["slow"])
            )

        def next(self):
            if self.cross > 0:
                self.order_target_size(target=PARAMS["size"])
            elif self.cross < 0:
                self.order_target_size(target=-PARAMS["size"])

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df))
    cerebro.addstrategy(SmaCross)
    t0 = time.perf_counter()
    cerebro.run()
    return (
        f"backtrader {bt.__version__} (1 bar per tick, first {n:,} ticks)",
        n,
        time.perf_counter() - t0,
        "",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks-per-symbol", type=int, default=10_000_000)
    ap.add_argument("--memory-ticks", default="10000000,50000000", help="total ticks of the memory runs")
    ap.add_argument("--batch-size", type=int, default=100_000)  # RunSpec's default
    ap.add_argument("--backtrader-ticks", type=int, default=200_000)
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--json", type=Path, help="also write the table here (benchmarks/benchjson.py)")
    args = ap.parse_args()
    keep_freed_memory()  # as the `ticktape` command does
    if args.quick:
        args.ticks_per_symbol, args.memory_ticks, args.backtrader_ticks = 200_000, "400000,1000000", 20_000
    n, batch = args.ticks_per_symbol, args.batch_size
    memory_ticks = [int(x) for x in args.memory_ticks.split(",") if x]
    console = Console(stderr=True)
    rows = pipeline(n, batch, memory_ticks, console)
    rows.append(in_process(n, batch))
    bt_row = backtrader_reference(args.backtrader_ticks)
    table = Table(title=f"benchmarks/e2e.py: SMA crossover, 2 symbols x {n:,} ticks, batch {batch:,}")
    for col in ("path", "ticks", "seconds", "ticks/s", "vs backtrader", "note"):
        table.add_column(col, justify="left" if col in ("path", "note") else "right")
    bt_rate = bt_row[1] / bt_row[2] if bt_row else None
    for name, ticks, secs, note in [*rows, *([bt_row] if bt_row else [])]:
        rate = ticks / secs
        table.add_row(
            name,
            f"{ticks:,}",
            f"{secs:.2f}",
            f"{rate:,.0f}",
            f"{rate / bt_rate:,.0f}x" if bt_rate else "-",
            note,
        )
    if not bt_row:
        table.add_row("backtrader", "-", "-", "-", "-", "not installed (pip install backtrader)")
    Console(width=160).print(table)
    if args.json:
        import benchjson

        benchjson.write(args.json, "e2e", table)


if __name__ == "__main__":
    main()
