"""Parameter sweep speed: time per parameter set vs a single run, and vs vectorbt.

Generates ``--ticks`` synthetic quotes (ticktape.data.synth, GBM at Poisson
times), then times on the same ticks and prints one table:

- one ``ticktape.backtest`` of ``ma_crossover`` (the grid's middle set);
- ``ticktape.backtest.sweep.sweep`` over the whole fast x slow grid (default 10 x 10:
  fast 10, 20, ..., 100 and slow 200, 400, ..., 2000 ticks): the total, the
  time per parameter set, that time divided by the single run's, and
  ticks x sets per second. A sweep validates the ticks once and computes each
  distinct moving average once per batch (20, not 200, for 10 x 10), but each
  set still has its own strategy decisions, engine and result (fills, orders,
  equity curve, trades, metrics);
- vectorbt on the same ticks and grid, when it is importable;
- a sanity line: trades and final PnL of the middle set in both (they differ
  by the conventions below; printed, not asserted).

Every timing includes everything its call returns: ``backtest`` and ``sweep``
build complete results with all metrics; vectorbt's row includes its moving
averages, crossovers, simulation and, per set, the total profit and trade
count (from its order records; asking it for a drawdown or returns builds and
caches several (ticks x columns) float frames per chunk: 10 columns x 10M
ticks ran this machine out of its 23 GB). Peak RSS is the peak resident memory of this process during
that step and, in brackets, its growth over the RSS at the step's start
(VmHWM reset before each step through /proc/self/clear_refs, after a
gc.collect() and malloc_trim; on kernels that refuse the reset it is the peak
so far). numba's compilation is
excluded: both libraries are warmed up on a small slice first.

Conventions (ticktape vs vectorbt)
----------------------------------
ticktape's ``ma_crossover`` holds +size while SMA(fast) > SMA(slow) of the mid
and -size while below. A decision at tick i becomes a market order that
reaches the exchange at tick i+1 (latency 0: never the deciding tick) and
takes the displayed ask (buying) or bid (selling) up to its displayed size;
the rest keeps working on later ticks, and a new decision cancels and
replaces what is still working. Fees are ``fee_bps`` of the traded value.

vectorbt by default fills a signal at the same bar's close. To make it as
close as possible: ``close`` = the mid; entries = fast crosses above slow,
exits = crosses below (``vbt.MA.run`` + ``ma_crossed_above``/``_below``,
vectorbt's usual way), shifted forward one tick (``signals.fshift(1)``) so a
decision at tick i fills at tick i+1; ``direction="both"`` (an exit reverses
into the short, as our target path does), ``size`` units
(``size_type="amount"``), ``fees = fee_bps * 1e-4`` and ``slippage`` = the
tick's half-spread / mid, which puts a buy exactly at the ask and a sell at
the bid (our slippage model stays "none"). What remains different:

* vectorbt fills the whole order at once at the next tick; ticktape fills at
  most the displayed size per tick (median 48 units on this data vs 100 to
  200 per order), the remainder at later ticks' prices, and a remainder can
  be cancelled by the next decision (so a flip may end before it crosses
  zero: fewer trades);
* ticktape takes its first position when SMA(slow) warms up; vectorbt waits
  for the first crossover after that (one trade fewer);
* ticktape samples equity once per second of event time, vectorbt at every
  tick (this would affect a drawdown, not the final PnL);
* both value an open position at the last mid; ticktape's result has every
  metric, its fills, orders, equity curve and trades per set, vectorbt's row
  only what it needs for total profit and trade count.

vectorbt allocates ``close`` and ``call_seq`` as (ticks x columns) arrays and
``max_orders`` defaults to ticks x columns records, so 100 columns over 10M
ticks do not fit in memory at once; the grid runs in chunks of one fast window
against all slow windows (10 columns), the slow moving averages computed once
and broadcast, ``max_orders`` = the number of signals.

vectorbt is not a ticktape dependency (it pulls numba, scipy, scikit-learn,
matplotlib); for the comparison install it next to ticktape:
``pip install vectorbt`` (tested with 1.2.0). Without it its rows read
"vectorbt not installed".

Usage: python benchmarks/sweep.py [--ticks N] [--grid FxS] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import ticktape
from ticktape.backtest.run import BacktestResult
from ticktape.backtest.sweep import grid, sweep
from ticktape.data.synth import ProcessConfig, generate_process

FAST_STEP, SLOW_STEP = 10, 200
INITIAL_CASH = 1_000_000.0


def grid_shape(text: str) -> tuple[int, int]:
    """``"10x10"`` -> (10, 10): the number of fast and slow windows."""
    parts = text.lower().split("x")
    try:
        f, s = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--grid {text!r}: expected FxS, e.g. 10x10") from None
    if f < 1 or s < 1:
        raise argparse.ArgumentTypeError(f"--grid {text!r}: both counts must be >= 1")
    return f, s


def windows(shape: tuple[int, int]) -> tuple[list[int], list[int]]:
    """Fast 10, 20, ... and slow 200, 400, ... (every fast < every slow up to 19 x 1)."""
    f, s = shape
    fasts = [FAST_STEP * (i + 1) for i in range(f)]
    slows = [SLOW_STEP * (j + 1) for j in range(s)]
    if fasts[-1] >= slows[0]:
        raise SystemExit(f"--grid {f}x{s}: fast {fasts[-1]} must stay below slow {slows[0]}")
    return fasts, slows


# ---------------------------------------------------------------- measuring
def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _release() -> None:
    """Hand freed memory back to the OS so a step's peak is not inflated by an
    earlier step's garbage (glibc keeps freed small blocks in its arenas)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measured(fn: Callable[[], Any]) -> tuple[Any, float, str]:
    """(result, seconds, "peak RSS MB (+ growth over the RSS at the start)")."""
    _release()
    _reset_peak()
    start = _status_mb("VmRSS")
    t0 = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    return out, secs, f"{peak:,.0f} (+{peak - start:,.0f})"


