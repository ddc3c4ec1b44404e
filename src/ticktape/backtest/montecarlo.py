"""Monte Carlo robustness of a stored run (``ticktape montecarlo RUN_ID``):
how lucky was it?

Four methods draw ``n`` alternative histories of the run and measure each
(:data:`ticktape.compute.resample.STATS`: final equity, max drawdown,
Sharpe, longest drawdown):

* ``trades``: the run's closed trades' net PnL, resampled with replacement
  (or reordered, ``replace=False``), added up from the run's initial equity;
* ``returns``: the i.i.d. bootstrap of the run's returns on its return grid
  (the grid its Sharpe was computed on, ``return_grid_ns``), compounded;
* ``blocks``: the stationary block bootstrap of the same returns (Politis &
  Romano), mean block length given or
  :func:`ticktape.compute.resample.auto_block_length`;
* ``paths``: the strategy run again on synthetic ticks from
  :func:`ticktape.data.synth.generate_process`, calibrated to each symbol's
  own data (:func:`calibrate`: volatility, spread, arrival rate, calm/news
  regimes), in worker processes.

Draw ``k`` uses its own generator (``SeedSequence(seed).spawn(n)[k]``), so
a study is the same for a seed whatever the number of processes.
docs/montecarlo.md has the definitions and their caveats.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np
import pandas as pd

from ticktape import store
from ticktape.backtest.run import run_symbol
from ticktape.compute import metrics
from ticktape.compute.resample import (
    FAN_PERCENTILES,
    FAN_POINTS,
    STATS,
    ResampleJob,
    auto_block_length,
    draw_rngs,
    equity_paths,
    fan_positions,
    grid_points,
    path_stats,
    resample_chunk,
)
from ticktape.data.readers import read_parquet
from ticktape.data.synth import generate_process
from ticktape.errors import CommandError, DataError, SpecError
from ticktape.model.sources import ProcessConfig, process_config
from ticktape.model.spec import EngineConfig, RunSpec, parse_run_id
from ticktape.store import montecarlo as mc_store
from ticktape.store import session
from ticktape.strategy import build

__all__ = [
    "DEFAULT_THRESHOLD",
    "METHODS",
    "MonteCarloResult",
    "PathsInput",
    "RunSeries",
    "calibrate",
    "check_options",
    "load_paths",
    "load_series",
    "montecarlo",
    "simulate",
]

#: The methods, as ``--method`` takes them.
METHODS = ("trades", "returns", "blocks", "paths")
#: The most draws a study may have (each keeps its statistics and its fan row).
MAX_N = 100_000
#: Bins of each statistic's stored histogram.
HIST_BINS = 40
#: The percentiles of each statistic stored in the summary.
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
#: The default drawdown of ``p_drawdown_beyond`` (a fraction of the peak).
DEFAULT_THRESHOLD = 0.2
#: Resampled values per chunk of draws (a chunk's paths are arrays of this size).
CHUNK_VALUES = 1 << 20
#: Resampled values (draws x steps) below which the resampling methods run in
#: this process unless ``processes`` is given: starting a worker costs a
#: second or more, 1,000 draws of 10,000 trades take 0.6-2.5 s in one process.
SPREAD_MIN = 50_000_000
#: Ticks per window of :func:`calibrate` (the unit of its regime detection).
WINDOW = 64
_YEAR_S = 365.25 * 86_400


def check_options(
    method: str,
    n: int,
    seed: int,
    block_length: float | None = None,
    replace: bool | None = None,
    processes: int | None = None,
    drawdown_threshold: float = DEFAULT_THRESHOLD,
) -> None:
    """CommandError naming the option when a study's options cannot be used
    (before anything is read or started)."""
    if method not in METHODS:
        raise CommandError(f"--method {method!r}: unknown method; expected one of {', '.join(METHODS)}")
    if not 1 <= n <= MAX_N:
        raise CommandError(f"--n: the number of draws must be 1 to {MAX_N:,}, got {n:,}")
    if not 0 <= seed < 2**63:
        raise CommandError(f"--seed: must be an integer from 0 to 2**63 - 1, got {seed}")
    if block_length is not None:
        if method != "blocks":
            raise CommandError(f"--block-length: only --method blocks resamples blocks (method is {method})")
        if not (math.isfinite(block_length) and block_length >= 1):
            raise CommandError(f"--block-length: a mean block length in returns, >= 1, got {block_length:g}")
    if replace is False and method not in ("trades", "returns"):
        raise CommandError(
            f"--no-replace: only --method trades or returns draws without replacement ({method})"
        )
    if processes is not None and processes < 1:
        raise CommandError(f"--processes: must be >= 1, got {processes}")
    if not (math.isfinite(drawdown_threshold) and 0 < drawdown_threshold <= 1):
        raise CommandError(
            f"--drawdown-threshold: a fraction of the peak in (0, 1] (0.2 = 20%), got {drawdown_threshold:g}"
        )


# --------------------------------------------------------------------------
# what a study draws from


@dataclass(frozen=True)
class RunSeries:
    """What the trades, returns and blocks methods resample: a run's closed
    trades' net PnL (in the order they closed) and its returns on its
    return grid.

    ``original`` holds the run's own metrics (stored as the summary's
    ``run_metrics``); ``first_ts`` / ``last_ts`` span its equity samples
    (the time a step stands for is that span over the steps).
    """

    run_id: str
    initial_equity: float
    trade_pnl: np.ndarray
    returns: np.ndarray
    grid_ns: int
    periods_per_year: float
    first_ts: int
    last_ts: int
    original: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PathsInput:
    """What the paths method runs: the run's spec and each symbol's
    calibrated generator settings (their ``seed`` is replaced per draw)."""

    run_id: str
    spec: RunSpec
    configs: dict[str, ProcessConfig]
    original: dict[str, float] = field(default_factory=dict)

    @property
    def initial_equity(self) -> float:
        return self.spec.engine.initial_cash * len(self.spec.symbols)


def _original(m: dict[str, Any]) -> dict[str, float]:
    names = {"max_drawdown_duration_ns": "longest_drawdown_ns"}
    return {names.get(k, k): float(m[k]) for k in (*STATS, "max_drawdown_duration_ns") if k in m}


async def _complete_run(conn: asyncpg.Connection, run_id: str) -> asyncpg.Record:
    run = await store.find_run(conn, run_id)
    if run["status"] != "complete":
        raise SpecError(
            f"run {run['run_id']}: it is {run['status']}; a Monte Carlo study needs a complete run"
        )
    return run


async def load_series(conn: asyncpg.Connection, run_id: str) -> RunSeries:
    """The trades and grid returns of a complete stored run.

    The fills and equity samples stream through
    :class:`ticktape.compute.metrics.RunMetrics` as the sink read them (so
    the trades and the return grid are the run's own); the portfolio equity
    is :func:`ticktape.compute.metrics.portfolio_equity` of the samples.

    Raises
    ------
    SpecError
        No such run, or one that is not complete.
    DataError
        The run stored no equity samples (a sweep's run not kept in detail).
    """
    run = await _complete_run(conn, run_id)
    rid = str(run["run_id"])
    spec = store.json_value(run["spec"]) or {}
    cash = float((spec.get("engine") or {}).get("initial_cash", EngineConfig().initial_cash))
    symbols = list(run["symbols"])
    acc = metrics.RunMetrics(symbols, cash, keep_trades=True, grid=spec.get("return_grid"))
    parts: list[tuple[np.ndarray, ...]] = []
    async for fills_of, samples in store.stream_fills_and_equity(conn, rid, symbols):
        for symbol, f in zip(acc.symbols, fills_of, strict=True):
            acc.add_fills(symbol, f)
        acc.add(*samples)
        parts.append(samples[:3])
    if not parts or not sum(len(p[0]) for p in parts):
        raise DataError(
            f"run {rid}: no equity samples stored (a sweep's run stores them only with --keep-top)"
        )
    m, trades = acc.result()
    ts, sym, eq = (np.concatenate([p[i] for p in parts]) for i in range(3))
    frame = pd.DataFrame({"ts_ns": ts, "symbol": np.asarray(acc.symbols, dtype=object)[sym], "equity": eq})
    total = metrics.portfolio_equity(frame, cash)
    width = int(m["return_grid_ns"])
    points = grid_points(total.index.to_numpy(np.int64), total.to_numpy(np.float64), width)
    closed = trades[~trades["open"].to_numpy(bool)] if len(trades) else trades
    if len(closed):  # in the order they closed (the symbols' trades interleaved): the run's own sequence
        closed = closed.sort_values(["exit_ts", "symbol"], kind="stable")
    return RunSeries(
        run_id=rid,
        initial_equity=cash * len(symbols),
        trade_pnl=closed["net_pnl"].to_numpy(np.float64) if len(closed) else np.zeros(0),
        returns=points[1:] / points[:-1] - 1.0,
        grid_ns=width,
        periods_per_year=float(m["periods_per_year"]),
        first_ts=int(total.index[0]),
        last_ts=int(total.index[-1]),
        original=_original(m),
    )


async def _ticks_of(conn: asyncpg.Connection, spec: RunSpec, symbol: str) -> AsyncIterator[np.ndarray]:
    """The run's ticks of ``symbol`` from its source (store, Parquet or generator)."""
    kind = spec.source["kind"]
    if kind == "store":
        async for batch in store.read_ticks(conn, symbol, spec.start_ns, spec.end_ns, batch_size=100_000):
            yield batch
    elif kind == "parquet":
        for _sym, part in read_parquet(
            spec.source["path"], symbols=[symbol], start_ns=spec.start_ns, end_ns=spec.end_ns
        ):
            yield part
    elif kind == "generator":
        for part in generate_process(process_config(symbol, spec.source)):
            ts = part["ts"]
            keep = (ts >= (spec.start_ns if spec.start_ns is not None else ts[0])) & (
                ts < (spec.end_ns if spec.end_ns is not None else ts[-1] + 1)
            )
            yield part[keep]
    else:
        raise SpecError(
            f"run {spec.run_id}: its ticks came from a topic ({spec.source.get('topic')}); store them"
            f" first (ticktape record {spec.source.get('run_id')}) and calibrate on a run of the store"
        )


async def load_paths(conn: asyncpg.Connection, run_id: str) -> PathsInput:
    """The spec of a complete stored pipeline run and each symbol's
    generator settings calibrated to the run's ticks (:func:`calibrate`).

    Raises
    ------
    SpecError
        No such run, one that is not complete, one whose spec names no data
        (an in-process sweep's run), a topic source, or a strategy that
        trades its symbols together (independent paths per symbol would
        break what ties them).
    DataError
        A symbol with no ticks to calibrate on.
    """
    run = await _complete_run(conn, run_id)
    rid = str(run["run_id"])
    stored = store.json_value(run["spec"]) or {}
    if "symbols" not in stored:
        raise SpecError(
            f"run {rid}: its spec names no data source (a run of an in-process sweep);"
            " --method paths recalibrates on the data of a pipeline run (ticktape run, demo, sweep --symbols)"
        )
    spec = RunSpec.from_dict(stored)
    if build(spec.strategy, spec.params).symbols:
        raise SpecError(
            f"run {rid}: {spec.strategy} trades its symbols together; synthetic paths are drawn per"
            " symbol, independently, which would break what ties them (use --method trades, returns or blocks)"
        )
    configs = {}
    for symbol in spec.symbols:
        cal = _Calibration(symbol, spec.engine.tick_size)
        async for batch in _ticks_of(conn, spec, symbol):
            cal.add(batch)
        configs[symbol] = cal.result()
    m = (await store.run_with_metrics(conn, rid))["metrics"]
    return PathsInput(rid, dataclasses.replace(spec, depth=False), configs, _original(m))


# --------------------------------------------------------------------------
# calibration


class _Calibration:
    """:func:`calibrate` over ticks given in pieces (memory: two floats per
    :data:`WINDOW` ticks)."""

    def __init__(self, symbol: str, tick_size: float) -> None:
        self.symbol = symbol
        self.tick_size = tick_size
        self.n = 0
        self.first_ts: int | None = None
        self.last_ts = 0
        self.price0 = math.nan
        self.spread_sum = 0.0
        self.size_sum = 0.0
        self.size_n = 0
        self._ts: np.ndarray = np.zeros(0, np.int64)  # priced ticks not yet in a full window
        self._lp: np.ndarray = np.zeros(0)
        self._prev: tuple[int, float] | None = None  # the last tick of the last full window
        self._dur: list[np.ndarray] = []  # per window: ns from the previous window's end to its last tick
        self._ret: list[np.ndarray] = []  # per window: log price change over it

    def add(self, ticks: np.ndarray) -> None:
        bid, ask, last = ticks["bid"], ticks["ask"], ticks["last"]
        quote = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > bid)
        price = np.where(quote, (bid + ask) / 2, last)
        ok = np.isfinite(price) & (price > 0)
        if not ok.any():
            return
        self.n += int(ok.sum())
        self.spread_sum += float(np.sum((ask - bid)[quote]))
        for side in ("bid_size", "ask_size"):
            s = ticks[side][quote]
            s = s[np.isfinite(s) & (s > 0)]
            self.size_sum += float(s.sum())
            self.size_n += len(s)
        t = ticks["last_size"][~quote & ok]  # (a trade without a quote: its size stands for both sides)
        t = t[np.isfinite(t) & (t > 0)]
        self.size_sum += 2 * float(t.sum())
        self.size_n += 2 * len(t)
        ts, lp = ticks["ts"][ok].astype(np.int64), np.log(price[ok])
        if self.first_ts is None:
            self.first_ts, self.price0 = int(ts[0]), float(price[ok][0])
        self.last_ts = int(ts[-1])
        ts, lp = np.concatenate((self._ts, ts)), np.concatenate((self._lp, lp))
        if self._prev is None:  # the first tick is the start of the first window
            self._prev = (int(ts[0]), float(lp[0]))
            ts, lp = ts[1:], lp[1:]
        full = len(ts) // WINDOW * WINDOW
        if full:
            ends = np.arange(WINDOW - 1, full, WINDOW)
            end_ts = ts[ends]
            end_lp = lp[ends]
            self._dur.append(np.diff(end_ts, prepend=self._prev[0]))
            self._ret.append(np.diff(end_lp, prepend=self._prev[1]))
            self._prev = (int(end_ts[-1]), float(end_lp[-1]))
        self._ts, self._lp = ts[full:], lp[full:]

    def result(self) -> ProcessConfig:
        if not self.n or self.first_ts is None:
            raise DataError(f"{self.symbol}: no priced ticks in the run's data to calibrate the generator on")
        dur = np.maximum(np.concatenate(self._dur) if self._dur else np.zeros(0), 1_000) / 1e9  # s
        ret = np.concatenate(self._ret) if self._ret else np.zeros(0)
        mean_spread = self.spread_sum / self.n if self.spread_sum > 0 else self.tick_size
        base: dict[str, Any] = {
            "symbol": self.symbol,
            "n_ticks": self.n,
            "start_ns": self.first_ts,
            "price0": self.price0,
            "tick_size": self.tick_size,
            "spread_ticks": max(0.0, mean_spread / self.tick_size - 1.0),
            "spread_vol_mult": 0.0,
            "mean_size": self.size_sum / self.size_n if self.size_n else ProcessConfig().mean_size,
        }
        if len(dur) < 4:  # too few windows for a volatility: the generator's default
            span = max(1e-6, (self.last_ts - self.first_ts) / 1e9)
            return ProcessConfig(**base, rate_per_s=float(max(self.n - 1, 1) / span))
        news = _news_windows(dur)
        calm_var, calm_rate = (
            _variance_rate(ret, dur, ~news),
            float(WINDOW * (~news).sum() / dur[~news].sum()),
        )
        if not news.any():
            return ProcessConfig(**base, vol=math.sqrt(calm_var * _YEAR_S), rate_per_s=calm_rate)
        news_var, news_rate = _variance_rate(ret, dur, news), float(WINDOW * news.sum() / dur[news].sum())
        spells = np.diff(np.concatenate(([0], news.astype(np.int8), [0])))
        n_news = int((spells == 1).sum())
        calm_windows = len(news) - int(news.sum())
        return ProcessConfig(
            **base,
            vol=math.sqrt(calm_var * _YEAR_S),
            rate_per_s=calm_rate,
            regimes=True,
            p_news=min(1.0, n_news / (WINDOW * max(calm_windows, 1))),
            p_calm=min(1.0, n_news / (WINDOW * int(news.sum()))),
            news_vol_mult=max(1.0, math.sqrt(news_var / calm_var)) if calm_var > 0 else 1.0,
            news_rate_mult=news_rate / calm_rate,
        )


def _news_windows(dur: np.ndarray) -> np.ndarray:
    """Which windows are "news" (their ticks came at least twice as fast as
    the calm ones'): two clusters of the windows' log durations (k-means);
    none unless the faster one is under half the windows and holds at least
    3 spells."""
    x = np.log(dur)
    lo, hi = np.percentile(x, [10, 90])
    fast = x < (lo + hi) / 2
    for _ in range(50):
        if fast.all() or not fast.any():
            return np.zeros(len(x), bool)
        c_fast, c_slow = x[fast].mean(), x[~fast].mean()
        now = x < (c_fast + c_slow) / 2
        if (now == fast).all():
            break
        fast = now
    if not fast.any() or fast.all():
        return np.zeros(len(x), bool)
    spells = int((np.diff(np.concatenate(([0], fast.astype(np.int8)))) == 1).sum())
    faster = math.exp(x[~fast].mean() - x[fast].mean())
    if faster < 2 or fast.mean() >= 0.5 or spells < 3:
        return np.zeros(len(x), bool)
    return fast


def _variance_rate(ret: np.ndarray, dur: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the log price per second over the windows of ``mask``:
    squared window returns plus twice the products of consecutive windows
    both in ``mask`` (which takes out the bid-ask bounce of the mid, noise
    that squared returns alone count as variance), over their time; the
    squared returns alone if that is not positive."""
    r2 = float(np.sum(ret[mask] ** 2))
    both = mask[1:] & mask[:-1]
    cross = float(np.sum(ret[1:][both] * ret[:-1][both]))
    seconds = float(dur[mask].sum())
    if not seconds > 0:
        return 0.0
    v = (r2 + 2 * cross) / seconds
    return v if v > 0 else r2 / seconds


def calibrate(batches: Iterable[np.ndarray], symbol: str, tick_size: float) -> ProcessConfig:
    """Generator settings (:class:`ticktape.model.sources.ProcessConfig`) that
    mimic one symbol's ticks (TICK_DTYPE batches in time order).

    The priced ticks (mid of a valid quote, else the trade price) are cut
    into windows of :data:`WINDOW`. ``n_ticks``, ``start_ns`` and ``price0``
    are the data's; ``tick_size`` the run's; the spread is the mean quoted
    spread, ``spread_ticks`` = it / ``tick_size`` - 1 (putting bid and ask
    on the grid adds a tick on average; ``spread_vol_mult`` 0; data without
    quotes: one tick); sizes the mean quoted size (a trade without a quote:
    its size). Regimes: when the windows' durations fall in two
    clusters, the faster at least twice as fast, in under half the windows
    and at least 3 spells, those windows are "news": ``news_rate_mult`` and
    ``news_vol_mult`` are the ratios of the two clusters' tick rates and
    volatilities, ``p_calm`` / ``p_news`` one over the mean spell lengths in
    ticks. The volatility (of the calm windows) is that of the windows'
    log-mid changes, corrected for the bid-ask bounce (first-order
    autocovariance), annualised by calendar time. No drift: the paths
    have the data's activity and risk, not its trend.

    Raises
    ------
    DataError
        No priced tick.
    """
    cal = _Calibration(symbol, tick_size)
    for batch in batches:
        cal.add(batch)
    return cal.result()


# --------------------------------------------------------------------------
# the draws


@dataclass(frozen=True)
class _Paths:
    """Draws ``start .. stop - 1`` of a synthetic-path study (a worker's job)."""

    spec: RunSpec
    configs: dict[str, ProcessConfig]
    seed: int
    n: int
    start: int
    stop: int


def _draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63))


def _paths_chunk(job: _Paths) -> tuple[int, dict[str, np.ndarray], np.ndarray]:
    """(start, per-draw statistics, fan rows) of synthetic-path draws: the
    strategy over each symbol's generated ticks, measured as a run."""
    spec = job.spec
    out: dict[str, list[float]] = {k: [] for k in STATS}
    fans = []
    where = np.linspace(0.0, 1.0, FAN_POINTS)
    for rng in draw_rngs(job.seed, job.start, job.stop, job.n):
        seed = _draw_seed(rng)
        equity, fills = {}, {}
        for symbol in spec.symbols:
            cfg = dataclasses.replace(job.configs[symbol], seed=seed)
            res = run_symbol(spec, generate_process(cfg, chunk=spec.batch_size))
            equity[symbol], fills[symbol] = res.equity, res.fills
        m, _ = metrics.run_metrics(equity, fills, spec.engine.initial_cash, grid=spec.return_grid)
        measured = _original(m)
        for k in STATS:
            out[k].append(measured.get(k, math.nan))
        start = spec.engine.initial_cash * len(spec.symbols)
        total = metrics.portfolio_equity(
            pd.DataFrame(
                {
                    "ts_ns": np.concatenate([e["ts"] for e in equity.values()]),
                    "symbol": np.repeat(list(equity), [len(e) for e in equity.values()]),
                    "equity": np.concatenate([e["equity"] for e in equity.values()]),
                }
            ),
            spec.engine.initial_cash,
        )
        if len(total):
            ts = total.index.to_numpy(np.int64)
            at = ts[0] + where * (ts[-1] - ts[0])
            k = np.searchsorted(ts, at, side="right") - 1
            fans.append(total.to_numpy(np.float64)[np.maximum(k, 0)])
        else:
            fans.append(np.full(FAN_POINTS, start))
    stats = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    return job.start, stats, np.stack(fans)


def _in_processes(
    fn: Callable[[Any], tuple[int, dict[str, np.ndarray], np.ndarray]],
    jobs: Sequence[Any],
    processes: int,
    progress: Callable[[int], None] | None,
) -> list[tuple[int, dict[str, np.ndarray], np.ndarray]]:
    """``fn`` over the jobs, in ``processes`` worker processes when more than
    one (forkserver where there is one, else spawn); ``progress(draws)``
    after each job. On an error or Ctrl-C the jobs not started are
    cancelled (only those running are waited for)."""
    done = []
    if processes == 1 or len(jobs) == 1:
        for job in jobs:
            done.append(fn(job))
            if progress:
                progress(job.stop - job.start)
        return done
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(method))
    try:
        futures = [pool.submit(fn, job) for job in jobs]
        for job, fut in zip(jobs, futures, strict=True):
            done.append(fut.result())
            if progress:
                progress(job.stop - job.start)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return done


