"""Synthetic ticks, the one generator module: a random walk on the tick grid
(the demo's), GBM with optional calm/news regimes, ticks from OHLC bars
(Brownian bridges), and L2 depth as diffs.

Everything is deterministic for a seed (and symbol) and streaming: random
numbers are drawn in fixed blocks (of bars, or of ticks), so the output does
not depend on the ``chunk`` size and memory stays constant for any length.
Every process draws from ``numpy.random.default_rng([seed, crc32(symbol)])``
and puts its prices on the grid with :func:`grid_prices`.

Random walk (:class:`RandomWalkConfig`, :func:`generate_walk`): the bid
moves in whole ticks, the spread is ``1 + Geometric`` ticks, arrivals are
Poisson. Its output is pinned by a regression test: ``ticktape demo``'s
figures depend on it.

GBM (:class:`ProcessConfig`, :func:`generate_process`): quotes at Poisson
times around a geometric Brownian motion, with a spread that widens with
the move.

Bars -> ticks (:class:`BarSynthConfig`, :func:`from_bars`), per bar:

* the number of ticks is ``4 + Poisson(ticks_per_bar * volume / mean volume)``
  (intensity follows the bar's volume; the mean is that of the first 4096
  bars; ``ticks_per_bar`` when there is no volume), arrival times are uniform order statistics inside the bar (a
  Poisson process given its count), the first at the bar's open time;
* the trade price path (``last``) goes O -> first extreme -> second extreme
  -> C through Brownian bridges, the order of H and L random (the high first
  with probability 1/2), folded back into [L, H]; so it hits O, H, L, C
  exactly and never leaves [L, H];
* bid/ask sit around the path with a spread that widens with the local
  volatility (the absolute tick-to-tick move); sizes are Pareto (heavy tail).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

from ticktape.data.convention import BAR_COLUMNS, bars_from, iter_rows, read_rows
from ticktape.errors import DataError
from ticktape.model.batch import BOOK_EVENT_DTYPE, TICK_DTYPE
from ticktape.model.sources import ProcessConfig

__all__ = [
    "BarSynthConfig",
    "ProcessConfig",
    "RandomWalkConfig",
    "depth_diffs",
    "from_bars",
    "generate_process",
    "generate_walk",
    "grid_prices",
    "read_bars",
    "rechunk",
]

NS_PER_S = 1_000_000_000
_BLOCK = 65_536


def _rng(seed: int, symbol: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(symbol.encode())])


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


def rechunk(parts: Iterable[np.ndarray], chunk: int) -> Iterator[np.ndarray]:
    """Re-cut a stream of arrays into arrays of exactly ``chunk`` rows (the last shorter)."""
    if chunk <= 0:
        raise ValueError(f"chunk must be > 0, got {chunk}")
    buf: list[np.ndarray] = []
    have = 0
    for part in parts:
        if not len(part):
            continue
        buf.append(part)
        have += len(part)
        if have >= chunk:
            joined = np.concatenate(buf)
            cut = len(joined) - len(joined) % chunk
            for i in range(0, cut, chunk):
                yield joined[i : i + chunk]
            rest = joined[cut:]
            buf, have = ([rest] if len(rest) else []), len(rest)
    if have:
        yield np.concatenate(buf)


# --------------------------------------------------------------------------
# random walk (the demo's)


@dataclass(frozen=True, kw_only=True)
class RandomWalkConfig:
    """Parameters of one random-walk symbol.

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


def generate_walk(cfg: RandomWalkConfig, chunk: int = 100_000) -> Iterator[np.ndarray]:
    """Yield the random-walk ticks of ``cfg`` in chunks of ``chunk`` rows (the last shorter).

    Examples
    --------
    >>> cfg = RandomWalkConfig(symbol="X", n_ticks=5, seed=1)
    >>> a = np.concatenate(list(generate_walk(cfg, chunk=2)))
    >>> len(a), a.tobytes() == next(generate_walk(cfg)).tobytes()
    (5, True)
    """
    return rechunk(_walk_blocks(cfg), chunk)


