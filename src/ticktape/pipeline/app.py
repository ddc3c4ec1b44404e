"""The Faust application: topics, tables and agents wired together (the composition root).

Nothing here runs at import time; :func:`create_app` builds a fresh app for
the given broker, which keeps workers, tests and the CLI independent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from ticktape.agents import indicators, replay, sink, strategy
from ticktape.config import faust_broker_url
from ticktape.errors import SpecError
from ticktape.pipeline import patches
from ticktape.pipeline.topics import (
    APP_ID,
    DEFAULT_PARTITIONS,
    MAX_MESSAGE_BYTES,
    SWEEP_GROUPS,
    SWEEP_TICKS,
    Topics,
    topic_partitions,
)
from ticktape.tables import state

#: The pipeline's stages, in data-flow order.
STAGES = ("replay", "indicators", "strategy", "execution", "sink")
#: Stages that hand batches to each other in memory: they run in one worker.
HOT_PATH = ("indicators", "strategy", "execution")


def parse_stages(text: str) -> tuple[str, ...]:
    """``"all"`` or a comma-separated subset of :data:`STAGES`, validated."""
    if text.strip() == "all":
        return STAGES
    chosen = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in chosen if s not in STAGES]
    if unknown or not chosen:
        raise SpecError(
            f"stages: unknown stage {unknown or [text]!r}; choose 'all' or from {', '.join(STAGES)}"
        )
    hot = [s for s in HOT_PATH if s in chosen]
    if hot and len(hot) != len(HOT_PATH):
        raise SpecError(
            "stages: indicators, strategy and execution hand batches to each other in memory"
            f" and run in the same worker; got only {', '.join(hot)}"
        )
    return tuple(s for s in STAGES if s in chosen)


def create_app(
    kafka_url: str,
    database_url: str,
    datadir: Path,
    partitions: int = DEFAULT_PARTITIONS,
    stages: tuple[str, ...] = STAGES,
    ready_file: Path | None = None,
) -> faust.App:
    """Build the ticktape Faust app with the agents of ``stages`` registered.

    Workers with different stages may share one broker: each stage's topics
    are consumed by the workers that run it (``ticktape worker --stages``).
    ``ready_file`` is created once the worker has its partitions and has
    recovered its tables (and after every later rebalance).
    """
    patches.apply()
    # One consumer group per set of stages: a group's members must subscribe
    # to the same topics (the assignor may otherwise hand a topic's partitions
    # to a worker that does not consume it). Workers running the same stages
    # share a group and split its partitions.
    group = APP_ID if set(stages) == set(STAGES) else "-".join((APP_ID, *stages))
    app = faust.App(
        group,
        broker=faust_broker_url(kafka_url),
        store="memory://",
        autodiscover=False,
        datadir=str(datadir),
        web_enabled=False,
        web_host="127.0.0.1",
        topic_partitions=partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        stream_buffer_maxsize=64,
        producer_linger_ms=0,  # results are awaited per batch: never wait to fill a batch
        key_serializer="raw",
        value_serializer="raw",
    )

    def topic(name: str, n: int) -> faust.TopicT:
        return app.topic(name, partitions=n, key_type=bytes, value_type=bytes)

    names = topic_partitions(partitions)
    topics = Topics(
        run_requests=topic(f"{APP_ID}.run-requests", names[f"{APP_ID}.run-requests"]),
        ticks=topic(f"{APP_ID}.ticks", partitions),
        results=topic(f"{APP_ID}.results", partitions),
        sweep_ticks=topic(SWEEP_TICKS, partitions),
        sweep_groups=topic(SWEEP_GROUPS, partitions),
    )
    if ready_file is not None:

        @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # (mode awaits a coroutine handler)
        async def _ready(sender: Any, **kwargs: Any) -> None:
            ready_file.touch()

    if "replay" in stages:
        replay.register(app, topics, database_url, kafka_url)
    if "indicators" in stages:
        indicators.register(app, topics, state.define(app, partitions), kafka_url)
        strategy.register_sweep(app, topics, database_url, kafka_url)
    if "sink" in stages:
        sink.register(app, topics, database_url, kafka_url)
    return app
