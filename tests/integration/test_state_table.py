"""The stream-state table on the real broker: a state write that returned is
on the broker, so a worker killed right after it loses nothing.

Faust's own table writes only queue the changelog record; its pre-commit
flush gives up after 0.1 s without a send, so it can commit a batch's offset
before that batch's state left the process (seen: a restarted worker
recovered state 21 batches older than its committed offset).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ticktape.tables.state import StreamState, changelog_topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

WORKER = """
import os, signal, sys
import faust
from ticktape.config import faust_broker_url
from ticktape.tables import state

app_id, kafka_url, topic_name, datadir = sys.argv[1:5]
app = faust.App(
    app_id, broker=faust_broker_url(kafka_url), store="memory://", datadir=datadir,
    autodiscover=False, web_enabled=False, topic_partitions=1, topic_replication_factor=1,
    consumer_auto_offset_reset="earliest", key_serializer="raw", value_serializer="raw",
    broker_session_timeout=10.0, broker_heartbeat_interval=1.0,
)
topic = app.topic(topic_name, partitions=1, key_type=bytes, value_type=bytes)
table = state.define(app, 1)

@app.agent(topic)
async def apply(stream):
    async for value in stream:
        await state.save(table, "run|SYM", state.StreamState(seq=int(value)))
        os.kill(os.getpid(), signal.SIGKILL)  # no flush, no commit, no shutdown

sys.argv[1:] = ["worker", "--loglevel", "warn"]
app.main()
"""


async def _changelog(kafka_url: str, topic: str) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_url, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out = []
        while await consumer.position(tp) < end:
            for msgs in (await consumer.getmany(tp, timeout_ms=1000)).values():
                out += [(m.key, m.value) for m in msgs]
        return out
    finally:
        await consumer.stop()


async def _send(kafka_url: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_url)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


def test_a_saved_state_survives_kill_9_right_after_the_save(runtime, kafka_url, tmp_path: Path) -> None:
    app_id = f"tt-state-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-in"
    (changelog,) = changelog_topics(app_id)
    runtime.ensure_topics({topic: 1, changelog: 1})
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(script), app_id, kafka_url, topic, str(tmp_path / "faust")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            asyncio.run(_send(kafka_url, topic, b"7"))
            rc = proc.wait(120)
        finally:
            proc.kill()
    assert rc == -9, f"the worker did not kill itself after the save:\n{log.read_text()[-3000:]}"
    records = asyncio.run(_changelog(kafka_url, changelog))
    assert [(json.loads(k), StreamState.from_bytes(v).seq) for k, v in records] == [("run|SYM", 7)]