def _walk_blocks(cfg: RandomWalkConfig) -> Iterator[np.ndarray]:
    """Ticks of consecutive blocks of up to ``_BLOCK`` (draws always made
    for a whole block, so the chunk size never changes the random stream)."""
    rng = _rng(cfg.seed, cfg.symbol)
    bid_t = round(cfg.price0 / cfg.tick_size)
    ts_us = cfg.start_ns // 1000
    done = 0
    scale = cfg.mean_size * 1.5  # pareto(2.5) has mean 2/3; scale to mean_size
    while done < cfg.n_ticks:
        n = min(_BLOCK, cfg.n_ticks - done)
        gaps_s = rng.exponential(1.0 / cfg.rate_per_s, _BLOCK)[:n]
        steps = rng.standard_normal(_BLOCK)[:n]
        extra = rng.geometric(1.0 / (1.0 + cfg.mean_extra_spread_ticks), _BLOCK)[:n] - 1
        bsz = rng.pareto(2.5, _BLOCK)[:n]
        asz = rng.pareto(2.5, _BLOCK)[:n]
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
        out["bid_size"] = np.maximum(1.0, np.round(bsz * scale))
        out["ask_size"] = np.maximum(1.0, np.round(asz * scale))
        out["last"] = np.nan
        out["last_size"] = np.nan
        done += n
        yield out


# --------------------------------------------------------------------------
# bars -> ticks


@dataclass(frozen=True, kw_only=True)
class BarSynthConfig:
    """Parameters of :func:`from_bars`."""

    symbol: str = "SYN"
    seed: int = 7
    bar_ns: int = 60 * NS_PER_S
    ticks_per_bar: float = 50.0  # mean ticks of a bar of average volume
    spread: float = 0.0  # base spread in price units; 0: 2 bp of the price
    spread_vol_mult: float = 2.0  # spread += this * |tick-to-tick move|
    mean_size: float = 100.0
    tail: float = 2.5  # Pareto shape of sizes (smaller = heavier tail)
    bridge_vol: float = 0.5  # noise per step relative to (H - L) / sqrt(n)

    def __post_init__(self) -> None:
        if self.bar_ns <= 0 or self.ticks_per_bar < 0 or self.mean_size <= 0 or self.tail <= 0:
            raise ValueError("bar_ns, mean_size and tail must be > 0 and ticks_per_bar >= 0")


