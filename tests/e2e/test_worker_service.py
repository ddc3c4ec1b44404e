"""``ticktape worker`` as a service (docker-compose.yml): it waits for a
broker or database that does not answer yet, stops cleanly on SIGTERM while
waiting, warns when its group has more workers than partitions, and serves
Prometheus metrics of what it processed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ticktape.config import Settings
from ticktape.model.spec import RunSpec
from ticktape.pipeline.worker import WorkerProcess
from ticktape.runtime.embedded import Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TICKTAPE = Path(sys.executable).with_name("ticktape")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, message
        time.sleep(0.1)
    return value


def test_a_worker_waits_for_a_broker_not_up_yet_then_joins_when_it_is(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    env = {"TICKTAPE_KAFKA_URL": f"127.0.0.1:{port}", "TICKTAPE_DATABASE_URL": db_url}
    env["TICKTAPE_HOME"] = str(tmp_path / "home")
    worker = WorkerProcess(env, log).start()
    try:
        refused = rf"cannot reach Kafka at 127\.0\.0\.1:{port}: connection refused; next try in (\d+) s"
        wait_for(
            lambda: len(re.findall(refused, log.read_text())) >= 2,
            60,
            f"no line about the broker:\n{worker.log_tail()}",
        )
        assert worker.alive()  # waiting, not crashed (and not restarted: one pid)
        with Runtime(Settings(home=tmp_path / "broker", kafka_port=port), database=False):
            worker.wait_ready(120)  # in its group, tables recovered
            text = log.read_text()
            waits = [int(s) for s in re.findall(refused, text)]
            assert waits[:3] == [1, 2, 4][: len(waits)]  # the wait doubles
            assert f"Kafka at 127.0.0.1:{port} answers" in text
            assert "created topics ticktape.run-requests" in text
        # (the broker is gone again: the worker is stopped below, whatever it does now)
    finally:
        worker.stop()


def test_a_worker_waiting_for_its_database_stops_on_sigterm(kafka_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TICKTAPE_KAFKA_URL": kafka_url,
        "TICKTAPE_DATABASE_URL": f"postgresql://ticktape:s3cret@127.0.0.1:{port}/ticktape",
        "TICKTAPE_HOME": str(tmp_path / "home"),
    }
    proc = subprocess.Popen(
        [str(TICKTAPE), "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = f"cannot reach PostgreSQL at postgresql://ticktape:***@127.0.0.1:{port}/ticktape: connection refused"
        seen = ""
        deadline = time.monotonic() + 60
        while line not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, seen
            seen += proc.stderr.readline()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130  # (the CLI's code for SIGTERM), no traceback
    assert "Traceback" not in seen + err and "s3cret" not in seen + err


def test_more_workers_than_partitions_is_a_warning_naming_the_topic(db_url: str, tmp_path: Path) -> None:
    with Runtime(Settings(home=tmp_path / "broker", database_url=db_url), database=False) as rt:
        env = {**rt.env(), "TICKTAPE_DATABASE_URL": db_url, "TICKTAPE_HOME": str(tmp_path / "home")}
        env["TICKTAPE_PARTITIONS"] = "1"  # the first worker creates the topics with one partition
        logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
        with WorkerProcess(env, logs[0]) as one:
            one.wait_ready(120)
            # the second is told 2: the topics exist, so it adopts their count (and says so)
            with WorkerProcess({**env, "TICKTAPE_PARTITIONS": "2"}, logs[1]) as two:
                two.wait_ready(120)
                assert (
                    f"the topics at {rt.kafka_url} have 1 partitions (TICKTAPE_PARTITIONS=2 is for new"
                    " topics): using 1"
                ) in logs[1].read_text()
                warning = (
                    "topic ticktape.ticks has 1 partitions for 2 workers (consumer group ticktape):"
                    " 1 of them get none of it"
                )
                wait_for(
                    lambda: any(warning in log.read_text() for log in logs),
                    60,
                    "no warning:\n" + one.log_tail() + two.log_tail(),
                )


def test_the_metrics_count_what_the_worker_processed(pipeline, tmp_path: Path) -> None:
    symbols = pipeline.symbols(2, 30_000)
    spec = RunSpec(
        strategy="sma_crossover", symbols=symbols, params={"fast": 20, "slow": 120}, batch_size=5000
    )
    port = free_port()
    env = {**pipeline.runtime.env(), "TICKTAPE_DATABASE_URL": pipeline.db_url, "TICKTAPE_HOME": str(tmp_path)}
    env["TICKTAPE_METRICS_PORT"] = str(port)
    with WorkerProcess(env, tmp_path / "worker.log") as w:
        w.wait_ready(120)
        pipeline.submit(spec)
        run = pipeline.wait_done(spec.run_id, [w])
        assert run["status"] == "complete", run["error"]

        def scrape() -> dict[str, float]:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            return {
                name: float(value)
                for name, value in re.findall(r"^(ticktape_[^ ]+) ([0-9.e+-]+)$", text, re.MULTILINE)
            }

        # the run's ticks went through this worker's hot path (the lag is sampled every 5 s)
        got = wait_for(
            lambda: (
                (m := scrape()).get("ticktape_ticks_total") == 60_000
                and any(k.startswith("ticktape_consumer_lag{") for k in m)
                and m
            ),
            30,
            "the metrics never showed the run",
        )
    assert got['ticktape_batch_seconds_count{topic="ticktape.ticks"}'] >= 12 + 2  # batches + ends of stream
    assert got['ticktape_batches_total{topic="ticktape.results"}'] >= 14
    assert all(v == 0 for k, v in got.items() if k.startswith("ticktape_consumer_lag{"))  # all processed
    assert "127.0.0.1" in (tmp_path / "worker.log").read_text().split("metrics on http://")[1][:9]
