"""Indicator math: pure functions on arrays and streaming forms with carry state.

The streaming forms give bit-identical output to the whole-array functions for
any split of the input into batches; that is what makes a run independent of
its batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ticktape.batch import BAR_DTYPE


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average of the last ``n`` values, aligned with ``x``.

    NaN during warm-up (the first ``n - 1`` values). Computed from a running
    sum (``np.cumsum`` accumulates strictly left to right), so the streaming
    form :class:`SmaStream` reproduces it exactly.

    Examples
    --------
    >>> sma(np.array([1.0, 2.0, 3.0, 4.0]), 2).tolist()
    [nan, 1.5, 2.5, 3.5]
    """
    stream = SmaStream(n)
    return stream.update(np.asarray(x, dtype=np.float64))


@dataclass
class SmaStream:
    """Streaming simple moving average: feed batches, get aligned outputs.

    The carry state is the running sum at the last ``n + 1`` positions and the
    number of values seen; it round-trips through :meth:`to_state` /
    :meth:`from_state` (JSON-able, exact for floats).
    """

    n: int
    seen: int = 0
    tail: list[float] = field(default_factory=list)  # running sums, last n + 1 (oldest first)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"moving average length must be >= 1, got {self.n}")

    def update(self, x: np.ndarray) -> np.ndarray:
        """Consume ``x`` and return the SMA at each of its positions."""
        x = np.asarray(x, dtype=np.float64)
        m = len(x)
        if m == 0:
            return np.empty(0)
        # tail holds the running sums at stream positions seen-len(tail) .. seen-1,
        # where position -1 (before the first value) has running sum 0.
        tail = self.tail or [0.0]
        cs = np.concatenate((tail, np.cumsum(np.concatenate(([tail[-1]], x)))[1:]))
        first = self.seen - len(tail)  # stream position of cs[0]
        g = self.seen + np.arange(m)  # stream positions of x
        out = np.full(m, np.nan)
        full = g >= self.n - 1
        gi = g[full]
        out[full] = (cs[gi - first] - cs[gi - self.n - first]) / self.n
        self.seen += m
        self.tail = cs[-(self.n + 1) :].tolist()
        return out

    def to_state(self) -> dict:
        return {"n": self.n, "seen": self.seen, "tail": self.tail}

    @classmethod
    def from_state(cls, state: dict) -> SmaStream:
        return cls(n=int(state["n"]), seen=int(state["seen"]), tail=list(state["tail"]))


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
