"""The Faust application: topics, tables and agents wired together.

Nothing here runs at import time; :func:`create_app` builds a fresh app for
the given broker, which keeps workers, tests and the CLI independent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import faust

# mode-streaming: Faust's own service library, installed with faust-streaming
from mode.utils.queues import FlowControlEvent

from ticktape.config import faust_broker_url

log = logging.getLogger(__name__)

APP_ID = "ticktape"
#: Partitions of the keyed topics (ticks, results) and of the tables.
DEFAULT_PARTITIONS = 4
#: Largest message: a batch of 100,000 ticks (the default) is 4 MB of quotes, 5.6 MB
#: with trades; leave headroom.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Topics:
    run_requests: faust.TopicT
    ticks: faust.TopicT
    results: faust.TopicT


def topic_partitions(partitions: int = DEFAULT_PARTITIONS) -> dict[str, int]:
    """Every topic the app uses, with its partition count (create them first)."""
    from ticktape.tables.state import changelog_topics

    spec = {
        f"{APP_ID}.run-requests": 1,
        f"{APP_ID}.ticks": partitions,
        f"{APP_ID}.results": partitions,
        f"{APP_ID}-__assignor-__leader": 1,
    }
    spec.update({name: partitions for name in changelog_topics(APP_ID)})
    return spec


#: How long the broker may hold a fetch when no data is there. Faust hard-codes
#: 1500 ms; the embedded broker holds every empty fetch that long even when
#: data arrives meanwhile, which in live mode is pure tick-to-decision latency.
FETCH_MAX_WAIT_MS = 20


def _short_fetch_wait() -> None:
    """Make Faust's aiokafka consumers use :data:`FETCH_MAX_WAIT_MS` (once)."""
    from faust.transport.drivers import aiokafka as driver

    cls = driver.AIOKafkaConsumerThread
    if getattr(cls, "_ticktape_fetch_wait", False):
        return
    create = cls._create_worker_consumer

    def _create_worker_consumer(self, transport):
        consumer = create(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by AIOKafkaConsumer.start()
        return consumer

    cls._create_worker_consumer = _create_worker_consumer
    cls._ticktape_fetch_wait = True


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
    from faust.transport.drivers import aiokafka as driver

    cls = driver.ConsumerRebalanceListener
    if getattr(cls, "_ticktape_generations", False):
        return

    async def on_partitions_assigned(self, assigned) -> None:
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

    cls.on_partitions_assigned = on_partitions_assigned
    cls._ticktape_generations = True


#: Topics whose messages every stage may receive twice without harm: the
#: indicators skip a batch their state already has, the sink keys its writes,
#: a replay re-sends batches with the same sequence numbers.
REDELIVERABLE = frozenset({f"{APP_ID}.run-requests", f"{APP_ID}.ticks", f"{APP_ID}.results"})


class _ReadOffsets(dict):
    """Faust's per-partition read offsets, never consulted for
    :data:`REDELIVERABLE` topics (read as None there)."""

    def __missing__(self, tp):
        return None

    def __getitem__(self, tp):
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
    from faust.transport.consumer import Consumer

    if getattr(Consumer, "_ticktape_read_offsets", False):
        return
    init = Consumer.__init__

    def __init__(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        self._read_offset = _ReadOffsets()

    Consumer.__init__ = __init__
    Consumer._ticktape_read_offsets = True


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
    from faust.app.base import App
    from mode.utils.objects import cached_property

    if getattr(App, "_ticktape_flow_control", False):
        return

    def flow_control(self) -> FlowControlEvent:
        return _FlowControl(loop=self.loop)

    App.flow_control = cached_property(flow_control)
    App._ticktape_flow_control = True


#: The pipeline's stages, in data-flow order.
STAGES = ("replay", "indicators", "strategy", "execution", "sink")
#: Stages that hand batches to each other in memory: they run in one worker.
HOT_PATH = ("indicators", "strategy", "execution")


def parse_stages(text: str) -> tuple[str, ...]:
    """``"all"`` or a comma-separated subset of :data:`STAGES`, validated."""
    from ticktape.strategy import SpecError

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
    from ticktape.agents import indicators, replay, sink
    from ticktape.tables import state

    _short_fetch_wait()
    _number_every_rebalance()
    _deliver_what_was_read_before()
    _keep_what_flows_on_resume()
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
    )
    if ready_file is not None:

        @app.on_rebalance_complete.connect
        async def _ready(sender, **kwargs) -> None:
            ready_file.touch()

    if "replay" in stages:
        replay.register(app, topics, database_url, kafka_url)
    if "indicators" in stages:
        indicators.register(app, topics, state.define(app, partitions), kafka_url)
    if "sink" in stages:
        sink.register(app, topics, database_url, kafka_url)
    return app
