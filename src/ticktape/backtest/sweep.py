"""Parameter sweeps: many parameter sets of one strategy over the same data, in bounded memory.

Per batch of ticks, a sweep does the shared work once: it validates the
ticks, computes each distinct feature (100 parameter sets of a
moving-average crossover over 10 + 10 lengths compute 20 moving averages,
not 200) and puts the prices on the engine's grid (:class:`ticktape.native.TickBatch`).
Per parameter set it runs only its strategy's decisions (its own instance,
the ``on_batch`` a single run calls) and its own engine on that shared
batch (``Engine.process_batch``, which skips the ticks that change nothing
for the set in a short path of native code), and folds the fills and equity
samples straight into the set's streaming metrics (:class:`SetStream`:
the parts of a single run's :class:`ticktape.compute.metrics.RunMetrics`) and a coarse
equity curve. Nothing per tick is kept, so a set costs the same memory
however long the data; each set's metrics are exactly those of a single
:func:`ticktape.backtest` with its parameters (tested), and ``keep_top``
re-runs the best sets in full detail (fills, orders, every equity sample).

The sets are spread over worker processes and over passes of the data so
that the sweep stays within a memory budget (:class:`Plan`); results do
not depend on the number of processes, passes or the batch size.

Results can be stored as one run per parameter set grouped by a sweep id
(``runs.sweep_id``), like pipeline runs, so they are analysed with the same
SQL and dashboard. See docs/sweeps.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import multiprocessing
import os
import random
import resource
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ticktape import store
from ticktape.backtest.run import (
    BacktestResult,
    Prepared,
    SharedFeatures,
    backtest,
    engine_config,
    make_result,
    prepare,
    run_prepared,
)
from ticktape.compute.accounting import RoundTrips
from ticktape.compute.metrics import BLOCK, TRADE_BLOCK, PerformanceStream, TradeStats
from ticktape.errors import SpecError, TicktapeError
from ticktape.model.batch import EQUITY_DTYPE, FILL_DTYPE, TICK_DTYPE, empty
from ticktape.model.spec import EngineConfig, new_run_id
from ticktape.native import Engine, InputError, TickBatch
from ticktape.stages import (
    IndicatorState,
    StrategyState,
    execution_step,
    features_step,
    refused,
    trade_step,
)
from ticktape.strategy import Decisions, Strategy, build

#: The most parameter sets one sweep takes (a grid is listed before it runs).
MAX_SETS = 1_000_000


def grid(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``space``'s values, in a fixed order (last key fastest).

    Examples
    --------
    >>> grid({"fast": [5, 10], "slow": [50]})
    [{'fast': 5, 'slow': 50}, {'fast': 10, 'slow': 50}]
    """
    keys = list(space)
    for k in keys:
        if not isinstance(space[k], list | tuple) or not space[k]:
            raise SpecError(f"grid.{k}: needs a non-empty list of values")
    n = math.prod(len(space[k]) for k in keys)
    if n > MAX_SETS:
        raise SpecError(f"grid: {n:,} parameter sets; a sweep takes at most {MAX_SETS:,}")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(space[k] for k in keys))]


