"""End to end through the real embedded broker and PostgreSQL.

Ticks go into the store, a Faust worker (a real child process) replays them
through every stage, and the sink writes the results. Every tick must be
counted, and what the database holds must equal what the native engine
returns for the same ticks in process (no broker, no DB).
"""

import asyncio
import math
import threading
import time

import numpy as np
import pytest
from rich.console import Console

import ticktape
from ticktape import store
from ticktape.backtest.run import LevelStream, run_symbol
from ticktape.compute.indicators import bars
from ticktape.data.synth import depth_diffs
from ticktape.errors import DemoError
from ticktape.model.spec import RunSpec
from ticktape.pipeline.demo import owned_runs, submit_and_watch_many

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

N = 30_000
N_CROSSED = 10


def test_every_tick_counted_and_db_fills_equal_native_fills(pipeline):
    def cross_some(i, ticks):  # crossed quotes must be counted as rejected, not lost
        if i == 0:
            bad = slice(1000, 1000 + N_CROSSED * 7, 7)
            ticks["bid"][bad] = ticks["ask"][bad] + 0.05

    symbols = pipeline.symbols(2, N, mutate=cross_some)
    spec = RunSpec(
        strategy="sma_crossover",
        symbols=symbols,
        params={"fast": 20, "slow": 80, "size": 10},
        batch_size=4096,
    )
    with pipeline.worker() as w:
        pipeline.submit(spec)
        run = pipeline.wait_done(spec.run_id, [w])
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
    total_fills = pipeline.assert_same_as_in_process(spec)
    assert total_fills > 0 and run["fills"] == total_fills
    metrics = pipeline._run(lambda c: c.fetch("SELECT name FROM run_metrics WHERE run_id = $1", spec.run_id))
    assert {"final_pnl", "max_drawdown"} <= {r["name"] for r in metrics}


def test_bars_of_a_replay_from_years_ago_are_all_there(pipeline):
    """Faust's windowed tables expire windows by wall-clock time, which would
    drop every window of 2015 data; ticktape's bars close by event time only."""

    start_2015 = 1_420_190_400 * 10**9  # 2015-01-02 09:20 UTC
    symbols = pipeline.symbols(2, 20_000, start_ns=start_2015, rate_per_s=5.0)
    spec = RunSpec(strategy="sma_crossover", symbols=symbols, params={"fast": 20, "slow": 80}, batch_size=777)
    with pipeline.worker() as w:
        pipeline.submit(spec)
        run = pipeline.wait_done(spec.run_id, [w])
    assert run["status"] == "complete", run["error"]
    for s in symbols:
        t = pipeline.data[s]
        want = bars(t["ts"], (t["bid"] + t["ask"]) / 2, spec.bar_ns)
        got = pipeline.stored(spec.run_id, s, "bars")
        assert len(want) > 60  # more than an hour of 2015 minutes
        assert int(got["ts"][0]) // 10**9 // 86400 == start_2015 // 10**9 // 86400
        assert got.tobytes() == np.sort(want, order="ts").tobytes()


def test_streaming_and_in_process_runs_give_the_same_metrics(pipeline):
    (sym,) = pipeline.symbols(1, 40_000)
    spec = RunSpec(
        strategy="ma_crossover",
        symbols=(sym,),
        params={"fast": 20, "slow": 100, "ma": "ema"},
        batch_size=7000,
    )
    with pipeline.worker() as w:
        pipeline.submit(spec)
        run = pipeline.wait_done(spec.run_id, [w])
    assert run["status"] == "complete", run["error"]
    stored = {
        r["name"]: r["value"]
        for r in pipeline._run(
            lambda c: c.fetch("SELECT name, value FROM run_metrics WHERE run_id = $1", spec.run_id)
        )
    }
    local = ticktape.backtest(pipeline.data[sym], "ma_crossover", spec.params, engine={"initial_cash": 1e6})
    shared = [k for k, v in local.metrics.items() if isinstance(v, float)]
    assert {"sharpe", "max_drawdown_pct", "n_trades", "win_rate", "final_pnl"} <= set(shared)
    for k in shared:
        a, b = stored[k], local.metrics[k]
        assert (math.isnan(a) and math.isnan(b)) or a == b, (k, a, b)


