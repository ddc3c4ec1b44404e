"""Prometheus metrics of a worker (``TICKTAPE_METRICS_PORT``): consumer lag,
ticks taken in, time per batch.

A Faust sensor sees every message an agent takes (one message is one batch
of ticks or of results) when it is handed to the agent and when the agent
asks for the next one: per batch, two clock reads, a header peek of tick
batches (:func:`ticktape.model.batch.lengths`) and three counter updates,
so the hot path's cost stays per batch, not per tick. The lag is sampled
every :data:`LAG_EVERY_S` seconds from the consumer's own figures (no
request to the broker).

Names (docs/operations.md, "What to watch"):

``ticktape_ticks_total``
    Ticks the hot path took in; ``rate(ticktape_ticks_total[1m])`` is ticks/s.
``ticktape_batch_seconds`` (histogram, label ``topic``)
    Time from an agent getting a message until it asked for the next one.
``ticktape_batches_total`` (label ``topic``)
    Messages the agents took.
``ticktape_consumer_lag`` (gauge, labels ``topic``, ``partition``)
    Messages in the worker's partitions not yet processed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ticktape.errors import BatchDecodeError, ConfigError
from ticktape.model.batch import lengths
from ticktape.pipeline.topics import APP_ID

log = logging.getLogger(__name__)

#: Seconds between two samples of the consumer lag.
LAG_EVERY_S = 5.0
#: Bounds of the batch-time histogram, in seconds (a 100,000-tick batch takes
#: about 0.1 s on the hot path here).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_TICKS = f"{APP_ID}.ticks"


class WorkerMetrics(faust.Sensor):
    """The worker's metrics, in a registry of their own (``registry``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registry = CollectorRegistry()
        self.ticks = Counter(
            "ticktape_ticks", "Ticks the hot path took in (rate: ticks/s)", registry=self.registry
        )
        self.batches = Counter(
            "ticktape_batches", "Messages (batches) the agents took", ["topic"], registry=self.registry
        )
        self.seconds = Histogram(
            "ticktape_batch_seconds",
            "Time an agent spent on one message (a batch)",
            ["topic"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.lag = Gauge(
            "ticktape_consumer_lag",
            "Messages in this worker's partitions not yet processed",
            ["topic", "partition"],
            registry=self.registry,
        )
        #: partition -> the offset after the last message processed here
        self.processed: dict[Any, int] = {}

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> Any:
        if tp.topic == _TICKS:
            with contextlib.suppress(BatchDecodeError):  # (the agent logs and skips it)
                self.ticks.inc(lengths(event.message.value).get("ticks", 0))
        return time.perf_counter()

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        if state is not None:
            self.seconds.labels(tp.topic).observe(time.perf_counter() - state)
            self.batches.labels(tp.topic).inc()
        self.processed[tp] = offset + 1

    def sample_lag(self, consumer: Any) -> None:
        """Set the lag of every partition of the pipeline's topics assigned here."""
        self.lag.clear()
        committed = getattr(consumer, "_committed_offset", {})  # (Faust's own: next to read)
        for tp in consumer.assignment():
            if not tp.topic.startswith(f"{APP_ID}."):  # (changelogs are the tables' own)
                continue
            end = consumer.highwater(tp)
            done = self.processed.get(tp, committed.get(tp))
            if done is None and end == 0:  # (an empty partition: nothing to process, nothing committed)
                done = 0
            if end is not None and done is not None:
                self.lag.labels(tp.topic, str(tp.partition)).set(max(0, end - done))


def serve(app: faust.App, host: str, port: int) -> int:
    """Export the worker's metrics at ``http://host:port/metrics``; return the port.

    Registers the sensor and the lag sampler on ``app`` (before it starts).
    A port that cannot be bound is a :class:`~ticktape.errors.ConfigError`.
    """
    sensor = WorkerMetrics()
    app.sensors.add(sensor)

    @app.timer(LAG_EVERY_S)
    async def _sample_lag() -> None:
        sensor.sample_lag(app.consumer)

    try:
        server, _thread = start_http_server(port, addr=host, registry=sensor.registry)
    except OSError as exc:
        raise ConfigError(
            f"TICKTAPE_METRICS_PORT={port}: cannot serve metrics on {host}:{port} ({exc.strerror or exc})"
        ) from None
    bound = int(server.server_port)
    log.warning("metrics on http://%s:%d/metrics", host, bound)
    return bound
