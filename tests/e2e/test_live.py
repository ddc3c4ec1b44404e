"""Paper trading on a live feed: a local websocket server plays a Binance-
format capture; the feed adapter publishes batches of one into the same
pipeline; the stored fills equal the in-process run on the same ticks."""

import asyncio
import gzip
import json
import threading

import numpy as np
import pytest
import websockets

from ticktape.backtest.run import run_symbol
from ticktape.model.spec import EngineConfig, RunSpec
from ticktape.pipeline.live import BinanceTicks, paper
from ticktape.pipeline.record import record

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


class FeedServer:
    """A websocket server on 127.0.0.1 that sends ``messages`` to the first
    client, ``gap_s`` apart, then closes."""

    def __init__(self, messages, gap_s=0.002):
        self.messages, self.gap_s = messages, gap_s
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self):
        done = asyncio.Event()

        async def handler(ws):
            for m in self.messages:
                await ws.send(m)
                await asyncio.sleep(self.gap_s)
            await ws.close()
            done.set()

        async with websockets.serve(handler, "127.0.0.1", 0) as server:
            self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            self.ready.set()
            await asyncio.wait_for(done.wait(), 240)

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.thread.join(5)


def _capture(n, symbol="TESTUSDT", seed=1):
    rng = np.random.default_rng(seed)
    bid = 100.0
    out = []
    for i in range(n):
        bid = round(bid + 0.01 * rng.integers(-3, 4), 2)
        book = {"u": i, "s": symbol, "b": f"{bid:.2f}", "B": "2.5", "a": f"{bid + 0.01:.2f}", "A": "1.75"}
        out.append(json.dumps({"stream": f"{symbol.lower()}@bookTicker", "data": book}))
        if i % 7 == 0:
            trade = {"e": "trade", "E": i, "s": symbol, "p": f"{bid:.2f}", "q": "0.5", "T": i, "m": True}
            out.append(json.dumps({"stream": f"{symbol.lower()}@trade", "data": trade}))
        if i % 11 == 0:
            out.append(json.dumps({"data": {"e": "depthUpdate", "s": symbol, "b": [], "a": []}}))
    out.append("{not json")
    return out


def test_converter_counts_every_message_kind():
    conv = BinanceTicks()
    ticks = [conv.on_message(m, 1_000 + i) for i, m in enumerate(_capture(30))]
    assert conv.counts == {"bookTicker": 30, "trade": 5, "depthUpdate": 3, "malformed": 1, "other": 0}
    got = [t for t in ticks if t is not None]
    assert len(got) == 35
    ts = np.array([t[1]["ts"][0] for t in got])
    assert (np.diff(ts) > 0).all()


def _spec(symbol, lot):
    return RunSpec(
        strategy="sma_crossover",
        symbols=(symbol,),
        params={"fast": 5, "slow": 20, "size": 1.0},
        engine=EngineConfig(tick_size=0.01, lot_size=lot),
    )


def test_paper_trading_on_a_capture_written_by_the_test(runtime, db_url, tmp_path, pipeline):
    spec = _spec("TESTUSDT", 0.25)
    with FeedServer(_capture(600)) as feed:
        run, stats = paper(runtime, tmp_path, spec, feed.url, idle_timeout=3.0)
    assert run["status"] == "complete", run["error"]
    assert stats.counts["malformed"] == 1 and stats.counts["depthUpdate"] == 55
    assert run["ticks_in"] == stats.ticks["TESTUSDT"] == 600 + 86
    assert run["ticks_processed"] + run["ticks_rejected"] == run["ticks_in"]
    expected = run_symbol(spec, [stats.published["TESTUSDT"]])
    got = pipeline.stored(spec.run_id, "TESTUSDT", "fills")
    assert len(expected.fills) > 0
    assert (
        np.sort(got, order=["ts", "order_id"]).tobytes()
        == np.sort(expected.fills, order=["ts", "order_id"]).tobytes()
    )
    assert run["metrics"]["tick_to_decision_p99_ms"] >= run["metrics"]["tick_to_decision_p50_ms"] > 0


@pytest.mark.shared_data
def test_paper_trading_on_the_real_binance_capture(runtime, db_url, tmp_path, shared_data):
    with gzip.open(shared_data("ticks/binance_spot_btcusdt_20240808_ws.gz"), "rt") as f:
        lines = [line.split(" ", 1)[1] for _, line in zip(range(4000), f, strict=False)]
    spec = _spec("BTCUSDT", 0.00001)
    with FeedServer(lines, gap_s=0.0005) as feed:
        run, stats = paper(runtime, tmp_path, spec, feed.url, idle_timeout=3.0)
    assert run["status"] == "complete", run["error"]
    assert sum(stats.counts.values()) == 4000
    assert run["ticks_in"] == stats.ticks["BTCUSDT"] == stats.counts["bookTicker"] + stats.counts["trade"]
    assert run["ticks_processed"] + run["ticks_rejected"] == run["ticks_in"]
    assert "tick_to_decision_p50_ms" in run["metrics"]


def test_record_a_paper_session_then_replay_it(runtime, db_url, tmp_path, pipeline):
    spec = _spec("RECUSDT", 0.25)
    with FeedServer(_capture(300, symbol="RECUSDT", seed=5)) as feed:
        run, stats = paper(runtime, tmp_path, spec, feed.url, idle_timeout=3.0)
    assert run["status"] == "complete", run["error"]
    rec = asyncio.run(record(runtime.kafka_url, db_url, spec.run_id, prefix="REC-", idle_timeout=5.0))
    assert rec.complete and rec.ticks == stats.ticks and rec.stored == stats.ticks
    again = asyncio.run(record(runtime.kafka_url, db_url, spec.run_id, prefix="REC-", idle_timeout=5.0))
    assert again.stored == {"RECUSDT": 0}  # recording twice stores nothing new
    replay = RunSpec(
        strategy=spec.strategy,
        symbols=("REC-RECUSDT",),
        params=spec.params,
        engine=spec.engine,
        batch_size=64,
    )
    with pipeline.worker("replayer") as w:
        pipeline.submit(replay)
        done = pipeline.wait_done(replay.run_id, [w])
    assert done["status"] == "complete", done["error"]
    assert done["ticks_in"] == stats.ticks["RECUSDT"]
    # the replayed session trades exactly like the in-process run of the
    # recorded ticks (event time floored to the store's microseconds)
    recorded = stats.published["RECUSDT"].copy()
    recorded["ts"] = recorded["ts"] // 1000 * 1000
    want = run_symbol(replay, [recorded])
    got = pipeline.stored(replay.run_id, "REC-RECUSDT", "fills")
    assert (
        np.sort(got, order=["ts", "order_id"]).tobytes()
        == np.sort(want.fills, order=["ts", "order_id"]).tobytes()
    )
