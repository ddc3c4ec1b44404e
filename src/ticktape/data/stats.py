"""Streaming statistics of a tick stream: rate, spread, returns, volatility by hour.

:class:`TickStats` takes batches one at a time (constant memory): exact
counts and moments, and quantiles from a fixed-size uniform sample (the
100,000 rows with the smallest random keys, so a seed fixes the result).
Prices are the mid where a tick has bid and ask, else the trade price.
Returns are log returns between consecutive priced ticks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TickStats", "finest_step"]

#: Most decimals :func:`finest_step` looks for (a step of 1e-9).
MAX_DECIMALS = 9

_SAMPLE = 100_000
_QUANTILES = (0.01, 0.05, 0.5, 0.95, 0.99)


class _Sample:
    def __init__(self, rng: np.random.Generator, size: int = _SAMPLE) -> None:
        self.rng = rng
        self.size = size
        self.keys = np.empty(0)
        self.values = np.empty(0)

    def add(self, values: np.ndarray) -> None:
        if not len(values):
            return
        keys = np.concatenate([self.keys, self.rng.random(len(values))])
        vals = np.concatenate([self.values, values])
        if len(keys) > self.size:
            keep = np.argpartition(keys, self.size)[: self.size]
            keys, vals = keys[keep], vals[keep]
        self.keys, self.values = keys, vals

    def quantiles(self) -> dict[str, float]:
        if not len(self.values):
            return {}
        q = np.quantile(self.values, _QUANTILES)
        return {f"p{round(p * 100)}": float(v) for p, v in zip(_QUANTILES, q, strict=True)}


class TickStats:
    """Accumulate statistics of one symbol's ticks (in time order)."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.n = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.quotes = 0
        self.trades = 0
        self.spread_sum = 0.0
        self.spread_bps_sum = 0.0
        self.spreads = _Sample(rng)
        self.returns = _Sample(rng)
        self.r_n = 0
        self.r_moments = np.zeros(4)  # sums of r, r^2, r^3, r^4
        self.r_min = np.inf
        self.r_max = -np.inf
        self.hour_n = np.zeros(24, dtype=np.int64)
        self.hour_r2 = np.zeros(24)
        self.hour_rn = np.zeros(24, dtype=np.int64)
        self._last_price: float | None = None
        self.days: set[int] = set()

    def update(self, ticks: np.ndarray) -> None:
        n = len(ticks)
        if not n:
            return
        ts = ticks["ts"]
        self.n += n
        self.first_ns = int(ts[0]) if self.first_ns is None else self.first_ns
        self.last_ns = int(ts[-1])
        hours = (ts // 3_600_000_000_000) % 24
        self.hour_n += np.bincount(hours, minlength=24)
        self.days.update(np.unique(ts // 86_400_000_000_000).tolist())
        bid, ask, last = ticks["bid"], ticks["ask"], ticks["last"]
        quote = ~np.isnan(bid) & ~np.isnan(ask)
        self.quotes += int(quote.sum())
        self.trades += int((~np.isnan(last)).sum())
        mid = (bid + ask) / 2
        spread = (ask - bid)[quote]
        self.spread_sum += float(spread.sum())
        self.spread_bps_sum += float((spread / mid[quote] * 1e4).sum())
        self.spreads.add(spread)
        price = np.where(quote, mid, last)
        priced = ~np.isnan(price) & (price > 0)
        p = price[priced]
        h = hours[priced]
        if not len(p):
            return
        prev = np.concatenate([[self._last_price if self._last_price is not None else np.nan], p[:-1]])
        r = np.log(p / prev)
        ok = ~np.isnan(r)
        r, h = r[ok], h[ok]
        self._last_price = float(p[-1])
        if not len(r):
            return
        self.r_n += len(r)
        self.r_moments += [r.sum(), (r**2).sum(), (r**3).sum(), (r**4).sum()]
        self.r_min = min(self.r_min, float(r.min()))
        self.r_max = max(self.r_max, float(r.max()))
        self.returns.add(r)
        self.hour_r2 += np.bincount(h, weights=r**2, minlength=24)
        self.hour_rn += np.bincount(h, minlength=24)

    def summary(self) -> dict[str, Any]:
        """All statistics as a dict (JSON-able)."""
        out: dict[str, Any] = {"ticks": self.n, "quotes": self.quotes, "trades": self.trades}
        if self.n:
            span = max(1e-9, (self.last_ns - self.first_ns) / 1e9)  # type: ignore[operator]
            out.update(first_ns=self.first_ns, last_ns=self.last_ns, seconds=span, ticks_per_s=self.n / span)
        if self.quotes:
            out["spread"] = {
                "mean": self.spread_sum / self.quotes,
                "mean_bps": self.spread_bps_sum / self.quotes,
                **self.spreads.quantiles(),
            }
        if self.r_n:
            s1, s2, s3, s4 = self.r_moments / self.r_n
            var = max(s2 - s1**2, 0.0)
            sd = var**0.5
            skew = (s3 - 3 * s1 * s2 + 2 * s1**3) / sd**3 if sd > 0 else 0.0
            kurt = (s4 - 4 * s1 * s3 + 6 * s1**2 * s2 - 3 * s1**4) / var**2 - 3 if var > 0 else 0.0
            out["returns"] = {
                "n": self.r_n,
                "mean": s1,
                "std": sd,
                "skew": skew,
                "excess_kurtosis": kurt,
                "min": self.r_min,
                "max": self.r_max,
                **self.returns.quantiles(),
            }
            days = max(1, len(self.days))
            # realised volatility of each UTC hour: sqrt(sum r^2 per day), averaged over days
            out["by_hour"] = [
                {
                    "hour": hr,
                    "ticks": int(self.hour_n[hr]),
                    "realized_vol": float(np.sqrt(self.hour_r2[hr] / days)),
                }
                for hr in range(24)
                if self.hour_n[hr]
            ]
        return out


def finest_step(values: np.ndarray, max_decimals: int = MAX_DECIMALS) -> tuple[float | None, int | None]:
    """The finest increment seen: the step ``10**-d`` of the fewest decimals
    ``d <= max_decimals`` of which every finite value is a whole number (to
    1e-7 of a step: what a price parsed from its decimal text is).

    Returns ``(step, first)``: ``step`` is None when no value is finite;
    ``first`` is the index of the first value on no step of ``max_decimals``
    decimals or fewer (``step`` is then ``10**-max_decimals``), else None.

    Examples
    --------
    >>> finest_step(np.array([1.1, 1.25, np.nan, 3.0]))
    (0.01, None)
    >>> finest_step(np.array([100.0, 1 / 3]))
    (1e-09, 1)
    """
    v = np.asarray(values, dtype=np.float64)
    left = np.flatnonzero(np.isfinite(v))
    if not len(left):
        return None, None
    for d in range(max_decimals + 1):
        step = 10.0**-d
        x = v[left] / step
        left = left[np.abs(x - np.rint(x)) > 1e-7]
        if not len(left):
            return step, None
    return 10.0**-max_decimals, int(left.min())
