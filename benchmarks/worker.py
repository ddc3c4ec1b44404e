"""What one worker does, for sizing a deployment (docs/operations.md), and
what its Prometheus metrics cost: one table.

On the embedded broker and PostgreSQL (or TICKTAPE_KAFKA_URL /
TICKTAPE_DATABASE_URL), stores 2 symbols of synthetic ticks, then replays
them from the store through a fresh worker (all stages) several times,
alternating the worker's metrics off and on (``TICKTAPE_METRICS_PORT=0``:
served on a free port, never scraped; the sensor works per batch either
way). Per run:

- ticks/s: ticks / the run's ``wall_seconds`` (run start -> last results stored);
- worker CPU µs per tick (the worker and its children, submit -> complete);
- result rows the sink stored (signals, orders, fills, equity) and per second of the run;
- broker bytes per tick: the run's messages in the ticks and results topics
  (sizes of the message values as sent, LZ4-compressed when that pays).

Usage: python benchmarks/worker.py [--ticks-per-symbol N] [--pairs K] [--batch-size B]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from ticktape import store
from ticktape.config import Settings
from ticktape.model.batch import decode
from ticktape.model.spec import RunSpec
from ticktape.pipeline import topics
from ticktape.pipeline.demo import migrate, submit_and_watch
from ticktape.pipeline.worker import WorkerProcess
from ticktape.runtime.embedded import Runtime
from ticktape.runtime.kafka import kafka_metadata
from ticktape.runtime.processes import keep_freed_memory

sys.path.insert(0, str(Path(__file__).parent))
from e2e import PARAMS, cpu_seconds, load  # (the same data and strategy as e2e.py)

STREAMS = ("signals", "orders", "fills", "equity")


async def topic_bytes(bootstrap: str, run_id: str) -> dict[str, int]:
    """Bytes of ``run_id``'s messages in the ticks and results topics."""
    out = {}
    counts = await kafka_metadata(bootstrap)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    try:
        for name in (f"{topics.APP_ID}.ticks", f"{topics.APP_ID}.results"):
            tps = [TopicPartition(name, p) for p in range(counts[name])]
            ends = await consumer.end_offsets(tps)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            total, left = 0, {tp for tp in tps if ends[tp] > 0}
            while left:
                for tp, messages in (await consumer.getmany(timeout_ms=1000)).items():
                    for m in messages:
                        if m.value is not None and decode(m.value).run_id == run_id:
                            total += len(m.value)
                    if messages and messages[-1].offset + 1 >= ends[tp]:
                        left.discard(tp)
            out[name] = total
    finally:
        await consumer.stop()
    return out


async def rows_stored(dsn: str, run_id: str, symbols: list[str]) -> int:
    conn = await store.connect(dsn)
    try:
        total = 0
        for s in symbols:
            for stream in STREAMS:
                total += len(await store.read_results(conn, run_id, s, stream))
        return total
    finally:
        await conn.close()


def one_run(rt: Runtime, home: str, spec: RunSpec, total: int, metrics: bool, console: Console) -> list[str]:
    env = {**rt.env(), "TICKTAPE_HOME": home}
    if metrics:
        env["TICKTAPE_METRICS_PORT"] = "0"
    with WorkerProcess(env, Path(home) / f"worker-{spec.run_id}.log") as worker:
        worker.wait_ready(120)
        assert worker.proc is not None
        before = cpu_seconds({"worker": worker.proc.pid})
        run = asyncio.run(submit_and_watch(rt.kafka_url, rt.database_url, spec, total, worker, console, 7200))
        after = cpu_seconds({"worker": worker.proc.pid})
        served = "metrics on http://" in (Path(home) / f"worker-{spec.run_id}.log").read_text()
    assert served == metrics and run["status"] == "complete", (served, run["status"], run["error"])
    n, wall = run["ticks_processed"], run["wall_seconds"]
    rows = asyncio.run(rows_stored(rt.database_url, spec.run_id, list(spec.symbols)))
    sizes = asyncio.run(topic_bytes(rt.kafka_url, spec.run_id))
    return [
        "on" if metrics else "off",
        f"{n:,}",
        f"{n / wall:,.0f}",
        f"{(after['worker'] - before['worker']) / n * 1e6:.2f}",
        f"{rows:,}",
        f"{rows / wall:,.0f}",
        f"{sizes[f'{topics.APP_ID}.ticks'] / n:.1f}",
        f"{sizes[f'{topics.APP_ID}.results'] / n:.2f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks-per-symbol", type=int, default=3_000_000)
    ap.add_argument("--pairs", type=int, default=2, help="pairs of runs, metrics off then on")
    ap.add_argument("--batch-size", type=int, default=100_000)  # RunSpec's default
    args = ap.parse_args()
    keep_freed_memory()
    console = Console(stderr=True)
    symbols = ["BENCH-A", "BENCH-B"]
    n = args.ticks_per_symbol
    table = Table(title=f"one worker, all stages, 2 symbols x {n:,} ticks from the store (SMA crossover)")
    for col in (
        "metrics",
        "ticks",
        "ticks/s",
        "worker CPU µs/tick",
        "result rows",
        "rows/s",
        "ticks topic B/tick",
        "results topic B/tick",
    ):
        table.add_column(col, justify="right")
    with (
        tempfile.TemporaryDirectory(prefix="ticktape-bench-") as home,
        Runtime(Settings.from_env().with_home(home)) as rt,
    ):
        migrate(rt, console)
        load_s = asyncio.run(load(rt.database_url, symbols, n))
        console.print(f"stored {2 * n:,} ticks in {load_s:.1f} s: {2 * n / load_s:,.0f} ticks/s")
        topics.ensure(rt)
        for _ in range(args.pairs):
            for metrics in (False, True):
                spec = RunSpec(
                    strategy="sma_crossover",
                    symbols=tuple(symbols),
                    params=PARAMS,
                    batch_size=args.batch_size,
                )
                table.add_row(*one_run(rt, home, spec, 2 * n, metrics, console))
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
