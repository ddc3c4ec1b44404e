"""Indicator math: pure functions on arrays and streaming forms with carry state.

The streaming forms give bit-identical output to the whole-array functions for
any split of the input into batches; that is what makes a run independent of
its batch size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
