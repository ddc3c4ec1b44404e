"""Live / paper trading from a websocket feed in Binance's format.

The adapter turns each ``bookTicker`` (best bid/ask) and ``trade`` message
into one tick and publishes it as a batch of one into the same ticks topic
the replay uses, so the same strategy, engine and sink paper-trade on a live
feed. ``depthUpdate`` (L2 diffs) messages are counted but not used: the
pipeline's engine trades on L1 quotes.

Ticks are stamped with the local receive time (int64 ns, strictly
increasing), and carry it in their header so the pipeline can measure
tick-to-decision latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import websockets
from aiokafka import AIOKafkaProducer

from ticktape import store
from ticktape.errors import CommandError, DemoError
from ticktape.model.batch import TICK_DTYPE, Batch, TickHeader, empty, encode
from ticktape.model.spec import RunSpec
from ticktape.pipeline import topics
from ticktape.pipeline.demo import owned_runs, wait_ready
from ticktape.pipeline.topics import APP_ID
from ticktape.pipeline.worker import WorkerProcess
from ticktape.runtime.embedded import Runtime

#: Seconds to wait for a feed's websocket to open.
FEED_OPEN_TIMEOUT_S = 10.0


@dataclass
class BinanceTicks:
    """Pure conversion of Binance websocket messages to ticks, per symbol.

    A trade tick carries the latest quote too, so it is a valid market state.
    """

    quotes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"bookTicker": 0, "trade": 0, "depthUpdate": 0, "malformed": 0, "other": 0}
    )
    last_ts: int = 0

    def on_message(self, text: str | bytes, recv_ns: int) -> tuple[str, np.ndarray] | None:
        """One raw message (a combined-stream envelope or a bare event)."""
        try:
            msg = json.loads(text)
            data = msg.get("data", msg) if isinstance(msg, dict) else None
            if not isinstance(data, dict):
                raise ValueError("not an object")
            if "e" not in data and {"b", "a", "B", "A", "s"} <= data.keys():
                kind = "bookTicker"
            else:
                kind = str(data.get("e", "other"))
            if kind not in self.counts:
                kind = "other"
            if kind == "bookTicker":
                sym = data["s"]
                self.quotes[sym] = (float(data["b"]), float(data["B"]), float(data["a"]), float(data["A"]))
                last, last_size = np.nan, np.nan
            elif kind == "trade":
                sym = data["s"]
                last, last_size = float(data["p"]), float(data["q"])
            else:
                self.counts[kind] += 1
                return None
        except (ValueError, KeyError, TypeError):
            self.counts["malformed"] += 1
            return None
        self.counts[kind] += 1
        bid, bid_size, ask, ask_size = self.quotes.get(sym, (np.nan, np.nan, np.nan, np.nan))
        self.last_ts = max(recv_ns, self.last_ts + 1)  # strictly increasing event time
        tick = np.array([(self.last_ts, bid, ask, bid_size, ask_size, last, last_size)], dtype=TICK_DTYPE)
        return sym, tick


def _unreachable(url: str, exc: BaseException) -> CommandError:
    if isinstance(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif isinstance(exc, TimeoutError):
        reason = "timed out"
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror.lower()
    else:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return CommandError(f"--url {url}: cannot connect to the feed ({reason})")


@contextlib.asynccontextmanager
async def _feed(url: str) -> AsyncGenerator[websockets.ClientConnection, None]:
    """The websocket of the feed at ``url``; CommandError naming it when it cannot be opened."""
    try:
        ws = await websockets.connect(url, max_size=2**22, open_timeout=FEED_OPEN_TIMEOUT_S)
    except (OSError, TimeoutError, websockets.WebSocketException) as exc:
        raise _unreachable(url, exc) from None
    async with ws:
        yield ws


async def check_feed(url: str) -> None:
    """Open and close the feed at ``url``: a command refuses a feed it cannot
    reach (CommandError naming it) before it starts anything."""
    async with _feed(url):
        pass


async def websocket_messages(url: str, idle_timeout: float) -> AsyncGenerator[tuple[str | bytes, int], None]:
    """Messages of the feed at ``url`` with their receive time, until it closes
    or is silent for ``idle_timeout`` seconds."""

    async with _feed(url) as ws:
        while True:
            try:
                text = await asyncio.wait_for(ws.recv(), idle_timeout)
            except (TimeoutError, websockets.ConnectionClosed):
                return
            yield text, time.time_ns()


@dataclass
class FeedStats:
    ticks: dict[str, int]
    counts: dict[str, int]
    published: dict[str, np.ndarray]  # every tick sent, per symbol (for verification)


async def run_feed(
    spec: RunSpec,
    url: str,
    producer: Any,
    topic: str,
    idle_timeout: float = 5.0,
    max_messages: int | None = None,
) -> FeedStats:
    """Publish the feed's ticks for ``spec.symbols`` as batches of one, then
    an end-of-stream batch per symbol when the feed ends."""
    conv = BinanceTicks()
    spec_json = spec.to_json()
    seqs = dict.fromkeys(spec.symbols, 0)
    sent: dict[str, list[np.ndarray]] = {s: [] for s in spec.symbols}
    n = 0
    async for text, recv_ns in websocket_messages(url, idle_timeout):
        n += 1
        out = conv.on_message(text, recv_ns)
        if out is not None and out[0] in seqs:
            sym, tick = out
            batch = Batch(
                run_id=spec.run_id,
                symbol=sym,
                seq=seqs[sym],
                arrays={"ticks": tick},
                header=TickHeader(spec=spec_json, recv_ns=recv_ns, sent_ns=time.time_ns()),
            )
            # one in flight at a time: the broker gets the symbol's ticks in order
            await producer.send_and_wait(topic, encode(batch), key=sym.encode())
            seqs[sym] += 1
            sent[sym].append(tick)
        if max_messages is not None and n >= max_messages:
            break
    for sym in spec.symbols:
        eos = Batch(
            run_id=spec.run_id,
            symbol=sym,
            seq=seqs[sym],
            arrays={"ticks": empty("ticks")},
            eos=True,
            header=TickHeader(spec=spec_json, ticks_in=len(sent[sym])),
        )
        await producer.send_and_wait(topic, encode(eos), key=sym.encode())
    published = {s: np.concatenate(v) if v else empty("ticks") for s, v in sent.items()}
    return FeedStats({s: len(v) for s, v in published.items()}, conv.counts, published)


async def _paper(
    rt: Runtime,
    spec: RunSpec,
    url: str,
    worker: WorkerProcess,
    idle_timeout: float,
    max_messages: int | None,
    timeout_s: float,
) -> tuple[dict, FeedStats]:
    conn = await store.connect(rt.database_url)
    try:
        await store.start_run(conn, spec.run_id)
        producer = AIOKafkaProducer(
            bootstrap_servers=rt.kafka_url, linger_ms=0, max_request_size=8 * 1024 * 1024
        )
        await producer.start()
        try:
            stats = await run_feed(spec, url, producer, f"{APP_ID}.ticks", idle_timeout, max_messages)
        finally:
            await producer.stop()
        deadline = time.monotonic() + timeout_s
        while await store.run_status(conn, spec.run_id) in store.UNFINISHED:
            if not worker.alive():
                raise DemoError(f"the Faust worker exited; last log lines:\n{worker.log_tail()}")
            if time.monotonic() > deadline:
                raise DemoError(f"run {spec.run_id} did not finish in {timeout_s:.0f} s")
            await asyncio.sleep(0.1)
        return await store.run_with_metrics(conn, spec.run_id), stats
    finally:
        await conn.close()


def paper(
    rt: Runtime,
    home: Path,
    spec: RunSpec,
    url: str,
    idle_timeout: float = 5.0,
    max_messages: int | None = None,
    timeout_s: float = 120.0,
) -> tuple[dict, FeedStats]:
    """Paper-trade ``spec`` on the feed at ``url`` through a managed worker on
    ``rt`` until the feed ends; return the finished run row and feed stats.

    The run is owned by ``ticktape paper`` (``pipeline.demo.owned_runs``: a
    reused run id is refused; the run is failed if the command stops first).
    """

    topics.ensure(rt)  # (existing topics keep their partition count)
    env = {**rt.env(), "TICKTAPE_HOME": str(home)}
    with (
        owned_runs(rt.database_url, [spec], "paper", data_range=False),
        WorkerProcess(env, home / "logs" / "worker.log") as worker,
    ):
        wait_ready(worker)  # ticks must not queue while the worker joins the group
        return asyncio.run(_paper(rt, spec, url, worker, idle_timeout, max_messages, timeout_s))
