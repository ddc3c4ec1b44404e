"""Templates: the event → position machinery, stops, sizing, and every template end to end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ticktape
from ticktape.errors import SpecError
from ticktape.strategy import REGISTRY, build, compute_features, tick_columns
from ticktape.strategy.templates import apply_stops, positions
from ticktape.testing import market

T, F = True, False


TICKS = market(20_000, seed=3)  # a trade every third tick (VWAP needs volume)


def test_positions_by_hand():
    b = np.array
    # enter long, hold, exit long, idle, enter short, exit short
    el = b([F, T, F, F, F, F, F])
    xl = b([F, F, F, T, F, F, F])
    es = b([F, F, F, F, F, T, F])
    xs = b([F, F, F, F, F, F, T])
    assert positions(el, xl, es, xs, None).tolist()[1:] == [1, 1, 0, 0, -1, 0]
    assert np.isnan(positions(el, xl, es, xs, None)[0])
    # the carry continues a position; an exit of the other side does nothing
    assert positions(b([F, F]), b([F, F]), b([F, F]), b([T, F]), 1.0).tolist() == [1, 1]
    # an entry and an exit on the same tick: the entry wins
    assert positions(b([T]), b([T]), b([F]), b([F]), 0.0).tolist() == [1]


def test_stops_by_hand():
    price = np.array([100.0, 99.0, 97.9, 99.0, 101.0, 101.0, 100.0])
    pos = np.array([1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0])
    out, carry = apply_stops(price, pos, {}, stop_loss=0.02, take_profit=0.0)
    # entry 100; 97.9 is -2.1% -> flat until the signal changes; the short entered at 101 runs on
    assert out.tolist() == [1, 1, 0, 0, 0, -1, -1]
    assert carry == {"pos": -1.0, "entry": 101.0, "stopped": False}
    out, _ = apply_stops(price, pos, {}, stop_loss=0.0, take_profit=0.009)
    # long from 100: +1% at 101 -> flat; short from 101: +0.99% at 100 -> flat
    assert out.tolist() == [1, 1, 1, 1, 0, -1, 0]


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(
        ["ma_crossover", "rsi_reversion", "bollinger_reversion", "breakout", "vwap_reversion"]
    ),
    cuts=st.lists(st.integers(0, 3000), max_size=5),
    sl=st.sampled_from([0.0, 0.001]),
)
def test_template_decisions_do_not_depend_on_the_split(name, cuts, sl):
    params = {"stop_loss": sl, "take_profit": sl * 2}
    if name == "ma_crossover":
        params |= {"fast": 5, "slow": 20, "ma": "ema"}
    strat = build(name, params)
    ticks = TICKS[:3000]

    def run(parts):
        carry, state, targets = {}, {}, []
        for p in parts:
            cols = tick_columns(p)
            feats, carry = compute_features(strat.features(), cols, carry)
            t, state = strat.on_batch(cols, feats, state)
            targets.append(t)
        return np.concatenate(targets)

    whole = run([ticks])
    split = run(np.split(ticks, sorted(cuts)))
    assert np.array_equal(whole, split, equal_nan=True)


@pytest.mark.parametrize(
    "name",
    ["ma_crossover", "sma_crossover", "rsi_reversion", "bollinger_reversion", "breakout", "vwap_reversion"],
)
def test_each_vectorized_template_trades_and_is_batch_size_independent(name):
    params = {"fast": 20, "slow": 100} if "crossover" in name else {}
    a = ticktape.backtest(TICKS, name, params, batch_size=50_000)
    b = ticktape.backtest(TICKS, name, params, batch_size=777)
    assert len(a.fills) > 0, name
    assert a.fills.equals(b.fills) and a.equity.equals(b.equity)


def test_long_only_never_goes_short():
    r = ticktape.backtest(TICKS, "rsi_reversion", {"long_only": True})
    assert (r.equity["position"] >= 0).all() and len(r.fills)


def test_equity_sizing_holds_a_fraction_of_equity():
    r = ticktape.backtest(
        TICKS,
        "ma_crossover",
        {"fast": 20, "slow": 100, "sizing": "equity", "fraction": 0.5},
        initial_cash=100_000.0,
    )
    held = (r.equity["position"].abs() * r.equity["price"]) / r.equity["equity"]
    assert held.max() == pytest.approx(0.5, abs=0.01)


def test_market_maker_quotes_both_sides_within_its_inventory_limit():
    r = ticktape.backtest(TICKS[:5000], "market_maker", {"size": 10, "max_inventory": 30, "spread_ticks": 1})
    assert set(r.fills["side"]) == {-1, 1}
    assert r.equity["position"].abs().max() <= 30


def test_every_registered_template_has_a_docstring_and_typed_config():
    for name, cls in REGISTRY.items():
        assert cls.__doc__ and cls.Config.__doc__, name


def test_bad_params_name_the_field():
    with pytest.raises(SpecError, match=r"params\.slow: must be > fast"):
        build("ma_crossover", {"fast": 10, "slow": 5})
    with pytest.raises(SpecError, match=r"params\.n: must be an integer, got 'x'"):
        build("rsi_reversion", {"n": "x"})
    with pytest.raises(SpecError, match=r"params\.ma: must be one of"):
        build("ma_crossover", {"ma": "hma"})


def test_rules_strategy_equals_the_template_it_spells_out():
    fast, slow = {"ind": "sma", "n": 20}, {"ind": "sma", "n": 100}
    rules = {
        "entry": {"op": ">", "left": fast, "right": slow},
        "exit": {"op": "<", "left": fast, "right": slow},
        "long_only": True,
    }
    a = ticktape.backtest(TICKS, "rules", rules, batch_size=999)
    b = ticktape.backtest(TICKS, "ma_crossover", {"fast": 20, "slow": 100, "long_only": True})
    assert len(a.fills) > 5
    assert a.extra["raw"]["fills"].tobytes() == b.extra["raw"]["fills"].tobytes()


def test_rules_with_multi_output_indicators_and_crossings_are_split_independent():
    spec = {
        "entry": {
            "op": "crosses_above",
            "left": {"ind": "macd", "line": "macd"},
            "right": {"ind": "macd", "line": "signal"},
        },
        "exit": {
            "any": [
                {"op": "<", "left": {"price": "close"}, "right": {"ind": "bollinger", "band": "lower"}},
                {"op": ">", "left": {"ind": "rsi"}, "right": 70},
            ]
        },
    }
    a = ticktape.backtest(TICKS[:6000], "rules", spec)
    b = ticktape.backtest(TICKS[:6000], "rules", spec, batch_size=7)
    assert len(a.fills) > 5
    assert a.extra["raw"]["fills"].tobytes() == b.extra["raw"]["fills"].tobytes()


def test_rules_errors_name_the_json_path():
    with pytest.raises(SpecError, match=r"params\.entry\.left\.n"):
        build("rules", {"entry": {"op": ">", "left": {"ind": "sma", "n": 0}, "right": 1}})
    with pytest.raises(SpecError, match=r"params\.exit: given without params\.entry"):
        build("rules", {"exit": {"op": ">", "left": {"ind": "rsi"}, "right": 70}})
    with pytest.raises(SpecError, match=r"params\.entry: a rules strategy needs params\.entry"):
        build("rules", {})


def _positions_reference(el, xl, es, xs, carry):
    """The definition, one tick at a time."""
    d = np.nan if carry is None else carry
    out = []
    for a, b, c, e in zip(el, xl, es, xs, strict=True):
        if c:
            d = -1.0
        elif a:
            d = 1.0
        elif (d == 1 and b) or (d == -1 and e) or (np.isnan(d) and (b or e)):
            d = 0.0
        out.append(d)
    return np.array(out, dtype=float)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()), max_size=60),
    carry=st.sampled_from([None, 1.0, 0.0, -1.0]),
)
def test_positions_kernel_equals_the_definition(events, carry):
    cols = [np.array([e[k] for e in events], dtype=bool) for k in range(4)]
    assert np.array_equal(positions(*cols, carry), _positions_reference(*cols, carry), equal_nan=True)


def test_equity_sizing_sizes_at_entry_and_does_not_rebalance():
    r = ticktape.backtest(
        TICKS, "ma_crossover", {"fast": 20, "slow": 100, "sizing": "equity", "fraction": 0.5}
    )
    f = ticktape.backtest(TICKS, "ma_crossover", {"fast": 20, "slow": 100})
    # one position change -> one order, as with fixed sizing (no re-trading on price moves)
    assert r.orders["order_id"].nunique() == f.orders["order_id"].nunique()
