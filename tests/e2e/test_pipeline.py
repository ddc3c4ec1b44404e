"""End to end through the real embedded broker and PostgreSQL.

Ticks go into the store, a Faust worker (a real child process) replays them
through every stage, and the sink writes the results. Every tick must be
counted, and the fills in the database must equal what the native engine
returns for the same ticks in process.
"""

import asyncio
import time
import uuid

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from ticktape import store
from ticktape.app import APP_ID, topic_partitions
from ticktape.generator import RandomWalkConfig, generate
from ticktape.spec import RunSpec
from ticktape.stages import run_symbol
from ticktape.worker import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

N = 30_000
N_CROSSED = 10


def _ticks(symbol, seed):
    t = np.concatenate(list(generate(RandomWalkConfig(symbol=symbol, n_ticks=N, seed=seed))))
    if symbol.endswith("A"):  # a few crossed quotes must be counted as rejected
        bad = np.arange(1000, 1000 + N_CROSSED * 7, 7)
        t["bid"][bad] = t["ask"][bad] + 0.05
    return t


async def _store(dsn, data):
    conn = await store.connect(dsn)
    try:
        await store.migrate(conn)
        for sym, t in data.items():
            await store.write_ticks(conn, sym, t, 0)
    finally:
        await conn.close()


async def _submit(kafka_url, dsn, spec):
    conn = await store.connect(dsn)
    try:
        await store.create_run(
            conn,
            spec.run_id,
            spec.strategy,
            {"engine": {"initial_cash": 1e6}},
            spec.params,
            list(spec.symbols),
            None,
            None,
        )
    finally:
        await conn.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_url)
    await producer.start()
    try:
        await producer.send_and_wait(f"{APP_ID}.run-requests", spec.to_json().encode())
    finally:
        await producer.stop()


async def _fetch(dsn, sql, *args):
    conn = await store.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def test_every_tick_counted_and_db_fills_equal_native_fills(runtime, db_url, tmp_path):
    tag = uuid.uuid4().hex[:6]
    symbols = (f"E2E{tag}A", f"E2E{tag}B")
    data = {s: _ticks(s, seed=i) for i, s in enumerate(symbols)}
    asyncio.run(_store(db_url, data))
    runtime.ensure_topics(topic_partitions())
    spec = RunSpec(
        strategy="sma_crossover",
        symbols=symbols,
        params={"fast": 20, "slow": 80, "size": 10},
        batch_size=4096,
    )
    env = {**runtime.env(), "TICKTAPE_DATABASE_URL": db_url, "TICKTAPE_HOME": str(tmp_path)}
    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        asyncio.run(_submit(runtime.kafka_url, db_url, spec))
        deadline = time.monotonic() + 240
        while True:
            rows = asyncio.run(_fetch(db_url, "SELECT * FROM runs WHERE run_id = $1", spec.run_id))
            if rows and rows[0]["status"] in ("complete", "failed"):
                break
            assert worker.alive(), worker.log_tail()
            assert time.monotonic() < deadline, f"run did not finish; worker log:\n{worker.log_tail()}"
            time.sleep(0.25)
    run = rows[0]
    assert run["status"] == "complete", run["error"]
    assert run["ticks_in"] == 2 * N
    assert run["ticks_processed"] + run["ticks_rejected"] == 2 * N
    assert run["ticks_rejected"] == N_CROSSED
    assert store.json_value(run["rejects"]) == {
        "bad_price": 0,
        "crossed": N_CROSSED,
        "bad_size": 0,
        "out_of_order": 0,
    }
    total_fills = 0
    for sym in symbols:
        expected = run_symbol(spec, [data[sym]])  # in process, one batch: no broker, no DB
        assert len(expected.fills) > 0
        got = asyncio.run(
            _fetch(
                db_url,
                "SELECT ts_ns, order_id, side, price, qty, fee FROM fills WHERE run_id = $1 AND symbol = $2"
                " ORDER BY ts_ns, order_id, qty",
                spec.run_id,
                sym,
            )
        )
        want = np.sort(expected.fills, order=["ts", "order_id", "qty"])
        assert [tuple(r) for r in got] == [
            (
                int(f["ts"]),
                int(f["order_id"]),
                int(f["side"]),
                float(f["price"]),
                float(f["qty"]),
                float(f["fee"]),
            )
            for f in want
        ]
        total_fills += len(want)
    assert run["fills"] == total_fills
    metrics = {
        r["name"]: r["value"]
        for r in asyncio.run(
            _fetch(db_url, "SELECT name, value FROM run_metrics WHERE run_id = $1", spec.run_id)
        )
    }
    assert {"final_pnl", "max_drawdown"} <= set(metrics)
