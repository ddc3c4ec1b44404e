"""The in-process backtest and sweeps against the real store (embedded PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np
import pytest

import ticktape
from ticktape import store
from ticktape.backtest.run import Store
from ticktape.backtest.sweep import grid, store_sweep, sweep
from ticktape.data import synth
from ticktape.errors import DataError
from ticktape.store import read_book_events
from ticktape.testing import market

pytestmark = pytest.mark.integration

TICKS = market(30_000, seed=3, symbol="BT", trade_every=0)
# the store keeps microseconds: compare with the same ticks floored
TICKS["ts"] = TICKS["ts"] // 1000 * 1000


async def _with(dsn, fn):
    conn = await store.connect(dsn)
    try:
        return await fn(conn)
    finally:
        await conn.close()


def test_backtest_on_a_store_selection_equals_the_array(db_url):
    sym = f"BT{uuid.uuid4().hex[:6]}"
    asyncio.run(_with(db_url, lambda c: store.write_ticks(c, sym, TICKS)))
    a = ticktape.backtest(Store(sym, dsn=db_url), "sma_crossover", {"fast": 10, "slow": 50})
    b = ticktape.backtest(TICKS, "sma_crossover", {"fast": 10, "slow": 50})
    assert a.ticks_in == len(TICKS) and len(a.fills) > 10
    assert a.extra["raw"]["fills"].tobytes() == b.extra["raw"]["fills"].tobytes()
    with pytest.raises(DataError, match="no ticks for symbol 'NOPE'"):
        ticktape.backtest(Store("NOPE", dsn=db_url), "sma_crossover")


def test_a_stored_sweep_is_one_complete_run_per_parameter_set(db_url):
    sets = grid({"fast": [5, 10], "slow": [50, 100]})
    res = sweep(TICKS, "ma_crossover", sets, keep_top=1, processes=1)
    ids = asyncio.run(_with(db_url, lambda c: store_sweep(c, res, "BTSWEEP")))

    async def check(conn):
        runs = await conn.fetch(
            "SELECT run_id, status, fills, params FROM runs WHERE sweep_id = $1 ORDER BY run_id",
            uuid.UUID(res.sweep_id),
        )
        fills = {
            r["run_id"]: await conn.fetchval("SELECT count(*) FROM fills WHERE run_id = $1", r["run_id"])
            for r in runs
        }
        sharpe = await conn.fetchval(
            "SELECT count(*) FROM run_metrics m JOIN runs r USING (run_id) WHERE r.sweep_id = $1 AND m.name = 'sharpe'",
            uuid.UUID(res.sweep_id),
        )
        return runs, fills, sharpe

    runs, fills, sharpe = asyncio.run(_with(db_url, check))
    assert sorted(str(r["run_id"]) for r in runs) == sorted(ids)
    assert {r["status"] for r in runs} == {"complete"} and sharpe == 4
    by_id = {str(r["run_id"]): r for r in runs}
    (kept,) = res.detail
    for run_id, s in zip(ids, res.sets, strict=True):
        assert by_id[run_id]["fills"] == s.fills
        # every set's counts and metrics; the rows of the set re-run in detail only
        stored = fills[uuid.UUID(run_id)]
        assert stored == (len(res.detail[kept].fills) if s.index == kept else 0)


def test_depth_from_the_store_equals_the_same_events_in_memory(db_url):
    sym = f"BD{uuid.uuid4().hex[:6]}"
    ticks = TICKS[:8_000]
    events = synth.depth_diffs(ticks, levels=4, seed=2, mean_size=5.0)
    clear = np.zeros(1, events.dtype)  # a snapshot's clear half way: every shown level goes to 0
    clear["ts"], clear["kind"] = events["ts"][len(events) // 2], 11
    events = np.concatenate([events[: len(events) // 2], clear, events[len(events) // 2 :]])

    async def load(c):
        await store.write_ticks(c, sym, ticks)
        await store.write_book_events(c, sym, events)
        return await read_book_events(c, sym), await read_book_events(c, sym, int(ticks["ts"][100]))

    stored, tail = asyncio.run(_with(db_url, load))
    assert stored.tolist() == events.tolist()
    assert len(tail) == int((events["ts"] >= ticks["ts"][100]).sum())
    params = {"fast": 10, "slow": 50, "size": 30.0}
    a = ticktape.backtest(Store(sym, dsn=db_url), "ma_crossover", params, depth=Store(sym, dsn=db_url))
    b = ticktape.backtest(ticks, "ma_crossover", params, depth=events)
    c = ticktape.backtest(ticks, "ma_crossover", params)
    assert len(a.fills) > 10
    assert a.extra["raw"]["fills"].tobytes() == b.extra["raw"]["fills"].tobytes()
    assert a.extra["raw"]["fills"].tobytes() != c.extra["raw"]["fills"].tobytes()  # depth mattered
    with pytest.raises(DataError, match=r"depth: no book events for symbol 'NOPE'"):
        ticktape.backtest(Store(sym, dsn=db_url), "ma_crossover", depth=Store("NOPE", dsn=db_url))
