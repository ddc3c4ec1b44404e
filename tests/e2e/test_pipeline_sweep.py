"""A pipeline sweep across two workers: the data replayed once, the groups
of parameter sets split over both, every set's results those of its single run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

import ticktape
from ticktape import store
from ticktape.backtest.groups import SetGroup
from ticktape.model.batch import TickHeader, decode
from ticktape.model.spec import RunSpec, new_run_id
from ticktape.model.sweep import SweepRequest, ticks_key
from ticktape.pipeline.sweep import pipeline_specs, sweep_request
from ticktape.pipeline.topicread import TopicReader
from ticktape.pipeline.topics import APP_ID, SWEEP_TICKS

SETS = [{"fast": f, "slow": s} for f in (5, 10, 20, 40) for s in (60, 150)]


def metrics(pipeline, run_id: str) -> dict[str, float]:
    rows = pipeline._run(lambda c: c.fetch("SELECT name, value FROM run_metrics WHERE run_id = $1", run_id))
    return {r["name"]: r["value"] for r in rows}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def ticks_published(kafka_url: str, sweep_id: str, symbols) -> dict[str, tuple[int, int]]:
    """Per symbol: (ticks, end-of-stream batches) in the sweep-ticks topic under the sweep's keys."""
    keys = {ticks_key(sweep_id, s).encode(): s for s in symbols}
    out = dict.fromkeys(symbols, (0, 0))

    async def go():
        async with TopicReader(kafka_url) as reader:
            tps = await reader.partitions(SWEEP_TICKS)
            _, ends = await reader.bounds(tps)
            async for rec in reader.read({tp: (None, ends[tp]) for tp in tps}):
                if rec.key in keys:
                    b = decode(rec.value, TickHeader)
                    n, eos = out[keys[rec.key]]
                    out[keys[rec.key]] = (n + len(b.ticks), eos + b.eos)

    asyncio.run(go())
    return out


def send(kafka_url: str, value: str) -> None:
    async def go():
        producer = AIOKafkaProducer(bootstrap_servers=kafka_url)
        await producer.start()
        try:
            await producer.send_and_wait(f"{APP_ID}.run-requests", value.encode())
        finally:
            await producer.stop()

    asyncio.run(go())


def sweep(pipeline, base: RunSpec, sets=SETS, groups: int = 4) -> tuple[list[RunSpec], SweepRequest]:
    """The runs of a sweep of ``sets`` over ``base``, created, and its request."""
    specs = pipeline_specs(base, sets)
    req = sweep_request(base, sets, specs, groups=groups)
    assert req.n_groups == groups

    async def create(conn):
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
                sweep_id=req.sweep_id,
            )

    pipeline._run(create)
    return specs, req


def taken(worker, req: SweepRequest) -> set[int]:
    """The groups of the sweep this worker took (its log)."""
    return {int(g) for g in re.findall(rf"sweep {req.sweep_id} group (\d+) \(sets", worker.log_tail(10_000))}


def test_a_sweep_over_two_workers_replays_once_splits_its_groups_and_equals_single_runs(pipeline):
    symbols = pipeline.symbols(2, 20_000)
    base = RunSpec(
        strategy="ma_crossover", symbols=symbols, params={"size": 10.0}, batch_size=3000, bar_ns=None
    )
    specs, req = sweep(pipeline, base)
    with pipeline.worker("sweep1", "info") as w1, pipeline.worker("sweep2", "info") as w2:
        send(pipeline.runtime.kafka_url, req.to_json())
        rows = [pipeline.wait_done(spec.run_id, [w1, w2]) for spec in specs]
        took = [taken(w, req) for w in (w1, w2)]
        # the single runs of the same sets, one by one, for the reference
        singles = []
        for spec in specs:
            single = dataclasses.replace(spec, run_id=new_run_id())
            pipeline.submit(single)
            singles.append(single)
        single_rows = [pipeline.wait_done(s.run_id, [w1, w2]) for s in singles]

    assert all(r["status"] == "complete" for r in rows), [r["error"] for r in rows]
    assert all(str(r["sweep_id"]) == req.sweep_id for r in rows)
    # the work split across both workers: each took some of the groups, all were taken
    assert took[0] and took[1] and took[0] | took[1] == {0, 1, 2, 3}, took
    # the data was replayed once per symbol: each tick once in the topic, one end of stream
    assert ticks_published(pipeline.runtime.kafka_url, req.sweep_id, symbols) == dict.fromkeys(
        symbols, (20_000, 1)
    )
    # every set's results are those of its single run (stored by the single-run sink path)
    for p, row, single in zip(SETS, rows, single_rows, strict=True):
        assert single["status"] == "complete", single["error"]
        for k in ("ticks_in", "ticks_processed", "ticks_rejected", "orders", "fills"):
            assert row[k] == single[k], (p, k, row[k], single[k])
        got, want = metrics(pipeline, row["run_id"]), metrics(pipeline, single["run_id"])
        assert same(got, want), (p, {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v})
        assert want["fills"] > 0
    # a sweep stores summaries: no result rows for its runs
    stored = pipeline._run(
        lambda c: c.fetchval(
            "SELECT count(*) FROM equity WHERE run_id = ANY($1::uuid[])", [s.run_id for s in specs]
        )
    )
    assert stored == 0


