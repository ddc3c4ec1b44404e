"""Multi-symbol strategies: the event-time merge and the pairs template."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import ticktape
from ticktape.backtest.run import merge_symbols
from ticktape.strategy import build
from ticktape.testing import market, quotes

A, B = market(20_000, seed=1, symbol="A", trade_every=0), market(20_000, seed=2, symbol="B", trade_every=0)


def test_merge_carries_each_symbols_last_quote_and_shows_liquidity_only_on_its_own_ticks():
    a = quotes(ts=[1, 3, 3], bid=[10.0, 11.0, 12.0], ask=[10.2, 11.2, 12.2], size=10.0)
    b = quotes(ts=[2, 3], bid=[20.0, 21.0], ask=[20.2, 21.2], size=10.0)
    cols, eng, sym = merge_symbols({"A": a, "B": b})
    assert cols["ts"].tolist() == [1, 2, 3, 3, 3]
    assert sym.tolist() == [0, 1, 0, 0, 1]  # ties: A before B, each symbol's own order kept
    assert np.isnan(cols["B.price"][0])
    assert cols["B.price"][1:].tolist() == [20.1, 20.1, 20.1, 21.1]
    assert cols["A.price"].tolist() == [10.1, 10.1, 11.1, 12.1, 12.1]
    assert eng["B"]["ask_size"].tolist() == [0, 10, 0, 0, 10]
    assert np.allclose(cols["price"], [10.1, 20.1, 11.1, 12.1, 21.1])


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 8000), max_size=4), hedge=st.sampled_from(["ols", "ratio"]))
def test_pairs_decisions_do_not_depend_on_the_split(cuts, hedge):
    strat = build("pairs", {"symbols": ["A", "B"], "n": 50, "hedge": hedge})
    cols, _, _ = merge_symbols({"A": A[:4000], "B": B[:4000]})
    whole, _ = strat.on_batch(cols, {}, {})
    state, parts = {}, {"A": [], "B": []}
    for piece in np.split(np.arange(len(cols["ts"])), sorted(cuts)):
        sub = type(cols)({k: v[piece] for k, v in cols.items()})
        out, state = strat.on_batch(sub, {}, state)
        for s, acc in parts.items():
            acc.append(out[s])
    for s in ("A", "B"):
        assert np.array_equal(whole[s], np.concatenate(parts[s]), equal_nan=True)


def test_pairs_trades_both_legs_in_opposite_directions_on_their_own_ticks():
    r = ticktape.backtest({"A": A, "B": B}, "pairs", {"symbols": ["A", "B"], "n": 200, "hedge": "ratio"})
    assert set(r.fills["symbol"]) == {"A", "B"}
    both = r.equity[(r.equity["position.A"] != 0) & (r.equity["position.B"] != 0)]
    assert len(both) > 10
    # opposite legs, except for the moment between a flip's A fill and its B fill (B fills on B's ticks)
    assert (np.sign(both["position.A"]) == -np.sign(both["position.B"])).mean() > 0.95
    b_ts = set(B["ts"].tolist())
    assert set(r.fills[r.fills["symbol"] == "B"]["ts"].astype("int64")) <= b_ts
