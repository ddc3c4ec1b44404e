"""Runs whose command died end as failed, with the reason, within the lease
(issue 22, item 4): ``ticktape run``, ``demo`` and a pipeline ``sweep`` are
killed with SIGKILL; the next command that looks at the runs, or a worker,
ends them. And a malformed run request does not stop the replay agent."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
from aiokafka import AIOKafkaProducer

from ticktape import store
from ticktape.model.spec import RunSpec
from ticktape.pipeline.topics import APP_ID

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TICKTAPE = Path(sys.executable).with_name("ticktape")


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    return {**env, "TICKTAPE_HOME": str(home), "COLUMNS": "200", **extra}


def _start(args, home: Path, **extra: str) -> subprocess.Popen:
    with open(home / "command.log", "wb") as log:  # (the child keeps its own copy)
        return subprocess.Popen(
            [str(TICKTAPE), *map(str, args)], env=_env(home, **extra), stdout=log, stderr=log
        )


def _db(dsn: str, fn):
    async def go():
        conn = await store.connect(dsn, retry_until=5)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def _owned_by(dsn: str, pid: int) -> list:
    return _db(
        dsn,
        lambda c: c.fetch("SELECT run_id::text, status FROM runs WHERE owner LIKE $1", f"%, pid {pid} on %"),
    )


def _wait_for_runs(dsn: str, proc: subprocess.Popen, home: Path, n: int, statuses, timeout: float = 150.0):
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, (home / "command.log").read_text(errors="replace")[-3000:]
        try:
            rows = _owned_by(dsn, proc.pid)
        except Exception:  # (the command's embedded database is not up yet)
            rows = []
        if len(rows) == n and all(r["status"] in statuses for r in rows):
            return [r["run_id"] for r in rows]
        assert time.monotonic() < deadline, f"runs of pid {proc.pid}: {rows}"
        time.sleep(0.2)


def _kill_and_look(proc: subprocess.Popen, home: Path, ids: list[str], **env: str) -> None:
    """SIGKILL the command, then look with ``ticktape runs show`` every second
    until every run failed, naming the command. A look that starts once the
    lease has run out (``store.LEASE_S`` after the kill) must find the run
    failed, however long the command itself takes to start."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = time.monotonic()
    for run_id in ids:
        while True:
            looked = time.monotonic() - killed
            shown = subprocess.run(
                [str(TICKTAPE), "runs", "show", run_id],
                env=_env(home, **env),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert shown.returncode == 0, shown.stderr
            if "status failed" in shown.stdout:
                break
            assert "status running" in shown.stdout or "status pending" in shown.stdout, shown.stdout
            assert looked < store.LEASE_S + 0.5, f"not failed by a look {looked:.1f} s after the kill"
            time.sleep(1.0)
        text = " ".join(shown.stdout.split())
        assert f"the command that started it stopped (ticktape {proc.args[1]}, pid {proc.pid} on" in text, (
            text
        )


def _nothing_left(home: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for p in psutil.process_iter(["cmdline", "environ"]):
            try:
                if (p.info["environ"] or {}).get("TICKTAPE_HOME") == str(home):
                    left.append(" ".join(p.info["cmdline"] or []))
            except psutil.Error:
                continue
        if not left:
            return
        assert time.monotonic() < deadline, f"left running: {left}"
        time.sleep(0.2)


def test_kill_9_of_ticktape_run_fails_its_run_within_the_lease(db_url, kafka_url, tmp_path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"strategy": "sma_crossover", "symbols": ["KILLRUN"], "params": {"fast": 5, "slow": 20}})
    )
    services = {"TICKTAPE_DATABASE_URL": db_url, "TICKTAPE_KAFKA_URL": kafka_url}
    proc = _start(["run", spec, "--speed", "1", "--source", "generator:100000"], tmp_path, **services)
    try:
        (run_id,) = _wait_for_runs(db_url, proc, tmp_path, 1, ("running",))
        # while the command lives it renews the lease: the run outlives it
        age = "SELECT extract(epoch FROM now() - created_at)::float8 FROM runs WHERE run_id = $1"
        time.sleep(max(0.0, store.LEASE_S + 2 - _db(db_url, lambda c: c.fetchval(age, uuid.UUID(run_id)))))
        assert _owned_by(db_url, proc.pid)[0]["status"] == "running"
        _kill_and_look(proc, tmp_path, [run_id], **services)
    finally:
        proc.kill()
    _nothing_left(tmp_path)  # its worker died with it


