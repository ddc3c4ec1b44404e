"""ticktape.pipeline.app's adjustments to Faust's aiokafka consumer."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from ticktape.pipeline.app import create_app
from ticktape.pipeline.patches import _number_every_rebalance
from ticktape.pipeline.topics import APP_ID


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


def test_a_pipeline_message_below_the_read_offset_is_delivered_not_dropped(tmp_path) -> None:
    """After a rebalance Faust's fetch loop can move a partition's read offset
    past messages it then fetches again; for the pipeline's topics they must
    still reach the streams (a duplicate is harmless, a drop loses a batch).
    Changelog topics keep Faust's check."""

    ticks = TP(f"{APP_ID}.ticks", 0)
    changelog = TP(f"{APP_ID}-stream-state-changelog", 0)
    # offset 10 fetched before the seek back to the committed 6, then 6..10 again
    fetched = [(tp, off) for tp in (ticks, changelog) for off in (10, 6, 7, 8, 9, 10)]
    delivered: list[tuple[str, int]] = []
    fetcher = SimpleNamespace()

    async def getmany(timeout):
        for tp, offset in fetched:
            yield tp, SimpleNamespace(topic=tp.topic, tp=tp, offset=offset, key=b"", value=b"")
        fetcher._stopped.set()

    async def callback(message) -> None:
        delivered.append((message.topic, message.offset))

    async def drain() -> None:  # Faust's own fetch loop, fed by the stub above
        app = create_app("127.0.0.1:9", "postgresql://unused", tmp_path, stages=("indicators",))
        consumer = app.consumer
        consumer.getmany = getmany
        consumer.callback = callback
        fetcher._stopped = asyncio.Event()
        try:
            await asyncio.wait_for(consumer._drain_messages(fetcher), 10)
        finally:
            consumer._thread.thread_loop.close()  # made by Faust's consumer thread, never started

    asyncio.run(drain())
    assert [o for t, o in delivered if t == ticks.topic] == [10, 6, 7, 8, 9, 10]
    assert [o for t, o in delivered if t == changelog.topic] == [10, 10]


def test_resuming_a_flow_already_active_keeps_what_the_streams_have_queued(tmp_path) -> None:
    """Faust's recovery resumes the flow again after seeking the stream
    partitions; messages fetched after the seek must stay queued for the
    agents (clearing them lost a stream's batches 5..10 for good). The first
    resume after a rebalance's suspension still drops what was queued."""

    async def run() -> tuple[list[str], list[str]]:
        app = create_app("127.0.0.1:9", "postgresql://unused", tmp_path, stages=("indicators",))
        flow = app.flow_control
        queue = app.FlowControlQueue(maxsize=8, clear_on_resume=True)  # a stream's queue
        flow.resume()  # recovery reads the changelogs
        queue.put_nowait("batch fetched after the seek")
        flow.resume()  # recovery is complete
        kept = [queue.get_nowait() for _ in range(queue.qsize())]
        queue.put_nowait("batch fetched before a rebalance")
        flow.suspend()  # the rebalance starts
        flow.resume()
        return kept, [queue.get_nowait() for _ in range(queue.qsize())]

    kept, dropped = asyncio.run(run())
    assert kept == ["batch fetched after the seek"]
    assert dropped == []
