"""The progress bar's rate of runs comes from the runs' own times; which
waits a run's watcher does not count as a stall; the results table."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from rich.console import Console

from ticktape.pipeline.demo import not_timed, results_table, runs_rate

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


def _table_text(run: dict) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(results_table(run))
    return console.export_text()


def test_the_results_table_states_the_sharpe_with_its_grid_in_80_columns() -> None:
    run = {
        "run_id": "5f0c6a3e-1b7e-4d1c-9b8e-0f3c2a1d4e5f",
        "status": "complete",
        "wall_seconds": 2.0,
        "ticks_processed": 1_200_000,
        "ticks_rejected": 0,
        "orders": 2_545,
        "fills": 7_968,
        "metrics": {
            "final_pnl": -8999.94,
            "total_return": -0.0045,
            "sharpe": -313.4,
            "return_grid_ns": 60e9,
            "return_periods": 501.0,
            "periods_per_year": 525_960.0,
            "max_drawdown": 9100.0,
            "max_drawdown_pct": 0.0091,
        },
    }
    text = _table_text(run)
    assert "Sharpe (by minute, 501 returns)" in text and "-313.4" in text
    assert "-0.45 %" in text
    assert "annualized from 501 returns by minute" in " ".join(text.split())  # (the caveat, wrapped)
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_run_without_metrics_yet_shows_na() -> None:
    run = {
        "run_id": "r",
        "status": "running",
        "wall_seconds": None,
        "ticks_processed": 0,
        "ticks_rejected": None,
        "orders": 0,
        "fills": 0,
        "metrics": {},
    }
    assert "Sharpe (n/a, n/a returns)" in _table_text(run)