def test_kill_9_of_a_pipeline_sweep_fails_every_run(db_url, kafka_url, tmp_path) -> None:
    services = {"TICKTAPE_DATABASE_URL": db_url, "TICKTAPE_KAFKA_URL": kafka_url}
    args = ["sweep", "--strategy", "sma_crossover", "--grid", "fast=5,10", "--param", "slow=100"]
    proc = _start([*args, "--symbols", "KILLSWEEP", "--source", "generator:100000"], tmp_path, **services)
    try:
        ids = _wait_for_runs(db_url, proc, tmp_path, 2, store.UNFINISHED)
        _kill_and_look(proc, tmp_path, ids, **services)
    finally:
        proc.kill()
    _nothing_left(tmp_path)


def test_kill_9_of_ticktape_demo_on_the_embedded_services(tmp_path) -> None:
    # everything embedded: the kill takes the broker and PostgreSQL down with the
    # command; the next command (runs show) starts PostgreSQL again and ends the run
    dsn = f"postgresql://postgres@/ticktape?host={tmp_path / 'pg'}"
    proc = _start(["demo", "--ticks", "200000", "--symbols", "1"], tmp_path)
    try:
        (run_id,) = _wait_for_runs(dsn, proc, tmp_path, 1, store.UNFINISHED, timeout=240)
        _kill_and_look(proc, tmp_path, [run_id])
    finally:
        proc.kill()
    _nothing_left(tmp_path, timeout=30)


def test_a_worker_ends_a_run_whose_lease_ran_out(pipeline, db_url) -> None:
    # nobody looks at the runs: a worker with the replay stage expires the lease
    worker = pipeline.worker()
    try:
        run_id = str(uuid.uuid4())
        owner = "ticktape run (pid 999999 on gone)"
        _db(
            db_url,
            lambda c: store.create_run(c, run_id, "s", {}, {}, ["A"], None, None, owner=owner, lease_s=1.0),
        )
        deadline = time.monotonic() + 1.0 + store.LEASE_CHECK_S + 10
        while (row := pipeline.run_row(run_id))["status"] != "failed":
            assert time.monotonic() < deadline, f"still {row['status']}; log:\n{worker.log_tail()}"
            time.sleep(0.2)
        assert owner in row["error"]
    finally:
        worker.stop()


def test_a_malformed_run_request_is_logged_and_fails_its_run(pipeline, db_url, kafka_url) -> None:
    worker = pipeline.worker()
    try:
        bad = RunSpec(strategy="sma_crossover", symbols=("A",))
        pipeline.create_run(bad)
        good = RunSpec(
            strategy="sma_crossover",
            symbols=pipeline.symbols(1, 2_000),
            params={"fast": 5, "slow": 20},
        )
        pipeline.create_run(good)
        requests = [
            b"not json at all",
            b'["a list"]',
            json.dumps({**json.loads(bad.to_json()), "params": {"fast": "x"}}).encode(),
            good.to_json().encode(),
        ]

        async def send():
            producer = AIOKafkaProducer(bootstrap_servers=kafka_url)
            await producer.start()
            try:
                for value in requests:
                    await producer.send_and_wait(f"{APP_ID}.run-requests", value)
            finally:
                await producer.stop()

        asyncio.run(send())
        row = pipeline.wait_done(good.run_id, [worker])  # the agent went on after the bad ones
        assert row["status"] == "complete", row["error"]
        row = pipeline.run_row(bad.run_id)
        assert (
            row["status"] == "failed"
            and "malformed run request" in row["error"]
            and "params.fast" in row["error"]
        )
        log = worker.log_path.read_text(errors="replace")
        assert log.count("malformed run request") >= 3, log[-3000:]
        assert "Crashed" not in log, log[-3000:]
    finally:
        worker.stop()
