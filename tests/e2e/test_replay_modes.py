"""Replay speed and run control through the real pipeline: a paced replay
gives the same results as max speed and takes the wall time it should; a
run can be paused, resumed and cancelled from outside."""

import time

import pytest

from ticktape.model.spec import RunSpec
from ticktape.store.runs import run_progress

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

RATE = 100.0  # ticks per second of event time


def _spec(symbols, **kw):
    return RunSpec(strategy="sma_crossover", symbols=symbols, params={"fast": 5, "slow": 40, "size": 2}, **kw)


def test_speed_k_is_paced_and_gives_the_max_speed_results(pipeline):
    symbols = pipeline.symbols(2, 1_500, rate_per_s=RATE)
    span_s = max(float(d["ts"][-1] - d["ts"][0]) for d in pipeline.data.values()) / 1e9
    k = span_s / 3.0  # the replay should take about 3 s of wall time
    spec = _spec(symbols, speed=k, batch_size=100_000)
    with pipeline.worker() as w:
        pipeline.submit(spec)
        run = pipeline.wait_done(spec.run_id, [w])
    assert run["status"] == "complete", run["error"]
    assert run["wall_seconds"] >= 0.9 * span_s / k
    pipeline.assert_same_as_in_process(spec)  # = max speed, any batching
    # each stage's lag, as `ticktape runs show` and the dashboard read it: a
    # paced replay keeps every stage close behind
    progress = pipeline._run(lambda conn: run_progress(conn, spec.run_id))
    for s in progress["symbols"]:
        assert 0 <= s["hot_lag_s"] < 5 and 0 <= s["sink_lag_s"] < 5, s


def test_pause_resume_and_cancel(pipeline):
    symbols = pipeline.symbols(2, 3_000, rate_per_s=RATE)
    span_s = max(float(d["ts"][-1] - d["ts"][0]) for d in pipeline.data.values()) / 1e9
    paced = _spec(symbols, speed=span_s / 8.0)  # ~8 s of wall time
    doomed = _spec(symbols, speed=span_s / 8.0)
    with pipeline.worker() as w:
        pipeline.submit(paced)
        pipeline.wait_status(paced.run_id, ("running",), [w])
        while pipeline.processed(paced.run_id) == 0:
            time.sleep(0.05)
        pipeline.control(paced.run_id, "pause")
        pipeline.wait_status(paced.run_id, ("paused",), [w])
        # batches published before the pause drain through the pipeline (each
        # hop may wait up to Faust's 1.5 s fetch wait), then nothing moves
        held, deadline = -1, time.monotonic() + 30
        while (now := pipeline.processed(paced.run_id)) != held:
            assert time.monotonic() < deadline
            held = now
            time.sleep(2.0)
        time.sleep(2.0)
        assert pipeline.processed(paced.run_id) == held < 2 * 3_000
        assert pipeline.run_row(paced.run_id)["status"] == "paused"
        pipeline.control(paced.run_id, "resume")
        run = pipeline.wait_done(paced.run_id, [w])
        assert run["status"] == "complete", run["error"]
        pipeline.assert_same_as_in_process(paced)

        pipeline.submit(doomed)
        pipeline.wait_status(doomed.run_id, ("running",), [w])
        pipeline.control(doomed.run_id, "cancel")
        run = pipeline.wait_done(doomed.run_id, [w])
    assert run["status"] == "cancelled"
    assert run["ticks_processed"] < 2 * 3_000
