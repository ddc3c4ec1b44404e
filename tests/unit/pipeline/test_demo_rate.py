"""The progress bar's rate of runs comes from the runs' own times; which
waits a run's watcher does not count as a stall."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticktape.pipeline.demo import not_timed, runs_rate

T0 = datetime(2024, 1, 2, tzinfo=UTC)


def test_a_run_that_ended_between_two_polls_shows_its_real_rate() -> None:
    # (it was ticks over the time since the first poll that saw any: 33 billion ticks/s)
    rows = [{"n": 2_000_000, "started_at": T0, "until": T0 + timedelta(seconds=2)}]
    assert runs_rate(rows) == "1,000,000 ticks/s"


def test_several_runs_from_the_first_start_to_the_last_end() -> None:
    rows = [
        {"n": 500, "started_at": T0, "until": T0 + timedelta(seconds=1)},
        {"n": 1500, "started_at": T0 + timedelta(seconds=1), "until": T0 + timedelta(seconds=4)},
    ]
    assert runs_rate(rows) == "500 ticks/s"


def test_nothing_yet() -> None:
    assert runs_rate([{"n": 0, "started_at": None, "until": T0}]) == "waiting for worker"
    assert runs_rate([{"n": 0, "started_at": T0, "until": T0}]) == "waiting for worker"


def test_a_stall_is_timed_while_a_run_waits_to_start_or_replays() -> None:
    assert not not_timed([{"status": "pending", "ending": False}])
    assert not not_timed([{"status": "running", "ending": False}])
    # one run computing its metrics, another still replaying: the other is timed
    assert not not_timed([{"status": "running", "ending": True}, {"status": "running", "ending": False}])
    assert not not_timed([{"status": "running", "ending": True}, {"status": "pending", "ending": False}])


def test_no_stall_while_paused_or_while_every_run_computes_its_metrics() -> None:
    assert not_timed([{"status": "paused", "ending": False}, {"status": "running", "ending": False}])
    assert not_timed([{"status": "running", "ending": True}, {"status": "complete", "ending": True}])
    assert not_timed([{"status": "running", "ending": True}, {"status": "failed", "ending": False}])
