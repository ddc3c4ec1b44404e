"""Synthetic generator (the random walk) and tick validation."""

import hashlib
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.compute.quality import as_quotes, validate
from ticktape.data.synth import RandomWalkConfig, generate_walk, grid_prices
from ticktape.model.batch import TICK_DTYPE


def _all(cfg, chunk=100_000):
    return np.concatenate(list(generate_walk(cfg, chunk=chunk)))


def test_same_seed_same_ticks_whatever_the_chunk_size():
    cfg = RandomWalkConfig(symbol="X", n_ticks=150_000, seed=3)
    a, b = _all(cfg), _all(cfg, chunk=7_777)
    assert a.tobytes() == b.tobytes()
    assert _all(RandomWalkConfig(symbol="X", n_ticks=1000, seed=4)).tobytes() != a[:1000].tobytes()


def test_random_walk_output_is_pinned():
    """``ticktape demo``'s figures (2,545 orders, 7,968 fills, PnL -8,999.94)
    rest on these ticks: the walk must keep its exact output."""
    first = _all(RandomWalkConfig(symbol="DEMO-A", n_ticks=5, seed=7))
    nan = float("nan")
    want = [
        (1704186000062626000, 100.01, 100.02, 2.0, 164.0, nan, nan),
        (1704186000069224000, 100.01, 100.03, 173.0, 740.0, nan, nan),
        (1704186000079319000, 100.01, 100.09, 1042.0, 106.0, nan, nan),
        (1704186000147861000, 100.01, 100.04, 2966.0, 92.0, nan, nan),
        (1704186000155757000, 100.0, 100.01, 299.0, 165.0, nan, nan),
    ]
    assert first.tobytes() == np.array(want, dtype=TICK_DTYPE).tobytes()
    digests = {
        "DEMO-A": "d7d5e3a1be820c97fcf59671fa1b25cee54e8635fd656d8b32faad10d539286e",
        "DEMO-B": "26802e5c9fc4d3c8441b27d1fe27d09295373293711b08d7f117456274d8c9df",
    }
    for sym, digest in digests.items():  # the demo's two symbols, whole
        ticks = _all(RandomWalkConfig(symbol=sym, n_ticks=600_000, seed=7), chunk=200_000)
        assert hashlib.sha256(ticks.tobytes()).hexdigest() == digest, sym


def test_generated_ticks_are_valid_quotes_on_the_grid():
    cfg = RandomWalkConfig(symbol="Y", n_ticks=50_000, tick_size=0.05)
    t = _all(cfg)
    assert len(t) == 50_000
    assert (np.diff(t["ts"]) > 0).all() and (t["ts"] % 1000 == 0).all()
    assert (t["bid"] > 0).all() and (t["ask"] > t["bid"]).all()
    for f in ("bid", "ask"):
        ticks = t[f] / 0.05
        assert np.abs(ticks - np.round(ticks)).max() < 1e-6
        # each price is the double a feed would send for its decimal (as typed in SQL or a CSV)
        assert all(p == float(f"{p:.2f}") for p in t[f][:5_000].tolist()), f
    ok, counts, _ = validate(t, None)
    assert ok.all() and sum(counts.values()) == 0


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="rate_per_s"):
        RandomWalkConfig(symbol="Z", n_ticks=1, rate_per_s=0)


def test_validation_counts_every_rejected_tick_by_reason():
    t = np.zeros(7, TICK_DTYPE)
    t["ts"] = [10, 20, 15, 30, 40, 50, 60]
    t["bid"] = [1, 1, 1, np.nan, 2, 1, 1]
    t["ask"] = [2, 2, 2, 2, 1, 2, 2]
    t["bid_size"] = [1, 1, 1, 1, 1, -1, 1]
    ok, counts, last = validate(t, None)
    assert ok.tolist() == [True, True, False, False, False, False, True]
    assert counts == {"bad_price": 1, "crossed": 1, "bad_size": 1, "out_of_order": 1}
    assert last == 60
    ok2, counts2, _ = validate(t[:1], 60)  # ts 10 after 60 from the previous batch
    assert not ok2.any() and counts2["out_of_order"] == 1


