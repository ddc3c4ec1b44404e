"""Indicator math: pure functions on arrays and streaming forms with carry state.

Every indicator comes twice: a pure function on whole arrays (``sma``,
``ema``, ``wma``, ``rsi``, ``macd``, ``bollinger``, ``atr``, ``vwap``,
``zscore``, ``realized_vol``) and a streaming class (:data:`STREAMS`) that
consumes the same series batch by batch. The pure function *is* a fresh
stream fed the whole array, and every stream's output is bit-identical
(``np.array_equal(..., equal_nan=True)``) to the whole-array output for any
split of the input into batches; that is what makes a run independent of its
batch size. The loops run in C++ (``native/indicators.hpp``, built without
fused multiply-add); the formulas, seeding conventions and warm-up lengths are
stated in each docstring and tabulated in ``docs/indicators.md``.

Outputs are float64 arrays aligned with the input, NaN during warm-up.
Inputs must be finite (a NaN or infinite value raises ``ValueError`` naming
the column and the index, and leaves the stream unchanged).

Streaming protocol (all classes in :data:`STREAMS`)
---------------------------------------------------
* ``cls(**params)``: the same parameter names and defaults as the function;
  invalid values raise ``ValueError`` naming the parameter;
* ``cls.inputs``: the input column names, in the order ``update`` takes them;
* ``cls.outputs``: ``("value",)`` for single-output indicators, otherwise the
  keys of the dict ``update`` returns;
* ``update(*arrays)``: one ndarray (single output) or a dict name -> ndarray;
* ``to_state()`` -> JSON-serialisable dict (parameters and carry; floats
  round-trip exactly through :mod:`json`) and ``cls.from_state(state)``.

Examples
--------
>>> import json
>>> x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
>>> s = STREAMS["ema"](n=2)
>>> a = s.update(x[:3])
>>> s = STREAMS["ema"].from_state(json.loads(json.dumps(s.to_state())))
>>> np.array_equal(np.concatenate((a, s.update(x[3:]))), ema(x, 2), equal_nan=True)
True
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import ticktape._native as _native  # noqa: PLR0402 (the from-form reaches mypy through ticktape.__getattr__, in an import cycle: Any?)
from ticktape.model.batch import BAR_DTYPE

#: One day in nanoseconds: the default VWAP session (UTC days).
DAY_NS = 86_400_000_000_000


# ------------------------------------------------------------------ validation


def _int_param(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _column(name: str, values: Any, seen: int) -> np.ndarray:
    """``values`` as a 1-D float64 array of finite numbers (else ValueError naming the index)."""
    try:
        a = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an array of numbers: {e}") from None
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    ok = np.isfinite(a)
    if not ok.all():
        i = int(np.argmin(ok))
        raise ValueError(f"{name}[{i}] is {a[i]} (stream position {seen + i}): inputs must be finite")
    return a


def _same_length(columns: dict[str, np.ndarray]) -> int:
    (first, a), *rest = columns.items()
    for name, b in rest:
        if len(b) != len(a):
            raise ValueError(f"{name} has {len(b)} values but {first} has {len(a)}")
    return len(a)


def _positive(name: str, a: np.ndarray, seen: int) -> None:
    bad = a <= 0
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}] is {a[i]} (stream position {seen + i}): must be > 0")


# ------------------------------------------------------------------ base classes


class IndicatorStream:
    """Base of the streaming indicators (the protocol is in the module docstring)."""

    inputs: ClassVar[tuple[str, ...]] = ("x",)
    outputs: ClassVar[tuple[str, ...]] = ("value",)
    _params: ClassVar[tuple[str, ...]] = ("n",)

    def params(self) -> dict[str, Any]:
        """The constructor arguments of this stream."""
        return {p: getattr(self, p) for p in self._params}

    def update(self, *arrays: Any) -> np.ndarray | dict[str, np.ndarray]:
        raise NotImplementedError

    def _carry(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def to_state(self) -> dict[str, Any]:
        """Parameters and carry as a JSON-serialisable dict."""
        return {**self.params(), **self._carry()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Any:
        """Rebuild a stream from :meth:`to_state` output (ValueError if it does not fit)."""
        missing = [k for k in cls._params if k not in state]
        if missing:
            raise ValueError(f"{cls.__name__} state lacks {missing[0]!r}")
        stream = cls(**{k: state[k] for k in cls._params})
        stream._restore(state)
        return stream

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def _get(state: dict[str, Any], key: str) -> Any:
    try:
        return state[key]
    except KeyError:
        raise ValueError(f"indicator state lacks {key!r}") from None


class _NativeStream(IndicatorStream):
    """A recursive indicator whose carry is the public fields of a C++ state object."""

    _fields: ClassVar[tuple[str, ...]]
    _k: Any

    def _carry(self) -> dict[str, Any]:
        return {f: getattr(self._k, f) for f in self._fields}

    def _restore(self, state: dict[str, Any]) -> None:
        for f in self._fields:
            kind = type(getattr(self._k, f))
            value = _get(state, f)
            if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"indicator state {f!r} must be an integer >= 0, got {value!r}")
            setattr(self._k, f, kind(value))

    @property
    def seen(self) -> int:
        """Number of values consumed so far."""
        return int(self._k.seen)


class _WindowStream(IndicatorStream):
    """A rolling-window indicator: the carry is the last ``history`` inputs.

    Each window is evaluated from its own values and their stream positions
    only (see ``native/indicators.hpp``), so carrying the raw tail is enough
    for the output to be identical for any split.
    """

    _history_extra: ClassVar[int] = 0  # inputs needed beyond n - 1

    def __init__(self, n: int, minimum: int = 1) -> None:
        self.n = _int_param("n", n, minimum)
        self.seen = 0
        self._tails = [np.empty(0) for _ in range(self._ncols())]

    @classmethod
    def _ncols(cls) -> int:
        return 1

    @property
    def _history(self) -> int:
        return self.n - 1 + self._history_extra

    def _feed(self, cols: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
        """Prepend the carried tails; remember the new tails. Returns (buffers, g0)."""
        bufs = [np.concatenate((t, c)) if len(t) else c for t, c in zip(self._tails, cols, strict=True)]
        g0 = self.seen - len(self._tails[0])
        m = len(cols[0])
        keep = min(self._history, self.seen + m)
        self._tails = [b[len(b) - keep :].copy() for b in bufs]
        self.seen += m
        return bufs, g0

    _tail_names: ClassVar[tuple[str, ...]] = ("tail",)

    def _carry(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            **{k: t.tolist() for k, t in zip(self._tail_names, self._tails, strict=True)},
        }

    def _restore(self, state: dict[str, Any]) -> None:
        seen = _get(state, "seen")
        if isinstance(seen, bool) or not isinstance(seen, int) or seen < 0:
            raise ValueError(f"indicator state 'seen' must be an integer >= 0, got {seen!r}")
        want = min(self._history, seen)
        tails = []
        for k in self._tail_names:
            try:
                t = np.asarray(_get(state, k), dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"indicator state {k!r} must be a list of numbers") from None
            if t.shape != (want,) or not np.isfinite(t).all():
                raise ValueError(
                    f"indicator state {k!r} holds {t.size} values, expected {want} finite ones "
                    f"(the last min(seen, {self._history}) inputs)"
                )
            tails.append(t)
        self.seen = seen
        self._tails = tails


# ------------------------------------------------------------------ SMA


class SmaStream(_WindowStream):
    """Streaming simple moving average (see :func:`sma`).

    The carry is the last ``n - 1`` inputs and the number of values seen.
    """

    def __init__(self, n: int) -> None:
        super().__init__(n)

    def update(self, x: Any) -> np.ndarray:
        """Consume ``x``; return the SMA at each of its positions."""
        x = _column("x", x, self.seen)
        from_ = self.seen
        (buf,), g0 = self._feed([x])
        return _native.sma_window(buf, g0, from_, self.n)


def sma(x: Any, n: int) -> np.ndarray:
    """Simple moving average of the last ``n`` values, aligned with ``x``.

    ``sma[i] = sum(x[i-n+1 .. i]) / n``; NaN during warm-up (the first
    ``n - 1`` values). The window sum is the sum of two partial sums over
    blocks of ``n`` stream positions (``native/indicators.hpp``): O(1) per
    value, no running total that values are subtracted back out of (so no
    error growing with the stream length), and the same operations whatever
    the batch split.

    Examples
    --------
    >>> sma(np.array([1.0, 2.0, 3.0, 4.0]), 2).tolist()
    [nan, 1.5, 2.5, 3.5]
    """
    return SmaStream(n).update(x)


# ------------------------------------------------------------------ EMA


class EmaStream(_NativeStream):
    """Streaming exponential moving average (see :func:`ema`)."""

    _fields = ("seen", "sum", "value")

    def __init__(self, n: int) -> None:
        self.n = _int_param("n", n, 1)
        self._k = _native.EmaState(self.n)

    def update(self, x: Any) -> np.ndarray:
        """Consume ``x``; return the EMA at each of its positions."""
        return self._k.update(_column("x", x, self.seen))


def ema(x: Any, n: int) -> np.ndarray:
    """Exponential moving average with ``alpha = 2 / (n + 1)``, TA-Lib seeding.

    Convention (TA-Lib's default): the first value, at index ``n - 1``, is the
    simple mean of ``x[0 .. n-1]`` (summed left to right, divided by ``n``);
    afterwards ``ema[i] = (x[i] - ema[i-1]) * alpha + ema[i-1]``. NaN for the
    first ``n - 1`` values. (pandas' ``ewm(span=n, adjust=False)`` seeds with
    ``x[0]`` instead; the two converge as the seed's weight decays.)

    Examples
    --------
    >>> ema(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3).tolist()  # seed (1+2+3)/3; then (4-2)/2+2, (5-3)/2+3
    [nan, nan, 2.0, 3.0, 4.0]
    """
    return EmaStream(n).update(x)


# ------------------------------------------------------------------ WMA


class WmaStream(_WindowStream):
    """Streaming linearly weighted moving average (see :func:`wma`)."""

    def __init__(self, n: int) -> None:
        super().__init__(n)

    def update(self, x: Any) -> np.ndarray:
        """Consume ``x``; return the WMA at each of its positions."""
        x = _column("x", x, self.seen)
        from_ = self.seen
        (buf,), g0 = self._feed([x])
        return _native.wma_window(buf, g0, from_, self.n)


def wma(x: Any, n: int) -> np.ndarray:
    """Weighted moving average with linear weights 1 (oldest) .. n (newest).

    ``wma[i] = sum_{j=1..n} j * x[i-n+j] / (n (n + 1) / 2)`` (TA-Lib's WMA);
    NaN for the first ``n - 1`` values. Evaluated per window from block
    partial sums (``native/indicators.hpp``), never by subtracting values
    back out of a running total.

    Examples
    --------
    >>> wma(np.array([1.0, 2.0, 6.0]), 2).tolist()  # (1*1 + 2*2)/3, (1*2 + 2*6)/3
    [nan, 1.6666666666666667, 4.666666666666667]
    """
    return WmaStream(n).update(x)


# ------------------------------------------------------------------ RSI


class RsiStream(_NativeStream):
    """Streaming RSI (see :func:`rsi`)."""

    _fields = ("seen", "prev", "gain", "loss")

    def __init__(self, n: int = 14) -> None:
        self.n = _int_param("n", n, 1)
        self._k = _native.RsiState(self.n)

    def update(self, x: Any) -> np.ndarray:
        """Consume ``x``; return the RSI at each of its positions."""
        return self._k.update(_column("x", x, self.seen))


def rsi(x: Any, n: int = 14) -> np.ndarray:
    """Relative strength index with Wilder smoothing and TA-Lib seeding.

    With ``d[i] = x[i] - x[i-1]``, gains ``max(d, 0)`` and losses
    ``max(-d, 0)``: the first averages (at index ``n``) are the plain means
    of the first ``n`` gains and losses, then
    ``avg = (avg * (n - 1) + today) / n`` (Wilder's smoothing, i.e. an EMA
    with ``alpha = 1 / n``). ``rsi = 100 * avg_gain / (avg_gain + avg_loss)``,
    NaN for the first ``n`` values. When both averages are exactly 0 (no
    price change in the smoothing memory) the RSI is reported as 50; TA-Lib
    reports 0 whenever their sum is below 1e-8.

    Examples
    --------
    >>> rsi(np.array([1.0, 2.0, 1.5, 2.5]), 2).tolist()  # gains 1,0,1; losses 0,.5,0
    [nan, nan, 66.66666666666666, 85.71428571428571]

    (At index 2: 100 * (0.5 / (0.5 + 0.25)); at 3: gain (0.5 + 1)/2 = 0.75,
    loss 0.25/2 = 0.125, 100 * (0.75 / 0.875).)
    """
    return RsiStream(n).update(x)


# ------------------------------------------------------------------ MACD


class MacdStream(_NativeStream):
    """Streaming MACD (see :func:`macd`)."""

    outputs = ("macd", "signal", "hist")
    _params = ("fast", "slow", "signal")
    _fields = ("seen", "fast_sum", "fast_ema", "slow_sum", "slow_ema", "signal_sum", "signal_ema")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast = _int_param("fast", fast, 1)
        self.slow = _int_param("slow", slow, 1)
        self.signal = _int_param("signal", signal, 1)
        if self.fast >= self.slow:
            raise ValueError(f"fast must be < slow, got fast={self.fast}, slow={self.slow}")
        self._k = _native.MacdState(self.fast, self.slow, self.signal)

    def update(self, x: Any) -> dict[str, np.ndarray]:
        """Consume ``x``; return ``{"macd", "signal", "hist"}`` at each of its positions."""
        line, sig, hist = self._k.update(_column("x", x, self.seen))
        return {"macd": line, "signal": sig, "hist": hist}


def macd(
    x: Any, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moving average convergence/divergence, TA-Lib convention.

    Returns ``(macd, signal, hist)``. The slow EMA (``alpha = 2 / (slow+1)``)
    is seeded at index ``slow - 1`` with the mean of ``x[0 .. slow-1]``; the
    fast EMA is aligned with it: seeded at the same index with the mean of
    the last ``fast`` values ``x[slow-fast .. slow-1]`` (so it is not the
    stand-alone :func:`ema` of ``fast``, which starts at ``fast - 1``).
    ``macd = fast_ema - slow_ema``; ``signal`` is the TA-Lib-seeded EMA of
    ``macd`` over ``signal`` values; ``hist = macd - signal``. As in TA-Lib
    all three are NaN for the first ``slow + signal - 2`` values.

    Examples
    --------
    >>> m, s, h = macd(np.array([1.0, 2.0, 3.0, 5.0, 9.0, 17.0]), fast=1, slow=3, signal=3)
    >>> m.tolist()
    [nan, nan, nan, nan, 2.75, 5.375]
    >>> s.tolist(), h.tolist()
    ([nan, nan, nan, nan, 1.75, 3.5625], [nan, nan, nan, nan, 1.0, 1.8125])

    (Slow EMA, alpha 1/2: seed (1+2+3)/3 = 2 at index 2, then 3.5, 6.25,
    11.625; the fast EMA of length 1 is x itself, so the macd line is 1, 1.5,
    2.75, 5.375 from index 2; its signal is seeded at index 4 with
    (1+1.5+2.75)/3 = 1.75, then (5.375-1.75)/2+1.75 = 3.5625.)
    """
    out = MacdStream(fast, slow, signal).update(x)
    return out["macd"], out["signal"], out["hist"]


# ------------------------------------------------------------------ Bollinger


class BollingerStream(_WindowStream):
    """Streaming Bollinger bands (see :func:`bollinger`)."""

    outputs = ("upper", "middle", "lower")
    _params = ("n", "k")

    def __init__(self, n: int = 20, k: float = 2.0) -> None:
        super().__init__(n)
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not math.isfinite(k) or k < 0:
            raise ValueError(f"k must be a finite number >= 0, got {k!r}")
        self.k: float = float(k)

    def update(self, x: Any) -> dict[str, np.ndarray]:
        """Consume ``x``; return ``{"upper", "middle", "lower"}`` at each of its positions."""
        x = _column("x", x, self.seen)
        from_ = self.seen
        (buf,), g0 = self._feed([x])
        upper, middle, lower = _native.bollinger_window(buf, g0, from_, self.n, self.k)
        return {"upper": upper, "middle": middle, "lower": lower}


def bollinger(x: Any, n: int = 20, k: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands: ``(upper, middle, lower)``.

    ``middle`` is the SMA of ``n`` (bit-identical to :func:`sma`),
    ``upper/lower = middle ± k * sd`` with the *population* standard
    deviation of the window (``ddof=0``, as TA-Lib and most charting
    packages). NaN for the first ``n - 1`` values. The window's sum of
    squared deviations is computed with Welford updates and Chan's pairwise
    combination (``native/indicators.hpp``), not as ``E[x²] - E[x]²``, so a
    small spread on a large price level keeps its precision.

    Examples
    --------
    >>> up, mid, lo = bollinger(np.array([1.0, 3.0, 5.0]), n=2, k=2.0)
    >>> up.tolist(), mid.tolist(), lo.tolist()  # sd of (1, 3) is 1
    ([nan, 4.0, 6.0], [nan, 2.0, 4.0], [nan, 0.0, 2.0])
    """
    out = BollingerStream(n, k).update(x)
    return out["upper"], out["middle"], out["lower"]


# ------------------------------------------------------------------ ATR


class AtrStream(_NativeStream):
    """Streaming average true range (see :func:`atr`)."""

    inputs = ("high", "low", "close")
    _fields = ("seen", "prev_close", "sum", "value")

    def __init__(self, n: int = 14) -> None:
        self.n = _int_param("n", n, 1)
        self._k = _native.AtrState(self.n)

    def update(self, high: Any, low: Any, close: Any) -> np.ndarray:
        """Consume one batch of bars; return the ATR at each of them."""
        cols = {
            "high": _column("high", high, self.seen),
            "low": _column("low", low, self.seen),
            "close": _column("close", close, self.seen),
        }
        _same_length(cols)
        bad = cols["high"] < cols["low"]
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"high[{i}] = {cols['high'][i]} is below low[{i}] = {cols['low'][i]} "
                f"(stream position {self.seen + i})"
            )
        return self._k.update(cols["high"], cols["low"], cols["close"])


def atr(high: Any, low: Any, close: Any, n: int = 14) -> np.ndarray:
    """Average true range with Wilder smoothing and TA-Lib seeding.

    True range at ``i >= 1``: ``max(high - low, |high - close[i-1]|,
    |low - close[i-1]|)`` (none at ``i = 0``, which has no previous close).
    The first ATR, at index ``n``, is the mean of the first ``n`` true
    ranges; then ``atr = (atr * (n - 1) + tr) / n``. NaN for the first ``n``
    values. ``high >= low`` is required.

    Examples
    --------
    >>> atr([10.0, 11.0, 12.0, 11.0], [9.0, 10.0, 10.0, 8.0], [9.5, 10.5, 11.5, 9.0], n=2).tolist()
    [nan, nan, 1.75, 2.625]

    (True ranges: index 1 max(11-10, |11-9.5|, |10-9.5|) = 1.5; index 2
    max(2, |12-10.5|, |10-10.5|) = 2; index 3 max(3, |11-11.5|, |8-11.5|) =
    3.5. Seed (1.5 + 2)/2 = 1.75 at index 2, then (1.75 * 1 + 3.5)/2 = 2.625.)
    """
    return AtrStream(n).update(high, low, close)


# ------------------------------------------------------------------ VWAP


class VwapStream(IndicatorStream):
    """Streaming VWAP (see :func:`vwap`): rolling when ``n`` is given, else per session."""

    inputs = ("price", "volume", "ts")
    _params = ("n", "session_ns")

    def __init__(self, n: int | None = None, session_ns: int = DAY_NS) -> None:
        self.n = None if n is None else _int_param("n", n, 1)
        self.session_ns = _int_param("session_ns", session_ns, 1)
        if self.n is None:
            self._k = _native.VwapSessionState()
            self._last_ts: int | None = None
            self._seen = 0
        else:
            self._window = _VwapWindow(self.n)

    def update(self, price: Any, volume: Any, ts: Any = None) -> np.ndarray:
        """Consume one batch; ``ts`` (int64 ns since the epoch, or datetime64) is
        required for session VWAP and ignored by the rolling form."""
        seen = self.seen
        cols = {"price": _column("price", price, seen), "volume": _column("volume", volume, seen)}
        m = _same_length(cols)
        neg = cols["volume"] < 0
        if neg.any():
            i = int(np.argmax(neg))
            raise ValueError(f"volume[{i}] is {cols['volume'][i]} (stream position {seen + i}): must be >= 0")
        if self.n is not None:
            return self._window.update(cols["price"], cols["volume"])
        if ts is None:
            raise ValueError("ts is required for session VWAP (n=None)")
        t = np.asarray(ts)
        if t.dtype.kind == "M":
            t = t.astype("datetime64[ns]").view(np.int64)
        if t.ndim != 1 or t.dtype.kind not in "iu":
            raise ValueError(f"ts must be a 1-D array of integer nanoseconds, got {t.dtype} shape {t.shape}")
        t = t.astype(np.int64, copy=False)
        if len(t) != m:
            raise ValueError(f"ts has {len(t)} values but price has {m}")
        if m == 0:
            return np.empty(0)
        prev = np.concatenate(([t[0] if self._last_ts is None else self._last_ts], t[:-1]))
        back = t < prev
        if back.any():
            i = int(np.argmax(back))
            raise ValueError(
                f"ts[{i}] = {t[i]} is before the previous tick's {prev[i]}: ts must not decrease"
            )
        out = self._k.update(cols["price"], cols["volume"], t // self.session_ns)
        self._last_ts = int(t[-1])
        self._seen += m
        return out

    @property
    def seen(self) -> int:
        """Number of values consumed so far."""
        return self._seen if self.n is None else self._window.seen

    def _carry(self) -> dict[str, Any]:
        if self.n is not None:
            return self._window._carry()
        k = self._k
        return {"seen": self.seen, "last_ts": self._last_ts, "session": k.session, "pv": k.pv, "v": k.v}

    def _restore(self, state: dict[str, Any]) -> None:
        if self.n is not None:
            self._window._restore(state)
            return
        seen, last_ts = _get(state, "seen"), _get(state, "last_ts")
        if isinstance(seen, bool) or not isinstance(seen, int) or seen < 0:
            raise ValueError(f"indicator state 'seen' must be an integer >= 0, got {seen!r}")
        if (last_ts is None) != (seen == 0) or not (last_ts is None or isinstance(last_ts, int)):
            raise ValueError(f"indicator state 'last_ts' {last_ts!r} does not fit seen={seen}")
        self._seen, self._last_ts = seen, last_ts
        self._k.started = last_ts is not None
        self._k.session = int(_get(state, "session"))
        self._k.pv = float(_get(state, "pv"))
        self._k.v = float(_get(state, "v"))


class _VwapWindow(_WindowStream):
    """The rolling form of :class:`VwapStream` (carry: the last n - 1 prices and volumes)."""

    _tail_names = ("price_tail", "volume_tail")

    @classmethod
    def _ncols(cls) -> int:
        return 2

    def update(self, price: np.ndarray, volume: np.ndarray) -> np.ndarray:
        from_ = self.seen
        (p, v), g0 = self._feed([price, volume])
        return _native.vwap_window(p, v, g0, from_, self.n)


def vwap(
    price: Any, volume: Any, ts: Any = None, n: int | None = None, session_ns: int = DAY_NS
) -> np.ndarray:
    """Volume-weighted average price.

    With ``n``: rolling over the last ``n`` values,
    ``sum(price * volume) / sum(volume)`` (NaN for the first ``n - 1`` values
    and wherever the window's volume is 0; ``ts`` is not used). Without
    ``n``: cumulative since the start of the session, restarting at each
    session boundary; a tick's session is ``floor(ts / session_ns)`` with
    ``ts`` in ns since the epoch, i.e. sessions are UTC multiples of
    ``session_ns`` (default one UTC day). NaN while the session's volume is
    still 0. ``volume >= 0`` and non-decreasing ``ts`` are required.

    Examples
    --------
    >>> day = 86_400_000_000_000
    >>> vwap([10.0, 11.0, 12.0], [1.0, 3.0, 2.0], ts=[0, 5, day]).tolist()  # (10 + 33)/4; new day
    [10.0, 10.75, 12.0]
    >>> vwap([10.0, 11.0, 12.0], [1.0, 3.0, 2.0], n=2).tolist()  # (10+33)/4, (33+24)/5
    [nan, 10.75, 11.4]
    """
    return VwapStream(n, session_ns).update(price, volume, ts)


# ------------------------------------------------------------------ z-score


class ZscoreStream(_WindowStream):
    """Streaming rolling z-score (see :func:`zscore`)."""

    def __init__(self, n: int) -> None:
        super().__init__(n, minimum=2)

    def update(self, x: Any) -> np.ndarray:
        """Consume ``x``; return the z-score at each of its positions."""
        x = _column("x", x, self.seen)
        from_ = self.seen
        (buf,), g0 = self._feed([x])
        return _native.zscore_window(buf, g0, from_, self.n)


def zscore(x: Any, n: int) -> np.ndarray:
    """Rolling z-score ``(x[i] - mean) / sd`` over the window ``x[i-n+1 .. i]``.

    ``mean`` is the window's SMA and ``sd`` its population standard deviation
    (``ddof=0``, the same as :func:`bollinger`; so ``x`` on the upper band
    has z-score ``k``). NaN for the first ``n - 1`` values and where the
    window is flat (``sd == 0``). ``n >= 2``. The deviation and the variance
    are taken relative to a value of the window (``native/indicators.hpp``),
    so a small spread on a large price level keeps its precision.

    Examples
    --------
    >>> zscore(np.array([1.0, 3.0, 2.0, 2.0]), 2).tolist()  # (3 - 2)/1, (2 - 2.5)/0.5, flat
    [nan, 1.0, -1.0, nan]
    """
    return ZscoreStream(n).update(x)


# ------------------------------------------------------------------ realized volatility


class RealizedVolStream(_WindowStream):
    """Streaming realized volatility (see :func:`realized_vol`)."""

    _history_extra = 1  # n returns need n + 1 prices

    def __init__(self, n: int) -> None:
        super().__init__(n, minimum=2)

    def update(self, x: Any) -> np.ndarray:
        """Consume prices ``x``; return the realized volatility at each of its positions."""
        x = _column("x", x, self.seen)
        _positive("x", x, self.seen)
        from_ = self.seen
        (buf,), g0 = self._feed([x])
        return _native.realized_vol_window(buf, g0, from_, self.n)


def realized_vol(x: Any, n: int) -> np.ndarray:
    """Realized volatility: sample standard deviation (``ddof=1``) of the last
    ``n`` log returns ``log(x[i] / x[i-1])``, not annualized.

    NaN for the first ``n`` values (``n`` returns need ``n + 1`` prices);
    ``n >= 2``; prices must be > 0. The log is the C library's ``log``. To
    annualize, multiply by ``sqrt(periods per year)``, e.g.
    ``realized_vol(daily_close, 20) * sqrt(252)``; for ticks sampled every
    ``dt`` seconds, ``* sqrt(365.25 * 86400 / dt)`` (or the trading seconds
    per year of the market).

    Examples
    --------
    >>> e = np.exp(1.0)
    >>> realized_vol(np.array([1.0, e, 1.0, e]), 2).round(12).tolist()  # returns 1, -1, 1: sd = sqrt(2)
    [nan, nan, 1.414213562373, 1.414213562373]
    """
    return RealizedVolStream(n).update(x)


# ------------------------------------------------------------------ channel (highest / lowest)


class _ChannelStream(_WindowStream):
    """Extreme of the previous ``n`` values (the current one excluded)."""

    _history_extra = 1  # the window is x[i-n .. i-1]: n values before i
    _kernel: ClassVar[str]

    def __init__(self, n: int) -> None:
        super().__init__(n)

    def update(self, x: Any) -> np.ndarray:
        """Consume ``x``; return the extreme of the ``n`` values before each position."""
        x = _column("x", x, self.seen)
        from_ = self.seen
        (buf,), g0 = self._feed([x])
        return getattr(_native, self._kernel)(buf, g0, from_, self.n)


class HighestStream(_ChannelStream):
    """Streaming rolling maximum of the previous ``n`` values (see :func:`highest`)."""

    _kernel = "highest_window"


class LowestStream(_ChannelStream):
    """Streaming rolling minimum of the previous ``n`` values (see :func:`lowest`)."""

    _kernel = "lowest_window"


def highest(x: Any, n: int) -> np.ndarray:
    """Highest of the ``n`` values *before* each position (a Donchian channel's
    upper line; the current value is excluded so ``x > highest(x, n)`` means
    a new n-period high). NaN for the first ``n`` values.

    Examples
    --------
    >>> highest(np.array([1.0, 3.0, 2.0, 5.0]), 2).tolist()
    [nan, nan, 3.0, 3.0]
    """
    return HighestStream(n).update(x)


def lowest(x: Any, n: int) -> np.ndarray:
    """Lowest of the ``n`` values before each position (see :func:`highest`).

    Examples
    --------
    >>> lowest(np.array([4.0, 3.0, 2.0, 5.0]), 2).tolist()
    [nan, nan, 3.0, 2.0]
    """
    return LowestStream(n).update(x)


#: Streaming indicator classes by name (the names of the pure functions);
#: their constructors differ (``n``; ``fast``, ``slow``, ``signal``; ...).
STREAMS: dict[str, type[Any]] = {
    "sma": SmaStream,
    "ema": EmaStream,
    "wma": WmaStream,
    "rsi": RsiStream,
    "macd": MacdStream,
    "bollinger": BollingerStream,
    "atr": AtrStream,
    "vwap": VwapStream,
    "zscore": ZscoreStream,
    "realized_vol": RealizedVolStream,
    "highest": HighestStream,
    "lowest": LowestStream,
}


# ------------------------------------------------------------------ bars


@dataclass
class BarStream:
    """OHLC bars on the event-time grid (multiples of ``width_ns`` since the
    epoch), closed by event time only.

    A bar is emitted when the first tick of a later bar arrives (or at the end
    of the stream, :meth:`close`), never because wall-clock time passed: a
    replay of data from years ago gets every bar. The open bar is the carry
    state, so the bars are identical for any split of the stream.
    """

    width_ns: int
    open_bar: list[Any] | None = None  # [slot, open, high, low, close, ticks]

    def __post_init__(self) -> None:
        if self.width_ns < 1:
            raise ValueError(f"bar width must be >= 1 ns, got {self.width_ns}")

    def update(self, ts: np.ndarray, price: np.ndarray) -> np.ndarray:
        """Consume ticks; return the bars that closed (BAR_DTYPE)."""
        if len(ts) == 0:
            return np.empty(0, BAR_DTYPE)
        slot = ts // self.width_ns
        starts = np.concatenate(([0], np.flatnonzero(np.diff(slot)) + 1))
        groups = np.empty(len(starts), BAR_DTYPE)
        groups["ts"] = slot[starts] * self.width_ns
        groups["open"] = price[starts]
        groups["high"] = np.maximum.reduceat(price, starts)
        groups["low"] = np.minimum.reduceat(price, starts)
        groups["close"] = price[np.concatenate((starts[1:], [len(ts)])) - 1]
        groups["ticks"] = np.diff(np.concatenate((starts, [len(ts)])))
        closed = []
        if self.open_bar is not None:
            s0, o, h, lo, c, n = self.open_bar
            if s0 == int(slot[0]):  # the batch continues the open bar
                g = groups[0]
                g["open"], g["high"], g["low"] = o, max(h, g["high"]), min(lo, g["low"])
                g["ticks"] += n
            else:
                closed.append((s0 * self.width_ns, o, h, lo, c, n))
        last = groups[-1]
        self.open_bar = [
            int(slot[-1]),
            float(last["open"]),
            float(last["high"]),
            float(last["low"]),
            float(last["close"]),
            int(last["ticks"]),
        ]
        out = np.array(closed, dtype=BAR_DTYPE)
        return np.concatenate((out, groups[:-1]))

    def close(self) -> np.ndarray:
        """End of stream: emit the open bar, if any."""
        if self.open_bar is None:
            return np.empty(0, BAR_DTYPE)
        s0, o, h, lo, c, n = self.open_bar
        self.open_bar = None
        return np.array([(s0 * self.width_ns, o, h, lo, c, n)], dtype=BAR_DTYPE)

    def to_state(self) -> dict:
        return {"width_ns": self.width_ns, "open_bar": self.open_bar}

    @classmethod
    def from_state(cls, state: dict) -> BarStream:
        return cls(width_ns=int(state["width_ns"]), open_bar=state["open_bar"])


def bars(ts: np.ndarray, price: np.ndarray, width_ns: int) -> np.ndarray:
    """All OHLC bars of a whole series (the last one included).

    Examples
    --------
    >>> b = bars(np.array([0, 5, 10, 25]), np.array([1.0, 3.0, 2.0, 4.0]), 10)
    >>> b[["ts", "open", "high", "low", "close", "ticks"]].tolist()
    [(0, 1.0, 3.0, 1.0, 3.0, 2), (10, 2.0, 2.0, 2.0, 2.0, 1), (20, 4.0, 4.0, 4.0, 4.0, 1)]
    """
    stream = BarStream(width_ns)
    return np.concatenate((stream.update(np.asarray(ts), np.asarray(price, dtype=float)), stream.close()))
