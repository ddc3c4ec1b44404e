"""The pipeline's topics: names, partition counts and the largest message.

Create them explicitly, with their partition counts, before any client
touches them (the embedded broker would auto-create them with its own count).
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

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
