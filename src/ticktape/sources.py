"""Where a run's ticks come from (the replay agent's inputs).

A run spec's ``source`` (JSON) is one of:

``{"kind": "store"}`` (the default)
    the ticks table, in ``(ts, seq)`` order, by symbol and time range;
``{"kind": "parquet", "path": FILE}``
    a Parquet file in ticktape's tick layout (``ticktape data export``);
``{"kind": "generator", "n_ticks": N, "seed": S, "regimes": false, ...}``
    the synthetic GBM generator (``ticktape.data.synth.ProcessConfig``
    fields), deterministic per (seed, symbol), streamed in constant memory;
``{"kind": "topic", "run_id": RUN, "topic": "ticktape.ticks", "start_offset": A, "end_offset": B}``
    the ticks a previous (live, paper or replayed) run published to a Kafka
    topic: its batches of each symbol, de-duplicated by sequence number, from
    offset ``A`` (inclusive, default the beginning) to ``B`` (exclusive,
    default the end of the topic when the run starts).

Every source honours the spec's ``start_ns`` / ``end_ns`` (event time,
``start <= ts < end``): on a recorded topic that is how a replay starts or
ends at a timestamp. (Kafka's offsets-for-times lookup would only narrow the
scan, by broker append time; the embedded broker answers it with offset 0
for any time, so ticktape filters by the ticks' own event time.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ticktape.strategy import SpecError

KINDS = ("store", "parquet", "generator", "topic")


def _gen_fields() -> dict[str, dataclasses.Field]:
    from ticktape.data.synth import ProcessConfig

    return {f.name: f for f in dataclasses.fields(ProcessConfig) if f.name != "symbol"}


def validate(source: Mapping[str, Any] | None) -> dict[str, Any]:
    """The normalized source of a run spec; SpecError naming ``source.<field>``."""
    if source is None:
        return {"kind": "store"}
    if not isinstance(source, Mapping):
        raise SpecError(f"source: must be an object with a kind ({', '.join(KINDS)}), got {source!r}")
    d = dict(source)
    kind = d.get("kind", "store")
    if kind not in KINDS:
        raise SpecError(f"source.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = {
        "store": set(),
        "parquet": {"path"},
        "topic": {"run_id", "topic", "start_offset", "end_offset"},
        "generator": set(_gen_fields()),
    }[kind] | {"kind"}
    for key in d:
        if key not in allowed:
            raise SpecError(
                f"source.{key}: unknown field of a {kind} source; known: {', '.join(sorted(allowed))}"
            )
    if kind == "parquet":
        if not isinstance(d.get("path"), str) or not d["path"]:
            raise SpecError("source.path: the Parquet file to replay is required")
    elif kind == "topic":
        try:
            d["run_id"] = str(uuid.UUID(str(d.get("run_id"))))
        except ValueError:
            raise SpecError(
                f"source.run_id: the recorded run's UUID is required, got {d.get('run_id')!r}"
            ) from None
        d.setdefault("topic", "ticktape.ticks")
        for key in ("start_offset", "end_offset"):
            v = d.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise SpecError(f"source.{key}: must be an offset >= 0, got {v!r}")
        if (
            d.get("start_offset") is not None
            and d.get("end_offset") is not None
            and d["end_offset"] < d["start_offset"]
        ):
            raise SpecError("source.end_offset: is before start_offset")
    elif kind == "generator":
        if not isinstance(d.get("n_ticks"), int) or isinstance(d.get("n_ticks"), bool) or d["n_ticks"] < 1:
            raise SpecError(
                f"source.n_ticks: the number of ticks per symbol (an integer >= 1) is required, got {d.get('n_ticks')!r}"
            )
        try:
            _process_config("X", d)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"source: {exc}") from None
    return d


def _process_config(symbol: str, d: Mapping[str, Any]) -> Any:
    from ticktape.data.synth import ProcessConfig

    return ProcessConfig(symbol=symbol, **{k: v for k, v in d.items() if k != "kind"})


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


def _generated(spec: Any, symbol: str) -> Iterator[np.ndarray]:
    from ticktape.data.synth import generate_process

    cfg = _process_config(symbol, spec.source)
    for chunk in generate_process(cfg, chunk=spec.batch_size):
        part = _in_range(chunk, spec.start_ns, spec.end_ns)
        if len(part):
            yield part


def _parquet(spec: Any, symbol: str) -> Iterator[np.ndarray]:
    from ticktape.data.readers import read_parquet

    path = spec.source["path"]
    for _sym, part in read_parquet(
        path, symbols=[symbol], start_ns=spec.start_ns, end_ns=spec.end_ns, batch_size=spec.batch_size
    ):
        if len(part):
            yield part


async def _topic(spec: Any, symbol: str, kafka_url: str) -> AsyncIterator[np.ndarray]:
    from ticktape.batch import decode
    from ticktape.topicread import TopicReader

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
    spec: Any, symbol: str, *, kafka_url: str | None, done: list[int]
) -> AsyncIterator[np.ndarray]:
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


async def _aiter(it: Iterator[np.ndarray]) -> AsyncIterator[np.ndarray]:
    for x in it:
        yield x
        await asyncio.sleep(0)


async def check(spec: Any, conn: Any) -> dict[str, int | None]:
    """Ticks each symbol will replay (None: not known before reading), or a
    SpecError naming the field when a symbol or the time range has no data."""
    from ticktape import store

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
            if getattr(spec, "depth", False) and not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM book_events WHERE symbol = $1)", sym
            ):
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


def _range_field(spec: Any) -> str:
    return "start_ns" if spec.start_ns is not None else "end_ns"


def _range_text(spec: Any) -> str:
    from ticktape.store import ns_to_datetime

    if spec.start_ns is None and spec.end_ns is None:
        return ""
    a = ns_to_datetime(spec.start_ns).isoformat() if spec.start_ns is not None else "the start"
    b = ns_to_datetime(spec.end_ns).isoformat() if spec.end_ns is not None else "the end"
    return f"between {a} and {b}"
