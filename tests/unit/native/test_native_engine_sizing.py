"""Targets as a fraction of equity (target_mode=1): native engine == reference, and what it holds."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape import testing
from ticktape.native import Engine
from ticktape.reference import ReferenceEngine

COLS = ("ts", "bid", "ask", "bid_size", "ask_size", "target")


def _ticks(n: int, seed: int, fractions: list[float]) -> dict[str, np.ndarray]:
    """n quotes 1 ms apart on the 0.01 grid, random sizes (some 0), ``fractions`` as targets at random ticks."""
    ticks = testing.quotes(
        n, t0=0, step_ns=1_000_000, bid=99.99, spread=0.02, walk=0.02, decimals=2, size=(0, 500), seed=seed
    )
    cols = testing.columns(ticks)
    at = np.random.default_rng(seed).choice(n, size=min(len(fractions), n), replace=False)
    cols["target"][np.sort(at)] = fractions[: len(at)]
    return cols


@settings(max_examples=120, deadline=None)
@given(
    n=st.integers(1, 200),
    seed=st.integers(0, 10**6),
    fractions=st.lists(st.sampled_from([-1.0, -0.5, -0.1, 0.0, 0.1, 0.33, 0.5, 1.0, 2.0]), max_size=40),
    lot=st.sampled_from([1.0, 10.0, 0.5]),
    fee=st.sampled_from([0.0, 2.0]),
)
def test_equity_fractions_match_the_reference(n, seed, fractions, lot, fee):
    cols = _ticks(n, seed, fractions)
    cfg = {"tick_size": 0.01, "lot_size": lot, "fee_bps": fee, "initial_cash": 50_000.0, "target_mode": 1}
    nat, ref = Engine(**cfg), ReferenceEngine(**cfg)
    a = nat.process(*(cols[c] for c in COLS))
    b = ref.process(*(cols[c] for c in COLS))
    for k in ("fills", "orders", "equity"):
        assert a[k].tobytes() == b[k].tobytes(), k
    assert nat.position == ref.position and nat.cash == ref.cash


def test_a_half_of_equity_target_holds_half_of_equity_in_whole_lots():
    cols = _ticks(50, 1, [])
    cols["target"][:] = np.nan
    cols["target"][0] = 0.5
    cols["bid_size"][:] = cols["ask_size"][:] = 1e9
    eng = Engine(tick_size=0.01, lot_size=10.0, initial_cash=100_000.0, target_mode=1)
    eng.process(*(cols[c] for c in COLS))
    mid0 = (cols["bid"][0] + cols["ask"][0]) / 2
    want = np.trunc(0.5 * 100_000.0 / mid0 / 10.0) * 10.0
    assert eng.position == want
    assert Engine.from_state(eng.get_state()).target_mode == 1