# ---------------------------------------------------------------- the runs
def make_ticks(n: int) -> np.ndarray:
    cfg = ProcessConfig(symbol="S", n_ticks=n, seed=1)
    return np.concatenate(list(generate_process(cfg, chunk=1_000_000)))


def pnl_of(r: BacktestResult) -> float:
    return r.final_equity - r.engine.initial_cash


def vectorbt_grid(
    ticks: np.ndarray, fasts: list[int], slows: list[int], size: float, fee_bps: float
) -> dict[tuple[int, int], dict[str, float]]:
    """vectorbt's MA-crossover grid on the mid (see the module docstring for
    the conventions); {(fast, slow): {"pnl", "trades"}}."""
    import pandas as pd
    import vectorbt as vbt

    bid, ask = ticks["bid"], ticks["ask"]
    price = pd.Series((bid + ask) * 0.5, name="mid")
    half_spread = pd.Series((ask - bid) / (ask + bid))  # mid * (1 +- this) = ask / bid
    slow_ma = vbt.MA.run(price, window=slows, short_name="slow")
    out = {}
    for f in fasts:
        fast_ma = vbt.MA.run(price, window=f, short_name="fast")
        entries = fast_ma.ma_crossed_above(slow_ma).vbt.signals.fshift(1)
        exits = fast_ma.ma_crossed_below(slow_ma).vbt.signals.fshift(1)
        pf = vbt.Portfolio.from_signals(
            price,
            entries,
            exits,
            direction="both",
            size=size,
            size_type="amount",
            fees=fee_bps * 1e-4,
            slippage=half_spread,
            init_cash=INITIAL_CASH,
            max_orders=int(entries.to_numpy().sum() + exits.to_numpy().sum()) + 1,
        )
        # both from the order records: no (ticks x columns) value series
        pnl = pf.total_profit().to_numpy()
        trades = pf.trades.count().to_numpy()
        for j, s in enumerate(slows):
            out[f, s] = {"pnl": float(pnl[j]), "trades": int(trades[j])}
        del pf, entries, exits, fast_ma
        gc.collect()  # vectorbt's objects hold reference cycles: free each chunk's arrays now
    return out


