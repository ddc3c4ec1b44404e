"""Gap recovery (ticktape.pipeline.gaps) over a partition log kept in memory:
whatever a consumer is delivered, a stream's batches are applied in order,
each once, and a gap is read again from the partition."""

from __future__ import annotations

import asyncio
import json
import struct

import numpy as np
import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.errors import GapNeverFilled
from ticktape.model.batch import TICK_DTYPE, Batch, ResultsHeader, TickHeader, decode, encode
from ticktape.pipeline.gaps import Gaps

TOPIC = "ticktape.ticks"


class Partition:
    """One partition's log, read as the broker reads it (hand-written: the
    real reader is ticktape.pipeline.topicread.read_range)."""

    def __init__(self) -> None:
        self.records: list[ConsumerRecord] = []
        self.reads: list[tuple[int | None, int]] = []

    def append(self, key: bytes, value: bytes) -> ConsumerRecord:
        rec = ConsumerRecord(TOPIC, 0, len(self.records), 0, 0, key, value, None, len(key), len(value), [])
        self.records.append(rec)
        return rec

    def send(self, b: Batch) -> ConsumerRecord:
        return self.append(b.symbol.encode(), encode(b))

    async def read(self, topic: str, partition: int, start: int | None, stop: int):
        assert (topic, partition) == (TOPIC, 0)
        self.reads.append((start, stop))
        for rec in self.records[start or 0 : stop]:
            yield rec


def _tick(seq: int, n: int, run_id: str = "r", symbol: str = "A") -> Batch[TickHeader]:
    """Batch ``seq`` of a stream of ``n`` batches (the last its end of stream)."""
    eos = seq == n - 1
    ticks = np.zeros(seq + 1, TICK_DTYPE)
    ticks["ts"] = seq if (run_id, symbol) == ("r", "A") else -1  # another stream's tells
    header = TickHeader(spec="{}", ticks_in=n if eos else None)
    return Batch(run_id=run_id, symbol=symbol, seq=seq, arrays={"ticks": ticks}, header=header, eos=eos)


class Consumer:
    """The hot path's use of Gaps: apply what in_order releases."""

    def __init__(self, part: Partition, max_held_bytes: int = 2**30) -> None:
        self.gaps = Gaps(part.read, max_held_bytes)
        self.applied: list[int] = []
        self.state = (-1, -1)

    def deliver(self, rec: ConsumerRecord) -> None:
        b = decode(rec.value)
        if b.symbol != "A" or b.run_id != "r":
            return
        for offset, ready in asyncio.run(self.gaps.in_order(rec, b, rec.value, self.state)):
            assert ready.seq == self.state[0] + 1  # in order
            assert len(ready.ticks) == ready.seq + 1 and (ready.ticks["ts"] == ready.seq).all()
            self.applied.append(ready.seq)
            self.state = (ready.seq, offset)


def _log(n: int, restarts: list[tuple[int, int]], noise: bool) -> Partition:
    """The partition as a sender leaves it: batches 0..n-1 in order, cut
    short and sent again from an earlier batch at each restart ``(cut, from)``;
    other streams' messages (same key, other run; other key) before each."""
    part = Partition()
    seq = 0
    for cut, again in [*restarts, (n, 0)]:
        while seq < min(cut, n):
            if noise:
                part.send(_tick(seq % 2, 2, run_id="other"))
                part.send(_tick(0, 1, symbol="B"))
            part.send(_tick(seq, n))
            seq += 1
        seq = min(again, seq)
    return part


@st.composite
def _scenario(draw):
    n = draw(st.integers(1, 12))
    restarts = draw(st.lists(st.tuples(st.integers(0, n), st.integers(0, n)), max_size=2))
    part = _log(n, restarts, draw(st.booleans()))
    offsets = st.integers(0, len(part.records) - 1)
    delivered = draw(st.lists(offsets, max_size=3 * len(part.records)))
    return n, part, delivered


