"""Gap recovery: the batches of a stream that a group consumer never
delivered, read again straight from the broker.

Faust can skip messages around a rebalance, and a restarted worker may
resume past batches nobody applied (docs/architecture.md, "State and
delivery"). Both consumers of the pipeline's streams notice such a gap in a
stream's sequence numbers and read the stream's partition again outside the
consumer group (:func:`ticktape.pipeline.topicread.read_range`), with one
:class:`Gaps` each:

- the hot path (ticktape.agents.indicators) applies a stream's batches in
  order: :meth:`Gaps.in_order` holds a batch that arrives ahead of a missing
  one, reads the partition from after the last applied batch up to it, and
  releases, in order, what can be applied now; batches not in the partition
  yet stay held until they arrive, within :data:`MAX_HELD_BYTES` a stream;
- the sink (ticktape.agents.sink) writes result sets in any order and asks
  the store, at a stream's end, which are missing: :meth:`Gaps.at_end` reads
  those again.

Where a read starts: a stream's batches are sent in sequence order (a sender
that starts over sends the later ones again too), so each missing batch has
a copy after any copy of an earlier batch of its stream. The read starts
after the latest such copy known: the stream's last applied batch (the hot
path keeps its offset in the stream's state) or the first batch of the
stream the consumer saw (the sink notes them: :meth:`Gaps.seen`), else at
the partition's first kept offset; and while the gap stays the same, an
offset range already read is not read again. Messages in the range that do
not decode (another format) are passed over: they are none of the
stream's.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ticktape.errors import BatchDecodeError, GapNeverFilled
from ticktape.model.batch import Batch, decode
from ticktape.pipeline.topicread import read_range

log = logging.getLogger(__name__)

#: Bytes of batches one stream may hold while waiting for a missing one.
MAX_HELD_BYTES = 512 * 1024 * 1024


class Message(Protocol):
    """Where a message was read (a Faust message, an aiokafka record)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


class Record(Message, Protocol):
    value: bytes


#: ``read(topic, partition, start, stop)``: the partition's records from
#: ``start`` (None: its first kept) up to ``stop`` excluded, in offset order.
Reader = Callable[[str, int, int | None, int], AsyncIterator[Record]]


@dataclass
class _Stream:
    """What a consumer keeps of one stream while it has a use for it."""

    #: (seq, offset) of the first batch of the stream seen
    first: tuple[int, int] | None = None
    #: seq -> (offset, message) of the batches held ahead of a missing one
    held: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    #: (the batch before the gap, offset read up to) of the last read again
    read: tuple[int, int] | None = None