def sample(space: dict[str, list[Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct parameter sets drawn from the grid (all of it if smaller), reproducibly."""
    full = grid(space)
    if n < 1:
        raise SpecError(f"sample: n must be >= 1, got {n}")
    if n >= len(full):
        return full
    picks = sorted(random.Random(seed).sample(range(len(full)), n))
    return [full[i] for i in picks]


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["fast=5,10,20", "slow=50:200:50"]`` → ``{"fast": [5, 10, 20], "slow": [50, 100, 150, 200]}``.

    ``a:b:step`` is an inclusive integer (or float) range; listed values are
    numbers when they parse as numbers, else strings (the strategy's config
    checks the types).
    """
    space: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise SpecError(f"--grid {item!r}: expected NAME=V1,V2,... or NAME=START:STOP:STEP")
        if values.count(":") == 2:
            try:
                a, b, step = (float(x) for x in values.split(":"))
            except ValueError:
                raise SpecError(f"--grid {item!r}: START:STOP:STEP must be numbers") from None
            if step <= 0 or b < a:
                raise SpecError(f"--grid {item!r}: need STEP > 0 and STOP >= START")
            count = int((b - a) / step + 1e-9) + 1
            if count > MAX_SETS:
                raise SpecError(f"--grid {item!r}: {count:,} values; a sweep takes at most {MAX_SETS:,} sets")
            vals = [a + i * step for i in range(count)]
            space[key] = [
                int(v) if float(v).is_integer() and all(float(x).is_integer() for x in (a, b, step)) else v
                for v in vals
            ]
        else:
            space[key] = [_scalar(v.strip()) for v in values.split(",") if v.strip()]
    return space


#: Default peak memory of a sweep (all its processes, the data included).
DEFAULT_BUDGET = 3 * 2**30
#: Memory of one worker process before any batch: the interpreter, numpy,
#: pandas, ticktape and the native module (VmRSS of an idle worker here:
#: about 190 MB; rounded up).
PROCESS_BYTES = 256 * 2**20
#: Equity samples a SetStream buffers before handing them to its metrics
#: (fewer, larger pieces cost less time; a quarter of it cost 35% more).
FLUSH_SAMPLES = BLOCK
#: Memory of one parameter set between batches: its :class:`SetStream`
#: buffers up to BLOCK equity samples (EQUITY_DTYPE) and their fills before
#: handing them to its streaming metrics, which hold at most BLOCK samples
#: (ts, equity, gross) and TRADE_BLOCK trades (4 sums) before folding them;
#: its engine and coarse curve are small.
SET_BYTES = (
    FLUSH_SAMPLES * (EQUITY_DTYPE.itemsize + FILL_DTYPE.itemsize // 4)
    + BLOCK * 3 * 8
    + TRADE_BLOCK * 4 * 8
    + 256 * 2**10
)
#: Memory per tick of a batch besides its features: the accepted copy
#: (TICK_DTYPE), the strategy's columns (a dozen float64), the batch checked
#: for the engines (prices in ticks, time and mid: TickBatch), and one set's
#: decisions and their temporaries.
BATCH_TICK_BYTES = TICK_DTYPE.itemsize + 12 * 8 + (3 * 8 + 2 * 8) + 8 * 8
#: Ticks per batch of a sweep (results never depend on it).
SWEEP_BATCH = 100_000
#: Below this many ticks x sets a sweep runs in the calling process
#: (starting a worker costs about a second).
SPREAD_MIN = 5_000_000
#: Points of each set's coarse equity curve (evenly spaced in event time).
CURVE_POINTS = 500


def parse_bytes(text: str | int) -> int:
    """``"3G"``, ``"512M"``, ``"800k"`` or a number of bytes -> bytes (powers of 1024).

    Examples
    --------
    >>> parse_bytes("3G"), parse_bytes("512M"), parse_bytes(1000)
    (3221225472, 536870912, 1000)
    """
    if isinstance(text, int):
        value = text
    else:
        t = str(text).strip().upper().removesuffix("B")
        scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(t[-1:], 1)
        try:
            value = int(float(t[:-1] if scale > 1 else t) * scale)
        except ValueError:
            raise SpecError(f"--memory-budget {text!r}: expected bytes or a size like 3G, 512M") from None
    if value <= 0:
        raise SpecError(f"--memory-budget {text!r}: must be > 0")
    return value


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


@dataclass
class Plan:
    """How a sweep fits its memory budget: ``processes`` at once, each
    holding at most ``capacity`` parameter sets per pass over the data."""

    processes: int
    capacity: int
    batch_size: int
    data_bytes: int
    process_bytes: int

    @classmethod
    def fit(
        cls, budget: int, n_sets: int, n_ticks: int, n_features: int, batch_size: int, processes: int
    ) -> Plan:
        """The plan for ``n_sets`` sets of a strategy with ``n_features`` distinct
        features over ``n_ticks`` ticks; a SpecError naming the figures when
        ``budget`` cannot hold even one set.

        In one process the calling process holds the ticks, a batch and the
        sets; with workers it holds the ticks, the workers map a copy of
        them (one file, shared) and each holds a batch and its sets.
        """
        data = n_ticks * TICK_DTYPE.itemsize
        batch = min(batch_size, max(n_ticks, 1))
        per_process = PROCESS_BYTES + batch * (BATCH_TICK_BYTES + 8 * n_features)
        need = data + per_process + SET_BYTES
        if budget < need:
            raise SpecError(
                f"memory budget {_mb(budget)} is too small for one parameter set: it needs {_mb(need)} "
                f"(the ticks {_mb(data)}, a process {_mb(PROCESS_BYTES)}, a batch of {batch:,} ticks with "
                f"{n_features} features {_mb(per_process - PROCESS_BYTES)}, one set {_mb(SET_BYTES)})"
            )
        procs = max(1, min(processes, n_sets))

        def fixed(p: int) -> int:  # everything but the sets
            return data + per_process if p == 1 else 2 * data + PROCESS_BYTES + p * per_process

        while procs > 1 and fixed(procs) + procs * SET_BYTES > budget:
            procs -= 1
        capacity = int((budget - fixed(procs)) // (procs * SET_BYTES))
        return cls(procs, max(1, min(capacity, -(-n_sets // procs))), batch, data, per_process)

    def groups(self, items: list[Any]) -> list[list[Any]]:
        """``items`` in consecutive groups of at most ``capacity``, a multiple
        of ``processes`` of them (as few as possible), sizes within one."""
        n = len(items)
        k = -(-n // self.capacity)
        k = min(n, -(-k // self.processes) * self.processes)
        cuts = [n * g // k for g in range(k + 1)]
        return [items[a:b] for a, b in itertools.pairwise(cuts) if b > a]


@dataclass
class SetResult:
    """One parameter set of a sweep: its metrics (exactly those of a single
    :func:`ticktape.backtest` with its parameters), counts and coarse equity
    curve (at :attr:`SweepResult.curve_ts`: the last equity sample at or
    before each point, NaN before the first)."""

    index: int
    params: dict[str, Any]
    metrics: dict[str, float]
    curve: np.ndarray
    fills: int
    orders: int


def _plain(perf: dict[str, Any]) -> dict[str, Any]:
    """Numbers as Python floats (as :func:`ticktape.backtest.run.make_result` gives them)."""
    return {
        k: (float(v) if isinstance(v, int | float | np.number) and not isinstance(v, bool) else v)
        for k, v in perf.items()
    }


class SetStream:
    """One parameter set's results as its engine outputs arrive, batch by
    batch, in memory independent of the run's length: the metrics of a
    single run (those of :class:`ticktape.compute.metrics.RunMetrics` over
    one symbol, from the same parts) and an equity curve on the coarse grid
    ``curve_ts``.

    As RunMetrics, it gives :class:`~ticktape.compute.metrics.PerformanceStream`
    the last equity sample of each time (a time's samples wait for the next
    piece, which may hold more of them) with the absolute position, and the
    fills to :class:`~ticktape.compute.accounting.RoundTrips`, whose settled
    trades go to :class:`~ticktape.compute.metrics.TradeStats`. Unlike it,
    it marks the round trips only with the latest valid sample of each
    piece, not with every sample: marks move only the excursions (MAE/MFE)
    of the trades, which a sweep does not keep and the statistics do not
    use, and the value of a trade still open at the end, which takes the
    last valid mark, which it gets. Outputs are buffered up to
    :data:`FLUSH_SAMPLES` equity samples and handed over in one piece
    (nothing depends on the pieces; fewer cost less).
    """

    def __init__(self, initial_cash: float, periods_per_year: float | None, curve_ts: np.ndarray) -> None:
        self.initial_cash = float(initial_cash)
        self.perf = PerformanceStream(periods_per_year)
        self.trips = RoundTrips()
        self.stats = TradeStats()
        self.final = math.nan
        self.curve_ts = curve_ts
        self.curve = np.full(len(curve_ts), np.nan)
        self._k = 0  # curve points set so far
        self._last = math.nan
        self.fills = self.orders = 0
        self._buf: dict[str, list[np.ndarray]] = {"fills": [], "equity": []}
        self._held = np.empty(0, EQUITY_DTYPE)  # the samples at the latest time seen
        self._samples = 0

    def add(self, out: dict[str, np.ndarray]) -> None:
        """The engine's outputs of the next batch (fills, orders, equity)."""
        self.fills += len(out["fills"])
        self.orders += len(out["orders"])
        for k in ("fills", "equity"):
            if len(out[k]):
                self._buf[k].append(out[k])
        eq = out["equity"]
        self._samples += len(eq)
        if len(eq):
            ts, equity = eq["ts"], eq["equity"]
            end = int(
                np.searchsorted(self.curve_ts, ts[-1], side="left")
            )  # later points may see later samples
            if end > self._k:
                j = np.searchsorted(ts, self.curve_ts[self._k : end], side="right") - 1
                self.curve[self._k : end] = np.where(j >= 0, equity[np.maximum(j, 0)], self._last)
                self._k = end
            self._last = float(equity[-1])
        if self._samples >= FLUSH_SAMPLES:
            self._flush()

    def _flush(self, last: bool = False) -> None:
        if self._buf["fills"]:
            self.trips.add_fills(np.concatenate(self._buf["fills"]))
        eq = np.concatenate([self._held, *self._buf["equity"]])
        self._buf = {"fills": [], "equity": []}
        self._samples = 0
        if not len(eq):
            return
        cut = len(eq) if last else int(np.searchsorted(eq["ts"], eq["ts"][-1], side="left"))
        self._held, eq = eq[cut:].copy(), eq[:cut]
        if not len(eq):
            return
        ts = eq["ts"]
        if bool(np.all(ts[1:] != ts[:-1])):  # (an engine's samples: each time once)
            self.perf.add(ts, eq["equity"], np.abs(eq["position"]))
        else:
            ends = np.flatnonzero(np.concatenate((ts[1:] != ts[:-1], [True])))  # the last sample of each time
            self.perf.add(ts[ends], eq["equity"][ends], np.abs(eq["position"][ends]))
        self.final = float(eq["equity"][-1])
        price = eq["price"]
        k = len(eq) - 1  # the latest valid mark: nearly always the last sample's
        if math.isnan(price[k]):
            valid = np.flatnonzero(~np.isnan(price))
            k = int(valid[-1]) if len(valid) else -1
        if k >= 0:
            self.trips.mark(ts[k : k + 1], price[k : k + 1])
        self.stats.add("", self.trips.settled_columns())

    def result(self, index: int, params: dict[str, Any]) -> SetResult:
        """The set's summary (its metrics are those of its single run)."""
        self._flush(last=True)
        self.stats.add("", self.trips.columns())
        self.curve[self._k :] = self._last
        if math.isnan(self.final):  # no samples
            perf = {"final_equity": self.initial_cash, "final_pnl": 0.0}
        else:
            perf = {
                **self.perf.result(self.stats),
                "final_equity": self.final,
                "final_pnl": self.final - self.initial_cash,
            }
        return SetResult(index, params, _plain(perf), self.curve, self.fills, self.orders)


@dataclass
class _Pass:
    """One pass over the ticks for a group of parameter sets (a worker's job)."""

    ticks: np.ndarray | str  # the ticks, or the path of a .npy file of them
    strategy: str
    base: dict[str, Any]
    sets: list[tuple[int, dict[str, Any]]]
    engine: EngineConfig
    batch_size: int
    periods_per_year: float | None
    curve_ts: np.ndarray


def advance(
    strats: Sequence[Strategy],
    engines: Sequence[Engine],
    states: list[StrategyState],
    users: list[dict[str, Any]],
    shared: SharedFeatures,
    good: np.ndarray,
    cols: Any,
    feats: dict[str, np.ndarray],
    batch: TickBatch,
    eos: bool,
    failed: dict[int, str] | None = None,
) -> list[dict[str, np.ndarray]]:
    """Each set's engine outputs (fills, orders, equity) of one checked batch.

    ``good``/``cols``/``feats``: the batch's accepted ticks, their columns and
    the shared features (:func:`ticktape.stages.features_step`); ``batch``:
    them on the engines' grid. A vectorized strategy without orders runs
    ``Engine.process_batch``; one with orders, or a per-tick one, the single
    run's path. ``states`` (per-tick strategies) and ``users`` (vectorized
    ones' own state) are updated in place.

    ``failed`` (set index -> why), when given, isolates the sets: a set in
    it is skipped, and a set that raises is put in it (the error in one
    line) instead of stopping the others; a skipped set's outputs are empty.
    """
    outs = []
    for j, strat in enumerate(strats):
        if failed is not None and j in failed:
            outs.append({k: empty(k) for k in ("fills", "orders", "equity")})
            continue
        try:
            f = shared.per_strategy(j, feats)
            if strat.per_tick:
                out, _, states[j] = trade_step(strat, engines[j], good, f, states[j], eos, cols)
            else:
                value, users[j] = strat.on_batch(cols, f, users[j])
                dec = Decisions.coerce(value, len(cols), strat.name)
                if dec.orders is None:
                    try:
                        out = engines[j].process_batch(batch, dec.target)
                    except InputError as exc:  # one line naming the parameter, as a single run's
                        raise refused(exc, strat, good, None) from None
                    if eos:
                        tail = engines[j].finish()
                        out = {k: np.concatenate((out[k], tail[k])) for k in out}
                else:
                    out = execution_step(engines[j], good, dec, eos, strategy=strat)
        except Exception as exc:  # (a strategy's own code may raise anything)
            if failed is None:
                raise
            failed[j] = str(exc) if isinstance(exc, TicktapeError) else f"{type(exc).__name__}: {exc}"
            out = {k: empty(k) for k in ("fills", "orders", "equity")}
        outs.append(out)
    return outs


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (VmHWM; ru_maxrss where there is no /proc)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _run_pass(job: _Pass) -> tuple[list[SetResult], dict[str, Any], int, int, float]:
    """Run one group of sets over all the ticks: (results, counts, pid, peak RSS,
    CPU seconds of the pass).

    Per batch, shared by the group: validation, each distinct feature and
    the prices on the grid (:class:`ticktape.native.TickBatch`); per set:
    its strategy's decisions and its engine on that batch
    (``Engine.process_batch``; orders or a per-tick strategy take the
    single run's path), folded into its :class:`SetStream`.
    """
    cpu0 = time.process_time()
    ticks = np.load(job.ticks, mmap_mode="r") if isinstance(job.ticks, str) else job.ticks
    cfg = job.engine
    strats = [build(job.strategy, {**job.base, **p}) for _, p in job.sets]
    shared = SharedFeatures(strats)
    engines = [Engine(**cfg.native_kwargs(), target_mode=s.target_mode) for s in strats]
    states = [StrategyState() for _ in strats]  # (the per-tick path's)
    users: list[dict[str, Any]] = [{} for _ in strats]  # each vectorized strategy's own state
    streams = [SetStream(cfg.initial_cash, job.periods_per_year, job.curve_ts) for _ in strats]
    ind = IndicatorState()
    n = len(ticks)
    for start in range(0, max(n, 1), job.batch_size):
        eos = start + job.batch_size >= n
        raw = np.array(ticks[start : start + job.batch_size])
        good, cols, feats, _, ind = features_step(shared.features, raw, ind, None, eos)
        batch = TickBatch(
            *(good[k] for k in ("ts", "bid", "ask", "bid_size", "ask_size", "last", "last_size")),
            tick_size=cfg.tick_size,
            lot_size=cfg.lot_size,
        )
        for stream, out in zip(
            streams,
            advance(strats, engines, states, users, shared, good, cols, feats, batch, eos),
            strict=True,
        ):
            stream.add(out)
    results = [st.result(i, p) for st, (i, p) in zip(streams, job.sets, strict=True)]
    counts = {"ticks_in": n, "accepted": ind.accepted, "rejects": ind.rejects}
    return results, counts, os.getpid(), _peak_rss(), time.process_time() - cpu0


def _bars_results(prepared: Prepared, job: _Pass) -> list[SetResult]:
    """Bars are few: each set's single-run result, reduced to its summary."""
    strats = [build(job.strategy, {**job.base, **p}) for _, p in job.sets]
    raw = run_prepared(prepared, strats, job.engine, job.batch_size, None)
    out = []
    for (i, p), s, r in zip(job.sets, strats, raw, strict=True):
        res = make_result(s, job.engine, r, "bars", job.periods_per_year)
        stream = SetStream(job.engine.initial_cash, job.periods_per_year, job.curve_ts)
        stream.add({k: r[k] for k in ("fills", "orders", "equity")})
        summary = stream.result(i, p)
        summary.metrics = res.metrics
        out.append(summary)
    return out


@dataclass
class SweepResult:
    """Every valid parameter set's summary (:class:`SetResult`), the invalid
    ones, and the full results of the sets re-run in detail (``keep_top``)."""

    sweep_id: str
    strategy: str
    base: dict[str, Any]
    engine: EngineConfig
    sets: list[SetResult]
    invalid: list[tuple[int, dict[str, Any], str]]
    curve_ts: np.ndarray
    detail: dict[int, BacktestResult] = field(default_factory=dict)
    ticks_in: int = 0
    accepted: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    plan: Plan | None = None
    passes: int = 0
    peak_rss: dict[str, int] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def param_sets(self) -> list[dict[str, Any]]:
        """The valid parameter sets, in the order given."""
        return [s.params for s in self.sets]

    def table(self) -> pd.DataFrame:
        """The set's index, its parameters and headline metrics, one row per valid set."""
        rows = []
        for s in self.sets:
            m = s.metrics
            rows.append(
                {
                    "set": s.index,
                    **s.params,
                    "final_equity": m.get("final_equity"),
                    "total_return": m.get("total_return"),
                    "sharpe": m.get("sharpe"),
                    "max_drawdown_pct": m.get("max_drawdown_pct"),
                    "trades": m.get("n_trades"),
                    "fills": s.fills,
                }
            )
        return pd.DataFrame(rows)

    def top(self, n: int = 10, by: str = "sharpe") -> pd.DataFrame:
        """The ``n`` best rows of :meth:`table` by ``by`` (descending, NaN last)."""
        t = self.table()
        if by not in t:
            raise SpecError(f"--sort {by!r}: not a column of the sweep table ({', '.join(t.columns)})")
        return t.sort_values(by, ascending=False, na_position="last", kind="stable").head(n)

    def curves(self) -> pd.DataFrame:
        """Every set's coarse equity curve: one column per set index, rows at ``curve_ts`` (UTC)."""
        index = pd.to_datetime(self.curve_ts, unit="ns", utc=True)
        return pd.DataFrame({s.index: s.curve for s in self.sets}, index=index)


def check_sets(
    strategy: str, param_sets: list[dict[str, Any]], base: dict[str, Any] | None = None
) -> tuple[list[tuple[int, dict[str, Any]]], list[tuple[int, dict[str, Any], str]]]:
    """(valid, invalid) parameter sets: ``(index, params)`` of those the
    strategy accepts, ``(index, params, reason)`` of the others.

    Raises
    ------
    SpecError
        No parameter sets, or none valid (naming the first and why).
    """
    if not param_sets:
        raise SpecError("sweep: the grid has no parameter sets")
    valid, invalid = [], []
    for k, p in enumerate(param_sets):
        try:
            build(strategy, {**(base or {}), **p})
        except SpecError as exc:
            invalid.append((k, p, str(exc)))
        else:
            valid.append((k, p))
    if not valid:
        k, p, why = invalid[0]
        raise SpecError(
            f"sweep: no valid parameter set ({len(invalid)} invalid); parameter set {k} {p}: {why}"
        )
    return valid, invalid


def _ticks_of(prepared: Prepared) -> np.ndarray:
    if prepared.ticks is None:  # a store selection: its ticks, in memory
        prepared.ticks, prepared.store = np.concatenate(list(prepared.batches(SWEEP_BATCH))), None
    return prepared.ticks


def sweep(
    data: Any,
    strategy: str,
    param_sets: list[dict[str, Any]],
    base: dict[str, Any] | None = None,
    *,
    format: str = "auto",
    engine: EngineConfig | dict[str, Any] | None = None,
    batch_size: int = SWEEP_BATCH,
    periods_per_year: float | None = None,
    processes: int | None = None,
    memory_budget: int | str = DEFAULT_BUDGET,
    keep_top: int = 0,
    sort: str = "sharpe",
    curve_points: int = CURVE_POINTS,
    **engine_options: Any,
) -> SweepResult:
    """Backtest ``strategy`` with each of ``param_sets`` (over ``base``) in bounded memory.

    Parameters
    ----------
    data, format, engine, engine_options, periods_per_year
        As :func:`ticktape.backtest` (ticks or bars; every set runs on the
        same data and engine settings).
    param_sets
        The parameter sets (e.g. :func:`grid`); the sets the strategy
        refuses are listed in ``result.invalid`` and the others run.
    batch_size
        Ticks per batch (results never depend on it).
    processes
        Worker processes (default: the CPUs, or one below :data:`SPREAD_MIN`
        ticks x sets); sets are spread over them and each set's results
        are the same whatever the count.
    memory_budget
        Peak memory of the whole sweep (bytes or ``"3G"``): the data, each
        process and the sets it holds at once; more sets than fit run in
        more passes over the data.
    keep_top, sort
        Re-run the ``keep_top`` best sets by ``sort`` (a :meth:`SweepResult.table`
        column) in full detail: ``result.detail[index]`` is the
        :class:`ticktape.backtest.BacktestResult` of a single run.
    curve_points
        Points of each set's coarse equity curve.

    Returns
    -------
    SweepResult

    Raises
    ------
    SpecError
        No parameter set, none valid, a budget too small for one set, or a
        bad option; the message names the set or the figure.
    """
    budget = parse_bytes(memory_budget)
    if batch_size < 1:
        raise SpecError(f"sweep: batch_size must be >= 1, got {batch_size}")
    if curve_points < 1:
        raise SpecError(f"sweep: curve_points must be >= 1, got {curve_points}")
    procs = (os.cpu_count() or 1) if processes is None else processes
    if procs < 1:
        raise SpecError(f"--processes {procs}: must be >= 1")
    base = dict(base or {})
    valid, invalid = check_sets(strategy, param_sets, base)
    prepared = prepare(data, format)
    cfg = engine_config(prepared, engine, engine_options)
    t0 = time.perf_counter()
    if prepared.mode == "bars":
        assert prepared.bars is not None  # (prepare gives bars in bars mode)
        ts = prepared.bars.end
        n_ticks = 2 * len(prepared.bars)
        ticks: np.ndarray = np.zeros(0, TICK_DTYPE)  # (bars run from prepared.bars)
    else:
        ticks = _ticks_of(prepared)
        ts = ticks["ts"]
        n_ticks = len(ts)
    n_features = len(SharedFeatures([build(strategy, {**base, **p}) for _, p in valid]).features)
    if processes is None and n_ticks * len(valid) < SPREAD_MIN:
        procs = 1
    plan = Plan.fit(budget, len(valid), n_ticks, n_features, batch_size, procs)
    curve_ts = (
        np.linspace(int(ts[0]), int(ts[-1]), curve_points).astype(np.int64)
        if len(ts)
        else np.zeros(0, np.int64)
    )
    groups = plan.groups(valid)
    jobs = [_Pass(ticks, strategy, base, g, cfg, plan.batch_size, periods_per_year, curve_ts) for g in groups]
    done: list[SetResult] = []
    counts: dict[str, Any] = {"ticks_in": n_ticks, "accepted": n_ticks, "rejects": {}}
    peaks: dict[str, int] = {}
    cpus: dict[str, float] = {}
    if prepared.mode == "bars":
        for job in jobs:
            done += _bars_results(prepared, job)
    elif plan.processes == 1 or len(jobs) == 1:
        for job in jobs:
            res, counts, _, _, cpu = _run_pass(job)
            done += res
            cpus["main"] = cpus.get("main", 0.0) + cpu
        peaks["main"] = _peak_rss()
    else:
        done, counts, peaks, cpus = _in_processes(jobs, plan.processes)
    done.sort(key=lambda s: s.index)
    result = SweepResult(
        str(uuid.uuid4()),
        strategy,
        base,
        cfg,
        done,
        invalid,
        curve_ts,
        ticks_in=counts["ticks_in"],
        accepted=counts["accepted"],
        rejects=counts["rejects"],
        plan=plan,
        passes=len(jobs),
        peak_rss=peaks,
        cpu_seconds=cpus,
    )
    if keep_top:
        for i in result.top(keep_top, sort)["set"].tolist():
            result.detail[int(i)] = backtest(
                prepared, strategy, {**base, **param_sets[i]}, engine=cfg, periods_per_year=periods_per_year
            )
    result.seconds = time.perf_counter() - t0
    return result


def _in_processes(
    jobs: list[_Pass], processes: int
) -> tuple[list[SetResult], dict[str, Any], dict[str, int], dict[str, float]]:
    """Run the passes in ``processes`` worker processes (forkserver where
    there is one, else spawn), the ticks shared through a memory-mapped
    file (in /dev/shm where there is one)."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    shm = Path("/dev/shm")  # memory, where there is one: no disk write, no page-cache reads
    with tempfile.TemporaryDirectory(prefix="ticktape-sweep-", dir=shm if shm.is_dir() else None) as tmp:
        path = str(Path(tmp) / "ticks.npy")
        np.save(path, jobs[0].ticks)
        for job in jobs:
            job.ticks = path
        done: list[SetResult] = []
        peaks: dict[str, int] = {}
        cpus: dict[str, float] = {}
        counts: dict[str, Any] = {}
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(method)) as pool:
            for res, job_counts, pid, peak, cpu in pool.map(_run_pass, jobs):
                done += res
                counts = job_counts  # (every pass reads the same ticks)
                peaks[f"worker {pid}"] = max(peak, peaks.get(f"worker {pid}", 0))
                cpus[f"worker {pid}"] = cpus.get(f"worker {pid}", 0.0) + cpu
    peaks["main"] = _peak_rss()
    return done, counts, peaks, cpus


async def store_sweep(conn: Any, result: SweepResult, symbol: str) -> list[str]:
    """Store every valid parameter set as a complete run (``runs.sweep_id`` =
    the sweep's id) with its metrics and counts, and the sets re-run in
    detail (``keep_top``) with their signals, orders, fills and equity too;
    returns the run ids in the order of ``result.sets``. ``symbol`` names
    the data (e.g. the file's stem)."""

    symbol = Path(symbol).stem if "/" in symbol or "." in symbol else symbol
    ids = []
    start = int(result.curve_ts[0]) if len(result.curve_ts) else None
    end = int(result.curve_ts[-1]) if len(result.curve_ts) else None
    for s in result.sets:
        run_id = new_run_id()
        params = {**result.base, **s.params}
        spec = {
            "strategy": result.strategy,
            "params": params,
            "engine": dataclasses.asdict(result.engine),
            "sweep": {"id": result.sweep_id, "set": s.params, "index": s.index},
        }
        detail = result.detail.get(s.index)
        async with conn.transaction():
            await store.create_run(
                conn,
                run_id,
                result.strategy,
                spec,
                params,
                [symbol],
                start,
                end,
                status="running",
                sweep_id=result.sweep_id,
            )
            if detail is not None:
                raw = detail.extra["raw"]
                await store.write_result_set(
                    conn, run_id, symbol, 0, {k: raw[k] for k in ("signals", "orders", "fills", "equity")}
                )
            await store.write_metrics(
                conn,
                run_id,
                {
                    k: v
                    for k, v in s.metrics.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                },
            )
            await store.finish_run(
                conn,
                run_id,
                "complete",
                ticks_in=result.ticks_in,
                ticks_processed=result.accepted,
                ticks_rejected=sum(result.rejects.values()),
                rejects=result.rejects,
                orders=s.orders,
                fills=s.fills,
                wall_seconds=result.seconds / len(result.sets),
            )
        ids.append(run_id)
    return ids
