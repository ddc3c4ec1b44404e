"""The Kafka side: checking a broker answers, creating topics with their partition counts, and what the embedded broker (Tansu) must not read from the environment."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ticktape.errors import TicktapeRuntimeError

log = logging.getLogger(__name__)


# Environment variables Tansu reads that could override our command line or
# make it reach out (OTLP exporter).
TANSU_ENV_DROP = (
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "CLUSTER_ID",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "KAFKA_LISTENER_URL",
    "KAFKA_ADVERTISED_LISTENER_URL",
    "KAFKA_CLUSTER_ID",
)


def tcp_check(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


async def kafka_metadata(bootstrap: str, timeout: float = 5.0) -> dict[str, int]:
    """Topic name -> partition count, from one metadata request.

    Asks for *all* topics: asking the embedded broker about a named topic
    creates it (with its default partition count).
    """
    timeout_ms = max(int(timeout * 1000), 1000)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await asyncio.wait_for(admin.start(), timeout)
        meta = await asyncio.wait_for(admin._get_cluster_metadata(topics=None), timeout)
        return {t["topic"]: len(t["partitions"]) for t in meta.to_object()["topics"]}
    finally:
        await admin.close()


async def ensure_topics_async(
    bootstrap: str,
    spec: Mapping[str, int],
    *,
    replication_factor: int = 1,
    timeout: float = 10.0,
) -> list[str]:
    """Create the topics of ``spec`` (name -> partitions) that do not exist.

    Existing topics are left alone; one whose partition count differs from
    the spec raises :class:`TicktapeRuntimeError`. Returns the topics created.
    """
    for name, partitions in spec.items():
        if not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"topic {name!r}: partition count must be a positive int, got {partitions!r}")
    existing = await kafka_metadata(bootstrap, timeout)
    missing = [name for name in spec if name not in existing]
    created: list[str] = []
    if missing:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(name, spec[name], replication_factor) for name in missing],
                timeout_ms=int(timeout * 1000),
            )
        finally:
            await admin.close()
        for topic, code, message in _topic_errors(response):
            if code == 0:
                created.append(topic)
            elif code != 36:  # 36 = TOPIC_ALREADY_EXISTS: someone else was faster
                raise TicktapeRuntimeError(
                    f"cannot create Kafka topic {topic!r} with {spec[topic]} partitions "
                    f"at {bootstrap}: error {code} {message or ''}".rstrip()
                )
        existing = await kafka_metadata(bootstrap, timeout)
    wrong = {
        name: existing.get(name) for name, partitions in spec.items() if existing.get(name) != partitions
    }
    if wrong:
        details = ", ".join(f"{name!r} has {wrong[name]} (wanted {spec[name]})" for name in sorted(wrong))
        raise TicktapeRuntimeError(
            f"Kafka topics at {bootstrap} exist with other partition counts: {details}; "
            "delete them (or restart the embedded broker) or use the existing counts"
        )
    return created


def _topic_errors(response: Any) -> Iterator[tuple[str, int, str | None]]:
    for item in response.topic_errors:
        if len(item) == 3:
            yield item[0], item[1], item[2]
        else:
            yield item[0], item[1], None
