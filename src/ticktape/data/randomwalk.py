"""Synthetic tick generator (first version): random-walk mid, bid/ask spread,
Poisson arrivals.

Deterministic for a seed and streaming: :func:`generate` yields chunks of
:data:`ticktape.model.batch.TICK_DTYPE` with constant memory for any length, and the
chunk size does not change the output.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ticktape.model.batch import TICK_DTYPE

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, kw_only=True)
class RandomWalkConfig:
    """Parameters of one synthetic symbol.

    Prices live on the grid of ``tick_size``; the bid follows a random walk
    in whole ticks whose step scales with ``vol_ticks_per_sqrt_s`` and the time
    since the previous tick; the spread is ``1 + Geometric`` ticks; tick
    arrivals are a Poisson process of ``rate_per_s``. Timestamps are rounded
    to microseconds (the store's precision) and strictly increase.
    """

    symbol: str
    n_ticks: int
    seed: int = 7
    start_ns: int = 1_704_186_000 * NS_PER_S  # 2024-01-02 09:00 UTC
    price0: float = 100.0
    tick_size: float = 0.01
    vol_ticks_per_sqrt_s: float = 3.0
    rate_per_s: float = 20.0
    mean_extra_spread_ticks: float = 1.0
    mean_size: float = 500.0

    def __post_init__(self) -> None:
        if self.n_ticks < 0:
            raise ValueError(f"n_ticks must be >= 0, got {self.n_ticks}")
        for name in ("price0", "tick_size", "rate_per_s", "mean_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


def _rng(cfg: RandomWalkConfig) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, zlib.crc32(cfg.symbol.encode())])


def grid_prices(k: np.ndarray, tick_size: float) -> np.ndarray:
    """Prices ``k * tick_size`` as a feed sends them: each the double nearest
    its decimal (``99.99``, not ``9999 * 0.01 == 99.99000000000001``), so a
    generated price equals the same price typed in SQL or read from a CSV.

    Examples
    --------
    >>> grid_prices(np.array([9999, 10000]), 0.01).tolist()
    [99.99, 100.0]
    """
    k = np.asarray(k, dtype=np.float64)
    per_unit = round(1.0 / tick_size)  # ticks per unit of price when a tick is 1/m (0.01, 0.25...)
    if per_unit >= 1 and float(Decimal(1) / per_unit) == tick_size:
        return k / per_unit  # (a correctly rounded quotient of whole numbers: the decimal's double)
    text = np.format_float_positional(tick_size, trim="-")
    return np.round(k * tick_size, len(text.partition(".")[2]))


def generate(cfg: RandomWalkConfig, chunk: int = 100_000) -> Iterator[np.ndarray]:
    """Yield the ticks of ``cfg`` in chunks of at most ``chunk`` rows."""
    if chunk <= 0:
        raise ValueError(f"chunk must be > 0, got {chunk}")
    rng = _rng(cfg)
    bid_t = round(cfg.price0 / cfg.tick_size)
    ts_us = cfg.start_ns // 1000
    done = 0
    # Draw in fixed blocks so the chunk size never changes the random stream.
    block = 65_536
    buf: list[np.ndarray] = []
    buffered = 0
    while done < cfg.n_ticks:
        n = min(block, cfg.n_ticks - done)
        gaps_s = rng.exponential(1.0 / cfg.rate_per_s, block)[:n]
        steps = rng.standard_normal(block)[:n]
        extra = rng.geometric(1.0 / (1.0 + cfg.mean_extra_spread_ticks), block)[:n] - 1
        bsz = rng.pareto(2.5, block)[:n]
        asz = rng.pareto(2.5, block)[:n]
        gaps_us = np.maximum(1, np.round(gaps_s * 1e6).astype(np.int64))
        ts = ts_us + np.cumsum(gaps_us)
        ts_us = int(ts[-1])
        moves = np.round(steps * cfg.vol_ticks_per_sqrt_s * np.sqrt(gaps_s)).astype(np.int64)
        path = bid_t + np.cumsum(moves)
        # reflect at 1 tick so prices stay positive
        path = np.where(path < 1, 2 - path, path)
        bid_t = int(path[-1])
        out = np.empty(n, dtype=TICK_DTYPE)
        out["ts"] = ts * 1000
        out["bid"] = grid_prices(path, cfg.tick_size)
        out["ask"] = grid_prices(path + 1 + extra, cfg.tick_size)
        scale = cfg.mean_size * 1.5  # pareto(2.5) has mean 2/3; scale to mean_size
        out["bid_size"] = np.maximum(1.0, np.round((bsz + 0.0) * scale))
        out["ask_size"] = np.maximum(1.0, np.round((asz + 0.0) * scale))
        out["last"] = np.nan
        out["last_size"] = np.nan
        done += n
        buf.append(out)
        buffered += n
        while buffered >= chunk:
            joined = np.concatenate(buf)
            yield joined[:chunk]
            rest = joined[chunk:]
            buf, buffered = ([rest] if len(rest) else []), len(rest)
    if buffered:
        yield np.concatenate(buf)
