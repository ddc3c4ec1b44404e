"""Read offset ranges of topic partitions straight from the broker, outside
any consumer group: no offsets are committed and no other member notices.

Used by the topic source (replaying a recorded topic), and by gap recovery
(ticktape.pipeline.gaps) to read again messages a group consumer never
delivered."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from ticktape.pipeline.topics import MAX_MESSAGE_BYTES

#: A range of offsets: ``start`` (None: the partition's first) up to ``stop`` excluded.
Range = tuple[int | None, int]


class TopicReader:
    """One group-less consumer (``async with``), assigned afresh for every
    :meth:`read`."""

    def __init__(self, kafka_url: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_url,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # an offset no longer kept: from the first one kept
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
            fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
        )

    async def __aenter__(self) -> TopicReader:
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions (empty when the topic does not exist)."""
        consumer = self.consumer
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        return [TopicPartition(topic, p) for p in sorted(parts)]

    async def bounds(self, tps: list[TopicPartition]) -> tuple[dict, dict]:
        """Each partition's first kept offset and its end offset."""
        return await self.consumer.beginning_offsets(tps), await self.consumer.end_offsets(tps)

    async def read(self, ranges: Mapping[TopicPartition, Range]) -> AsyncGenerator[ConsumerRecord, None]:
        """The records of every ``(start, stop)`` range, in offset order per partition."""
        consumer = self.consumer
        consumer.assign(list(ranges))
        for tp, (start, _) in ranges.items():
            if start is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
        active = {tp for tp, (start, stop) in ranges.items() if start is None or start < stop}
        while active:
            got = await consumer.getmany(*active, timeout_ms=500)
            for tp, records in got.items():
                stop = ranges[tp][1]
                for rec in records:
                    if rec.offset >= stop:
                        active.discard(tp)
                        break
                    yield rec
            for tp in list(active):
                if await consumer.position(tp) >= ranges[tp][1]:
                    active.discard(tp)


async def read_range(
    kafka_url: str, topic: str, partition: int, start: int | None, stop: int
) -> AsyncGenerator[ConsumerRecord, None]:
    """The records of one partition from ``start`` (None: the first kept) up
    to ``stop`` excluded, in offset order: a consumer of its own, closed
    after (gap recovery reads rarely: ticktape.pipeline.gaps)."""
    async with TopicReader(kafka_url) as reader:
        async for rec in reader.read({TopicPartition(topic, partition): (start, stop)}):
            yield rec