# --------------------------------------------------------------------------
# the study


@dataclass
class MonteCarloResult:
    """A Monte Carlo study of a run.

    ``draws`` holds each draw's statistics (:data:`ticktape.compute.resample.STATS`,
    arrays of ``n``), ``fan_paths`` each draw's equity at the fan's points
    (``n`` x :data:`ticktape.compute.resample.FAN_POINTS`); ``summary`` and ``fan`` are what is stored
    (``montecarlo_studies``): per statistic its mean, std, percentiles
    (:data:`PERCENTILES`) and histogram, ``p_loss`` (final equity below the
    initial), ``p_drawdown_beyond`` (max drawdown beyond the threshold),
    ``original``: the run's own sequence (its trades or returns in order)
    measured as a draw is (for paths, its metrics), and ``run_metrics``:
    its stored metrics; the fan's x (0 = the start, 1 = the end of the
    run) and its percentile paths (:data:`FAN_PERCENTILES`).
    """

    study_id: str
    run_id: str
    method: str
    n: int
    seed: int
    block_length: float | None
    params: dict[str, Any]
    draws: dict[str, np.ndarray]
    fan_paths: np.ndarray
    summary: dict[str, Any]
    fan: dict[str, Any]
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        """The study as ``montecarlo_studies`` stores it (without
        ``created_at``; NaN as None), as
        :func:`ticktape.store.montecarlo.read_studies` returns it."""
        return {
            "study_id": self.study_id,
            "run_id": self.run_id,
            "method": self.method,
            "n": self.n,
            "seed": self.seed,
            "block_length": self.block_length,
            **{k: _json_safe(getattr(self, k)) for k in ("params", "summary", "fan")},
        }