def test_a_worker_killed_mid_group_leaves_its_groups_to_the_other_which_computes_them_again(pipeline):
    symbols = pipeline.symbols(2, 20_000)  # 1,000 s of event time each, replayed in 10 s (speed 100)
    base = RunSpec(
        strategy="ma_crossover",
        symbols=symbols,
        params={"size": 10.0},
        batch_size=3000,
        bar_ns=None,
        speed=100.0,
    )
    specs, req = sweep(pipeline, base)
    workers = [pipeline.worker("crash1", "info"), pipeline.worker("crash2", "info")]
    try:
        send(pipeline.runtime.kafka_url, req.to_json())
        deadline = time.monotonic() + 60
        while True:  # the worker without the replay has taken a group: kill it mid-group
            replayer = [f"sweep {req.sweep_id}: 8 sets" in w.log_tail(10_000) for w in workers]
            if any(replayer) and taken(workers[replayer.index(False)], req):
                break
            assert time.monotonic() < deadline, workers[0].log_tail() + workers[1].log_tail()
            time.sleep(0.1)
        survivor, victim = workers[replayer.index(True)], workers[replayer.index(False)]
        lost = taken(victim, req)
        victim.proc.kill()  # SIGKILL: its group's work item never acknowledged
        victim.proc.wait(10)
        assert not any(pipeline.run_row(s.run_id)["status"] == "complete" for s in specs)
        rows = [pipeline.wait_done(s.run_id, [survivor], timeout=300) for s in specs]
        took = taken(survivor, req)
    finally:
        for w in workers:
            w.stop()
    assert all(r["status"] == "complete" for r in rows), [r["error"] for r in rows]
    assert lost <= took and took == {0, 1, 2, 3}, (lost, took)  # the victim's groups, again
    group = SetGroup(base.strategy, base.params, SETS, base.engine, symbols)
    for s in symbols:
        group.add(s, pipeline.data[s], eos=True)
    for p, row, want in zip(SETS, rows, group.results(), strict=True):
        got = metrics(pipeline, row["run_id"])
        assert same(got, want.metrics), (p, {k: (got.get(k), v) for k, v in want.metrics.items()})
        assert (row["fills"], row["ticks_processed"]) == (want.fills, 40_000)


def test_a_sweep_with_its_stages_in_separate_workers(pipeline):
    symbols = pipeline.symbols(2, 5_000)
    base = RunSpec(strategy="ma_crossover", symbols=symbols, params={"size": 10.0}, batch_size=2000)
    specs, req = sweep(pipeline, base)
    with (
        pipeline.worker("edges", "info", stages="replay,sink") as edges,
        pipeline.worker("hot", "info", stages="indicators,strategy,execution") as hot,
    ):
        send(pipeline.runtime.kafka_url, req.to_json())
        rows = [pipeline.wait_done(s.run_id, [edges, hot]) for s in specs]
        assert taken(hot, req) == {0, 1, 2, 3} and not taken(edges, req)
    assert all(r["status"] == "complete" for r in rows), [r["error"] for r in rows]
    group = SetGroup(base.strategy, base.params, SETS, base.engine, symbols)
    for s in symbols:
        group.add(s, pipeline.data[s], eos=True)
    for row, want in zip(rows, group.results(), strict=True):
        assert same(metrics(pipeline, row["run_id"]), want.metrics)


def test_the_first_runs_pause_and_cancel_act_on_the_whole_sweeps_replay(pipeline):
    symbols = pipeline.symbols(2, 20_000)  # 1,000 s of event time each, 20 s at speed 50
    base = RunSpec(
        strategy="ma_crossover", symbols=symbols, params={"size": 10.0}, batch_size=3000, speed=50.0
    )
    specs, req = sweep(pipeline, base)
    first = specs[0].run_id
    with pipeline.worker("control", "info") as w:
        send(pipeline.runtime.kafka_url, req.to_json())
        deadline = time.monotonic() + 60
        # the group taken first (the worker takes one at a time, in no set order) follows the replay
        while not any(pipeline.processed(s.run_id) for s in specs):
            assert time.monotonic() < deadline, w.log_tail()
            time.sleep(0.1)
        pipeline.control(first, "pause")
        pipeline.wait_status(first, ("paused",), [w], timeout=30)
        time.sleep(2.0)  # what was in flight gets through
        held = [pipeline.processed(s.run_id) for s in specs]
        time.sleep(2.0)
        assert [pipeline.processed(s.run_id) for s in specs] == held and sum(held) < 8 * 40_000
        pipeline.control(first, "cancel")
        rows = [pipeline.wait_done(s.run_id, [w], timeout=60) for s in specs]
        deadline = time.monotonic() + 30
        stopped = rf"sweep {req.sweep_id} group \d: its runs ended; group stopped"
        while not re.search(stopped, w.log_tail(10_000)):
            assert time.monotonic() < deadline, w.log_tail()  # (after 5 s without a batch)
            time.sleep(0.2)
        log = w.log_tail(10_000)
    assert [r["status"] for r in rows] == ["cancelled"] * 8, [r["error"] for r in rows]
    assert all(r["error"] == "cancelled by request" for r in rows)
    assert f"sweep {req.sweep_id} ended while replaying: replay stopped" in log