def test_trade_only_ticks_are_accepted_as_quotes_at_the_trade_price():
    t = np.zeros(4, TICK_DTYPE)
    t["ts"] = [1, 2, 3, 4]
    t["bid"] = [np.nan, 1.0, np.nan, np.nan]
    t["ask"] = [np.nan, 1.1, np.nan, np.nan]
    t["bid_size"] = t["ask_size"] = np.nan
    t["bid_size"][1] = t["ask_size"][1] = 5
    t["last"] = [10.0, np.nan, np.nan, 11.0]
    t["last_size"] = [3.0, np.nan, np.nan, -1.0]
    ok, counts, _ = validate(t, None)
    assert ok.tolist() == [True, True, False, False]
    assert counts == {"bad_price": 1, "crossed": 0, "bad_size": 1, "out_of_order": 0}
    q = as_quotes(t[ok])
    assert q["bid"].tolist() == [10.0, 1.0] and q["ask"].tolist() == [10.0, 1.1]
    assert q["bid_size"].tolist() == [3.0, 5.0]
    quotes_only = t[1:2]
    assert as_quotes(quotes_only) is quotes_only
    unsized = t[1:2].copy()
    unsized["ask_size"] = np.nan  # a feed without sizes (TrueFX): accepted, unlimited at the quote
    ok, _, _ = validate(unsized, None)
    assert ok.all() and as_quotes(unsized)["ask_size"][0] == 1e12


def _validate_reference(t, last_ts):
    """ticktape.compute.quality's rules, one tick at a time."""
    ok, counts = [], dict.fromkeys(("bad_price", "crossed", "bad_size", "out_of_order"), 0)
    for r in t:
        quote = r["bid"] > 0 and r["ask"] > 0 and np.isfinite(r["bid"]) and np.isfinite(r["ask"])
        trade = r["last"] > 0 and np.isfinite(r["last"])
        sizes = [r["bid_size"], r["ask_size"], r["last_size"]]
        if not (quote or trade):
            reason = "bad_price"
        elif quote and r["bid"] > r["ask"]:
            reason = "crossed"
        elif any(v < 0 or v == np.inf for v in sizes):
            reason = "bad_size"
        elif last_ts is not None and r["ts"] < last_ts:
            reason = "out_of_order"
        else:
            reason = None
            last_ts = int(r["ts"])
        ok.append(reason is None)
        if reason:
            counts[reason] += 1
    return np.array(ok, dtype=bool), counts, last_ts


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 20),
            *[st.sampled_from([np.nan, -1.0, 0.0, 1.0, 2.0, np.inf]) for _ in range(6)],
        ),
        max_size=40,
    ),
    last_ts=st.one_of(st.none(), st.integers(0, 20)),
)
def test_validation_kernel_equals_the_rules(rows, last_ts):
    t = np.array(rows, dtype=[(n, "<i8" if n == "ts" else "<f8") for n in TICK_DTYPE.names]).astype(
        TICK_DTYPE
    )
    ok, counts, last = validate(t, last_ts)
    ok_ref, counts_ref, last_ref = _validate_reference(t, last_ts)
    assert ok.tolist() == ok_ref.tolist() and counts == counts_ref and last == last_ref


@pytest.mark.parametrize("tick_size", [0.01, 0.05, 0.25, 0.0001, 0.00001, 1.0, 5.0, 0.3, 0.125, 2.5])
def test_grid_prices_are_the_doubles_of_their_decimals(tick_size: float) -> None:
    k = np.arange(0, 2_000_000, 997, dtype=np.int64)
    got = grid_prices(k, tick_size)
    want = [float(Decimal(int(i)) * Decimal(repr(tick_size))) for i in k.tolist()]
    assert got.tolist() == want
