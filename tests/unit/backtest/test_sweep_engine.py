"""The sweep's engine path: ``Engine.process_batch`` on a ``TickBatch`` gives what ``process`` gives."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.native import Engine, InputError, TickBatch


def _ticks(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    mid = 100 + np.cumsum(rng.integers(-2, 3, n)) * 0.01
    spread = rng.integers(1, 4, n) * 0.01
    bid, ask = np.round(mid - spread / 2, 2), np.round(mid + spread / 2, 2)
    bad = rng.random(n) < 0.05  # unusable quotes: NaN, crossed
    bid[bad & (rng.random(n) < 0.5)] = np.nan
    ask[bad] = np.where(np.isnan(bid[bad]), ask[bad], bid[bad] - 0.01)
    trade = rng.random(n) < 0.2
    return {
        "ts": np.cumsum(rng.integers(0, 400_000_000, n)).astype(np.int64),
        "bid": bid,
        "ask": ask,
        "bid_size": rng.integers(0, 6, n).astype(float),
        "ask_size": rng.integers(0, 6, n).astype(float),
        "last": np.where(trade, np.round(mid, 2), np.nan),
        "last_size": np.where(trade, rng.integers(1, 5, n).astype(float), np.nan),
    }


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 400),
    mode=st.sampled_from([0, 1]),
    entry=st.sampled_from([0, 300_000_000]),
    response=st.sampled_from([0, 500_000_000]),
    sparsity=st.sampled_from([0.0, 0.9, 0.99]),
    cuts=st.lists(st.integers(0, 400), max_size=4),
)
def test_process_batch_equals_process(seed, n, mode, entry, response, sparsity, cuts):
    rng = np.random.default_rng(seed)
    t = _ticks(rng, n)
    levels = [-3.0, 0.0, 2.0, 5.0] if mode == 0 else [-0.5, 0.0, 0.3]
    target = rng.choice(levels, n)
    target[rng.random(n) < sparsity] = np.nan
    kw = {
        "tick_size": 0.01,
        "fee_bps": 1.0,
        "initial_cash": 1000.0,
        "entry_latency_ns": entry,
        "response_latency_ns": response,
        "target_mode": mode,
    }
    a, b = Engine(**kw), Engine(**kw)
    outs: dict[str, list] = {"a": [], "b": []}
    edges = sorted({0, n, *(c for c in cuts if c < n)})
    for lo, hi in itertools.pairwise(edges):
        part = {k: v[lo:hi] for k, v in t.items()}
        outs["a"].append(
            a.process(*(part[k] for k in ("ts", "bid", "ask", "bid_size", "ask_size")), target[lo:hi],
                      last=part["last"], last_size=part["last_size"])
        )  # fmt: skip
        batch = TickBatch(*(part[k] for k in ("ts", "bid", "ask", "bid_size", "ask_size", "last", "last_size")),
                          tick_size=0.01)  # fmt: skip
        outs["b"].append(b.process_batch(batch, target[lo:hi]))
    outs["a"].append(a.finish())
    outs["b"].append(b.finish())
    for k in ("fills", "orders", "equity"):
        got = np.concatenate([o[k] for o in outs["b"]])
        want = np.concatenate([o[k] for o in outs["a"]])
        assert got.tobytes() == want.tobytes(), k
    assert b.get_state() == a.get_state()
    assert (b.quotes_ignored, b.ticks_processed) == (a.quotes_ignored, a.ticks_processed)


def test_bad_input_is_refused_with_the_field_and_index_and_no_change():
    t = _ticks(np.random.default_rng(1), 10)
    cols = [t[k] for k in ("ts", "bid", "ask", "bid_size", "ask_size", "last", "last_size")]
    bad_px = [c.copy() for c in cols]
    bad_px[1][3] = 100.005
    with pytest.raises(InputError, match=r"bid\[3\] = 100.005 is not on the tick grid"):
        TickBatch(*bad_px, tick_size=0.01)
    eng = Engine(tick_size=0.01)
    batch = TickBatch(*cols, tick_size=0.01)
    with pytest.raises(InputError, match=r"target\[2\] = inf is not finite"):
        eng.process_batch(batch, np.array([1, 1, np.inf, *[1] * 7], dtype=float))
    assert eng.ticks_processed == 0
    eng.process_batch(batch, np.ones(10))
    with pytest.raises(InputError, match=r"ts\[0\] = \d+ goes backwards"):
        eng.process_batch(TickBatch(*(c[:3] for c in cols), tick_size=0.01), np.ones(3))
    with pytest.raises(
        ValueError, match=r"checked for tick_size 0\.01, lot_size 1(\.0)?; the engine has 0\.005"
    ):
        Engine(tick_size=0.005).process_batch(batch, None)