def _num(x: float) -> float | None:
    """A float for JSON: None for NaN or ±inf (jsonb takes neither)."""
    return float(x) if math.isfinite(x) else None


def _grid_text(width: int) -> str:
    """A return grid for a message: its width, or "every equity sample" (0)."""
    return f"{width / 1e9:g} s" if width else "every equity sample"


def _json_safe(doc: Any) -> Any:
    """``doc`` with every NaN or ±inf number as None (jsonb takes neither)."""
    if isinstance(doc, float):
        return _num(doc)
    if isinstance(doc, dict):
        return {k: _json_safe(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_json_safe(v) for v in doc]
    return doc


def _summary(
    draws: dict[str, np.ndarray],
    initial: float,
    threshold: float,
    original: dict[str, float],
    run_metrics: dict[str, float],
) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for name in STATS:
        v = draws[name]
        f = v[np.isfinite(v)]
        entry: dict[str, Any] = {"n": len(f), "undefined": len(v) - len(f)}
        if len(f):
            try:
                counts, edges = np.histogram(f, bins=HIST_BINS)
            except ValueError:  # (all but equal: no room for the bins) one bin
                counts, edges = np.array([len(f)]), np.array([f.min(), f.max()])
            entry.update(
                mean=float(f.mean()),
                std=float(f.std(ddof=1)) if len(f) > 1 else 0.0,
                min=float(f.min()),
                max=float(f.max()),
                **{
                    f"p{q}": float(p) for q, p in zip(PERCENTILES, np.percentile(f, PERCENTILES), strict=True)
                },
                hist={"edges": edges.tolist(), "counts": counts.tolist()},
            )
        stats[name] = entry
    return {
        "stats": stats,
        "initial_equity": initial,
        "drawdown_threshold": threshold,
        "p_loss": float(np.mean(draws["final_equity"] < initial)),
        "p_drawdown_beyond": float(np.mean(draws["max_drawdown_pct"] > threshold)),
        "original": {k: _num(v) for k, v in original.items()},
        "run_metrics": {k: _num(v) for k, v in run_metrics.items()},
    }


def simulate(
    data: RunSeries | PathsInput,
    method: str,
    n: int = 1000,
    seed: int = 0,
    *,
    block_length: float | None = None,
    replace: bool = True,
    processes: int | None = None,
    drawdown_threshold: float = DEFAULT_THRESHOLD,
    progress: Callable[[int], None] | None = None,
) -> MonteCarloResult:
    """Draw ``n`` histories of a run and measure each (no store: see :func:`montecarlo`).

    Parameters
    ----------
    data
        The run's :class:`RunSeries` (trades, returns, blocks) or
        :class:`PathsInput` (paths).
    method, n, seed, block_length, replace, drawdown_threshold
        As ``ticktape montecarlo`` (:func:`check_options`); ``block_length``
        None with ``blocks``: :func:`ticktape.compute.resample.auto_block_length`
        of the returns.
    processes
        Worker processes (default: the CPUs for paths; for the resampling
        methods one below :data:`SPREAD_MIN` values, else the CPUs); the
        result is the same for any number.
    progress
        Called with the number of draws done after each chunk.

    Raises
    ------
    CommandError
        A bad option, or a block length longer than the returns.
    DataError
        Nothing to resample: no closed trade (trades), fewer than 2 returns.
    """
    check_options(method, n, seed, block_length, replace, processes, drawdown_threshold)
    procs = processes or os.cpu_count() or 1
    spread = processes is not None or method == "paths"
    params: dict[str, Any] = {"drawdown_threshold": drawdown_threshold}
    jobs: list[Any]
    if method == "paths":
        if not isinstance(data, PathsInput):
            raise TypeError("the paths method runs on a PathsInput (load_paths)")
        jobs = [_Paths(data.spec, data.configs, seed, n, k, k + 1) for k in range(n)]
        params["calibration"] = {s: dataclasses.asdict(c) for s, c in data.configs.items()}
        params["fan_x"] = "time"
        fan_x = np.linspace(0.0, 1.0, FAN_POINTS)
        fn: Callable[[Any], Any] = _paths_chunk
        original = data.original  # (the run's metrics: a path is measured as a run)
    else:
        if not isinstance(data, RunSeries):
            raise TypeError(f"the {method} method resamples a RunSeries (load_series)")
        span = float(data.last_ts - data.first_ts)
        if method == "trades":
            values = data.trade_pnl
            if not len(values):
                raise DataError(
                    f"run {data.run_id}: no closed trades to resample (--method returns or blocks"
                    " resample its returns)"
                )
            ppy = len(values) / (span / metrics.YEAR_NS) if span > 0 else math.nan
            params.update(replace=replace, trades=len(values), periods_per_year=_num(ppy))
        else:
            values = data.returns
            if len(values) < 2:
                raise DataError(
                    f"run {data.run_id}: {len(values)} return(s) on its return grid; resampling needs at least 2"
                )
            ppy = data.periods_per_year
            params.update(returns=len(values), return_grid_ns=data.grid_ns, periods_per_year=_num(ppy))
            if method == "blocks":
                if block_length is not None and block_length > len(values):
                    raise CommandError(
                        f"--block-length {block_length:g}: longer than the run's {len(values)} returns"
                        f" (on its return grid: {_grid_text(data.grid_ns)})"
                    )
                params["block_length_auto"] = block_length is None
                if block_length is None:
                    block_length = auto_block_length(values)
            else:
                params["replace"] = replace
        step_ns = span / len(values)
        params.update(step_ns=step_ns, fan_x="steps")
        fan_x = fan_positions(len(values), FAN_POINTS) / len(values)
        if not spread and n * len(values) < SPREAD_MIN:
            procs = 1  # (starting workers costs more than the draws)
        per = max(1, min(n, CHUNK_VALUES // len(values)))
        per = min(per, max(1, -(-n // procs)))  # at least one chunk per process
        jobs = [
            ResampleJob(
                method,
                values,
                data.initial_equity,
                step_ns,
                ppy,
                replace,
                block_length,
                seed,
                n,
                k,
                min(k + per, n),
            )
            for k in range(0, n, per)
        ]
        fn = resample_chunk
        # the run's own sequence, measured as a draw is: where the run stands among the draws
        eq, r = equity_paths(method, values[None, :], data.initial_equity)
        original = {k: float(v[0]) for k, v in path_stats(eq, step_ns, ppy, r).items()}
    params["initial_equity"] = data.initial_equity
    t0 = time.perf_counter()
    done = sorted(_in_processes(fn, jobs, min(procs, len(jobs)), progress), key=lambda d: d[0])
    draws = {k: np.concatenate([d[1][k] for d in done]) for k in STATS}
    fan_paths = np.concatenate([d[2] for d in done])
    summary = _summary(draws, data.initial_equity, drawdown_threshold, original, data.original)
    fan = {
        "x": fan_x.tolist(),
        **{f"p{q}": np.percentile(fan_paths, q, axis=0).tolist() for q in FAN_PERCENTILES},
    }
    return MonteCarloResult(
        study_id=str(uuid.uuid4()),
        run_id=data.run_id,
        method=method,
        n=n,
        seed=seed,
        block_length=block_length if method == "blocks" else None,
        params=params,
        draws=draws,
        fan_paths=fan_paths,
        summary=summary,
        fan=fan,
        seconds=time.perf_counter() - t0,
    )


def montecarlo(
    run_id: str,
    method: str = "trades",
    n: int = 1000,
    seed: int = 0,
    *,
    block_length: float | None = None,
    replace: bool = True,
    processes: int | None = None,
    drawdown_threshold: float = DEFAULT_THRESHOLD,
    progress: Callable[[int], None] | None = None,
    save: bool = True,
    dsn: str | None = None,
) -> MonteCarloResult:
    """A Monte Carlo study of the stored run ``run_id``, stored in
    ``montecarlo_studies`` (``save``) once every draw is done.

    Options as :func:`simulate`; the run is read (and the study stored) in
    one session of the store (:func:`ticktape.store.session.run`, ``dsn``
    or the configured / embedded database).

    Raises
    ------
    CommandError, SpecError, DataError
        A bad option; no such run or one not complete; nothing to resample.
        Nothing is stored then.
    """
    check_options(method, n, seed, block_length, replace, processes, drawdown_threshold)
    rid = str(parse_run_id(run_id))

    async def go(conn: asyncpg.Connection) -> MonteCarloResult:
        data = await (load_paths(conn, rid) if method == "paths" else load_series(conn, rid))
        res = simulate(
            data,
            method,
            n,
            seed,
            block_length=block_length,
            replace=replace,
            processes=processes,
            drawdown_threshold=drawdown_threshold,
            progress=progress,
        )
        if save:
            await mc_store.insert_study(conn, **res.row())
        return res

    return session.run(go, dsn=dsn)
