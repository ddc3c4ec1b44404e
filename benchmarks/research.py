"""Research tools' speed: a walk-forward study against separate single runs.

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

Usage: python benchmarks/research.py [--ticks N] [--grid 10x10] [--processes P] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import ticktape
from ticktape.backtest import walkforward as wf
from ticktape.backtest.sweep import grid
from ticktape.data.synth import ProcessConfig, generate_process

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=10_000_000, help="synthetic ticks (default 10M)")
    ap.add_argument("--grid", default="10x10", help="FxS: the walk-forward's grid (default 10x10)")
    ap.add_argument("--processes", type=int, default=1, help="processes of each window's sweep (default 1)")
    ap.add_argument("--quick", action="store_true", help="smoke size: 400k ticks, 3x3 grid")
    args = ap.parse_args()
    if args.quick:
        args.ticks, args.grid = 400_000, "3x3"
    shape = tuple(int(x) for x in args.grid.lower().split("x"))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    ticks = make_ticks(args.ticks)
    gen_s = time.perf_counter() - t0
    rows = walkforward_rows(ticks, (shape[0], shape[1]), args.processes)
    load1 = os.getloadavg()
    table = Table(
        title=f"benchmarks/research.py: ma_crossover, {args.ticks:,} ticks (generated in {gen_s:.1f} s), "
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
            r["step"], r["work"], f"{r['seconds']:.1f}", f"{r['cpu']:.1f}", f"{r['ratio']:.2f}", r["note"]
        )
    Console(width=220).print(table)


if __name__ == "__main__":
    main()