def test_a_set_the_engine_refuses_fails_its_own_run_and_the_rest_of_its_group_completes(pipeline):
    (symbol,) = pipeline.symbols(1, 5_000)
    base = RunSpec(strategy="market_maker", symbols=(symbol,), params={}, batch_size=2000)
    sets = [{"size": 0.5}, {"size": 2.0}]  # 0.5: not a whole number of lots
    specs, req = sweep(pipeline, base, sets, groups=1)
    with pipeline.worker("refused") as w:
        send(pipeline.runtime.kafka_url, req.to_json())
        bad, good = (pipeline.wait_done(s.run_id, [w]) for s in specs)
    assert bad["status"] == "failed" and bad["error"].startswith(
        "sweep group 0, parameter set 0 {'size': 0.5}: params.size or engine.lot_size:"
        " the engine refused a decision of market_maker at the tick of "
    ), bad["error"]
    assert good["status"] == "complete", good["error"]
    single = ticktape.backtest(pipeline.data[symbol], "market_maker", sets[1], engine={"initial_cash": 1e6})
    got = metrics(pipeline, good["run_id"])
    for k, v in single.metrics.items():
        if isinstance(v, float):
            assert got[k] == v or (math.isnan(got[k]) and math.isnan(v)), (k, got[k], v)


def test_the_sweep_command_over_the_pipeline_stores_summaries_and_the_kept_sets_rows(
    cli, db_url, kafka_url, tmp_path, monkeypatch
):
    env = {"TICKTAPE_DATABASE_URL": db_url, "TICKTAPE_KAFKA_URL": kafka_url, "TICKTAPE_HOME": str(tmp_path)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    args = "--grid fast=5,10,20 --param slow=60 --symbols CLIA,CLIB --source generator:20000 --groups 2"
    res = cli("sweep", "--strategy", "ma_crossover", *args.split(), "--keep-top", "1", "--json")
    assert res.exit_code == 0, res.output
    # (the progress bar goes to stdout too, before the table)
    table = json.loads(res.stdout[res.stdout.index("\n[") + 1 :])
    assert [r["fast"] for r in table] == [5, 10, 20] and all(r["status"] == "complete" for r in table)
    assert all(r["fills"] > 0 for r in table)

    async def stored(conn):
        return await conn.fetch(
            "SELECT r.params->>'fast' AS fast, r.fills, r.orders, r.sweep_id,"
            " (SELECT count(*) FROM fills f WHERE f.run_id = r.run_id) AS fill_rows,"
            " (SELECT count(DISTINCT order_id) FROM orders o WHERE o.run_id = r.run_id) AS order_ids,"
            " (SELECT count(*) FROM equity e WHERE e.run_id = r.run_id) AS samples"
            " FROM runs r WHERE r.symbols = ARRAY['CLIA', 'CLIB'] ORDER BY 1"
        )

    async def go():
        conn = await store.connect(db_url)
        try:
            return await stored(conn)
        finally:
            await conn.close()

    runs = asyncio.run(go())
    assert len(runs) == 3 and len({r["sweep_id"] for r in runs}) == 1
    best = max(table, key=lambda r: r["sharpe"])
    for r in runs:
        if int(r["fast"]) == best["fast"]:  # kept: its rows, re-run in process, agree with its summary
            assert (r["fill_rows"], r["order_ids"]) == (r["fills"], r["orders"]) and r["samples"] > 0
        else:
            assert (r["fill_rows"], r["samples"]) == (0, 0)


def test_groups_below_one_or_in_process_are_refused_in_one_line(tmp_path):
    ticktape = Path(sys.executable).with_name("ticktape")
    for args, line in (
        (["--symbols", "A", "--groups", "0"], "ticktape: error: --groups 0: must be >= 1"),
        (
            ["--data", "x.csv", "--groups", "2"],
            "ticktape: error: --groups 2: over the pipeline only (--symbols)",
        ),
    ):
        proc = subprocess.run(
            [ticktape, "sweep", "--strategy", "ma_crossover", "--grid", "fast=5", *args],
            check=False,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "TICKTAPE_HOME": str(tmp_path)},
            timeout=60,
        )
        assert (proc.returncode, proc.stderr.strip()) == (1, line)