class Gaps:
    """One consumer's gap recovery over its streams (see the module).

    Parameters
    ----------
    read
        The partition reader (:func:`from_broker` reads the broker).
    max_held_bytes
        Bytes of batches one stream may hold while waiting for a missing one.
    """

    def __init__(self, read: Reader, max_held_bytes: int = MAX_HELD_BYTES) -> None:
        self.read = read
        self.max_held_bytes = max_held_bytes
        self.streams: dict[tuple[str, str], _Stream] = {}

    @classmethod
    def from_broker(cls, kafka_url: str, max_held_bytes: int = MAX_HELD_BYTES) -> Gaps:
        """Gap recovery reading the broker at ``kafka_url``."""
        return cls(functools.partial(read_range, kafka_url), max_held_bytes)

    def seen(self, msg: Message, batch: Batch[Any]) -> None:
        """Note ``batch``, read as ``msg`` (the first of its stream bounds later reads)."""
        s = self.streams.setdefault((batch.run_id, batch.symbol), _Stream())
        if s.first is None:
            s.first = (batch.seq, msg.offset)

    async def in_order(
        self, msg: Message, batch: Batch[Any], value: bytes, applied: tuple[int, int]
    ) -> list[tuple[int, Batch[Any]]]:
        """The batches of ``batch``'s stream to apply now, in order, as
        ``(offset, batch)``.

        ``batch`` arrived as ``msg`` (``value``: its bytes); ``applied``: the
        ``(seq, offset)`` of the stream's last applied batch (-1: none,
        unknown). Nothing when the stream applied ``batch`` already; ``batch``
        and the held batches that follow it when it is the next one; when it
        is ahead of a missing one, it is held, the partition is read again
        from after the last applied batch up to it, and the missing batches
        found there are released with the held ones that follow them.

        Raises
        ------
        GapNeverFilled
            Holding ``batch`` would take the stream's held batches past
            ``max_held_bytes`` (``batch`` is not held).
        """
        seq, offset = applied
        if batch.seq <= seq:
            return []  # delivered again: applied already
        k = (batch.run_id, batch.symbol)
        ready: list[tuple[int, Batch[Any]]] = []
        if batch.seq == seq + 1:
            ready.append((msg.offset, batch))
        else:
            s = self.streams.setdefault(k, _Stream())
            if sum(len(v) for _, v in s.held.values()) + len(value) > self.max_held_bytes:
                raise GapNeverFilled(f"batches {seq + 1}..{min(s.held, default=batch.seq) - 1} never arrived")
            s.held[batch.seq] = (msg.offset, bytes(value))
            log.warning(
                "run %s %s: batch %d (%s[%d] offset %d) is ahead of %d; held until the gap fills",
                batch.run_id,
                batch.symbol,
                batch.seq,
                msg.topic,
                msg.partition,
                msg.offset,
                seq,
            )
            wanted = set(range(seq + 1, batch.seq)) - s.held.keys()
            s.held.update(await self._read_again(msg, batch, wanted, offset + 1 if offset >= 0 else None))
        if (left := self.streams.get(k)) is not None:
            nxt = (ready[-1][1].seq if ready else seq) + 1
            while (held := left.held.pop(nxt, None)) is not None:
                ready.append((held[0], decode(held[1])))
                nxt += 1
            if not left.held:  # no gap left: nothing to keep
                del self.streams[k]
        return ready

    async def at_end(self, msg: Message, batch: Batch[Any], missing: Iterable[int]) -> list[Batch[Any]]:
        """The batches ``missing`` (sequence numbers) of the stream that
        ``batch``, its end of stream read as ``msg``, ends, read again from
        the partition up to ``msg``, in order (those found); the stream is
        forgotten after."""
        wanted = set(missing)
        self.seen(msg, batch)
        found = await self._read_again(msg, batch, wanted, None) if wanted else {}
        del self.streams[batch.run_id, batch.symbol]
        return [decode(found[seq][1]) for seq in sorted(found)]

    def forget(self, run_id: str) -> None:
        """Drop what is kept of run ``run_id``'s streams (a failed run's
        streams never reach their ends)."""
        for k in [k for k in self.streams if k[0] == run_id]:
            del self.streams[k]

    async def _read_again(
        self, msg: Message, batch: Batch[Any], wanted: set[int], after: int | None
    ) -> dict[int, tuple[int, bytes]]:
        """The first copy of each ``wanted`` batch of ``batch``'s stream in
        ``msg``'s partition before ``msg``, from ``after`` or a later offset
        known to precede them all (above): ``{seq: (offset, message)}``."""
        s = self.streams[batch.run_id, batch.symbol]
        before = min(wanted) - 1  # the latest batch every wanted one follows
        starts = [] if after is None else [after]
        if s.first is not None and s.first[0] <= before:
            starts.append(s.first[1])
        if s.read is not None and s.read[0] == before:
            starts.append(s.read[1])
        start = max(starts, default=None)
        if start is not None and start >= msg.offset:
            return {}
        s.read = (before, msg.offset)
        found: dict[int, tuple[int, bytes]] = {}
        async for rec in self.read(msg.topic, msg.partition, start, msg.offset):
            if rec.key != msg.key:
                continue
            try:
                b = decode(rec.value)
            except BatchDecodeError:
                continue  # not a batch of this version: not one of the stream's
            if b.run_id == batch.run_id and b.symbol == batch.symbol and b.seq in wanted:
                found.setdefault(b.seq, (rec.offset, bytes(rec.value)))
        log.warning(
            "run %s %s: read %s[%d] offsets %s..%d again from the broker for %d missing batches"
            " (first %d): %d found",
            batch.run_id,
            batch.symbol,
            msg.topic,
            msg.partition,
            "start" if start is None else start,
            msg.offset - 1,
            len(wanted),
            min(wanted),
            len(found),
        )
        return found
