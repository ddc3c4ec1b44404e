"""Stored results the report tests read: a sweep of kept runs, a two-symbol
run completed as the sink completes one, a run without fills, a run that
stored nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest

from ticktape import store
from ticktape.backtest import sweep as sweeps
from ticktape.backtest.run import run_symbol
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.model.batch import DTYPES
from ticktape.model.spec import RunSpec
from ticktape.runtime.processes import run_coro


def walk(symbol: str, n: int, seed: int, rate_per_s: float) -> np.ndarray:
    cfg = RandomWalkConfig(symbol=symbol, n_ticks=n, seed=seed, rate_per_s=rate_per_s)
    return np.concatenate(list(generate_walk(cfg)))


@pytest.fixture
def random_walk() -> Any:
    """``random_walk(symbol, n, seed, rate_per_s)``: a symbol's synthetic ticks."""
    return walk


@pytest.fixture(scope="session")
def stored(db_url: str) -> dict[str, Any]:
    """Ids of: a sweep of 2x2 sets (3 kept) over 3 days of ticks, a
    two-symbol run of 8 days, a run without fills, a pending run with nothing stored."""
    tag = uuid.uuid4().hex[:6].upper()
    symbol = f"REP{tag}"
    ticks = walk(symbol, 20_000, 1, rate_per_s=0.08)  # about 3 days
    res = sweeps.sweep(ticks, "sma_crossover", sweeps.grid({"fast": [5, 10], "slow": [50, 100]}), keep_top=3)
    pair = (f"REP{tag}A", f"REP{tag}B")
    spec = RunSpec(
        strategy="sma_crossover", symbols=pair, params={"fast": 10, "slow": 60}, return_grid="hour"
    )
    data = {s: walk(s, 30_000, 2 + i, rate_per_s=0.04) for i, s in enumerate(pair)}  # about 8.7 days
    results = {s: run_symbol(spec, [data[s]]) for s in pair}
    no_fills, empty = str(uuid.uuid4()), str(uuid.uuid4())

    async def seed() -> dict[str, Any]:
        conn = await store.connect(db_url)
        try:
            ids = await sweeps.store_sweep(conn, res, symbol)
            d = json.loads(spec.to_json())
            await store.create_run(
                conn,
                spec.run_id,
                spec.strategy,
                d,
                spec.params,
                pair,
                int(min(t["ts"][0] for t in data.values())),
                int(max(t["ts"][-1] for t in data.values())),
                status="running",
            )
            for s, r in results.items():  # as the sink stores a run and completes it
                await store.write_result_set(
                    conn,
                    spec.run_id,
                    s,
                    0,
                    {k: getattr(r, k) for k in ("signals", "orders", "fills", "equity")},
                )
                await store.update_progress(
                    conn,
                    spec.run_id,
                    s,
                    r.accepted,
                    int(data[s]["ts"][-1]),
                    done=True,
                    ticks_in=r.ticks_in,
                    ticks_rejected=r.ticks_in - r.accepted,
                    rejects=r.rejects,
                )
            assert await store.complete_if_done(conn, spec.run_id)
            await store.create_run(
                conn,
                no_fills,
                "sma_crossover",
                {"engine": {"initial_cash": 1e6}},
                {"fast": 5},
                [symbol],
                int(ticks["ts"][0]),
                int(ticks["ts"][-1]),
            )
            eq = np.zeros(40, DTYPES["equity"])
            eq["ts"] = ticks["ts"][::500]
            eq["equity"] = eq["cash"] = 1e6
            eq["price"] = ticks["bid"][::500]
            await store.write_result_set(conn, no_fills, symbol, 0, {"equity": eq})
            await store.finish_run(conn, no_fills, "complete", ticks_processed=len(ticks))
            await store.create_run(
                conn, empty, "sma_crossover", {"engine": {"initial_cash": 1e6}}, {}, [symbol], None, None
            )
            return {"sweep_runs": ids}
        finally:
            await conn.close()

    got = run_coro(seed)
    return {
        "symbol": symbol,
        "sweep": res.sweep_id,
        "sweep_result": res,
        "sweep_runs": got["sweep_runs"],
        "pair": spec.run_id,
        "pair_results": results,
        "no_fills": no_fills,
        "empty": empty,
    }
