"""Adjustments to Faust's aiokafka consumer, rebalance listener and flow control
(faust-streaming 0.15.3; docs/architecture.md, "State and delivery" says why
each is needed). :func:`apply` makes them, once per process.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.app.base import App
from faust.transport.consumer import Consumer
from faust.transport.drivers import aiokafka as driver
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from ticktape.pipeline.topics import APP_ID

log = logging.getLogger(__name__)

#: How long the broker may hold a fetch when no data is there. Faust hard-codes
#: 1500 ms; the embedded broker holds every empty fetch that long even when
#: data arrives meanwhile, which in live mode is pure tick-to-decision latency.
FETCH_MAX_WAIT_MS = 20


def _short_fetch_wait() -> None:
    """Make Faust's aiokafka consumers use :data:`FETCH_MAX_WAIT_MS` (once)."""
    cls = driver.AIOKafkaConsumerThread
    if getattr(cls, "_ticktape_fetch_wait", False):
        return
    create = cls._create_worker_consumer

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by AIOKafkaConsumer.start()
        return consumer

    cls._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
    cls._ticktape_fetch_wait = True  # type: ignore[attr-defined]


def _number_every_rebalance() -> None:
    """Give every partition assignment of Faust's aiokafka consumers a new
    generation (once).

    Faust drops what was fetched before a rebalance by its generation: its
    fetch loop stops when the app's generation changes and its streams skip
    messages stamped with an older one. It takes the generation from the
    broker, and the embedded broker (Tansu 0.6.0) answers a member that
    joins again with unchanged metadata with the generation it already had,
    after the client has revoked and re-assigned its partitions and sought
    them back to their committed offsets. Messages fetched before then were
    still delivered, set the partitions' read offsets past the committed
    ones, and Faust then dropped the same messages fetched again as already
    read (docs/architecture.md, "State and delivery"). Locally the
    generation now grows with every assignment (the broker's when it is
    larger); the group protocol and offset commits keep the broker's.
    """
    cls = driver.ConsumerRebalanceListener
    if getattr(cls, "_ticktape_generations", False):
        return

    async def on_partitions_assigned(self: Any, assigned: Any) -> None:
        thread = self._thread
        broker = thread._ensure_consumer()._coordinator.generation
        generation = max(broker, thread.app.consumer_generation_id + 1)
        if generation != broker and getattr(thread.app, "_ticktape_assigned", False):
            log.info(
                "the broker gave this assignment generation %d again; locally it is %d,"
                " so messages fetched before it are discarded",
                broker,
                generation,
            )
        thread.app.consumer_generation_id = generation
        thread.app._ticktape_assigned = True
        await thread.on_partitions_assigned(driver.ensure_TPset(assigned), generation)

    cls.on_partitions_assigned = on_partitions_assigned  # type: ignore[method-assign]
    cls._ticktape_generations = True


#: Topics whose messages every stage may receive twice without harm: the
#: indicators skip a batch their state already has, the sink keys its writes,
#: a replay re-sends batches with the same sequence numbers.
REDELIVERABLE = frozenset({f"{APP_ID}.run-requests", f"{APP_ID}.ticks", f"{APP_ID}.results"})


class _ReadOffsets(dict):
    """Faust's per-partition read offsets, never consulted for
    :data:`REDELIVERABLE` topics (read as None there)."""

    def __missing__(self, tp: Any) -> None:
        return None

    def __getitem__(self, tp: Any) -> Any:
        return None if tp.topic in REDELIVERABLE else super().__getitem__(tp)


def _deliver_what_was_read_before() -> None:
    """Make Faust's consumers deliver a fetched message of the pipeline's
    topics even when its offset is below the partition's read offset (once).

    Faust drops such a message as already read. After a rebalance its fetch
    loop can still set a read offset from a message fetched before the
    partitions were sought back to their committed offsets, so the messages
    fetched again after the seek were dropped and, being below an offset
    Faust then acknowledged, never came back: a CI run lost batches 49..87 of
    a stream this way, and a test saw a stream's last four batches vanish
    (docs/architecture.md, "State and delivery"). Every stage takes a message
    twice without harm, so the pipeline's topics get a duplicate instead.
    Changelog topics keep Faust's check.
    """
    if getattr(Consumer, "_ticktape_read_offsets", False):
        return
    init = Consumer.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._read_offset = _ReadOffsets()

    Consumer.__init__ = __init__  # type: ignore[method-assign]
    Consumer._ticktape_read_offsets = True  # type: ignore[attr-defined]


class _FlowControl(FlowControlEvent):
    """Faust's flow control, except that resuming a flow that is already
    active keeps what the streams' queues hold."""

    def resume(self) -> None:
        if not self.is_active():
            super().resume()


def _keep_what_flows_on_resume() -> None:
    """Give Faust apps a :class:`_FlowControl` (once).

    Resuming the flow clears every stream's queue, so that messages fetched
    before a rebalance are not processed after it. Faust's recovery resumes
    it twice: to read the changelogs, then once the stream partitions have
    been resumed and sought to their committed offsets. The fetch loop runs
    in between, so the second resume threw away messages fetched again after
    the seek, and nothing fetched them a third time: a worker started with a
    backlog applied a stream's batches 3 and 4 of 10 and then waited forever
    (docs/architecture.md, "State and delivery"). The first resume after a
    suspension still clears.
    """
    if getattr(App, "_ticktape_flow_control", False):
        return

    def flow_control(self: Any) -> FlowControlEvent:
        return _FlowControl(loop=self.loop)

    App.flow_control = cached_property(flow_control)  # type: ignore[method-assign]
    App._ticktape_flow_control = True  # type: ignore[attr-defined]


def apply() -> None:
    """Make every adjustment (each at most once per process)."""
    _short_fetch_wait()
    _number_every_rebalance()
    _deliver_what_was_read_before()
    _keep_what_flows_on_resume()
