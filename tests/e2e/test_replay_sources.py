"""Replay sources other than the store: Parquet, the generator and a recorded
topic (by offset and by event time), through the real broker and PostgreSQL.
Each run's stored results must equal the in-process results on the same ticks."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ticktape import store
from ticktape.backtest.run import run_symbol
from ticktape.backtest.sweep import grid, sweep
from ticktape.data.readers import write_parquet
from ticktape.errors import SpecError
from ticktape.model.spec import RunSpec
from ticktape.pipeline import sources
from ticktape.pipeline.sweep import pipeline_specs
from ticktape.testing import market

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PARAMS = {"fast": 10, "slow": 60, "size": 5}


def _same(pipeline, spec, data):
    for s in spec.symbols:
        want = run_symbol(spec, [data[s]])
        for stream in ("fills", "orders", "equity"):
            got = pipeline.stored(spec.run_id, s, stream)
            exp = getattr(want, stream)
            key = lambda a: a[np.lexsort([a[f] for f in reversed(a.dtype.names)])]  # noqa: E731
            assert key(got).tobytes() == key(exp).tobytes(), f"{s} {stream}: {len(got)} vs {len(exp)}"
        assert len(want.fills) > 0


def test_parquet_generator_and_recorded_topic_sources(pipeline, tmp_path):
    symbols = pipeline.symbols(2, 20_000)
    path = tmp_path / "ticks.parquet"
    write_parquet(path, [(s, pipeline.data[s]) for s in symbols])
    from_parquet = RunSpec(
        strategy="sma_crossover",
        symbols=symbols,
        params=PARAMS,
        batch_size=3000,
        source={"kind": "parquet", "path": str(path)},
    )
    gen = {"kind": "generator", "n_ticks": 15_000, "seed": 4}
    from_generator = RunSpec(strategy="sma_crossover", symbols=("GENA", "GENB"), params=PARAMS, source=gen)
    with pipeline.worker() as w:
        pipeline.submit(from_parquet)
        pipeline.submit(from_generator)
        for spec in (from_parquet, from_generator):
            run = pipeline.wait_done(spec.run_id, [w])
            assert run["status"] == "complete", run["error"]
        _same(pipeline, from_parquet, pipeline.data)
        generated = {s: market(15_000, seed=4, symbol=s, trade_every=0) for s in ("GENA", "GENB")}
        _same(pipeline, from_generator, generated)

        # the parquet run's ticks are in the ticks topic: replay them from there, whole and from a time
        topic = {"kind": "topic", "run_id": from_parquet.run_id}
        again = RunSpec(strategy="sma_crossover", symbols=symbols, params=PARAMS, source=topic)
        t_mid = int(pipeline.data[symbols[0]]["ts"][8000])
        later = RunSpec(
            strategy="sma_crossover", symbols=symbols, params=PARAMS, source=topic, start_ns=t_mid
        )
        pipeline.submit(again)
        pipeline.submit(later)
        for spec in (again, later):
            run = pipeline.wait_done(spec.run_id, [w])
            assert run["status"] == "complete", run["error"]
        _same(pipeline, again, pipeline.data)
        _same(pipeline, later, {s: pipeline.data[s][pipeline.data[s]["ts"] >= t_mid] for s in symbols})
        assert pipeline.run_row(later.run_id)["ticks_in"] < pipeline.run_row(again.run_id)["ticks_in"]


def test_bad_sources_and_ranges_are_refused_before_anything_starts(pipeline, tmp_path):
    (sym,) = pipeline.symbols(1, 1000)

    async def check(spec):
        conn = await store.connect(pipeline.db_url)
        try:
            return await sources.check(spec, conn)
        finally:
            await conn.close()

    ok = RunSpec(strategy="sma_crossover", symbols=(sym,))
    assert asyncio.run(check(ok)) == {sym: 1000}
    with pytest.raises(SpecError, match="symbols: 'NOSUCH' has no ticks in the store"):
        asyncio.run(check(RunSpec(strategy="sma_crossover", symbols=("NOSUCH",))))
    with pytest.raises(SpecError, match=f"depth: '{sym}' has no book events in the store"):
        asyncio.run(check(RunSpec(strategy="sma_crossover", symbols=(sym,), depth=True)))
    late = int(pipeline.data[sym]["ts"][-1]) + 10**9
    with pytest.raises(SpecError, match=f"start_ns: no ticks of '{sym}' between"):
        asyncio.run(check(RunSpec(strategy="sma_crossover", symbols=(sym,), start_ns=late)))
    with pytest.raises(SpecError, match=r"source\.path: .* does not exist"):
        asyncio.run(
            check(
                RunSpec(
                    strategy="sma_crossover",
                    symbols=(sym,),
                    source={"kind": "parquet", "path": str(tmp_path / "none.parquet")},
                )
            )
        )
    for bad, field in (
        ({"kind": "ftp"}, "source.kind"),
        ({"kind": "generator"}, "source.n_ticks"),
        ({"kind": "topic", "run_id": "x"}, "source.run_id"),
        ({"kind": "topic", "run_id": ok.run_id, "start_offset": -1}, "source.start_offset"),
        ({"kind": "parquet", "path": "a", "bogus": 1}, "source.bogus"),
    ):
        with pytest.raises(SpecError, match=field):
            RunSpec(strategy="sma_crossover", symbols=(sym,), source=bad)


def test_a_sweep_over_the_pipeline_equals_the_in_process_sweep(pipeline):
    gen = {"kind": "generator", "n_ticks": 10_000, "seed": 9}
    base = RunSpec(strategy="ma_crossover", symbols=("SWA",), params={"size": 3}, source=gen)
    sets = [*grid({"fast": [5, 20], "ma": ["sma", "ema"]}), {"fast": 10, "slow": 50}]
    specs = pipeline_specs(base, [{"slow": 100, **p} for p in sets])
    with pipeline.worker() as w:
        for spec in specs:
            pipeline.submit(spec)
        for spec in specs:
            run = pipeline.wait_done(spec.run_id, [w])
            assert run["status"] == "complete", run["error"]
    ticks = market(10_000, seed=9, symbol="SWA", trade_every=0)
    local = sweep(ticks, "ma_crossover", [s.params for s in specs], tick_size=0.01, keep_top=len(specs))
    for k, spec in enumerate(specs):
        got = pipeline.stored(spec.run_id, "SWA", "fills")
        assert got.tobytes() == local.detail[k].extra["raw"]["fills"].tobytes(), spec.params
        assert len(got) == local.sets[k].fills
    with pytest.raises(SpecError, match=r"parameter set 0 .*slow: must be > fast"):
        pipeline_specs(base, [{"fast": 50, "slow": 10}])
