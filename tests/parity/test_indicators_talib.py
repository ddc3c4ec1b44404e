"""ticktape.compute.indicators agrees with TA-Lib (the `TA-Lib` package, C library bundled in its wheels).

Same conventions (seeding, warm-up, population sd, MACD alignment), so the NaN
patterns must be identical and the values equal to rounding (EMA and the MACD
line perform TA-Lib's operations in the same order; the rare last-bit
differences come from the wheel's compiler contracting them into fused
multiply-adds, which our build forbids).
"""

import numpy as np
import pytest

talib = pytest.importorskip("talib", reason="TA-Lib is not installed (pip install TA-Lib)")

from ticktape.compute import indicators as ind  # noqa: E402


def same_warmup_and_close(got, want, rtol=1e-12, atol=0.0):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=rtol, atol=atol)


@pytest.fixture(scope="module", params=[0, 1, 2])
def bars(request):
    rng = np.random.default_rng(request.param)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 3000)))
    return close + rng.uniform(0, 0.5, 3000), close - rng.uniform(0, 0.5, 3000), close


@pytest.mark.parametrize("n", [1, 2, 5, 14, 30, 200])
def test_moving_averages(bars, n):
    *_, x = bars
    same_warmup_and_close(ind.sma(x, n), talib.SMA(x, n))
    same_warmup_and_close(ind.ema(x, n), talib.EMA(x, n), rtol=1e-14)
    same_warmup_and_close(ind.wma(x, n), talib.WMA(x, n))


@pytest.mark.parametrize("n", [2, 5, 14, 30])
def test_rsi_and_atr(bars, n):
    high, low, close = bars
    same_warmup_and_close(ind.rsi(close, n), talib.RSI(close, n), rtol=1e-10)
    same_warmup_and_close(ind.atr(high, low, close, n), talib.ATR(high, low, close, n))


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (3, 10, 16), (2, 3, 1), (5, 35, 5)])
def test_macd(bars, fast, slow, signal):
    *_, x = bars
    got = ind.macd(x, fast, slow, signal)
    want = talib.MACD(x, fast, slow, signal)
    for g, w in zip(got, want, strict=True):
        same_warmup_and_close(g, w, rtol=0, atol=1e-12)  # differences of ~100-sized EMAs, around 0


@pytest.mark.parametrize(("n", "k"), [(2, 2.0), (20, 2.0), (50, 1.5)])
def test_bollinger(bars, n, k):
    *_, x = bars
    got = ind.bollinger(x, n, k)
    want = talib.BBANDS(x, n, k, k, 0)  # matype 0 = SMA, population sd
    for g, w in zip(got, want, strict=True):
        same_warmup_and_close(g, w, rtol=1e-11)
