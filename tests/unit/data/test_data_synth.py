"""Synthetic ticks from bars and from parameters: exact bars, determinism, streaming."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape import testing
from ticktape.data import synth
from ticktape.model.batch import TICK_DTYPE
from ticktape.testing import MINUTE as BAR_NS


def per_bar(ticks: np.ndarray, bars: np.ndarray) -> np.ndarray:
    return np.searchsorted(bars["ts"], ticks["ts"], side="right") - 1


def check_bars(ticks: np.ndarray, bars: np.ndarray) -> None:
    idx = per_bar(ticks, bars)
    assert np.all(np.diff(ticks["ts"]) >= 0)
    assert np.all((ticks["ts"] >= bars["ts"][idx]) & (ticks["ts"] < bars["ts"][idx] + BAR_NS))
    last = ticks["last"]
    assert np.all(last <= bars["high"][idx]) and np.all(last >= bars["low"][idx])
    starts = np.searchsorted(idx, np.arange(len(bars)))
    ends = np.searchsorted(idx, np.arange(len(bars)), side="right")
    assert np.all(ends - starts >= 4)
    np.testing.assert_array_equal(last[starts], bars["open"])
    np.testing.assert_array_equal(last[ends - 1], bars["close"])
    np.testing.assert_array_equal(np.maximum.reduceat(last, starts), bars["high"])
    np.testing.assert_array_equal(np.minimum.reduceat(last, starts), bars["low"])
    assert np.all(ticks["bid"] < ticks["ask"])
    assert np.all(ticks["bid_size"] >= 1) and np.all(ticks["last_size"] >= 1)


def test_bar_paths_hit_ohlc_exactly_and_stay_inside() -> None:
    bars = testing.bars(300)
    ticks = np.concatenate(list(synth.from_bars([bars], synth.BarSynthConfig(bar_ns=BAR_NS, seed=3))))
    assert ticks.dtype == TICK_DTYPE
    check_bars(ticks, bars)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 40), tpb=st.floats(0, 30))
def test_bar_paths_property(seed: int, m: int, tpb: float) -> None:
    bars = testing.bars(m, seed=seed % 1000)
    cfg = synth.BarSynthConfig(bar_ns=BAR_NS, seed=seed, ticks_per_bar=tpb)
    check_bars(np.concatenate(list(synth.from_bars([bars], cfg))), bars)


def test_flat_and_degenerate_bars() -> None:
    bars = testing.bars(5)
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = 50.0
    ticks = np.concatenate(list(synth.from_bars([bars], synth.BarSynthConfig(bar_ns=BAR_NS))))
    assert np.all(ticks["last"] == 50.0)


def test_inconsistent_bar_is_an_error() -> None:
    bars = testing.bars(3)
    bars["high"][1] = bars["low"][1] - 1
    with pytest.raises(ValueError, match="low <= open"):
        list(synth.from_bars([bars], synth.BarSynthConfig(bar_ns=BAR_NS)))


def test_same_seed_same_output_whatever_the_chunking() -> None:
    bars = testing.bars(5000)
    cfg = synth.BarSynthConfig(bar_ns=BAR_NS, seed=11)
    a = np.concatenate(list(synth.from_bars([bars], cfg, chunk=100_000)))
    b = np.concatenate(list(synth.from_bars([bars[:777], bars[777:]], cfg, chunk=3_333)))
    assert a.tobytes() == b.tobytes()
    c = np.concatenate(list(synth.from_bars([bars], synth.BarSynthConfig(bar_ns=BAR_NS, seed=12))))
    assert len(c) != len(a) or c.tobytes() != a.tobytes()


def test_tick_count_follows_volume() -> None:
    bars = testing.bars(400)
    bars["volume"][:200] = 100
    bars["volume"][200:] = 1000
    ticks = np.concatenate(
        list(synth.from_bars([bars], synth.BarSynthConfig(bar_ns=BAR_NS, ticks_per_bar=20)))
    )
    counts = np.bincount(per_bar(ticks, bars), minlength=len(bars))
    assert counts[200:].mean() > 5 * counts[:200].mean()


@pytest.mark.parametrize("regimes", [False, True])
def test_process_is_deterministic_and_chunk_independent(regimes: bool) -> None:
    cfg = synth.ProcessConfig(n_ticks=150_000, seed=5, regimes=regimes, p_news=1e-3)
    a = np.concatenate(list(synth.generate_process(cfg, chunk=100_000)))
    b = np.concatenate(list(synth.generate_process(cfg, chunk=9_999)))
    assert len(a) == 150_000
    assert a.tobytes() == b.tobytes()
    assert np.all(np.diff(a["ts"]) > 0)
    assert np.all(a["bid"] < a["ask"]) and np.all(a["bid"] > 0)
    ticks_off = np.round(a["bid"] / 0.01)
    np.testing.assert_allclose(ticks_off * 0.01, a["bid"], atol=1e-9)
    # prices as a feed sends them: the double of each decimal (99.99, not 99.99000000000001)
    for f in ("bid", "ask"):
        assert all(p == float(f"{p:.2f}") for p in a[f][:5_000].tolist()), f


def test_regimes_widen_returns_and_spreads() -> None:
    base = dict(n_ticks=100_000, seed=1, tick_size=1e-6, vol=1.0)
    calm = np.concatenate(list(synth.generate_process(synth.ProcessConfig(**base))))
    mixed = np.concatenate(
        list(synth.generate_process(synth.ProcessConfig(**base, regimes=True, p_news=2e-3, p_calm=2e-3)))
    )

    def moments(t: np.ndarray) -> tuple[float, float, float]:
        r = np.diff(np.log((t["bid"] + t["ask"]) / 2))
        return r.std(), ((r - r.mean()) ** 4).mean() / r.var() ** 2, float(np.mean(t["ask"] - t["bid"]))

    sd_c, kurt_c, spread_c = moments(calm)
    sd_m, kurt_m, spread_m = moments(mixed)
    assert sd_m > 1.5 * sd_c
    assert kurt_m > kurt_c  # a mixture of volatilities has fatter tails
    assert spread_m > spread_c


def test_depth_diffs_are_consistent_with_the_quotes() -> None:
    ticks = np.concatenate(list(synth.generate_process(synth.ProcessConfig(n_ticks=300, seed=2))))
    ev = synth.depth_diffs(ticks, levels=3)
    assert set(np.unique(ev["kind"])) == {10}
    # replaying the diffs gives the tick's best bid/ask after each tick
    book: dict[int, dict[float, float]] = {1: {}, -1: {}}
    j = 0
    for t in ticks:
        while j < len(ev) and ev["ts"][j] == t["ts"]:
            e = ev[j]
            px = round(float(e["price"]), 6)
            if e["size"] == 0:
                book[int(e["side"])].pop(px, None)
            else:
                book[int(e["side"])][px] = float(e["size"])
            j += 1
        assert max(book[1]) == pytest.approx(t["bid"]) and book[1][max(book[1])] == t["bid_size"]
        assert min(book[-1]) == pytest.approx(t["ask"])
        assert len(book[1]) == len(book[-1]) == 3


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1, exclude_max=True), max_size=80),
    st.booleans(),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_regime_path_is_the_tick_by_tick_chain(u: list, news: bool, p_news: float, p_calm: float) -> None:
    cur, expected = news, []
    for x in u:
        cur = (not cur) if x < (p_calm if cur else p_news) else cur
        expected.append(cur)
    got = synth._regime_path(np.array(u, dtype=np.float64), news, p_news, p_calm)
    assert got.tolist() == expected


def test_process_chunks_do_not_change_the_stream() -> None:
    for regimes in (False, True):
        cfg = synth.ProcessConfig(symbol="C", n_ticks=140_000, seed=9, regimes=regimes, p_news=1e-3)
        whole = list(synth.generate_process(cfg, chunk=140_000))
        parts = list(synth.generate_process(cfg, chunk=9_999))
        assert [len(p) for p in parts] == [9_999] * 14 + [140_000 - 14 * 9_999]
        assert np.concatenate(parts).tobytes() == whole[0].tobytes()
        assert np.isnan(whole[0]["last"]).all() and (np.diff(whole[0]["ts"]) > 0).all()


def test_synth_docstring_examples() -> None:
    result = doctest.testmod(synth)
    assert result.attempted > 0 and result.failed == 0
