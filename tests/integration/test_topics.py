"""``ticktape topics create|describe`` against a real (embedded) broker of
their own: the session's broker holds the pipeline's topics at 4 partitions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from ticktape.config import Settings
from ticktape.pipeline.topics import topic_partitions
from ticktape.runtime.embedded import Runtime
from ticktape.runtime.kafka import kafka_metadata
from ticktape.runtime.processes import run_coro


@pytest.fixture
def broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with Runtime(Settings(home=tmp_path / "home"), database=False) as rt:
        monkeypatch.setenv("TICKTAPE_KAFKA_URL", rt.kafka_url)
        yield rt.kafka_url


def test_create_derives_the_counts_then_describe_shows_them(
    broker: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = cli("topics", "create", "--symbols", 2, "--sweep", 8, "--workers", 2)
    assert res.exit_code == 0, res.output
    assert "ticktape.ticks: 16 partitions (created)" in res.stdout
    assert "ticktape.run-requests: 1 partitions (created)" in res.stdout
    assert run_coro(lambda: kafka_metadata(broker)) == topic_partitions(16)
    assert topic_partitions(16)["ticktape.results"] == 16
    monkeypatch.setenv("TICKTAPE_PARTITIONS", "4")  # (a default for new topics)
    again = cli("topics", "create")  # the existing count wins
    assert again.exit_code == 0 and "ticktape.ticks: 16 partitions (exists)" in again.stdout
    other = cli("topics", "create", "--partitions", 4)
    assert other.exit_code == 1
    assert other.stderr.strip() == (
        f"ticktape: error: topic ticktape.ticks at {broker} has 16 partitions, not 4; a key's partition"
        " would change, so delete the pipeline's topics first (while no run is going) or keep 16"
    )
    shown = cli("topics", "describe")
    assert shown.exit_code == 0, shown.output
    assert "ticktape.results" in shown.stdout and "16" in shown.stdout
    assert shown.stderr == ""


def test_describe_warns_when_a_group_has_more_workers_than_partitions(broker: str, cli) -> None:
    assert cli("topics", "create", "--partitions", 2).exit_code == 0
    settled, stop = threading.Event(), threading.Event()

    async def three_workers() -> None:  # polling (heartbeats) until the describe is done
        consumers = [
            AIOKafkaConsumer("ticktape.ticks", bootstrap_servers=broker, group_id="ticktape")
            for _ in range(3)
        ]
        for c in consumers:
            await c.start()
        try:
            while not stop.is_set():
                await asyncio.gather(*(c.getmany(timeout_ms=100) for c in consumers))
                if sum(len(c.assignment()) for c in consumers) == 2:
                    settled.set()
        finally:
            for c in consumers:
                await c.stop()

    group = threading.Thread(target=asyncio.run, args=(three_workers(),))
    group.start()
    try:
        assert settled.wait(60), "the group never settled"
        res = cli("topics", "describe")
    finally:
        stop.set()
        group.join(30)
    assert res.stderr.splitlines() == [  # (the group of every stage reads both keyed topics)
        f"ticktape: warning: topic ticktape.{topic} has 2 partitions for 3 workers (consumer group"
        " ticktape): 1 of them get none of it; recreate the topics with more"
        " (ticktape topics create --workers 3)"
        for topic in ("ticks", "results")
    ]


def test_without_an_external_broker_the_commands_say_so(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICKTAPE_KAFKA_URL", raising=False)
    res = cli("topics", "describe")
    assert res.exit_code == 1
    assert res.stderr.startswith("ticktape: error: TICKTAPE_KAFKA_URL is not set: the embedded broker")
