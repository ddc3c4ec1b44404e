"""The pipeline's topics: names, partition counts and the largest message.

Create them explicitly, with their partition counts, before any client
touches them (the embedded broker would auto-create them with its own count).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ticktape.config import MAX_PARTITIONS
from ticktape.errors import CommandError
from ticktape.runtime.embedded import Runtime
from ticktape.runtime.kafka import ensure_topics_async, kafka_metadata
from ticktape.runtime.processes import run_coro
from ticktape.tables.state import changelog_topics

APP_ID = "ticktape"
#: Partitions of the keyed topics (ticks, results) and of the tables.
DEFAULT_PARTITIONS = 4
#: Largest message: a batch of 100,000 ticks (the default) is 4 MB of quotes, 5.6 MB
#: with trades; leave headroom.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


#: A pipeline sweep's tick batches, each symbol's once (keyed sweep|symbol): read by
#: the sweep groups' hot paths straight from the broker, not by a consumer group.
SWEEP_TICKS = f"{APP_ID}.sweep-ticks"
#: A pipeline sweep's groups of parameter sets (partition = group number).
SWEEP_GROUPS = f"{APP_ID}.sweep-groups"


@dataclass(frozen=True)
class Topics:
    run_requests: faust.TopicT
    ticks: faust.TopicT
    results: faust.TopicT
    sweep_ticks: faust.TopicT
    sweep_groups: faust.TopicT


def topic_partitions(partitions: int = DEFAULT_PARTITIONS) -> dict[str, int]:
    """Every topic the app uses, with its partition count (create them first)."""
    spec = {
        f"{APP_ID}.run-requests": 1,
        f"{APP_ID}.ticks": partitions,
        f"{APP_ID}.results": partitions,
        SWEEP_TICKS: partitions,
        SWEEP_GROUPS: partitions,
        f"{APP_ID}-__assignor-__leader": 1,
    }
    spec.update({name: partitions for name in changelog_topics(APP_ID)})
    return spec


# --------------------------------------------------------------------------
# creating and describing the topics (``ticktape topics create|describe``)

#: The keyed topics, by the stage that consumes them: a partition is the unit
#: of parallelism there (run-requests has one partition: a run is replayed by
#: one worker).
KEYED = {"indicators": f"{APP_ID}.ticks", "sink": f"{APP_ID}.results"}


def partitions_for(symbols: int, sweep: int = 1, workers: int = 1) -> int:
    """Partitions of the keyed topics for ``symbols`` symbols run with ``sweep``
    parameter sets by ``workers`` workers.

    A key's messages stay in one partition, in order, so one stream is never
    split: the keyed streams (``symbols * sweep``: the results are keyed by
    run and symbol) bound the parallelism. The count is that, at least
    ``workers`` (fewer partitions leave workers idle), rounded up to a
    multiple of ``workers`` so each gets the same number of partitions, and
    at most :data:`~ticktape.config.MAX_PARTITIONS`.

    >>> partitions_for(2, sweep=8, workers=2)
    16
    >>> partitions_for(1, workers=3)
    3
    >>> partitions_for(5, workers=2)
    6
    """
    for name, value in (("symbols", symbols), ("sweep", sweep), ("workers", workers)):
        if value < 1:
            raise CommandError(f"--{name}: must be >= 1, got {value}")
    if workers > MAX_PARTITIONS:
        raise CommandError(f"--workers: at most {MAX_PARTITIONS} (one partition each), got {workers}")
    wanted = max(workers, symbols * sweep)
    return min(-(-wanted // workers) * workers, MAX_PARTITIONS // workers * workers)


@dataclass(frozen=True)
class TopicsState:
    """What the broker holds of the pipeline's topics and consumer groups."""

    #: topic -> partition count, for the pipeline's topics that exist
    partitions: dict[str, int]
    #: topic -> messages in it (sum over partitions of end - start offsets)
    messages: dict[str, int]
    #: consumer group -> members, for the pipeline's groups
    groups: dict[str, int]

    def warnings(self) -> list[str]:
        """One line per keyed topic with fewer partitions than the workers of a group consuming it."""
        out = []
        for group, members in sorted(self.groups.items()):
            for topic in group_topics(group):
                n = self.partitions.get(topic)
                if n is not None and n < members:
                    out.append(partitions_warning(topic, n, group, members))
        return out


