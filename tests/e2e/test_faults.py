"""Determinism under faults and scale-out, with the real broker and database:
a worker killed with -9 mid-run and restarted, and two workers sharing the
partitions, both store exactly what an uninterrupted in-process run gives."""

import asyncio
import contextlib
import os
import signal
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from ticktape import store
from ticktape.config import Settings
from ticktape.model.batch import Batch, TickHeader, decode, empty, encode
from ticktape.model.spec import RunSpec
from ticktape.pipeline.topicread import TopicReader
from ticktape.pipeline.topics import APP_ID
from ticktape.runtime.embedded import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

N = 150_000


def _spec(symbols):
    return RunSpec(
        strategy="sma_crossover",
        symbols=symbols,
        params={"fast": 20, "slow": 120, "size": 5},
        batch_size=1500,
    )


def test_kill_9_mid_run_then_restart_stores_exactly_the_uninterrupted_fills(pipeline):
    symbols = pipeline.symbols(2, N)
    spec = _spec(symbols)
    first = pipeline.worker("first", "info")
    try:
        pipeline.submit(spec)
        deadline = time.monotonic() + 120
        while pipeline.processed(spec.run_id) < 0.25 * 2 * N:
            assert first.alive(), first.log_tail()
            assert time.monotonic() < deadline, first.log_tail()
            time.sleep(0.05)
        first.proc.kill()  # SIGKILL: no shutdown, no commit, no flush
        first.proc.wait(10)
        killed_at = pipeline.processed(spec.run_id)
    finally:
        first.stop()
    assert killed_at < 2 * N, "the run finished before the kill; make it longer"
    with pipeline.worker("second", "info") as second:
        run = pipeline.wait_done(spec.run_id, [second])
        log = second.log_tail(60)
    assert run["status"] == "complete", f"{run['error']}\n{log}"
    assert run["ticks_processed"] == 2 * N and run["ticks_rejected"] == 0
    total = pipeline.assert_same_as_in_process(spec)  # nothing lost, nothing twice
    assert run["fills"] == total