def vectorbt_version() -> str | None:
    try:
        import vectorbt as vbt
    except ImportError:
        return None
    return vbt.__version__


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=10_000_000, help="synthetic ticks (default 10M)")
    ap.add_argument(
        "--grid", type=grid_shape, default=(10, 10), help="FxS: F fast windows 10,20,.. x S slow 200,400,.."
    )
    ap.add_argument("--size", type=float, default=100.0, help="units held long or short")
    ap.add_argument("--fee-bps", type=float, default=1.0, help="taker fee, bps of traded value")
    ap.add_argument("--batch-size", type=int, default=50_000, help="ticks per batch (ticktape)")
    ap.add_argument("--no-vectorbt", action="store_true", help="skip vectorbt even if installed")
    ap.add_argument("--quick", action="store_true", help="smoke size: 200k ticks, 3x3 grid")
    args = ap.parse_args()
    if args.quick:
        args.ticks, args.grid = 200_000, (3, 3)
    if args.batch_size < 1:
        ap.error(f"--batch-size {args.batch_size}: must be >= 1")
    if args.ticks < 10 * SLOW_STEP * args.grid[1]:
        ap.error(f"--ticks {args.ticks:,}: too few for the slowest window {SLOW_STEP * args.grid[1]}")
    fasts, slows = windows(args.grid)
    sets = grid({"fast": fasts, "slow": slows})
    mid_set = {"fast": fasts[(len(fasts) - 1) // 2], "slow": slows[(len(slows) - 1) // 2]}
    base = {"size": args.size}
    opts = {"fee_bps": args.fee_bps, "initial_cash": INITIAL_CASH}
    n, k = args.ticks, len(sets)
    load0 = os.getloadavg()

    ticks, gen_s, gen_rss = measured(lambda: make_ticks(n))

    # warm up both libraries on a small slice (imports, numba compilation)
    warm = ticks[: 20 * SLOW_STEP]
    ticktape.backtest(warm, "ma_crossover", {**base, "fast": 2, "slow": 5}, **opts)
    sweep(warm, "ma_crossover", grid({"fast": [2], "slow": [5, 6]}), base, **opts)
    vbt_ver = None if args.no_vectorbt else vectorbt_version()
    if vbt_ver:
        vectorbt_grid(warm, [2], [5, 6], args.size, args.fee_bps)

    single, single_s, single_rss = measured(
        lambda: ticktape.backtest(
            ticks, "ma_crossover", {**base, **mid_set}, batch_size=args.batch_size, **opts
        )
    )
    swept, sweep_s, sweep_rss = measured(
        lambda: sweep(ticks, "ma_crossover", sets, base, batch_size=args.batch_size, **opts)
    )
    per_set = sweep_s / k
    mid_idx = sets.index(mid_set)
    tt_mid = swept.results[mid_idx]
    same = pnl_of(tt_mid) == pnl_of(single) and tt_mid.metrics["n_trades"] == single.metrics["n_trades"]
    tt_rows = {
        "trades": int(tt_mid.metrics["n_trades"]),
        "fills": len(tt_mid.fills),
        "pnl": pnl_of(tt_mid),
    }
    del swept  # its 100 results (equity curves, fills, frames) before vectorbt allocates

    vbt_res, vbt_s, vbt_rss = None, float("nan"), "-"
    if vbt_ver:
        vbt_res, vbt_s, vbt_rss = measured(
            lambda: vectorbt_grid(ticks, fasts, slows, args.size, args.fee_bps)
        )
    load1 = os.getloadavg()

    def vs_vbt(seconds: float) -> str:
        return f"{seconds / vbt_s:.2f}x" if vbt_res else "-"

    label = f"fast={mid_set['fast']} slow={mid_set['slow']}"
    table = Table(
        title=(
            f"benchmarks/sweep.py: ma_crossover, {n:,} ticks, {args.grid[0]}x{args.grid[1]} grid "
            f"(fast {fasts[0]}..{fasts[-1]}, slow {slows[0]}..{slows[-1]}), size {args.size:g}, "
            f"fee {args.fee_bps:g} bps"
        ),
        caption=(
            f"load average (1 min) {load0[0]:.2f} at start, {load1[0]:.2f} at end on {os.cpu_count()} CPUs. "
            "vectorbt: mid as close, crossover signals shifted one tick, fills at ask/bid via slippage = "
            "half-spread/mid; it fills whole orders at once, ticktape only the displayed size per tick "
            "(rest works on later ticks) and enters at warm-up rather than at the first cross "
            "(see the docstring)."
        ),
    )
    for col in (
        "step",
        "sets",
        "seconds",
        "s / set",
        "÷ single run",
        "÷ vectorbt",
        "ticks×sets/s",
        "peak RSS MB (+step)",
        "note",
    ):
        table.add_column(col, justify="left" if col in ("step", "note") else "right")
    table.add_row(
        "generate ticks (synth GBM)",
        "-",
        f"{gen_s:.2f}",
        "-",
        "-",
        "-",
        f"{n / gen_s:,.0f}",
        gen_rss,
        "ticks/s",
    )
    table.add_row(
        f"ticktape.backtest ({label})", "1", f"{single_s:.2f}", f"{single_s:.3f}", "1.00", "-",
        f"{n / single_s:,.0f}", single_rss, "",
    )  # fmt: skip
    table.add_row(
        "ticktape.backtest.sweep.sweep", f"{k}", f"{sweep_s:.2f}", f"{per_set:.3f}", f"{per_set / single_s:.2f}",
        vs_vbt(sweep_s), f"{n * k / sweep_s:,.0f}", sweep_rss,
        f"middle set {'identical to' if same else 'DIFFERS from'} the single run",
    )  # fmt: skip
    if vbt_res:
        table.add_row(
            f"vectorbt {vbt_ver} (MA.run, crossovers, from_signals)", f"{k}", f"{vbt_s:.2f}",
            f"{vbt_s / k:.3f}", f"{vbt_s / k / single_s:.2f}", "1.00x", f"{n * k / vbt_s:,.0f}",
            vbt_rss, f"chunks of {len(slows)} sets (1 fast x all slow)",
        )  # fmt: skip
        v = vbt_res[mid_set["fast"], mid_set["slow"]]
        vbt_note = f"trades {v['trades']:,}, final PnL {v['pnl']:,.2f}"
    else:
        why = (
            "skipped (--no-vectorbt)" if args.no_vectorbt else "vectorbt not installed (pip install vectorbt)"
        )
        table.add_row("vectorbt", "-", "-", "-", "-", "-", "-", "-", why)
        vbt_note = "-"
    table.add_row(
        f"sanity {label}: ticktape", "", "", "", "", "", "", "",
        f"trades {tt_rows['trades']:,} ({tt_rows['fills']:,} fills), final PnL {tt_rows['pnl']:,.2f}",
    )  # fmt: skip
    table.add_row(f"sanity {label}: vectorbt", "", "", "", "", "", "", "", vbt_note)
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
