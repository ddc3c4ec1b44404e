"""ticktape.app's adjustments to Faust's aiokafka consumer."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as driver

from ticktape.app import _number_every_rebalance


class _ConsumerThread:
    """What the rebalance listener touches of Faust's consumer thread: its
    app, the aiokafka consumer's coordinator generation, the assignment hook."""

    def __init__(self) -> None:
        self.app = SimpleNamespace(consumer_generation_id=0)
        self.broker_generation = 3
        self.assigned: list[tuple[set, int]] = []

    def _ensure_consumer(self) -> SimpleNamespace:
        return SimpleNamespace(_coordinator=SimpleNamespace(generation=self.broker_generation))

    async def on_partitions_assigned(self, assigned: set, generation: int) -> None:
        self.assigned.append((assigned, generation))


def test_every_assignment_gets_a_new_generation_when_the_broker_repeats_one() -> None:
    """Faust discards messages fetched before a rebalance by comparing
    generations; an assignment the broker answers with the generation it
    already gave must still start a new one (a larger broker one is kept)."""
    _number_every_rebalance()
    thread = _ConsumerThread()
    listener = driver.ConsumerRebalanceListener(thread)
    tp = TopicPartition("ticktape.ticks", 1)
    asyncio.run(listener.on_partitions_assigned([tp]))
    stamped = thread.app.consumer_generation_id  # a message fetched now carries this
    asyncio.run(listener.on_partitions_assigned([tp]))  # rejoined: the broker says 3 again
    assert stamped != thread.app.consumer_generation_id  # so Faust's streams skip that message
    thread.broker_generation = 9
    asyncio.run(listener.on_partitions_assigned([]))
    assert [g for _, g in thread.assigned] == [3, 4, 9]
    assert thread.app.consumer_generation_id == 9
    assert {(t.topic, t.partition) for t in thread.assigned[0][0]} == {("ticktape.ticks", 1)}
