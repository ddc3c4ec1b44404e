"""Research tools' speed: Monte Carlo studies (``ticktape montecarlo``).

Prints one table. Monte Carlo rows (:func:`montecarlo_rows`), each timing
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

``--quick``: 100 draws, 1,000 trades, 4 paths of 50,000 ticks.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ticktape.backtest.montecarlo import PathsInput, RunSeries, calibrate, simulate
from ticktape.compute import metrics
from ticktape.compute.resample import STATS
from ticktape.data.synth import generate_process
from ticktape.model.sources import ProcessConfig
from ticktape.model.spec import EngineConfig, RunSpec

RUN = "0190a1b2-0000-7000-8000-000000000001"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _same(a: Any, b: Any) -> bool:
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
                "note": "same draws as 1 process" if procs > 1 and _same(one, two) else "",
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


def _print(rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    cells = [
        [f"{v:,.3f}" if isinstance(v, float) else str(v) for v in (row[c] for c in cols)] for row in rows
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--draws", type=int, default=1_000, help="trade and block resamples")
    ap.add_argument("--trades", type=int, default=10_000, help="closed trades (and returns) of the run")
    ap.add_argument("--paths", type=int, default=200, help="synthetic paths")
    ap.add_argument("--path-ticks", type=int, default=1_000_000, help="ticks per synthetic path")
    ap.add_argument("--processes", type=int, default=2, help="worker processes")
    ap.add_argument("--ratio-paths", type=int, default=10, help="paths timed in 1 and in --processes")
    ap.add_argument("--quick", action="store_true", help="smoke size")
    args = ap.parse_args()
    if args.quick:
        args.draws, args.trades, args.paths, args.path_ticks, args.ratio_paths = 100, 1_000, 4, 50_000, 2
    load = os.getloadavg()
    rows = montecarlo_rows(
        args.draws, args.trades, args.paths, args.path_ticks, args.processes, args.ratio_paths
    )
    print(f"research tools ({os.cpu_count()} CPUs, load {load[0]:.1f} at the start)")
    _print(rows)


if __name__ == "__main__":
    main()