def test_a_run_with_depth_from_the_store_fills_as_in_process(pipeline):
    """L2 book events in the store reach the engine through the ticks topic:
    the same fills as in process, batch ends with rejected ticks included
    (their updates are carried in the stream's state to the next accepted tick)."""

    def reject_batch_ends(_i, ticks):
        for end in range(7000, len(ticks), 7000):
            ticks["bid"][end - 3 : end] = -1.0  # the last ticks of each 7000-tick batch are rejected

    (sym,) = pipeline.symbols(1, 30_000, mutate=reject_batch_ends)
    ticks = pipeline.data[sym]
    events = depth_diffs(ticks[ticks["bid"] > 0], levels=4, seed=2, mean_size=5.0)
    pipeline._run(lambda conn: store.write_book_events(conn, sym, events))
    params = {"fast": 10, "slow": 50, "size": 30.0}
    spec = RunSpec(strategy="ma_crossover", symbols=(sym,), params=params, batch_size=7000, depth=True)
    with pipeline.worker() as w:
        pipeline.submit(spec)
        run = pipeline.wait_done(spec.run_id, [w])
    assert run["status"] == "complete", run["error"]
    want = run_symbol(spec, [ticks], depth=LevelStream().feed(events))
    got = pipeline.stored(spec.run_id, sym, "fills")
    exp = want.fills[np.lexsort([want.fills[f] for f in reversed(want.fills.dtype.names)])]
    assert len(exp) > 20
    assert got.tolist()[:5] == exp.tolist()[:5]
    assert got.tobytes() == exp.tobytes()
    flat = run_symbol(RunSpec(strategy="ma_crossover", symbols=(sym,), params=params), [ticks])
    assert flat.fills.tobytes() != want.fills.tobytes()  # the depth made a difference


def test_a_run_that_stops_moving_is_failed_by_its_watcher_not_left_running(pipeline):
    """`ticktape run` follows the run it submitted to its own worker: when no
    tick is processed for ``stall_s`` it stops with the reason and marks the
    run failed, and a sink that gets going again afterwards leaves it failed."""

    (sym,) = pipeline.symbols(1, 5_000)
    spec = RunSpec(strategy="sma_crossover", symbols=(sym,), params={"fast": 5, "slow": 20})

    def hold_the_sink(locked: threading.Event, release: threading.Event) -> None:
        async def hold() -> None:
            holder = await store.connect(pipeline.db_url)
            try:
                async with holder.transaction():  # the sink's writes wait for this lock (the replay's do not)
                    await holder.execute("LOCK TABLE sink_batches IN EXCLUSIVE MODE")
                    locked.set()
                    while not release.is_set():
                        await asyncio.sleep(0.05)
            finally:
                await holder.close()

        asyncio.run(hold())

    with pipeline.worker() as w:
        # the sink stays held until the watcher has failed the run (released
        # between the two, the sink could complete the 5,000 ticks first)
        locked, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=hold_the_sink, args=(locked, release))
        holder.start()
        try:
            assert locked.wait(30)
            with (
                pytest.raises(DemoError, match=r"no progress for 3 s at 0 ticks"),
                owned_runs(pipeline.db_url, [spec], "run"),  # as `ticktape run` follows it
            ):
                asyncio.run(
                    submit_and_watch_many(
                        pipeline.runtime.kafka_url,
                        pipeline.db_url,
                        [spec],
                        5_000,
                        w,
                        Console(quiet=True),
                        120,
                        stall_s=3,
                    )
                )
            run = pipeline.run_row(spec.run_id)
        finally:
            release.set()
            holder.join()
        assert run["status"] == "failed"
        assert run["error"].startswith("the command watching it stopped before it ended: run ")
        assert "no progress for 3 s" in run["error"]
        # released: the sink stores what the replay sent... (a request the
        # replay took only after the run had failed is skipped: nothing is sent)
        released = time.monotonic()
        while pipeline.processed(spec.run_id) < 5_000:
            read = pipeline._run(
                lambda c: c.fetchval(
                    "SELECT sum(ticks_read) FROM run_progress WHERE run_id = $1", spec.run_id
                )
            )
            if not read and time.monotonic() - released > 10:
                break
            assert w.alive() and time.monotonic() - released < 120, w.log_tail()
            time.sleep(0.2)
        time.sleep(1.0)
    assert pipeline.run_row(spec.run_id)["status"] == "failed"  # ...and does not complete the run