@settings(max_examples=300, deadline=None)
@given(_scenario())
def test_whatever_is_delivered_a_stream_is_applied_in_order_each_batch_once(scenario) -> None:
    """Deliveries in any order, skipped or repeated (a consumer around a
    rebalance, a restarted worker); once the partition's last message
    arrives, every batch has been applied, in order, each once."""
    n, part, delivered = scenario
    consumer = Consumer(part)
    for i in delivered:
        consumer.deliver(part.records[i])
    assert consumer.applied == list(range(len(consumer.applied)))
    consumer.deliver(part.records[-1])
    assert consumer.applied == list(range(n))
    assert not consumer.gaps.streams  # nothing kept once the stream has no gap


def _sent(order: list[int], n: int) -> tuple[Partition, dict[int, ConsumerRecord]]:
    """A partition holding a stream's batches in the ``order`` they were sent."""
    part = Partition()
    return part, {seq: part.send(_tick(seq, n)) for seq in order}


def test_a_gap_is_read_from_after_the_last_applied_batch() -> None:
    part, recs = _sent(list(range(6)), 6)
    consumer = Consumer(part)
    for seq in (0, 1, 5):
        consumer.deliver(recs[seq])
    assert part.reads == [(2, 5)]
    assert consumer.applied == [0, 1, 2, 3, 4, 5]


def test_while_a_gap_stays_the_same_an_offset_range_is_read_once() -> None:
    part, recs = _sent([0, 3, 4, 1, 2, 5], 6)  # 1 and 2 sent late
    consumer = Consumer(part)
    for seq in (0, 3, 4):
        consumer.deliver(recs[seq])
    assert consumer.applied == [0]
    assert part.reads == [(1, 2)]  # 3, at offset 1, had nothing before it to read
    consumer.deliver(recs[5])
    assert part.reads == [(1, 2), (2, 5)]
    assert consumer.applied == list(range(6))


def test_a_message_of_another_format_in_the_range_is_passed_over() -> None:
    part = Partition()
    recs = [part.send(_tick(0, 3))]
    head = json.dumps({"run_id": "r", "symbol": "A", "seq": 1, "eos": False, "arrays": [], "meta": {}})
    part.append(b"A", b"TTB2" + struct.pack("<I", len(head)) + head.encode())
    recs += [part.send(_tick(1, 3)), part.send(_tick(2, 3))]
    consumer = Consumer(part)
    consumer.deliver(recs[0])
    consumer.deliver(recs[2])
    assert consumer.applied == [0, 1, 2]


def test_held_batches_past_the_bound_fail_the_stream_naming_the_gap() -> None:
    part, recs = _sent([0, 3, 4, 5], 6)  # 1 and 2 never sent
    consumer = Consumer(part, max_held_bytes=len(recs[3].value) + len(recs[4].value))
    for seq in (0, 3, 4):
        consumer.deliver(recs[seq])
    with pytest.raises(GapNeverFilled, match=r"batches 1\.\.2 never arrived"):
        consumer.deliver(recs[5])
    assert consumer.applied == [0]


def _result(seq: int, n: int) -> Batch[ResultsHeader]:
    eos = seq == n - 1
    header = ResultsHeader(decided_ns=1, accepted=seq, rejects={}, ticks_in=n if eos else None)
    return Batch(run_id="r", symbol="A", seq=seq, arrays={}, header=header, eos=eos)


def test_at_its_end_a_stream_reads_what_is_missing_from_the_first_batch_it_saw() -> None:
    """The sink's use: it notes every message, and at the end of a stream
    reads again the sequence numbers the store lacks."""
    part = Partition()
    recs = [part.send(_result(seq, 8)) for seq in range(8)]
    gaps = Gaps(part.read)
    for seq in (2, 3, 6):
        gaps.seen(recs[seq], decode(recs[seq].value))
    end = decode(recs[7].value)
    found = asyncio.run(gaps.at_end(recs[7], end, [4, 5]))
    assert [b.seq for b in found] == [4, 5]
    assert part.reads == [(2, 7)]  # from the first seen, before every missing one
    again = asyncio.run(gaps.at_end(recs[7], end, [0, 1]))
    assert [b.seq for b in again] == [0, 1]
    assert part.reads[-1] == (None, 7)  # none seen before these: from the partition's start
    assert asyncio.run(gaps.at_end(recs[7], end, [])) == []  # nothing missing: nothing read
    assert len(part.reads) == 2
    assert not gaps.streams  # a stream is forgotten at its end
    gaps.seen(recs[2], decode(recs[2].value))
    gaps.forget("r")
    assert not gaps.streams
