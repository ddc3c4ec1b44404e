"""Research tools' speed: a walk-forward study against separate single runs,
and Monte Carlo studies (``ticktape montecarlo``).

Generates ``--ticks`` synthetic quotes (ticktape.data.synth, GBM at Poisson
times, default 10M), then times on the same ticks and prints one table:

- **walk-forward** (:func:`walkforward_rows`): ``ticktape.backtest.walkforward.walkforward``
  of ``ma_crossover`` over a ``--grid`` fast x slow grid (default 10x10:
  fast 10, 20, ... and slow every 200 ticks from 200, as benchmarks/sweep.py)
  in 8 rolling windows (test span = the data's span / 12 rounded up to a
  minute, training span 4 test spans, step = test: 8 windows): per window
  one in-sample sweep of every set over the training span, then the chosen
  set's out-of-sample run; everything the result holds (every window's
  metrics, the stitched curve and its metrics);
- **80 separate single runs** (10 sets per window, the grid's diagonal
  fast_i/slow_i, each a ``ticktape.backtest`` on that window's training
  span): half timed before the walk-forward and half after (this machine's
  load moves a lot; the ratio is of CPU time, see :func:`clock`, to their
  sum). From their mean time per
  run, the naive way to do the same study (every set of the grid run alone
  on every training span, plus the 8 out-of-sample runs) is extrapolated;
- sanity: window 0's chosen set run alone on its training span has the
  in-sample metrics the study reports (every metric equal).

Both sides run in ``--processes`` processes (default 1: like for like; the
single runs always run one after another in this process).

Monte Carlo rows (:func:`montecarlo_rows`; their CPU and ratio columns are
empty: their comparison is 1 process against ``--mc-processes``).
Each timing
``ticktape.backtest.montecarlo.simulate`` (the draws, their statistics,
the summary and the fan; not reading the run from the store):

- ``--draws`` (default 1,000) trade resamples of a run of ``--trades``
  (default 10,000) closed trades (their net PnL drawn from a normal, over
  one year), in this process and in 2 worker processes (the same study,
  checked);
- the same number of stationary block bootstrap draws of ``--trades``
  returns (AR(1), phi 0.3: the automatic block length is stated);
- ``--paths`` (default 200) synthetic paths of ``--path-ticks`` (default
  1M) ticks each: ``ma_crossover`` (fast 50, slow 400) rerun on the
  generator calibrated (``calibrate``) to 1M ticks of GBM with calm/news
  regimes, in ``--processes`` (default 2) worker processes; and, back to
  back before it, ``--ratio-paths`` (default 10) of them in 1 process and
  in ``--processes``, for the ratio (this machine's load moves a lot:
  compare only back-to-back figures).

``--quick``: 400k ticks and a 3x3 grid; 100 draws, 1,000 trades, 4 paths of
50,000 ticks.

Usage: python benchmarks/research.py [--ticks N] [--grid 10x10] [--processes P]
[--draws N] [--trades N] [--paths N] [--path-ticks N] [--mc-processes P] [--quick]

"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import ticktape
from ticktape.backtest import walkforward as wf
from ticktape.backtest.montecarlo import PathsInput, RunSeries, calibrate, simulate
from ticktape.backtest.sweep import grid
from ticktape.compute import metrics
from ticktape.compute.resample import STATS
from ticktape.data.synth import ProcessConfig, generate_process
from ticktape.model.spec import EngineConfig, RunSpec

FAST_STEP, SLOW_STEP = 10, 200
OPTIONS = {"fee_bps": 1.0, "initial_cash": 1_000_000.0}
BASE = {"size": 100.0}
WINDOWS = 8
#: The table's columns; every rows function gives dicts with these keys.
COLUMNS = ("step", "work", "seconds", "cpu", "ratio", "note")


def make_ticks(n: int, seed: int = 1) -> np.ndarray:
    """``n`` synthetic quotes of one symbol."""
    return np.concatenate(
        list(generate_process(ProcessConfig(symbol="S", n_ticks=n, seed=seed), chunk=1_000_000))
    )


def spans(ticks: np.ndarray, windows: int = WINDOWS) -> tuple[wf.Span, wf.Span]:
    """(train, test) spans in whole minutes giving ``windows`` rolling windows over the ticks."""
    minutes = (int(ticks["ts"][-1]) - int(ticks["ts"][0])) / 60e9
    test = math.ceil(minutes / (windows + 4))
    return wf.Span(4 * test, "min"), wf.Span(test, "min")


def clock() -> np.ndarray:
    """(wall, CPU) seconds now; CPU: this process's and its ended children's
    (a sweep's worker processes), user + system. On this shared machine the
    wall time moves with the other workers' load, the CPU time much less:
    ratios are of CPU time."""
    t = os.times()
    return np.array([time.perf_counter(), t.user + t.system + t.children_user + t.children_system])


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in b)


def walkforward_rows(ticks: np.ndarray, shape: tuple[int, int], processes: int) -> list[dict[str, Any]]:
    """The walk-forward rows of the table (see the module docstring)."""
    f, s = shape
    space = {"fast": [FAST_STEP * (i + 1) for i in range(f)], "slow": [SLOW_STEP * (i + 1) for i in range(s)]}
    sets = grid(space)
    diagonal = [{"fast": space["fast"][i % f], "slow": space["slow"][i % s]} for i in range(max(f, s))]
    train, test = spans(ticks)
    wins = wf.windows(int(ticks["ts"][0]), int(ticks["ts"][-1]) + 1, train, test)

    def cut(k: int) -> np.ndarray:  # (one window's training ticks at a time: memory stays modest)
        return ticks[(ticks["ts"] >= wins[k].train_start) & (ticks["ts"] < wins[k].train_end)]

    def singles(part: list[tuple[int, dict[str, Any]]]) -> np.ndarray:
        """(wall, CPU) seconds of the runs of ``part`` (cutting the spans excluded)."""
        spent = np.zeros(2)
        for k in sorted({k for k, _ in part}):
            data = cut(k)
            t0 = clock()
            for _, p in (j for j in part if j[0] == k):
                ticktape.backtest(data, "ma_crossover", {**BASE, **p}, **OPTIONS)
            spent += clock() - t0
        return spent

    jobs = [(k, p) for k in range(len(wins)) for p in diagonal]
    warm = ticks[: 20 * SLOW_STEP]  # imports and first calls
    ticktape.backtest(warm, "ma_crossover", {**BASE, "fast": 2, "slow": 5}, **OPTIONS)
    before = singles(jobs[::2])
    t0 = clock()
    res = wf.walkforward(
        ticks, "ma_crossover", sets, train=train, test=test, base=BASE, processes=processes, **OPTIONS
    )
    wf_s = clock() - t0
    after = singles(jobs[1::2])
    runs_s = before + after
    per_run = runs_s / len(jobs)
    naive = len(sets) * len(wins) + len(wins)
    w0 = res.windows[0]
    alone = ticktape.backtest(cut(0), "ma_crossover", {**BASE, **w0.params}, **OPTIONS)
    in_sample = sum(w.train_rows for w in res.windows)
    return [
        {
            "step": f"walk-forward, {f}x{s} grid, {len(wins)} windows",
            "work": f"{len(wins)} sweeps of {len(sets)} sets ({in_sample:,} ticks in sample) + {len(wins)} OOS runs",
            "seconds": wf_s[0],
            "cpu": wf_s[1],
            "ratio": wf_s[1] / runs_s[1],
            "note": f"train {train}, test {test}, processes {processes}; "
            f"{wf_s[1] / (len(sets) * len(wins)) / per_run[1]:.2f} of a single run's CPU per set and window",
        },
        {
            "step": f"{len(jobs)} separate single runs",
            "work": f"{len(diagonal)} sets x {len(wins)} training spans",
            "seconds": runs_s[0],
            "cpu": runs_s[1],
            "ratio": 1.0,
            "note": f"{per_run[1]:.3f} CPU s per run; CPU {before[1]:.1f} s before the walk-forward, "
            f"{after[1]:.1f} s after",
        },
        {
            "step": f"naive study: {naive} single runs (extrapolated)",
            "work": f"every set alone on every training span + {len(wins)} OOS runs",
            "seconds": naive * per_run[0],
            "cpu": naive * per_run[1],
            "ratio": naive * per_run[1] / runs_s[1],
            "note": f"walk-forward {naive * per_run[1] / wf_s[1]:.1f}x less CPU; sanity: window 0's set alone "
            f"= its IS metrics: {_same(alone.metrics, w0.in_sample)}",
        },
    ]


RUN = "0190a1b2-0000-7000-8000-000000000001"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _same_draws(a: Any, b: Any) -> bool:
    return all(np.array_equal(a.draws[k], b.draws[k], equal_nan=True) for k in STATS)


def montecarlo_rows(
    draws: int = 1_000,
    trades: int = 10_000,
    paths: int = 200,
    path_ticks: int = 1_000_000,
    processes: int = 2,
    ratio_paths: int = 10,
) -> list[dict[str, Any]]:
    """The Monte Carlo rows of the table (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(1)
    pnl = rng.normal(20.0, 500.0, trades)
    r = np.zeros(trades)
    e = rng.normal(0.0002, 0.01, trades)
    for i in range(1, trades):
        r[i] = 0.3 * r[i - 1] + e[i]
    series = RunSeries(RUN, 1e6, pnl, r, 3_600 * 10**9, metrics.YEAR_NS / 3_600e9, 0, metrics.YEAR_NS)
    simulate(series, "trades", 10, processes=1)  # (imports, first calls)

    one, s1 = _timed(lambda: simulate(series, "trades", draws, seed=1, processes=1))
    two, s2 = _timed(lambda: simulate(series, "trades", draws, seed=1, processes=processes))
    for procs, secs in ((1, s1), (processes, s2)):
        rows.append(
            {
                "study": f"trades: {draws:,} resamples of {trades:,} trades",
                "processes": procs,
                "seconds": secs,
                "per draw ms": secs / draws * 1e3,
                "note": "same draws as 1 process" if procs > 1 and _same_draws(one, two) else "",
            }
        )
    blocks, s3 = _timed(lambda: simulate(series, "blocks", draws, seed=1, processes=1))
    rows.append(
        {
            "study": f"blocks: {draws:,} draws of {trades:,} returns",
            "processes": 1,
            "seconds": s3,
            "per draw ms": s3 / draws * 1e3,
            "note": f"mean block {blocks.block_length:.1f} (Politis-White)",
        }
    )

    truth = ProcessConfig(
        symbol="SYN", n_ticks=path_ticks, seed=3, regimes=True, p_news=2e-4, spread_vol_mult=0.0
    )
    cal, s_cal = _timed(lambda: calibrate(generate_process(truth), "SYN", 0.01))
    spec = RunSpec(
        strategy="ma_crossover",
        symbols=("SYN",),
        params={"fast": 50, "slow": 400},
        engine=EngineConfig(initial_cash=1e6),
        run_id=RUN,
    )
    data = PathsInput(RUN, spec, {"SYN": cal})
    note = f"calibration of {path_ticks:,} ticks {s_cal:.2f} s"
    if ratio_paths:
        _, r1 = _timed(lambda: simulate(data, "paths", ratio_paths, seed=2, processes=1))
        _, r2 = _timed(lambda: simulate(data, "paths", ratio_paths, seed=2, processes=processes))
        for procs, secs in ((1, r1), (processes, r2)):
            rows.append(
                {
                    "study": f"paths: {ratio_paths} paths of {path_ticks:,} ticks",
                    "processes": procs,
                    "seconds": secs,
                    "per draw ms": secs / ratio_paths * 1e3,
                    "note": f"{r1 / r2:.2f}x faster than 1 process" if procs > 1 else "",
                }
            )
    res, s4 = _timed(lambda: simulate(data, "paths", paths, seed=2, processes=processes))
    rows.append(
        {
            "study": f"paths: {paths} paths of {path_ticks:,} ticks",
            "processes": processes,
            "seconds": s4,
            "per draw ms": s4 / paths * 1e3,
            "note": f"{note}; {paths * path_ticks / s4 / 1e6:.2f}M ticks/s;"
            f" P(loss) {res.summary['p_loss']:.2f}",
        }
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=10_000_000, help="synthetic ticks (default 10M)")
    ap.add_argument("--grid", default="10x10", help="FxS: the walk-forward's grid (default 10x10)")
    ap.add_argument("--processes", type=int, default=1, help="processes of each window's sweep (default 1)")
    ap.add_argument("--draws", type=int, default=1_000, help="Monte Carlo trade and block resamples")
    ap.add_argument("--trades", type=int, default=10_000, help="closed trades (and returns) of the run")
    ap.add_argument("--paths", type=int, default=200, help="synthetic paths")
    ap.add_argument("--path-ticks", type=int, default=1_000_000, help="ticks per synthetic path")
    ap.add_argument("--mc-processes", type=int, default=2, help="Monte Carlo worker processes")
    ap.add_argument("--ratio-paths", type=int, default=10, help="paths timed in 1 and in --mc-processes")
    ap.add_argument("--quick", action="store_true", help="smoke size: 400k ticks, 3x3 grid, small studies")
    args = ap.parse_args()
    if args.quick:
        args.ticks, args.grid = 400_000, "3x3"
        args.draws, args.trades, args.paths, args.path_ticks, args.ratio_paths = 100, 1_000, 4, 50_000, 2
    shape = tuple(int(x) for x in args.grid.lower().split("x"))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    ticks = make_ticks(args.ticks)
    gen_s = time.perf_counter() - t0
    rows = walkforward_rows(ticks, (shape[0], shape[1]), args.processes)
    del ticks  # (the Monte Carlo studies make their own)
    rows += [
        {
            "step": r["study"],
            "work": f"{r['processes']} process{'es' if r['processes'] > 1 else ''}, "
            f"{r['per draw ms']:,.2f} ms per draw",
            "seconds": r["seconds"],
            "cpu": math.nan,
            "ratio": math.nan,
            "note": r["note"],
        }
        for r in montecarlo_rows(
            args.draws, args.trades, args.paths, args.path_ticks, args.mc_processes, args.ratio_paths
        )
    ]
    load1 = os.getloadavg()
    table = Table(
        title=f"benchmarks/research.py: walk-forward of ma_crossover on {args.ticks:,} ticks (generated in {gen_s:.1f} s), "
        f"size {BASE['size']:g}, fee {OPTIONS['fee_bps']:g} bps, {os.cpu_count()} CPUs",
        caption=f"load average (1 min) {load0[0]:.2f} at start, {load1[0]:.2f} at end",
    )
    for col in COLUMNS:
        table.add_column(
            {"seconds": "wall s", "cpu": "CPU s"}.get(col, col),
            justify="right" if col in ("seconds", "cpu", "ratio") else "left",
        )
    for r in rows:
        table.add_row(
            r["step"],
            r["work"],
            f"{r['seconds']:.2f}",
            "-" if math.isnan(r["cpu"]) else f"{r['cpu']:.1f}",
            "-" if math.isnan(r["ratio"]) else f"{r['ratio']:.2f}",
            r["note"],
        )
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
