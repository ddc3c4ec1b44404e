"""The installed ``ticktape`` command on runs: a reused run id, bad specs and
arguments (one line, exit 1, nothing started or left running, nothing
half-written), cancel and delete (issue 22, items 3, 4 and 7)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest

from ticktape import store
from ticktape.model.batch import DTYPES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TICKTAPE = Path(sys.executable).with_name("ticktape")


def _ticktape(args, home, **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    full.update({"TICKTAPE_HOME": str(home), "COLUMNS": "200", **env})
    return subprocess.run(
        [str(TICKTAPE), *map(str, args)], check=False, env=full, capture_output=True, text=True, timeout=170
    )


def _error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ticktape: error: ")
    return lines[0]


def _nothing_left(home: Path) -> None:
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            env = p.info["environ"] or {}
        except psutil.Error:
            continue
        assert str(home) not in cmd and env.get("TICKTAPE_HOME") != str(home), f"left running: {cmd}"


def _db(db_url: str, fn):
    async def go():
        conn = await store.connect(db_url)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def _seed_run(db_url: str, *, status: str = "complete", symbol: str = "A") -> str:
    run = str(uuid.uuid4())

    async def seed(conn):
        await store.create_run(conn, run, "sma_crossover", {}, {"fast": 5}, [symbol], None, None)
        fills = np.zeros(3, DTYPES["fills"])
        fills["ts"] = 1_700_000_000_000_000_000 + np.arange(3)
        await store.write_result_set(conn, run, symbol, 0, {"fills": fills})
        await store.start_run(conn, run)
        if status != "running":
            await store.finish_run(conn, run, status)

    _db(db_url, seed)
    return run


def _services(db_url: str, kafka_url: str) -> dict[str, str]:
    return {"TICKTAPE_DATABASE_URL": db_url, "TICKTAPE_KAFKA_URL": kafka_url}


# -- item 3: a reused run id ---------------------------------------------------


def test_a_reused_run_id_is_refused_before_a_worker_starts(db_url, kafka_url, tmp_path) -> None:
    run = _seed_run(db_url)
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"strategy": "sma_crossover", "symbols": ["B"], "params": {"fast": 9}, "run_id": run})
    )
    line = _error_line(
        _ticktape(["run", spec, "--source", "generator:1000"], tmp_path, **_services(db_url, kafka_url))
    )
    assert f"run {run} exists already (complete" in line and "runs delete" in line
    assert not (tmp_path / "logs" / "worker.log").exists()  # no worker was started
    row = _db(
        db_url, lambda c: c.fetchrow("SELECT status, symbols FROM runs WHERE run_id = $1", uuid.UUID(run))
    )
    assert (row["status"], row["symbols"]) == ("complete", ["A"])  # the stored run is as it was
    _nothing_left(tmp_path)


# -- item 7: bad specs and arguments -----------------------------------------------


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ('{"strategy": "sma_crossover", "symbols": ["A"], "params": {"size": NaN}}', "params.size: NaN"),
        (
            '{"strategy": "sma_crossover", "symbols": ["A"], "engine": {"initial_cash": Infinity}}',
            "engine.initial_cash: Infinity",
        ),
        ('{"strategy": "sma_crossover", "symbols": ["A"], "speed": -Infinity}', "speed: -Infinity"),
        (
            '{"strategy": "sma_crossover", "symbols": ["A"], "run_id": "run-1"}',
            "run_id: 'run-1' is not a run id",
        ),
    ],
)
@pytest.mark.parametrize("command", ["run", "paper"])
def test_a_bad_spec_is_refused_before_anything_starts(tmp_path, spec, says, command) -> None:
    path = tmp_path / "spec.json"
    path.write_text(spec)
    args = [command, path] + (["--url", "ws://127.0.0.1:9"] if command == "paper" else [])
    line = _error_line(_ticktape(args, tmp_path))
    assert says in line, line
    assert not (tmp_path / "pg").exists()  # not even the embedded PostgreSQL was started
    _nothing_left(tmp_path)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["runs", "list", "--limit", "-1"], "--limit: must be >= 1, got -1"),
        (["runs", "list", "--limit", "0"], "--limit: must be >= 1, got 0"),
        (["demo", "--ticks", "0"], "--ticks: must be >= 1, got 0"),
        (["demo", "--symbols", "-2"], "--symbols: must be >= 1, got -2"),
        (["record", "nope"], "run_id: 'nope' is not a run id"),
        (["runs", "delete"], "runs delete: give run ids or --older-than"),
        (["runs", "delete", "--older-than", "30x"], "--older-than '30x': not a span"),
        (["runs", "delete", "--older-than", "-3d"], "--older-than '-3d': must be longer than zero"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, args, says) -> None:
    line = _error_line(_ticktape(args, tmp_path))
    assert says in line, line
    assert not (tmp_path / "pg").exists()
    _nothing_left(tmp_path)


def test_paper_on_a_feed_that_refuses_the_connection(db_url, kafka_url, tmp_path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = str(uuid.uuid4())
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"strategy": "sma_crossover", "symbols": ["BTCUSDT"], "run_id": run}))
    line = _error_line(
        _ticktape(
            ["paper", spec, "--url", f"ws://127.0.0.1:{port}"], tmp_path, **_services(db_url, kafka_url)
        )
    )
    assert f"ws://127.0.0.1:{port}" in line and "refused" in line
    assert (
        _db(db_url, lambda c: c.fetchval("SELECT count(*) FROM runs WHERE run_id = $1", uuid.UUID(run))) == 0
    )
    assert not (tmp_path / "logs" / "worker.log").exists()
    _nothing_left(tmp_path)


def test_record_of_an_unknown_run(db_url, kafka_url, tmp_path) -> None:
    run = str(uuid.uuid4())
    line = _error_line(_ticktape(["record", run], tmp_path, **_services(db_url, kafka_url)))
    assert f"no run {run}" in line
    _nothing_left(tmp_path)


# -- item 4: cancel and delete ------------------------------------------------------


def test_cancel_of_a_run_nobody_replays_ends_it(db_url, tmp_path) -> None:
    run = _seed_run(db_url, status="running")
    proc = _ticktape(["runs", "cancel", run], tmp_path, TICKTAPE_DATABASE_URL=db_url)
    assert proc.returncode == 0, proc.stderr
    assert "cancelled" in proc.stdout
    status = _db(db_url, lambda c: c.fetchval("SELECT status FROM runs WHERE run_id = $1", uuid.UUID(run)))
    assert status == "cancelled"


def test_runs_delete(db_url, tmp_path) -> None:
    done, running = _seed_run(db_url), _seed_run(db_url, status="running")
    env = {"TICKTAPE_DATABASE_URL": db_url}
    proc = _ticktape(["runs", "delete", done], tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert f"deleted 1 run: {done} (complete)" in out and "3 fills" in out, out
    line = _error_line(_ticktape(["runs", "delete", running], tmp_path, **env))
    assert f"run {running} is running" in line and "--force" in line
    proc = _ticktape(["runs", "delete", running, "--force"], tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    left = _db(
        db_url,
        lambda c: c.fetchval(
            "SELECT (SELECT count(*) FROM runs WHERE run_id = ANY($1::uuid[]))"
            " + (SELECT count(*) FROM fills WHERE run_id = ANY($1::uuid[]))",
            [done, running],
        ),
    )
    assert left == 0
    line = _error_line(_ticktape(["runs", "delete", done], tmp_path, **env))
    assert f"no run {done}" in line


def test_the_dashboard_command_ends_runs_whose_lease_ran_out(db_url, tmp_path) -> None:
    # the page only reads (ticktape_reader); the command around it expires leases
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env.update({"TICKTAPE_HOME": str(tmp_path), "TICKTAPE_DATABASE_URL": db_url})
    with open(tmp_path / "dashboard.log", "wb") as log:
        proc = subprocess.Popen(
            [str(TICKTAPE), "dashboard", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        run, owner = str(uuid.uuid4()), "ticktape run, pid 999999 on gone"
        _db(
            db_url,
            lambda c: store.create_run(c, run, "s", {}, {}, ["A"], None, None, owner=owner, lease_s=0.5),
        )
        deadline = time.monotonic() + 60
        while (
            row := _db(
                db_url,
                lambda c: c.fetchrow("SELECT status, error FROM runs WHERE run_id = $1", uuid.UUID(run)),
            )
        )["status"] != "failed":
            assert proc.poll() is None, (tmp_path / "dashboard.log").read_text()
            assert time.monotonic() < deadline, row
            time.sleep(0.2)
        assert owner in row["error"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    _nothing_left(tmp_path)
