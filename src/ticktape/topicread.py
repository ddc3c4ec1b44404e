"""Read offset ranges of topic partitions straight from the broker, outside
any consumer group: no offsets are committed and no other member notices.

Used by the topic source (replaying a recorded topic), and by the indicators
and sink agents to read again messages their group consumer never delivered."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

#: A range of offsets: ``start`` (None: the partition's first) up to ``stop`` excluded.
Range = tuple[int | None, int]


class TopicReader:
    """One group-less consumer, started at first use and assigned afresh for
    every :meth:`read`."""

    def __init__(self, kafka_url: str) -> None:
        self.kafka_url = kafka_url
        self._consumer: AIOKafkaConsumer | None = None

    async def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            from ticktape.app import MAX_MESSAGE_BYTES

            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.kafka_url,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # an offset no longer kept: from the first one kept
                max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
                fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    async def __aenter__(self) -> TopicReader:
        await self.consumer()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions (empty when the topic does not exist)."""
        consumer = await self.consumer()
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        return [TopicPartition(topic, p) for p in sorted(parts)]

    async def bounds(self, tps: list[TopicPartition]) -> tuple[dict, dict]:
        """Each partition's first kept offset and its end offset."""
        consumer = await self.consumer()
        return await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)

    async def read(self, ranges: Mapping[TopicPartition, Range]) -> AsyncIterator[ConsumerRecord]:
        """The records of every ``(start, stop)`` range, in offset order per partition."""
        consumer = await self.consumer()
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

    async def batches(
        self,
        tp: TopicPartition,
        span: Range,
        key: bytes,
        run_id: str,
        symbol: str,
        wanted: Callable[[int], bool],
    ) -> dict[int, tuple[int, bytes]]:
        """The batches of stream ``(run_id, symbol)``, sent with ``key``, in
        ``span`` of ``tp`` whose sequence number is ``wanted``:
        ``{seq: (offset, message)}``, the first copy of each (a batch sent
        twice is the same batch)."""
        from ticktape.batch import decode

        found: dict[int, tuple[int, bytes]] = {}
        async for rec in self.read({tp: span}):
            if rec.key != key:
                continue
            b = decode(rec.value)
            if b.run_id == run_id and b.symbol == symbol and b.seq not in found and wanted(b.seq):
                found[b.seq] = (rec.offset, bytes(rec.value))
        return found
