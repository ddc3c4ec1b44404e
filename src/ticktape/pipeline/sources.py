"""Where a run's ticks come from: the replay agent's inputs, by source kind
(the kinds and their JSON are declared in :mod:`ticktape.model.sources`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np

from ticktape import store
from ticktape.data.readers import read_parquet
from ticktape.data.synth import generate_process
from ticktape.errors import SpecError
from ticktape.model.batch import decode
from ticktape.model.sources import process_config
from ticktape.model.spec import RunSpec
from ticktape.pipeline.topicread import TopicReader
from ticktape.store import session


def _in_range(ticks: np.ndarray, start_ns: int | None, end_ns: int | None) -> np.ndarray:
    if start_ns is None and end_ns is None:
        return ticks
    ts = ticks["ts"]
    keep = np.ones(len(ts), dtype=bool)
    if start_ns is not None:
        keep &= ts >= start_ns
    if end_ns is not None:
        keep &= ts < end_ns
    return ticks if keep.all() else ticks[keep]


def _rebatch(parts: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    for p in parts:
        for i in range(0, len(p), size):
            yield p[i : i + size]


def _generated(spec: RunSpec, symbol: str) -> Iterator[np.ndarray]:
    cfg = process_config(symbol, spec.source)
    for chunk in generate_process(cfg, chunk=spec.batch_size):
        part = _in_range(chunk, spec.start_ns, spec.end_ns)
        if len(part):
            yield part


def _parquet(spec: RunSpec, symbol: str) -> Iterator[np.ndarray]:
    path = spec.source["path"]
    for _sym, part in read_parquet(
        path, symbols=[symbol], start_ns=spec.start_ns, end_ns=spec.end_ns, batch_size=spec.batch_size
    ):
        if len(part):
            yield part


async def _topic(spec: RunSpec, symbol: str, kafka_url: str) -> AsyncGenerator[np.ndarray, None]:
    src = spec.source
    async with TopicReader(kafka_url) as reader:
        tps = await reader.partitions(src["topic"])
        if not tps:
            raise SpecError(f"source.topic: topic {src['topic']!r} does not exist")
        starts, ends = await reader.bounds(tps)
        ranges = {
            tp: (
                starts[tp] if src.get("start_offset") is None else max(starts[tp], src["start_offset"]),
                ends[tp] if src.get("end_offset") is None else min(ends[tp], src["end_offset"]),
            )
            for tp in tps
        }
        next_seq = 0
        async for rec in reader.read(ranges):
            b = decode(rec.value)
            if b.run_id != src["run_id"] or b.symbol != symbol or b.seq < next_seq:
                continue  # another stream, or a batch delivered twice
            next_seq = b.seq + 1
            part = _in_range(b.ticks, spec.start_ns, spec.end_ns)
            if len(part):
                yield part.copy()  # the batch is a view on the message bytes
            if b.eos:
                return


async def batches(
    spec: RunSpec, symbol: str, *, kafka_url: str | None, done: list[int]
) -> AsyncGenerator[np.ndarray, None]:
    """``symbol``'s ticks from a non-store source, in event order, in batches of
    at most ``spec.batch_size``, skipping the first ``done[0]`` (a resumed replay)."""
    kind = spec.source["kind"]
    skip = done[0]
    if kind == "topic":
        if kafka_url is None:
            raise SpecError("source: a topic source needs the broker's address")
        it: Any = _topic(spec, symbol, kafka_url)
    else:
        sync = _generated(spec, symbol) if kind == "generator" else _parquet(spec, symbol)
        it = _aiter(_rebatch(sync, spec.batch_size))
    async for arr in it:
        if skip >= len(arr):
            skip -= len(arr)
            continue
        for i in range(skip, len(arr), spec.batch_size):
            yield arr[i : i + spec.batch_size]
        skip = 0


async def _aiter(it: Iterator[np.ndarray]) -> AsyncGenerator[np.ndarray, None]:
    for x in it:
        yield x
        await asyncio.sleep(0)


async def check(spec: RunSpec, conn: asyncpg.Connection) -> dict[str, int | None]:
    """Ticks each symbol will replay (None: not known before reading), or a
    SpecError naming the field when a symbol or the time range has no data."""
    kind = spec.source["kind"]
    counts: dict[str, int | None] = {}
    where = _range_text(spec)
    if kind == "store":
        for sym in spec.symbols:
            if await store.tick_span(conn, sym) is None:  # (steps of the key, not a count)
                raise SpecError(f"symbols: {sym!r} has no ticks in the store")
            n = await store.count_ticks(conn, sym, spec.start_ns, spec.end_ns)
            if n == 0:
                raise SpecError(f"{_range_field(spec)}: no ticks of {sym!r} {where}")
            counts[sym] = n
            if spec.depth and not await store.has_book_events(conn, sym):
                raise SpecError(f"depth: {sym!r} has no book events in the store (import L2 data first)")
    elif kind == "parquet":
        path = Path(spec.source["path"])
        if not path.exists():
            raise SpecError(f"source.path: {path} does not exist")
        for sym in spec.symbols:
            n = sum(len(p) for p in _parquet(spec, sym))
            if n == 0:
                raise SpecError(f"symbols: no ticks of {sym!r} in {path} {where}".rstrip())
            counts[sym] = n
    elif kind == "generator":
        for sym in spec.symbols:
            if spec.start_ns is None and spec.end_ns is None:
                counts[sym] = int(spec.source["n_ticks"])
            else:
                n = sum(len(p) for p in _generated(spec, sym))
                if n == 0:
                    raise SpecError(f"{_range_field(spec)}: the generator makes no ticks of {sym!r} {where}")
                counts[sym] = n
    else:
        counts = dict.fromkeys(spec.symbols)
    return counts


def _range_field(spec: RunSpec) -> str:
    return "start_ns" if spec.start_ns is not None else "end_ns"


def _range_text(spec: RunSpec) -> str:
    if spec.start_ns is None and spec.end_ns is None:
        return ""
    a = store.ns_to_datetime(spec.start_ns).isoformat() if spec.start_ns is not None else "the start"
    b = store.ns_to_datetime(spec.end_ns).isoformat() if spec.end_ns is not None else "the end"
    return f"between {a} and {b}"


def expected_ticks(spec: RunSpec, dsn: str) -> int | None:
    """The ticks ``spec`` will replay over all its symbols (None: not known
    before reading); a SpecError naming the field when a symbol or the time
    range has no data, so a run is refused before anything starts."""
    counts = session.run(lambda conn: check(spec, conn), dsn=dsn, migrate=False)
    return None if None in counts.values() else sum(n for n in counts.values() if n is not None)
