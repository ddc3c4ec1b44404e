"""Determinism under faults and scale-out, with the real broker and database:
a worker killed with -9 mid-run and restarted, and two workers sharing the
partitions, both store exactly what an uninterrupted in-process run gives."""

import time

import pytest

from ticktape.spec import RunSpec

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
    first = pipeline.worker("first")
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
    with pipeline.worker("second") as second:
        run = pipeline.wait_done(spec.run_id, [second])
    assert run["status"] == "complete", run["error"]
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