def partitions_warning(topic: str, partitions: int, group: str, workers: int) -> str:
    """The line saying that ``workers - partitions`` workers of ``group`` get none of ``topic``.

    >>> partitions_warning("ticktape.ticks", 4, "ticktape", 6)
    'topic ticktape.ticks has 4 partitions for 6 workers (consumer group ticktape): 2 of them get none of it; recreate the topics with more (ticktape topics create --workers 6)'
    """
    return (
        f"topic {topic} has {partitions} partitions for {workers} workers (consumer group {group}):"
        f" {workers - partitions} of them get none of it; recreate the topics with more"
        f" (ticktape topics create --workers {workers})"
    )


def group_topics(group: str) -> list[str]:
    """The keyed topics the consumer group ``group`` reads (the group is named
    after its stages: ``ticktape`` for all, else ``ticktape-<stage>-<stage>...``).

    >>> group_topics("ticktape")
    ['ticktape.ticks', 'ticktape.results']
    >>> group_topics("ticktape-replay-sink")
    ['ticktape.results']
    """
    if group == APP_ID:
        return list(KEYED.values())
    stages = group.removeprefix(f"{APP_ID}-").split("-")
    return [topic for stage, topic in KEYED.items() if stage in stages]


def is_pipeline_group(group: str) -> bool:
    """Whether ``group`` is one of the pipeline's consumer groups."""
    return group == APP_ID or group.startswith(f"{APP_ID}-")


async def describe(bootstrap: str, timeout: float = 10.0) -> TopicsState:
    """The pipeline's topics (partitions, messages) and consumer groups (members) at ``bootstrap``."""
    existing = await kafka_metadata(bootstrap, timeout)
    ours = {name: existing[name] for name in topic_partitions() if name in existing}
    messages: dict[str, int] = {}
    groups: dict[str, int] = {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        await asyncio.wait_for(admin.start(), timeout)
        for name, n in ours.items():
            tps = [TopicPartition(name, p) for p in range(n)]
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            messages[name] = sum(ends[tp] - starts[tp] for tp in tps)
        names = [g for g, _ in await admin.list_consumer_groups() if is_pipeline_group(g)]
        if names:
            for response in await admin.describe_consumer_groups(sorted(names)):
                for item in response.groups:
                    error, group, _state, _ptype, _protocol, members = item[:6]
                    if error == 0:
                        groups[group] = len(members)
    finally:
        await admin.close()
        await consumer.stop()
    return TopicsState(partitions=ours, messages=messages, groups=groups)


async def create(
    bootstrap: str,
    partitions: int | None = None,
    replication: int = 1,
    timeout: float = 10.0,
    adopt: bool = False,
) -> tuple[int, list[str]]:
    """Create the pipeline's missing topics; return (their partition count, the topics created).

    The keyed topics' count is that of ``ticktape.ticks`` when it exists
    (workers and tables must agree with it; changing it means deleting the
    topics: a key would move to another partition), else ``partitions``
    (default :data:`DEFAULT_PARTITIONS`). A ``partitions`` other than the
    existing count is a :class:`~ticktape.errors.CommandError` naming both,
    unless ``adopt`` (a default from the settings, not a request).
    """
    have = (await kafka_metadata(bootstrap, timeout)).get(f"{APP_ID}.ticks")
    if have is not None and partitions is not None and have != partitions and not adopt:
        raise CommandError(
            f"topic {APP_ID}.ticks at {bootstrap} has {have} partitions, not {partitions}; a key's"
            " partition would change, so delete the pipeline's topics first (while no run is going)"
            f" or keep {have}"
        )
    count = have or partitions or DEFAULT_PARTITIONS
    created = await ensure_topics_async(
        bootstrap, topic_partitions(count), replication_factor=replication, timeout=timeout
    )
    return count, created


def ensure(rt: Runtime) -> int:
    """Create the pipeline's missing topics on ``rt``'s broker (partitions and
    replication of new ones from its settings); return their partition count."""
    settings = rt.settings
    return run_coro(lambda: create(rt.kafka_url, settings.partitions, settings.replication, adopt=True))[0]