def _fold(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Reflect ``x`` into [lo, hi] (a triangle wave; in-range values unchanged)."""
    width = hi - lo
    safe = np.where(width > 0, width, 1.0)
    y = np.mod(x - lo, 2 * safe)
    y = np.where(y > safe, 2 * safe - y, y)
    return np.where(width > 0, lo + y, lo)


def from_bars(bars: Iterable[np.ndarray], cfg: BarSynthConfig, chunk: int = 100_000) -> Iterator[np.ndarray]:
    """Ticks (``TICK_DTYPE``) from a stream of bar arrays.

    ``bars``: structured arrays with fields ``ts`` (int64 ns, bar open),
    ``open``, ``high``, ``low``, ``close`` and optionally ``volume`` (NaN:
    none), in time order, such as :func:`read_bars` gives. Output chunks
    have ``chunk`` rows.
    """
    return rechunk(_bar_ticks(bars, cfg), chunk)


def _bar_ticks(bars: Iterable[np.ndarray], cfg: BarSynthConfig) -> Iterator[np.ndarray]:
    rng = _rng(cfg.seed, cfg.symbol)
    mean_vol: float | None = None
    # fixed blocks of 4096 bars: the output does not depend on how the input is cut
    for part in rechunk(bars, 4096):
        if mean_vol is None and "volume" in (part.dtype.names or ()):
            # streaming: the volume scale is the mean of the first 4096 bars
            v = part["volume"][np.isfinite(part["volume"]) & (part["volume"] > 0)]
            mean_vol = float(v.mean()) if len(v) else None
        yield _bars_block(part, cfg, rng, mean_vol)


def _bars_block(
    bars: np.ndarray, cfg: BarSynthConfig, rng: np.random.Generator, mean_vol: float | None
) -> np.ndarray:
    m = len(bars)
    o, h, lo, c = (bars[k].astype(np.float64) for k in ("open", "high", "low", "close"))
    if np.any(h < np.maximum(o, c)) or np.any(lo > np.minimum(o, c)):
        raise ValueError("bars need low <= open, close <= high")
    if mean_vol and "volume" in (bars.dtype.names or ()):
        intensity = cfg.ticks_per_bar * np.nan_to_num(bars["volume"] / mean_vol, nan=1.0)
    else:
        intensity = np.full(m, cfg.ticks_per_bar)
    counts = 4 + rng.poisson(np.maximum(intensity, 0.0))
    total = int(counts.sum())
    bar_of = np.repeat(np.arange(m), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(total) - starts[bar_of]  # 0..n-1 within the bar
    n_bar = counts[bar_of]
    # times: sorted uniforms per bar, the first at the bar's open
    u = rng.random(total)
    u[pos == 0] = 0.0
    order = np.lexsort((u, bar_of))
    u = u[order]
    ts_us = bars["ts"][bar_of] // 1000 + np.floor(u * (cfg.bar_ns // 1000)).astype(np.int64)
    # anchors: open at 0, extremes at e1 < e2, close at n-1
    a = rng.random(m)
    b = rng.random(m)
    e1 = 1 + np.floor(a * (counts - 3)).astype(np.int64)  # 1 .. n-3
    e2 = e1 + 1 + np.floor(b * (counts - 2 - e1)).astype(np.int64)  # e1+1 .. n-2
    high_first = rng.random(m) < 0.5
    v1 = np.where(high_first, h, lo)
    v2 = np.where(high_first, lo, h)
    # Brownian bridges between consecutive anchors
    sigma = cfg.bridge_vol * (h - lo) / np.sqrt(counts)
    noise = rng.standard_normal(total) * sigma[bar_of]
    noise[pos == 0] = 0.0
    cum = np.cumsum(noise)
    anchor_pos = np.stack([np.zeros(m, np.int64), e1, e2, counts - 1], axis=1)  # (m, 4)
    anchor_val = np.stack([o, v1, v2, c], axis=1)
    seg = (pos[:, None] > anchor_pos[bar_of, 1:]).sum(axis=1)  # 0, 1, 2: segment of each tick
    seg = np.minimum(seg, 2)
    sa = anchor_pos[bar_of, seg]
    sb = anchor_pos[bar_of, seg + 1]
    va = anchor_val[bar_of, seg]
    vb = anchor_val[bar_of, seg + 1]
    base = starts[bar_of]
    w = cum[base + pos] - cum[base + sa]
    w_end = cum[base + sb] - cum[base + sa]
    frac = (pos - sa) / np.maximum(sb - sa, 1)
    path = va + (w - frac * w_end) + frac * (vb - va)
    path = np.clip(_fold(path, lo[bar_of], h[bar_of]), lo[bar_of], h[bar_of])
    for k in range(4):  # exact O, extremes, C
        path[starts + anchor_pos[:, k]] = anchor_val[:, k]
    del n_bar
    # spread widening with the local volatility
    move = np.abs(np.diff(path, prepend=path[0]))
    base_spread = cfg.spread if cfg.spread > 0 else 2e-4 * np.abs(path)
    spread = base_spread + cfg.spread_vol_mult * move
    out = np.empty(total, dtype=TICK_DTYPE)
    out["ts"] = ts_us * 1000
    out["bid"] = path - spread / 2
    out["ask"] = path + spread / 2
    scale = cfg.mean_size * (cfg.tail - 1) if cfg.tail > 1 else cfg.mean_size
    sizes = np.maximum(1.0, np.round((rng.pareto(cfg.tail, (3, total)) + 0.0) * scale))
    out["bid_size"] = sizes[0]
    out["ask_size"] = sizes[1]
    out["last"] = path
    out["last_size"] = sizes[2]
    return out


def read_bars(path: str | Path, block_rows: int = 50_000) -> Iterator[np.ndarray]:
    """The bars of a CSV (read in pieces of ``block_rows``) or Parquet file as
    ``OHLCV_DTYPE`` arrays for :func:`from_bars`, read by the convention of
    :mod:`ticktape.data.convention` (as ``ticktape backtest`` reads bars).

    Raises
    ------
    DataError
        A missing column, or a bar that is not one (a time that does not
        increase, a price that is not > 0, a high/low that does not contain
        open and close), naming its file line.
    """
    pieces = (
        [read_rows(path, BAR_COLUMNS)]
        if Path(path).suffix.lower() in (".parquet", ".pq")
        else iter_rows(path, BAR_COLUMNS, block_rows)
    )
    last: int | None = None
    for rows in pieces:
        bars = bars_from(rows)
        if len(bars) and last is not None and int(bars["ts"][0]) <= last:
            raise DataError(f"{rows.at(0)}: bar time does not increase")
        if len(bars):
            last = int(bars["ts"][-1])
            yield bars


# --------------------------------------------------------------------------
# parametric


_YEAR_S = 365.25 * 86_400


def generate_process(cfg: ProcessConfig, chunk: int = 100_000) -> Iterator[np.ndarray]:
    """Yield ``cfg.n_ticks`` ticks in chunks of ``chunk`` rows (the last shorter).

    Quotes only (``last``/``last_size`` NaN). The random numbers are drawn in
    blocks of 65,536 ticks whatever ``chunk`` is, so the output is the same
    for any chunk size; the blocks' columns are written straight into the
    output chunks (no intermediate tick arrays).

    Examples
    --------
    >>> cfg = ProcessConfig(symbol="X", n_ticks=5, seed=1)
    >>> a = np.concatenate(list(generate_process(cfg, chunk=2)))
    >>> b = np.concatenate(list(generate_process(cfg, chunk=5)))
    >>> len(a), a.tobytes() == b.tobytes(), bool((a["bid"] < a["ask"]).all())
    (5, True, True)
    """
    if chunk <= 0:
        raise ValueError(f"chunk must be > 0, got {chunk}")
    out: np.ndarray | None = None
    filled = 0
    left = cfg.n_ticks
    for cols in _process(cfg):
        n = len(cols["ts"])
        at = 0
        while at < n:
            if out is None:
                out = np.empty(min(chunk, left), dtype=TICK_DTYPE)
                out["last"] = np.nan
                out["last_size"] = np.nan
                filled = 0
            take = min(n - at, len(out) - filled)
            for name, values in cols.items():
                out[name][filled : filled + take] = values[at : at + take]
            filled += take
            at += take
            left -= take
            if filled == len(out):
                yield out
                out = None


def _regime_path(flips: np.ndarray, news: bool, p_news: float, p_calm: float) -> np.ndarray:
    """States (True = news) of the two-state chain: at tick ``i`` the state
    flips when ``flips[i] < p(state before i)``; the state *after* each tick.

    Jumps from flip to flip (few per block) instead of stepping tick by tick;
    the same result as the loop

    >>> u = np.array([0.5, 0.01, 0.5, 0.3, 0.5]); cur, out = False, []
    >>> for x in u:
    ...     cur = (not cur) if x < (0.4 if cur else 0.05) else cur
    ...     out.append(cur)
    >>> _regime_path(u, False, 0.05, 0.4).tolist() == out
    True
    """
    n = len(flips)
    state = np.empty(n, dtype=bool)
    to_news = np.flatnonzero(flips < p_news)  # where a calm tick flips to news
    to_calm = np.flatnonzero(flips < p_calm)  # where a news tick flips to calm
    pos = 0
    cur = news
    while pos < n:
        where = to_calm if cur else to_news
        k = int(np.searchsorted(where, pos))
        nxt = int(where[k]) if k < len(where) else n
        state[pos:nxt] = cur
        if nxt < n:
            cur = not cur
            state[nxt] = cur
        pos = nxt + 1
    return state


def _process(cfg: ProcessConfig) -> Iterator[dict[str, np.ndarray]]:
    """Columns ``ts, bid, ask, bid_size, ask_size`` of consecutive blocks of
    up to ``_BLOCK`` ticks (draws always made for a whole block)."""
    rng = _rng(cfg.seed, cfg.symbol)
    log_p = np.log(cfg.price0)
    t_ns = cfg.start_ns
    news = False
    done = 0
    scale = cfg.mean_size * (cfg.tail - 1) if cfg.tail > 1 else cfg.mean_size
    calm_sigma = cfg.vol * 1.0 / np.sqrt(_YEAR_S)
    while done < cfg.n_ticks:
        n = min(_BLOCK, cfg.n_ticks - done)
        if cfg.regimes:
            flips = rng.random(_BLOCK)[:n]
            state = _regime_path(flips, news, cfg.p_news, cfg.p_calm)
            news = bool(state[-1])
            rate: np.ndarray | float = cfg.rate_per_s * np.where(state, cfg.news_rate_mult, 1.0)
            sigma: np.ndarray | float = cfg.vol * np.where(state, cfg.news_vol_mult, 1.0) / np.sqrt(_YEAR_S)
        else:
            rate = cfg.rate_per_s
            sigma = calm_sigma
        gaps = rng.exponential(1.0, _BLOCK)[:n]
        gaps /= rate
        z = rng.standard_normal(_BLOCK)[:n]
        sizes = rng.pareto(cfg.tail, (2, _BLOCK))[:, :n]
        dt = gaps
        step = (cfg.drift / _YEAR_S - 0.5 * sigma**2) * dt + sigma * np.sqrt(dt) * z
        lp = np.cumsum(step)
        lp += log_p
        log_p = float(lp[-1])
        ts = np.round(gaps * 1e6)
        np.maximum(ts, 1, out=ts)
        ts = np.cumsum(ts.astype(np.int64) * 1000)
        ts += t_ns
        t_ns = int(ts[-1])
        mid = np.exp(lp)
        half = (
            cfg.tick_size * (cfg.spread_ticks + cfg.spread_vol_mult * np.abs(step) * mid / cfg.tick_size) / 2
        )
        bid_k = np.floor((mid - half) / cfg.tick_size)
        ask_k = np.maximum(np.ceil((mid + half) / cfg.tick_size), bid_k + 1)
        bid = grid_prices(bid_k, cfg.tick_size)
        ask = grid_prices(ask_k, cfg.tick_size)
        bid_size = np.round(sizes[0] * scale)
        ask_size = np.round(sizes[1] * scale)
        np.maximum(bid_size, 1.0, out=bid_size)
        np.maximum(ask_size, 1.0, out=ask_size)
        done += n
        yield {"ts": ts, "bid": bid, "ask": ask, "bid_size": bid_size, "ask_size": ask_size}


# --------------------------------------------------------------------------
# L2 depth


def depth_diffs(
    ticks: np.ndarray, levels: int = 5, tick_size: float = 0.01, seed: int = 7, mean_size: float = 100.0
) -> np.ndarray:
    """L2 book events (``store.BOOK_EVENT_DTYPE``, kind 10) consistent with ``ticks``.

    The book has ``levels`` price levels per side on the ``tick_size`` grid,
    the best ones at each tick's bid/ask (with their sizes); deeper sizes are
    random. Only changes are emitted: a level whose size changed, a new
    level, and a removal (size 0) for a level that left the top ``levels``.
    """
    rng = np.random.default_rng(seed)
    out: list[tuple] = []
    prev: dict[int, dict[int, float]] = {1: {}, -1: {}}
    for t in ticks:
        if np.isnan(t["bid"]) or np.isnan(t["ask"]):
            continue
        for side, best, best_size in ((1, t["bid"], t["bid_size"]), (-1, t["ask"], t["ask_size"])):
            top = round(best / tick_size)
            book = {}
            for i in range(levels):
                px = top - i if side == 1 else top + i
                size = (
                    float(best_size)
                    if i == 0
                    else prev[side].get(px) or float(max(1, round(rng.pareto(2.5) * mean_size)))
                )
                book[px] = size
            for px, size in book.items():
                if prev[side].get(px) != size:
                    out.append((int(t["ts"]), 10, side, px, size, -1, 0))
            for px in prev[side]:
                if px not in book:
                    out.append((int(t["ts"]), 10, side, px, 0.0, -1, 0))
            prev[side] = book
    events = np.array(out, dtype=BOOK_EVENT_DTYPE)
    events["price"] = grid_prices(events["price"], tick_size)  # (the levels were whole tick counts)
    return events