def test_two_workers_sharing_partitions_store_the_same_results(pipeline):
    symbols = pipeline.symbols(4, N // 3)
    spec = _spec(symbols)
    with pipeline.worker("w1", "info") as w1, pipeline.worker("w2", "info") as w2:
        pipeline.submit(spec)
        run = pipeline.wait_done(spec.run_id, [w1, w2])
        logs = [w.log_path.read_text() for w in (w1, w2)]
    assert run["status"] == "complete", run["error"]
    # both workers were assigned partitions of the ticks topic (Faust logs its assignment)
    for log in logs:
        assigned = [ln for ln in log.splitlines() if ln.startswith("| ticktape.ticks ") and "{" in ln]
        assert assigned, "a worker got no ticks partitions"
    assert run["ticks_processed"] == 4 * (N // 3)
    assert run["fills"] == pipeline.assert_same_as_in_process(spec)


@contextlib.contextmanager
def _own_broker(pipeline, db_url, tmp_path):
    """``pipeline`` on an embedded broker of its own: no consumer-group
    members left by earlier tests, whose expiry rebalances the group while
    the test runs (and Faust may then drop fetched messages)."""
    if pipeline.runtime.pids.get("kafka") is None:  # external broker (TICKTAPE_KAFKA_URL)
        yield pipeline
        return
    with Runtime(Settings(home=tmp_path / "broker", database_url=db_url)) as rt:
        yield type(pipeline)(rt, db_url, tmp_path)


def test_batches_arriving_ahead_of_a_missing_one_are_applied_in_order(pipeline, db_url, tmp_path):
    """A stream's batches delivered out of sequence (as after a crash, when a
    restarted replay re-sends what was lost) are held and applied in order."""
    with _own_broker(pipeline, db_url, tmp_path) as own:
        _apply_out_of_order(own)


def _batches(pipeline, spec: RunSpec, symbol: str) -> list[Batch]:
    """``symbol``'s stream as its replay sends it: tick batches, then the end of stream."""
    ticks = pipeline.data[symbol]
    out = [
        Batch(
            run_id=spec.run_id,
            symbol=symbol,
            seq=seq,
            arrays={"ticks": ticks[i : i + spec.batch_size]},
            header=TickHeader(spec=spec.to_json()),
        )
        for seq, i in enumerate(range(0, len(ticks), spec.batch_size))
    ]
    eos = Batch(
        run_id=spec.run_id,
        symbol=symbol,
        seq=len(out),
        arrays={"ticks": empty("ticks")},
        eos=True,
        header=TickHeader(spec=spec.to_json(), ticks_in=len(ticks)),
    )
    return [*out, eos]


def _started_run(pipeline) -> tuple[tuple[str, ...], RunSpec, dict[str, list[Batch]]]:
    """A running run of two fresh symbols whose batches the test sends itself."""
    symbols = pipeline.symbols(2, N // 10)
    spec = _spec(symbols)
    pipeline.create_run(spec)
    pipeline._run(lambda conn: store.start_run(conn, spec.run_id))
    return symbols, spec, {s: _batches(pipeline, spec, s) for s in symbols}


async def _send(pipeline, pairs) -> dict[TopicPartition, int]:
    """Send ``(symbol, batch)`` pairs in order; the offset after the last one sent, per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.runtime.kafka_url)
    await producer.start()
    ends: dict[TopicPartition, int] = {}
    try:
        for s, b in pairs:
            md = await producer.send_and_wait(f"{APP_ID}.ticks", encode(b), key=s.encode())
            ends[TopicPartition(md.topic, md.partition)] = md.offset + 1
    finally:
        await producer.stop()
    return ends


def _first_three_stored(pipeline, spec: RunSpec, streams: dict[str, list[Batch]], worker) -> None:
    """Send every stream's batches 0..2 and wait until their results are stored."""
    asyncio.run(_send(pipeline, [(s, b) for s in spec.symbols for b in streams[s][:3]]))
    deadline = time.monotonic() + 60
    while pipeline.processed(spec.run_id) < len(spec.symbols) * 3 * spec.batch_size:
        assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.05)


class _AsFaust(RoundRobinPartitionAssignor):
    """Joins a group Faust's workers use: the broker keeps the group's protocol by name."""

    name = "faust"


async def _commit(pipeline, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit ``offsets`` for ``group`` (empty now) as a member of it: the broker wants one."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=pipeline.runtime.kafka_url,
        group_id=group,
        enable_auto_commit=False,
        partition_assignment_strategy=(_AsFaust,),
    )
    await consumer.start()
    try:
        consumer.subscribe(sorted({tp.topic for tp in offsets}))
        deadline = time.monotonic() + 60
        while not set(offsets) <= consumer.assignment():
            assert time.monotonic() < deadline, "never assigned the partitions"
            await consumer.getmany(timeout_ms=200, max_records=1)
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


def _apply_out_of_order(pipeline):
    symbols, spec, streams = _started_run(pipeline)
    # per symbol 0..2, then 6..8 ahead of the missing 3..5, then the rest; 7 twice
    order = [0, 1, 2, 6, 7, 8, 3, 4, 5, 7, *range(9, 11)]
    pairs = [(s, streams[s][i]) for s in symbols for i in order]
    with pipeline.worker("w", "info") as w:
        asyncio.run(_send(pipeline, pairs))
        run = pipeline.wait_done(spec.run_id, [w])
        log = w.log_path.read_text()
    assert run["status"] == "complete", run["error"]
    assert "is ahead of 2; held until the gap fills" in log
    assert run["ticks_processed"] == 2 * (N // 10)
    assert run["fills"] == pipeline.assert_same_as_in_process(spec)


def test_batches_the_group_never_delivered_are_read_again_from_the_broker(pipeline, db_url, tmp_path):
    """Batches whose offsets the group has committed but that no worker
    applied (Faust skipped them around a rebalance, or a worker committed
    them and died) are read straight from the broker when a later batch of
    their stream shows the gap, even though no replay sends them again."""
    with _own_broker(pipeline, db_url, tmp_path) as own:
        symbols, spec, streams = _started_run(own)
        with own.worker("before", "info") as w:
            _first_three_stored(own, spec, streams, w)
        # 3..5 reach the broker, and the group's offsets move past them
        lost = asyncio.run(_send(own, [(s, b) for s in symbols for b in streams[s][3:6]]))

        asyncio.run(_commit(own, APP_ID, lost))
        asyncio.run(_send(own, [(s, b) for s in symbols for b in streams[s][6:]]))
        with own.worker("after", "info") as w:
            run = own.wait_done(spec.run_id, [w], timeout=90)
            log = w.log_path.read_text()
        assert run["status"] == "complete", run["error"]
        assert "is ahead of 2; held until the gap fills" in log
        assert "again from the broker for 3 missing batches (first 3): 3 found" in log
        assert run["ticks_processed"] == 2 * (N // 10)
        assert run["fills"] == own.assert_same_as_in_process(spec)


def _outage_loop(pipeline, run_id, n_total, outage, times=3):
    """Cause ``outage()`` ``times`` times while the run is in flight."""
    done = 0
    deadline = time.monotonic() + 120
    while done < times and time.monotonic() < deadline:
        p = pipeline.processed(run_id)
        if p >= (done + 1) * n_total / (times + 2):
            outage()
            done += 1
        time.sleep(0.05)
    return done


def test_database_connections_dropped_mid_run_lose_nothing(pipeline):
    symbols = pipeline.symbols(2, N)
    spec = _spec(symbols)

    def drop_connections():
        pipeline._run(
            lambda conn: conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'ticktape' AND pid <> pg_backend_pid()"
            )
        )

    with pipeline.worker() as w:
        pipeline.submit(spec)
        outages = _outage_loop(pipeline, spec.run_id, 2 * N, drop_connections)
        run = pipeline.wait_done(spec.run_id, [w])
        log = w.log_path.read_text()
    assert outages == 3
    assert "unavailable" in log  # the worker reported the outage and retried
    assert run["status"] == "complete", run["error"]
    assert run["fills"] == pipeline.assert_same_as_in_process(spec)


def test_broker_stalled_mid_run_loses_nothing(pipeline, db_url, tmp_path):
    if pipeline.runtime.pids.get("kafka") is None:
        pytest.skip("the broker is external (TICKTAPE_KAFKA_URL): cannot stall it from here")
    # a broker of its own: a stalled broker's group state must not leak into other tests
    with _own_broker(pipeline, db_url, tmp_path) as own:
        pid = own.runtime.pids["kafka"]
        symbols = own.symbols(2, N)
        spec = _spec(symbols)

        def stall():
            os.kill(pid, signal.SIGSTOP)
            try:
                time.sleep(3.0)
            finally:
                os.kill(pid, signal.SIGCONT)

        with own.worker() as w:
            own.submit(spec)
            assert _outage_loop(own, spec.run_id, 2 * N, stall, times=1) == 1
            run = own.wait_done(spec.run_id, [w])
        assert run["status"] == "complete", run["error"]
        assert run["fills"] == own.assert_same_as_in_process(spec)


def test_stages_in_separate_workers_give_the_same_results(pipeline):
    symbols = pipeline.symbols(2, N // 3)
    spec = _spec(symbols)
    with (
        pipeline.worker("edges", stages="replay,sink") as edges,
        pipeline.worker("hot", stages="indicators,strategy,execution") as hot,
    ):
        pipeline.submit(spec)
        run = pipeline.wait_done(spec.run_id, [edges, hot])
    assert run["status"] == "complete", run["error"]
    assert run["fills"] == pipeline.assert_same_as_in_process(spec)


def test_result_sets_the_sink_never_got_are_read_again_at_the_end_of_the_stream(pipeline, db_url, tmp_path):
    """Results messages whose offsets the sink's group committed without
    storing them are read straight from the broker when their stream's end
    arrives, and the run completes with every result stored."""
    with _own_broker(pipeline, db_url, tmp_path) as own:
        symbols, spec, streams = _started_run(own)
        results = f"{APP_ID}.results"

        async def results_end(seq: int) -> dict[TopicPartition, int]:
            """Once every symbol's result set ``seq`` is on the broker: each partition's end."""
            async with TopicReader(own.runtime.kafka_url) as reader:
                tps = await reader.partitions(results)
                deadline = time.monotonic() + 60
                while True:
                    starts, ends = await reader.bounds(tps)
                    got = set()
                    async for rec in reader.read({tp: (starts[tp], ends[tp]) for tp in tps}):
                        b = decode(rec.value)
                        if b.run_id == spec.run_id and b.seq == seq:
                            got.add(b.symbol)
                    if got == set(symbols):
                        return {tp: ends[tp] for tp in tps if ends[tp]}
                    assert time.monotonic() < deadline, f"result set {seq} never published"
                    await asyncio.sleep(0.1)

        with own.worker("hot", "info", stages="indicators,strategy,execution") as hot:
            with own.worker("sink", "info", stages="sink") as w:
                _first_three_stored(own, spec, streams, w)
            # with no sink running, 3..5 are processed, and the sink's offsets move past them
            asyncio.run(_send(own, [(s, b) for s in symbols for b in streams[s][3:6]]))
            asyncio.run(_commit(own, f"{APP_ID}-sink", asyncio.run(results_end(5))))
            asyncio.run(_send(own, [(s, b) for s in symbols for b in streams[s][6:]]))
            with own.worker("sink2", "info", stages="sink") as w:
                run = own.wait_done(spec.run_id, [w, hot], timeout=90)
                log = w.log_path.read_text()
        assert run["status"] == "complete", run["error"]
        assert log.count("again from the broker for 3 missing batches (first 3): 3 found") == 2, log
        assert run["ticks_processed"] == 2 * (N // 10)
        assert run["fills"] == own.assert_same_as_in_process(spec)


def test_a_worker_started_with_a_backlog_applies_all_of_it(pipeline, db_url, tmp_path):
    """A worker that starts with batches already waiting for it (a restart
    after a crash, while the replay went on) applies every one of them."""
    with _own_broker(pipeline, db_url, tmp_path) as own:
        symbols, spec, streams = _started_run(own)
        with own.worker("before", "info") as w:
            _first_three_stored(own, spec, streams, w)
        asyncio.run(_send(own, [(s, b) for s in symbols for b in streams[s][3:]]))
        with own.worker("after", "info") as w:
            run = own.wait_done(spec.run_id, [w], timeout=90)
            log = w.log_path.read_text()
        assert run["status"] == "complete", f"{run['error']}\n{log[-3000:]}"
        assert run["ticks_processed"] == 2 * (N // 10)
        assert run["fills"] == own.assert_same_as_in_process(spec)


def test_a_message_that_does_not_decode_is_skipped_and_the_run_completes(pipeline, db_url, tmp_path):
    """A message of another format in the ticks or the results topic (one of
    the format before typed headers, left in a Kafka topic) is logged and
    skipped; the agents go on with the run's batches."""
    head = b'{"run_id":"r","symbol":"A","seq":0,"eos":false,"arrays":[],"meta":{}}'
    old = b"TTB2" + len(head).to_bytes(4, "little") + head
    with _own_broker(pipeline, db_url, tmp_path) as own:
        symbols, spec, streams = _started_run(own)

        async def send_old() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=own.runtime.kafka_url)
            await producer.start()
            try:
                for topic in (f"{APP_ID}.ticks", f"{APP_ID}.results"):
                    await producer.send_and_wait(topic, old, key=symbols[0].encode())
            finally:
                await producer.stop()

        with own.worker("w", "info") as w:
            asyncio.run(send_old())
            asyncio.run(_send(own, [(s, b) for s in symbols for b in streams[s]]))
            run = own.wait_done(spec.run_id, [w], timeout=90)
            log = w.log_path.read_text()
        assert run["status"] == "complete", run["error"]
        assert log.count("skipped: a TTB2 message: ticktape's batch format before typed headers") == 2, log
        assert run["fills"] == own.assert_same_as_in_process(spec)
