"""Indicators: hand-computed values, textbook references, and streaming forms
that equal the whole-array functions bit for bit for any split."""

import inspect
import json
import math
import statistics
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.compute import indicators as ind
from ticktape.compute.indicators import STREAMS, BarStream, SmaStream, bars, sma

NAN = math.nan
NAMES = ("sma", "ema", "wma", "rsi", "macd", "bollinger", "atr", "vwap", "zscore", "realized_vol")


def required_params(cls, n=3):
    """The parameters a stream class has no default for (all of them are window lengths)."""
    return {
        p: n for p, v in inspect.signature(cls).parameters.items() if v.default is inspect.Parameter.empty
    }


def assert_same(got, want):
    """Bit-for-bit equality (NaN equal to NaN, -0.0 distinct from 0.0)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes(), (got, want)


def assert_close(got, want, rel=1e-12):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape
    assert (np.isnan(got) == np.isnan(want)).all(), (got, want)
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=rel, atol=0)


# ---------------------------------------------------------------- existing SMA tests


def test_sma_hand_computed():
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    np.testing.assert_array_equal(sma(x, 3), [np.nan, np.nan, 2.0, 3.0, 17 / 3])
    np.testing.assert_array_equal(sma(x, 1), x)
    assert np.isnan(sma(x, 6)).all()


@settings(max_examples=200, deadline=None)
@given(
    x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=300),
    n=st.integers(1, 40),
    cuts=st.lists(st.integers(0, 300), max_size=8),
)
def test_streaming_equals_whole_array_bit_for_bit(x, n, cuts):
    x = np.array(x, dtype=float)
    whole = sma(x, n)
    stream = SmaStream(n)
    parts = []
    for piece in np.split(x, sorted(c for c in cuts if c <= len(x))):
        stream = SmaStream.from_state(stream.to_state())  # state survives serialization
        parts.append(stream.update(piece))
    got = np.concatenate(parts) if parts else np.empty(0)
    assert got.tobytes() == whole.tobytes()


@settings(max_examples=100, deadline=None)
@given(x=st.lists(st.floats(1, 1000, allow_nan=False), min_size=1, max_size=200), n=st.integers(1, 30))
def test_sma_matches_the_definition(x, n):
    x = np.array(x)
    got = sma(x, n)
    for i in range(len(x)):
        if i < n - 1:
            assert np.isnan(got[i])
        else:
            assert abs(got[i] - x[i - n + 1 : i + 1].mean()) <= 1e-9 * max(1.0, abs(x).max())


# ---------------------------------------------------------------- hand-computed values


def test_ema_hand_computed():
    # n = 3: alpha = 2/4 = 0.5; seed at index 2 = (2 + 4 + 6)/3 = 4;
    # then (8 - 4)*0.5 + 4 = 6, (10 - 6)*0.5 + 6 = 8, (12 - 8)*0.5 + 8 = 10.
    x = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    assert_same(ind.ema(x, 3), [NAN, NAN, 4.0, 6.0, 8.0, 10.0])
    # n = 1: alpha = 1, the EMA is the input itself.
    assert_same(ind.ema(x, 1), x)
    # n = 2: alpha = 2/3; seed (1 + 4)/2 = 2.5; then (4 - 2.5)*2/3 + 2.5 = 3.5.
    assert_close(ind.ema([1.0, 4.0, 4.0], 2), [NAN, 2.5, 3.5], rel=1e-15)
    assert np.isnan(ind.ema(x, 7)).all()


def test_wma_hand_computed():
    # n = 3, weights 1, 2, 3 (newest heaviest), denominator 1 + 2 + 3 = 6:
    # index 2: (1*1 + 2*2 + 3*3)/6 = 14/6; index 3: (1*2 + 2*3 + 3*4)/6 = 20/6;
    # index 4: (1*3 + 2*4 + 3*10)/6 = 41/6.
    x = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert_same(ind.wma(x, 3), [NAN, NAN, 14 / 6, 20 / 6, 41 / 6])
    assert_same(ind.wma(x, 1), x)


def test_rsi_hand_computed():
    # changes +1, -0.5, +1, -0.5, +1; n = 3.
    # index 3: avg gain (1 + 0 + 1)/3 = 2/3, avg loss 0.5/3 = 1/6 -> 100 * (2/3)/(5/6) = 80
    # index 4 (-0.5): gain (2/3*2 + 0)/3 = 4/9, loss (1/6*2 + 0.5)/3 = 5/18 -> 100 * 8/13 = 61.538461538...
    # index 5 (+1): gain (4/9*2 + 1)/3 = 17/27, loss (5/18*2)/3 = 5/27 -> 100 * 17/22 = 77.272727...
    x = [10.0, 11.0, 10.5, 11.5, 11.0, 12.0]
    assert_close(ind.rsi(x, 3), [NAN, NAN, NAN, 80.0, 61.53846153846154, 77.27272727272727])
    # only rises -> 100, only falls -> 0, no movement at all -> 50 (stated convention)
    assert_same(ind.rsi([1.0, 2.0, 3.0, 4.0], 2), [NAN, NAN, 100.0, 100.0])
    assert_same(ind.rsi([4.0, 3.0, 2.0, 1.0], 2), [NAN, NAN, 0.0, 0.0])
    assert_same(ind.rsi([5.0, 5.0, 5.0], 2), [NAN, NAN, 50.0])


def test_macd_hand_computed():
    # fast = 1, slow = 3, signal = 3 (alphas 1, 1/2, 1/2; all values dyadic, so exact):
    # slow EMA: seed (1 + 2 + 3)/3 = 2 at index 2; (5-2)/2+2 = 3.5; (9-3.5)/2+3.5 = 6.25;
    #           (17-6.25)/2+6.25 = 11.625
    # fast EMA (length 1, seeded at index 2 with the mean of x[2..2]) = x
    # macd line from index 2: 3-2 = 1, 5-3.5 = 1.5, 9-6.25 = 2.75, 17-11.625 = 5.375
    # signal: seed (1 + 1.5 + 2.75)/3 = 1.75 at index 4; (5.375-1.75)/2+1.75 = 3.5625
    # output starts at slow + signal - 2 = 4 for all three (TA-Lib).
    m, s, h = ind.macd([1.0, 2.0, 3.0, 5.0, 9.0, 17.0], fast=1, slow=3, signal=3)
    assert_same(m, [NAN] * 4 + [2.75, 5.375])
    assert_same(s, [NAN] * 4 + [1.75, 3.5625])
    assert_same(h, [NAN] * 4 + [1.0, 1.8125])


def test_macd_fast_ema_is_aligned_with_the_slow_one():
    # fast = 2, slow = 4, signal = 1: the fast EMA is seeded at index 3 with
    # mean(x[2], x[3]) = (4 + 8)/2 = 6, not continued from index 1 as ema(x, 2) is.
    # slow seed at index 3: (1 + 2 + 4 + 8)/4 = 3.75 -> macd = 6 - 3.75 = 2.25.
    # index 4 (x = 16): fast (16 - 6)*2/3 + 6 = 12.666..., slow (16 - 3.75)*0.4 + 3.75 = 8.65.
    x = [1.0, 2.0, 4.0, 8.0, 16.0]
    m, s, h = ind.macd(x, fast=2, slow=4, signal=1)
    assert_close(m, [NAN, NAN, NAN, 2.25, 12.666666666666666 - 8.65])
    assert_same(s, m)  # a signal EMA of length 1 is the line itself
    assert_same(h, [NAN, NAN, NAN, 0.0, 0.0])
    standalone = ind.ema(x, 2)[3] - ind.ema(x, 4)[3]  # 7.0 - 3.75: differs
    assert standalone != m[3]


def test_bollinger_hand_computed():
    # n = 8 over the classic sample 2,4,4,4,5,5,7,9: mean 5, population variance
    # (9+1+1+1+0+0+4+16)/8 = 4, sd 2; k = 1.5 -> 5 ± 3.
    up, mid, lo = ind.bollinger([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], n=8, k=1.5)
    assert_same(up, [NAN] * 7 + [8.0])
    assert_same(mid, [NAN] * 7 + [5.0])
    assert_same(lo, [NAN] * 7 + [2.0])
    # n = 2, k = 2: windows (1, 3) and (3, 5) have sd 1.
    up, mid, lo = ind.bollinger([1.0, 3.0, 5.0], n=2, k=2.0)
    assert_same(up, [NAN, 4.0, 6.0])
    assert_same(mid, [NAN, 2.0, 4.0])
    assert_same(lo, [NAN, 0.0, 2.0])


def test_atr_hand_computed():
    # true ranges: index 1 max(11-10, |11-9.5|, |10-9.5|) = 1.5
    #              index 2 max(12-10, |12-10.5|, |10-10.5|) = 2
    #              index 3 max(11-8, |11-11.5|, |8-11.5|) = 3.5
    # n = 2: seed (1.5 + 2)/2 = 1.75 at index 2; Wilder (1.75*1 + 3.5)/2 = 2.625.
    high, low, close = [10.0, 11.0, 12.0, 11.0], [9.0, 10.0, 10.0, 8.0], [9.5, 10.5, 11.5, 9.0]
    assert_same(ind.atr(high, low, close, n=2), [NAN, NAN, 1.75, 2.625])
    # n = 1: the ATR is the true range itself.
    assert_same(ind.atr(high, low, close, n=1), [NAN, 1.5, 2.0, 3.5])


def test_vwap_hand_computed():
    price, volume = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 1.0, 2.0, 1.0, 3.0, 0.0]
    # sessions of 10 ns: ts 0, 3, 9 | 10, 15 | 25
    # session 0: pv 1, 3, 9 over v 1, 2, 4 -> 1, 1.5, 2.25
    # session 1: pv 4, 4 + 15 = 19 over v 1, 4 -> 4, 4.75; session 2: volume 0 -> NaN
    ts = [0, 3, 9, 10, 15, 25]
    assert_same(ind.vwap(price, volume, ts, session_ns=10), [1.0, 1.5, 2.25, 4.0, 4.75, NAN])
    # rolling n = 2: (1+2)/2, (2+6)/3, (6+4)/3, (4+15)/4, (15+0)/3
    assert_same(ind.vwap(price, volume, n=2), [NAN, 1.5, 8 / 3, 10 / 3, 4.75, 5.0])
    # a window with no volume has no VWAP
    assert_same(ind.vwap([1.0, 2.0, 3.0], [0.0, 0.0, 1.0], n=2), [NAN, NAN, 3.0])
    # default sessions are UTC days; ts may be datetime64
    days = np.array(["2024-01-01T23:59", "2024-01-02T00:00"], dtype="datetime64[ns]")
    assert_same(ind.vwap([1.0, 2.0], [1.0, 1.0], days), [1.0, 2.0])
    # before the epoch, sessions are still floor(ts / session_ns): -5 is in [-10, 0)
    assert_same(ind.vwap([1.0, 3.0, 5.0], [1.0, 1.0, 1.0], [-5, -1, 0], session_ns=10), [1.0, 2.0, 5.0])


def test_zscore_hand_computed():
    # n = 3; index 2: window 1,2,3, mean 2, population sd sqrt(2/3): (3 - 2)/sqrt(2/3) = 1.224744871391589
    # index 3: window 2,3,4 -> the same, 1.224744871391589
    # index 4: window 3,4,10, mean 17/3, squared deviations (64 + 25 + 169)/9 = 258/9,
    #          sd sqrt(258/27) = 3.0912061651652345, z = (13/3)/3.0912061651652345 = 1.4018...
    x = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert_close(ind.zscore(x, 3), [NAN, NAN, 1.224744871391589, 1.224744871391589, 1.4018260516446994])
    # a flat window has no z-score
    assert_same(ind.zscore([2.0, 2.0, 5.0], 2), [NAN, NAN, 1.0])


def test_realized_vol_hand_computed():
    # log returns ln(1.1), ln(0.9), ln(1.1) = 0.0953102, -0.1053605, 0.0953102
    # n = 2: the sample sd of two values a, b is |a - b| / sqrt(2) = 0.2006707 / 1.4142136 = 0.1418956
    x = [100.0, 110.0, 99.0, 108.9]
    want = abs(math.log(1.1) - math.log(0.9)) / math.sqrt(2)
    assert_close(ind.realized_vol(x, 2), [NAN, NAN, want, want], rel=1e-12)
    assert want == pytest.approx(0.1418956, rel=1e-6)
    # n = 3 (ddof = 1): mean of the three returns 0.0284199, deviations 0.0668902, -0.1337805, 0.0668902;
    # squares 0.0044743 + 0.0178972 + 0.0044743 = 0.0268458, / 2 = 0.0134229, sqrt = 0.1158573
    assert_close(ind.realized_vol(x, 3), [NAN, NAN, NAN, 0.1158573], rel=1e-6)


# ---------------------------------------------------------------- textbook references


def ref_sma(x, n):
    return [NAN if i < n - 1 else sum(x[i - n + 1 : i + 1]) / n for i in range(len(x))]


def ref_ema_series(x, n, start=0):
    """Textbook EMA of x[start:], seeded with the mean of its first n values; aligned with x."""
    a = 2 / (n + 1)
    out, prev = [NAN] * len(x), None
    for i in range(start, len(x)):
        if i - start == n - 1:
            prev = sum(x[start : start + n]) / n
        elif i - start >= n:
            prev = a * x[i] + (1 - a) * prev
        out[i] = NAN if prev is None else prev
    return out


def ref_wma(x, n):
    w = range(1, n + 1)
    return [
        NAN if i < n - 1 else sum(wi * xi for wi, xi in zip(w, x[i - n + 1 : i + 1], strict=True)) / sum(w)
        for i in range(len(x))
    ]


def ref_rsi(x, n):
    out = [NAN] * len(x)
    ag = al = 0.0
    for i in range(1, len(x)):
        d = x[i] - x[i - 1]
        g, lo = max(d, 0.0), max(-d, 0.0)
        if i <= n:
            ag, al = ag + g / n, al + lo / n
        else:
            ag, al = (ag * (n - 1) + g) / n, (al * (n - 1) + lo) / n
        if i >= n:
            out[i] = 50.0 if ag == al == 0 else 100.0 if al == 0 else 100 - 100 / (1 + ag / al)
    return out


def ref_macd(x, fast, slow, signal):
    slow_ema = ref_ema_series(x, slow)
    fast_ema = ref_ema_series(x, fast, start=slow - fast)
    line = [f - s for f, s in zip(fast_ema, slow_ema, strict=True)]
    sig = ref_ema_series(line, signal, start=slow - 1)
    first = slow + signal - 2
    keep = [NAN] * first
    return (
        keep + line[first:],
        keep + sig[first:],
        keep + [a - b for a, b in zip(line[first:], sig[first:], strict=True)],
    )


def ref_bollinger(x, n, k):
    up, mid, lo = [], [], []
    for i in range(len(x)):
        if i < n - 1:
            up.append(NAN), mid.append(NAN), lo.append(NAN)
            continue
        w = x[i - n + 1 : i + 1]
        m, sd = statistics.fmean(w), statistics.pstdev(w)
        up.append(m + k * sd), mid.append(m), lo.append(m - k * sd)
    return up, mid, lo


def ref_atr(h, lo, c, n):
    tr = [NAN] + [max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, len(c))]
    out, prev = [NAN] * len(c), None
    for i in range(n, len(c)):
        prev = sum(tr[1 : n + 1]) / n if i == n else (prev * (n - 1) + tr[i]) / n
        out[i] = prev
    return out


def ref_vwap_session(p, v, ts, session_ns):
    out, pv, vol, cur = [], 0.0, 0.0, None
    for pi, vi, ti in zip(p, v, ts, strict=True):
        if ti // session_ns != cur:
            cur, pv, vol = ti // session_ns, 0.0, 0.0
        pv, vol = pv + pi * vi, vol + vi
        out.append(pv / vol if vol > 0 else NAN)
    return out


def ref_vwap_rolling(p, v, n):
    out = []
    for i in range(len(p)):
        vol = sum(v[max(0, i - n + 1) : i + 1])
        pv = sum(a * b for a, b in zip(p[i - n + 1 : i + 1], v[i - n + 1 : i + 1], strict=True))
        out.append(NAN if i < n - 1 or vol == 0 else pv / vol)
    return out


def ref_zscore(x, n):
    out = []
    for i in range(len(x)):
        w = x[i - n + 1 : i + 1]
        out.append(NAN if i < n - 1 else (x[i] - statistics.fmean(w)) / statistics.pstdev(w))
    return out


def ref_realized_vol(x, n):
    r = [NAN] + [math.log(x[i] / x[i - 1]) for i in range(1, len(x))]
    return [NAN if i < n else statistics.stdev(r[i - n + 1 : i + 1]) for i in range(len(x))]


def random_walk(seed, m=400, level=100.0):
    rng = np.random.default_rng(seed)
    return level * np.exp(np.cumsum(rng.normal(0, 0.01, m)))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 2, 5, 14, 50])
def test_moving_averages_and_rsi_match_the_textbook(seed, n):
    x = random_walk(seed)
    xl = x.tolist()
    assert_close(ind.sma(x, n), ref_sma(xl, n))
    assert_close(ind.ema(x, n), ref_ema_series(xl, n))
    assert_close(ind.wma(x, n), ref_wma(xl, n))
    assert_close(ind.rsi(x, n), ref_rsi(xl, n), rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (3, 10, 5), (1, 2, 1), (5, 6, 30)])
def test_macd_matches_the_textbook(seed, fast, slow, signal):
    x = random_walk(seed)
    got = ind.macd(x, fast, slow, signal)
    for g, r in zip(got, ref_macd(x.tolist(), fast, slow, signal), strict=True):
        # macd, signal and hist are differences of ~100-sized EMAs: compare on the price scale
        assert (np.isnan(g) == np.isnan(r)).all()
        np.testing.assert_allclose(g, r, rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [2, 5, 20, 64])
def test_window_statistics_match_the_textbook(seed, n):
    x = random_walk(seed)
    xl = x.tolist()
    up, mid, lo = ind.bollinger(x, n, 2.5)
    for g, r in zip((up, mid, lo), ref_bollinger(xl, n, 2.5), strict=True):
        assert_close(g, r)
    assert_close(ind.zscore(x, n), ref_zscore(xl, n), rel=1e-9)
    assert_close(ind.realized_vol(x, n), ref_realized_vol(xl, n), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_channel_matches_the_textbook(seed, n):
    x = random_walk(seed)
    want_hi = [NAN if i < n else max(x[i - n : i]) for i in range(len(x))]
    want_lo = [NAN if i < n else min(x[i - n : i]) for i in range(len(x))]
    assert_same(ind.highest(x, n), want_hi)  # max and min are exact
    assert_same(ind.lowest(x, n), want_lo)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [1, 3, 14, 40])
def test_atr_and_vwap_match_the_textbook(seed, n):
    rng = np.random.default_rng(seed)
    close = random_walk(seed)
    high = close + rng.uniform(0, 1, len(close))
    low = close - rng.uniform(0, 1, len(close))
    assert_close(ind.atr(high, low, close, n), ref_atr(high.tolist(), low.tolist(), close.tolist(), n))
    volume = rng.choice([0.0, 1.0, 2.5, 100.0], len(close))
    ts = np.cumsum(rng.integers(0, 30, len(close)))
    got = ind.vwap(close, volume, ts, session_ns=97)
    assert_close(got, ref_vwap_session(close.tolist(), volume.tolist(), ts.tolist(), 97))
    assert_close(ind.vwap(close, volume, n=n), ref_vwap_rolling(close.tolist(), volume.tolist(), n))


def test_bollinger_middle_is_the_sma_and_zscore_is_in_band_units():
    x = random_walk(3, 2000)
    up, mid, _ = ind.bollinger(x, 30, 2.0)
    assert_same(mid, ind.sma(x, 30))
    z = ind.zscore(x, 30)
    ok = ~np.isnan(z)
    np.testing.assert_allclose(((x - mid) / ((up - mid) / 2.0))[ok], z[ok], rtol=1e-9)


def exact_window_std(values):
    """Population sd of a window, in exact rational arithmetic up to the final sqrt."""
    fr = [Fraction(v) for v in values]
    mean = sum(fr) / len(fr)
    return math.sqrt(sum((v - mean) ** 2 for v in fr) / len(fr))


def test_variance_keeps_precision_on_a_large_price_level():
    # a 1e-4 spread on a 1e8 level: E[x^2] - E[x]^2 in doubles loses every digit
    rng = np.random.default_rng(7)
    x = 1e8 + rng.normal(0, 1e-4, 3000)
    n, k = 50, 1e6  # a wide band, so mid - lower (~ 90) is not itself swamped by rounding at 1e8
    _, mid, lo = ind.bollinger(x, n, k)
    for i in (n - 1, 1234, 2999):
        w = x[i - n + 1 : i + 1]
        want = exact_window_std(w)
        assert (mid[i] - lo[i]) / k == pytest.approx(want, rel=1e-7)
        naive = math.sqrt(max(0.0, float(np.mean(w * w) - np.mean(w) ** 2)))
        assert abs(naive - want) > 0.1 * want  # what the test guards against


def test_zscore_keeps_precision_on_a_large_price_level():
    rng = np.random.default_rng(9)
    x = 1e8 + rng.normal(0, 1e-4, 500)
    n = 40
    z = ind.zscore(x, n)
    for i in (n - 1, 250, 499):
        w = [Fraction(v) for v in x[i - n + 1 : i + 1]]
        mean = sum(w) / n
        want = float(Fraction(x[i]) - mean) / math.sqrt(sum((v - mean) ** 2 for v in w) / n)
        assert z[i] == pytest.approx(want, rel=1e-7, abs=1e-9)


def test_rolling_sums_do_not_drift_over_a_long_stream():
    # window means late in a long stream are as accurate as early ones (no running total)
    rng = np.random.default_rng(8)
    x = 1e6 + rng.normal(0, 1, 2_000_000)
    n = 10
    got = ind.sma(x, n)
    for i in (n - 1, 1_999_999):
        exact = float(sum(Fraction(v) for v in x[i - n + 1 : i + 1]) / n)
        assert abs(got[i] - exact) <= 4 * np.spacing(exact)


# ---------------------------------------------------------------- split invariance and state


def _outputs(cls, result):
    return [result] if len(cls.outputs) == 1 else [result[k] for k in cls.outputs]


@st.composite
def indicator_cases(draw):
    """(name, params, columns) with valid random inputs for one indicator."""
    name = draw(st.sampled_from(sorted(STREAMS)))
    m = draw(st.integers(0, 120))
    price = draw(
        st.lists(
            st.one_of(st.floats(0.5, 2.0), st.floats(1e-3, 1e6), st.sampled_from([1.0, 100.0])),
            min_size=m,
            max_size=m,
        )
    )
    x = np.array(price)
    if name not in {"realized_vol", "vwap", "atr"} and draw(st.booleans()):
        x = x - draw(st.floats(0, 1e6))  # negative values are fine where no log is taken
    n = draw(st.integers(2 if name in {"zscore", "realized_vol"} else 1, 25))
    if name == "macd":
        fast = draw(st.integers(1, 10))
        params = {"fast": fast, "slow": draw(st.integers(fast + 1, 20)), "signal": draw(st.integers(1, 10))}
    elif name == "bollinger":
        params = {"n": n, "k": draw(st.sampled_from([0.0, 1.0, 2.0, 2.5]))}
    elif name == "vwap":
        params = {"n": draw(st.one_of(st.none(), st.just(n))), "session_ns": draw(st.integers(1, 50))}
    else:
        params = {"n": n}
    spread = np.array(draw(st.lists(st.floats(0, 10), min_size=m, max_size=m)))
    columns = {
        "x": x,
        "high": x + spread,
        "low": x - spread[::-1],
        "close": x,
        "price": x,
        "volume": np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 3.5, 1e4]), min_size=m, max_size=m))),
        "ts": np.cumsum(np.array(draw(st.lists(st.integers(0, 20), min_size=m, max_size=m)), dtype=np.int64)),
    }
    return name, params, [columns[c] for c in STREAMS[name].inputs]


@settings(max_examples=400, deadline=None)
@given(case=indicator_cases(), cuts=st.lists(st.integers(0, 120), max_size=8))
def test_every_stream_equals_the_whole_array_for_any_split(case, cuts):
    name, params, cols = case
    cls = STREAMS[name]
    whole = _outputs(cls, cls(**params).update(*cols))
    stream = cls(**params)
    parts = []
    for idx in np.split(np.arange(len(cols[0])), sorted(c for c in cuts if c <= len(cols[0]))):
        stream = cls.from_state(json.loads(json.dumps(stream.to_state())))
        parts.append(_outputs(cls, stream.update(*(c[idx] for c in cols))))
    for k, want in enumerate(whole):
        assert_same(np.concatenate([p[k] for p in parts]), want)
        assert len(want) == len(cols[0])
    assert stream.seen == len(cols[0])


@settings(max_examples=150, deadline=None)
@given(case=indicator_cases(), cut=st.integers(0, 120))
def test_state_round_trips_through_json(case, cut):
    name, params, cols = case
    cls = STREAMS[name]
    stream = cls(**params)
    stream.update(*(c[:cut] for c in cols))
    text = json.dumps(stream.to_state())
    again = cls.from_state(json.loads(text))
    assert json.dumps(again.to_state()) == text
    assert again.params() == stream.params() == params
    rest = [c[cut:] for c in cols]
    for a, b in zip(_outputs(cls, again.update(*rest)), _outputs(cls, stream.update(*rest)), strict=True):
        assert_same(a, b)


def test_the_pure_functions_and_the_registry_agree():
    x = random_walk(4, 300)
    h, lo = x + 0.5, x - 0.5
    ts = np.arange(300) * 1_000_000_000_000
    v = np.linspace(0, 5, 300)
    assert_same(STREAMS["sma"](n=7).update(x), ind.sma(x, 7))
    assert_same(STREAMS["ema"](n=7).update(x), ind.ema(x, 7))
    assert_same(STREAMS["wma"](n=7).update(x), ind.wma(x, 7))
    assert_same(STREAMS["rsi"]().update(x), ind.rsi(x))
    assert_same(STREAMS["atr"]().update(h, lo, x), ind.atr(h, lo, x))
    assert_same(STREAMS["vwap"]().update(x, v, ts), ind.vwap(x, v, ts))
    assert_same(STREAMS["zscore"](n=7).update(x), ind.zscore(x, 7))
    assert_same(STREAMS["realized_vol"](n=7).update(x), ind.realized_vol(x, 7))
    m = STREAMS["macd"]().update(x)
    assert list(m) == ["macd", "signal", "hist"]
    for a, b in zip(m.values(), ind.macd(x), strict=True):
        assert_same(a, b)
    b = STREAMS["bollinger"]().update(x)
    assert list(b) == ["upper", "middle", "lower"]
    for a, c in zip(b.values(), ind.bollinger(x), strict=True):
        assert_same(a, c)


def test_registry_protocol():
    assert set(NAMES) <= set(STREAMS)
    for name, cls in STREAMS.items():  # every registered stream follows the protocol
        assert cls.outputs == {
            "macd": ("macd", "signal", "hist"),
            "bollinger": ("upper", "middle", "lower"),
        }.get(name, ("value",))
        assert cls.inputs == {"atr": ("high", "low", "close"), "vwap": ("price", "volume", "ts")}.get(
            name, ("x",)
        )
        empty = cls(**required_params(cls))
        for out in _outputs(
            cls, empty.update(*(np.empty(0, dtype=np.int64 if c == "ts" else float) for c in cls.inputs))
        ):
            assert out.shape == (0,) and out.dtype == np.float64


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("sma", {"n": 0}, "n must be >= 1"),
        ("ema", {"n": -3}, "n must be >= 1"),
        ("wma", {"n": 2.5}, "n must be an integer"),
        ("rsi", {"n": True}, "n must be an integer"),
        ("atr", {"n": 0}, "n must be >= 1"),
        ("macd", {"fast": 0}, "fast must be >= 1"),
        ("macd", {"slow": 0}, "slow must be >= 1"),
        ("macd", {"signal": 0}, "signal must be >= 1"),
        ("macd", {"fast": 26, "slow": 12}, "fast must be < slow"),
        ("macd", {"fast": 12, "slow": 12}, "fast must be < slow"),
        ("bollinger", {"n": 0}, "n must be >= 1"),
        ("bollinger", {"k": -1.0}, "k must be a finite number >= 0"),
        ("bollinger", {"k": math.inf}, "k must be a finite number >= 0"),
        ("bollinger", {"k": "2"}, "k must be a finite number >= 0"),
        ("vwap", {"n": 0}, "n must be >= 1"),
        ("vwap", {"session_ns": 0}, "session_ns must be >= 1"),
        ("zscore", {"n": 1}, "n must be >= 2"),
        ("realized_vol", {"n": 1}, "n must be >= 2"),
    ],
)
def test_invalid_parameters_are_named(name, params, message):
    if name in {"sma", "ema", "wma", "zscore", "realized_vol"}:
        params = {"n": 5, **params}
    with pytest.raises(ValueError, match=message):
        STREAMS[name](**params)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: ind.sma([1.0, np.nan, 2.0], 2),
            r"x\[1\] is nan \(stream position 1\): inputs must be finite",
        ),
        (lambda: ind.ema([1.0, 2.0, np.inf], 2), r"x\[2\] is inf"),
        (lambda: ind.rsi([[1.0, 2.0]], 2), "x must be one-dimensional"),
        (lambda: ind.wma(["a"], 2), "x must be an array of numbers"),
        (lambda: ind.atr([2.0, 3.0], [1.0, 3.5], [1.5, 3.0], 1), r"high\[1\] = 3.0 is below low\[1\] = 3.5"),
        (lambda: ind.atr([2.0, 3.0], [1.0], [1.5, 3.0], 1), "low has 1 values but high has 2"),
        (lambda: ind.vwap([1.0, 2.0], [1.0, -1.0], [0, 1]), r"volume\[1\] is -1.0 .*must be >= 0"),
        (
            lambda: ind.vwap([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [0, 5, 4]),
            r"ts\[2\] = 4 is before the previous tick's 5",
        ),
        (lambda: ind.vwap([1.0], [1.0]), "ts is required for session VWAP"),
        (lambda: ind.vwap([1.0], [1.0], [0.5]), "ts must be a 1-D array of integer nanoseconds"),
        (lambda: ind.vwap([1.0, 2.0], [1.0, 1.0], [0]), "ts has 1 values but price has 2"),
        (lambda: ind.realized_vol([1.0, 0.0, 2.0], 2), r"x\[1\] is 0.0 .*must be > 0"),
        (lambda: ind.realized_vol([1.0, -2.0], 2), r"x\[1\] is -2.0"),
    ],
)
def test_invalid_inputs_are_named_with_their_index(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_a_rejected_batch_leaves_the_stream_unchanged(name):
    cls = STREAMS[name]
    params = required_params(cls)
    x = random_walk(5, 20)
    cols = {
        "x": x,
        "high": x + 1,
        "low": x - 1,
        "close": x,
        "price": x,
        "volume": np.ones(20),
        "ts": np.arange(20),
    }
    args = [cols[c] for c in cls.inputs]
    whole = _outputs(cls, cls(**params).update(*args))
    stream = cls(**params)
    first = _outputs(cls, stream.update(*(a[:8] for a in args)))
    bad = [a[8:].copy() for a in args]
    bad[0][3] = np.nan
    with pytest.raises(ValueError, match=rf"{cls.inputs[0]}\[3\] is nan \(stream position 11\)"):
        stream.update(*bad)
    rest = _outputs(cls, stream.update(*(a[8:] for a in args)))
    for k, want in enumerate(whole):
        assert_same(np.concatenate((first[k], rest[k])), want)


def test_session_vwap_rejects_time_going_back_across_batches():
    s = STREAMS["vwap"]()
    s.update([1.0], [1.0], [5])
    with pytest.raises(ValueError, match=r"ts\[0\] = 4 is before the previous tick's 5"):
        s.update([1.0], [1.0], [4])


@pytest.mark.parametrize(
    ("name", "state", "message"),
    [
        ("sma", {"n": 3, "seen": 5, "tail": [1.0]}, "'tail' holds 1 values, expected 2"),
        (
            "sma",
            {"n": 3, "seen": 5, "tail": [0.0, 1.0, 3.0, 6.0]},
            "'tail' holds 4 values",
        ),  # old running-sum state
        ("sma", {"seen": 0, "tail": []}, "SmaStream state lacks 'n'"),
        ("wma", {"n": 3, "seen": 5, "tail": [1.0, NAN]}, "'tail' holds 2 values, expected 2 finite ones"),
        ("zscore", {"n": 3, "seen": 5, "tail": ["a", 1.0]}, "'tail' must be a list of numbers"),
        ("ema", {"n": 3, "seen": -1, "sum": 0.0, "value": NAN}, "'seen' must be an integer >= 0"),
        ("rsi", {"n": 3, "seen": 0, "prev": NAN, "gain": 0.0}, "lacks 'loss'"),
        (
            "vwap",
            {"n": None, "session_ns": 10, "seen": 2, "last_ts": None, "session": 0, "pv": 0, "v": 0},
            "last_ts",
        ),
        (
            "vwap",
            {"n": 2, "session_ns": 10, "seen": 2, "price_tail": [1.0], "volume_tail": []},
            "'volume_tail' holds 0",
        ),
    ],
)
def test_inconsistent_states_are_rejected(name, state, message):
    with pytest.raises(ValueError, match=message):
        STREAMS[name].from_state(state)


def test_bars_hand_computed_and_closed_by_event_time_only():
    s = BarStream(10)
    assert len(s.update(np.array([0, 5]), np.array([1.0, 3.0]))) == 0  # bar [0, 10) still open
    closed = s.update(np.array([12, 31]), np.array([2.0, 4.0]))
    assert closed[["ts", "open", "high", "low", "close", "ticks"]].tolist() == [
        (0, 1.0, 3.0, 1.0, 3.0, 2),
        (10, 2.0, 2.0, 2.0, 2.0, 1),
    ]
    assert s.close()[["ts", "close", "ticks"]].tolist() == [(30, 4.0, 1)]


@settings(max_examples=150, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 40), min_size=0, max_size=200),
    prices=st.data(),
    width=st.integers(1, 50),
    cuts=st.lists(st.integers(0, 200), max_size=6),
)
def test_streaming_bars_equal_whole_series_bars_for_any_split(gaps, prices, width, cuts):
    ts = np.cumsum(np.array(gaps, dtype=np.int64)) - 1_000  # also before the epoch
    px = np.array(prices.draw(st.lists(st.floats(1, 100), min_size=len(ts), max_size=len(ts))), dtype=float)
    whole = bars(ts, px, width)
    stream, parts = BarStream(width), []
    for idx in np.split(np.arange(len(ts)), sorted(c for c in cuts if c <= len(ts))):
        stream = BarStream.from_state(stream.to_state())
        parts.append(stream.update(ts[idx], px[idx]))
    parts.append(stream.close())
    got = np.concatenate(parts)
    assert got.tobytes() == whole.tobytes()
    assert got["ticks"].sum() == len(ts)
    assert (np.diff(got["ts"]) > 0).all() and (got["ts"] % width == 0).all()
