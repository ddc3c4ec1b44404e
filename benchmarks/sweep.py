"""Parameter sweep speed and memory: per set vs a single run, and vs vectorbt.

Generates ``--ticks`` synthetic quotes (ticktape.data.synth, GBM at Poisson
times, default 10M), then times on the same ticks and prints one table:

- one ``ticktape.backtest`` of ``ma_crossover`` (the 10x10 grid's middle set),
  timed before and after every sweep (this machine's load moves a lot: each
  sweep's ratio is to the mean of the two runs around it, vectorbt's to
  the last);
- ``ticktape.backtest.sweep.sweep`` over each ``--grids`` fast x slow grid
  (the first one twice when ``--processes`` > 1: also with one process,
  and each with the CPU seconds its passes used, to tell a second
  process's gain from the machine's other load)
  (default 10x10 and 25x40 = 1,000 sets; fast 10, 20, ... and slow every
  200 ticks from the first multiple of 200 above the largest fast: 200 ..
  2,000 and 400 .. 8,200): the total, the time per set, that divided by the
  single run's, ticks x sets per second and the peak memory. Per batch the
  sweep validates the ticks, computes each distinct moving average and puts
  the prices on the grid once; per set it runs the strategy's decisions and
  its engine on the shared batch and keeps only streaming metrics and a
  coarse equity curve (docs/sweeps.md). Its sets are spread over
  ``--processes`` workers within ``--memory-budget``;
- vectorbt on the same ticks and the ``--vectorbt-grids`` (default the
  first grid), in its own environment (benchmarks/vectorbt_sweep.py, which
  says how to make it) when ``--vectorbt-python`` exists;
- sanity: the middle set's metrics in the sweep equal the single run's
  (every metric), and its trades and final PnL in both libraries (they
  differ by the conventions below; printed, not asserted).

Every timing includes everything its call returns: ``backtest`` a complete
result, the sweep every set's metrics (all of them) and curve, vectorbt per
set the total profit and the trade count (from its order records; asking it
for a drawdown or returns builds (ticks x columns) float frames per chunk).
Peak memory: the peak RSS of this process during the step (VmHWM reset
before it, after a gc.collect() and malloc_trim), plus, for a sweep, the
sum of its worker processes' peak RSS (they map the same ticks file, so
this sum counts those pages once per process: an upper bound) and the
peak PSS of the whole process tree (polled every 0.2 s; shared pages
counted once: what the machine gave the sweep); for vectorbt the peak RSS
of its process. numba's compilation is excluded (a warm-up on a small slice).

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
* ticktape samples equity once per second of event time for its metrics,
  vectorbt at every tick (this would affect a drawdown, not the final PnL);
* both value an open position at the last mid; ticktape's sweep has every
  metric per set, vectorbt's row only what it needs for total profit and
  trade count.

vectorbt allocates ``close`` and ``call_seq`` as (ticks x columns) arrays and
``max_orders`` defaults to ticks x columns records, so 100 columns over 10M
ticks do not fit in memory at once; its grid runs in chunks of 10 sets
(the chunk's slow averages computed once for every fast one),
``max_orders`` = the number of signals.

Usage: python benchmarks/sweep.py [--ticks N] [--grids 10x10,25x40] [--processes P]
       [--memory-budget 3G] [--vectorbt-python PATH] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import math
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

import ticktape
from ticktape.backtest.sweep import grid, sweep
from ticktape.data.synth import ProcessConfig, generate_process

FAST_STEP, SLOW_STEP = 10, 200
INITIAL_CASH = 1_000_000.0
VECTORBT_PYTHON = Path(__file__).parent / ".venv-vectorbt" / "bin" / "python"


def grid_shape(text: str) -> tuple[int, int]:
    """``"10x10"`` -> (10, 10): the number of fast and slow windows."""
    parts = text.lower().split("x")
    try:
        f, s = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--grids {text!r}: expected FxS, e.g. 10x10") from None
    if f < 1 or s < 1:
        raise argparse.ArgumentTypeError(f"--grids {text!r}: both counts must be >= 1")
    return f, s


def grid_shapes(text: str) -> list[tuple[int, int]]:
    """``"10x10,25x40"`` -> [(10, 10), (25, 40)]."""
    return [grid_shape(t) for t in text.split(",") if t.strip()]


def windows(shape: tuple[int, int]) -> tuple[list[int], list[int]]:
    """Fast 10, 20, ... and slow every 200 from the first multiple of 200 above the largest fast."""
    f, s = shape
    fasts = [FAST_STEP * (i + 1) for i in range(f)]
    first = (fasts[-1] // SLOW_STEP + 1) * SLOW_STEP
    return fasts, [first + SLOW_STEP * j for j in range(s)]


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


def measured(fn: Callable[[], Any]) -> tuple[Any, float, str, float]:
    """(result, seconds, "peak RSS MB (+ growth over the RSS at the start)",
    CPU seconds of this process)."""
    _release()
    _reset_peak()
    start = _status_mb("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status_mb("VmHWM")
    return out, secs, f"{peak:,.0f} (+{peak - start:,.0f})", cpu


def _tree_pss_mb() -> float:
    """Proportional set size of this process and all its descendants (MB):
    pages shared between them (the mapped ticks, libraries) counted once."""
    total, todo, seen = 0.0, [os.getpid()], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


class PeakPss:
    """The peak of :func:`_tree_pss_mb` while the block runs (polled every 0.2 s)."""

    def __enter__(self) -> PeakPss:
        self.peak = _tree_pss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, _tree_pss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _tree_pss_mb())


# ---------------------------------------------------------------- the runs
def make_ticks(n: int) -> np.ndarray:
    cfg = ProcessConfig(symbol="S", n_ticks=n, seed=1)
    return np.concatenate(list(generate_process(cfg, chunk=1_000_000)))


def same_metrics(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Every metric equal (NaN equal to NaN)."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a
    )


def vectorbt_run(
    python: Path, path: str, fasts: list[int], slows: list[int], size: float, fee_bps: float
) -> dict[str, Any]:
    """benchmarks/vectorbt_sweep.py in vectorbt's own environment: its JSON."""
    cmd = [
        str(python),
        str(Path(__file__).with_name("vectorbt_sweep.py")),
        path,
        "--fast",
        ",".join(map(str, fasts)),
        "--slow",
        ",".join(map(str, slows)),
        "--size",
        str(size),
        "--fee-bps",
        str(fee_bps),
        "--cash",
        str(INITIAL_CASH),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"vectorbt_sweep.py failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=10_000_000, help="synthetic ticks (default 10M)")
    ap.add_argument("--grids", type=grid_shapes, default=[(10, 10), (25, 40)], help="FxS,...: sweep grids")
    ap.add_argument(
        "--vectorbt-grids", type=grid_shapes, default=None, help="vectorbt's grids (default: the first)"
    )
    ap.add_argument("--vectorbt-python", type=Path, default=VECTORBT_PYTHON, help="Python of vectorbt's venv")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="sweep worker processes")
    ap.add_argument("--memory-budget", default="3G", help="the sweep's memory budget (default 3G)")
    ap.add_argument("--size", type=float, default=100.0, help="units held long or short")
    ap.add_argument("--fee-bps", type=float, default=1.0, help="taker fee, bps of traded value")
    ap.add_argument("--batch-size", type=int, default=50_000, help="ticks per batch of the single run")
    ap.add_argument("--quick", action="store_true", help="smoke size: 200k ticks, 3x3 grid")
    ap.add_argument("--json", type=Path, help="also write the table here (benchmarks/benchjson.py)")
    args = ap.parse_args()
    if args.quick:
        args.ticks, args.grids = 200_000, [(3, 3)]
    vbt_grids = args.vectorbt_grids if args.vectorbt_grids is not None else args.grids[:1]
    slowest = max(windows(g)[1][-1] for g in args.grids)
    if args.ticks < 10 * slowest:
        ap.error(f"--ticks {args.ticks:,}: too few for the slowest window {slowest}")
    fasts0, slows0 = windows(args.grids[0])
    mid_set = {"fast": fasts0[(len(fasts0) - 1) // 2], "slow": slows0[(len(slows0) - 1) // 2]}
    base = {"size": args.size}
    opts = {"fee_bps": args.fee_bps, "initial_cash": INITIAL_CASH}
    n = args.ticks
    load0 = os.getloadavg()

    ticks, gen_s, gen_rss, _ = measured(lambda: make_ticks(n))
    warm = ticks[: 20 * SLOW_STEP]  # imports and first calls
    ticktape.backtest(warm, "ma_crossover", {**base, "fast": 2, "slow": 5}, **opts)
    sweep(warm, "ma_crossover", grid({"fast": [2], "slow": [5, 6]}), base, processes=1, **opts)

    def one_run() -> tuple[Any, float, str, float]:
        return measured(
            lambda: ticktape.backtest(
                ticks, "ma_crossover", {**base, **mid_set}, batch_size=args.batch_size, **opts
            )
        )

    # the load of this shared machine moves a lot: the single run is timed
    # before and after every sweep, and each sweep is compared with the mean
    # of the two runs around it
    single, single_s, single_rss, single_cpu = one_run()
    singles, singles_cpu = [single_s], [single_cpu]
    rows = []
    sanity = []
    # the first grid also with one process (when --processes > 1): what a second process gives here
    steps = [(shape, args.processes) for shape in args.grids]
    if args.processes > 1:
        steps.insert(1, (args.grids[0], 1))
    for shape, procs in steps:
        fasts, slows = windows(shape)
        sets = grid({"fast": fasts, "slow": slows})
        with PeakPss() as pss:
            res, secs, rss, main_cpu = measured(
                lambda sets=sets, procs=procs: sweep(
                    ticks,
                    "ma_crossover",
                    sets,
                    base,
                    processes=procs,
                    memory_budget=args.memory_budget,
                    **opts,
                )
            )
        _, after, _, after_cpu = one_run()
        singles.append(after)
        singles_cpu.append(after_cpu)
        workers = sum(v for k, v in res.peak_rss.items() if k != "main") / 2**20
        plan = res.plan
        cpu = main_cpu + sum(v for k, v in res.cpu_seconds.items() if k != "main")  # this process + workers
        cpu_around = (singles_cpu[-2] + singles_cpu[-1]) / 2
        note = (
            f"{plan.processes} process{'es' if plan.processes > 1 else ''}, {res.passes} passes of <= {plan.capacity} "
            f"sets, budget {args.memory_budget}; CPU {cpu:.1f} s = {cpu / len(sets):.3f} s/set = "
            f"{cpu / len(sets) / cpu_around:.3f} of the single runs' CPU around it ({cpu_around:.2f} s)"
        )
        around = (singles[-2] + singles[-1]) / 2
        rows.append((f"sweep {shape[0]}x{shape[1]}", len(sets), secs, rss, workers, pss.peak, note, around))
        if shape == args.grids[0] and procs == args.processes:
            mid = next(s for s in res.sets if s.params == mid_set)
            sanity.append(
                f"middle set in the sweep: metrics {'identical to' if same_metrics(mid.metrics, single.metrics) else 'DIFFER from'} "
                f"the single run's; trades {mid.metrics['n_trades']:,.0f}, final PnL {mid.metrics['final_pnl']:,.2f}"
            )
        del res
    vbt_rows = []
    if args.vectorbt_python.exists():
        with tempfile.TemporaryDirectory() as tmp:
            path = str(Path(tmp) / "ticks.npy")
            np.save(path, ticks)
            for shape in vbt_grids:
                fasts, slows = windows(shape)
                v = vectorbt_run(args.vectorbt_python, path, fasts, slows, args.size, args.fee_bps)
                vbt_rows.append(
                    (f"vectorbt {v['version']} {shape[0]}x{shape[1]}", len(fasts) * len(slows), v)
                )
                if shape == args.grids[0]:
                    m = v["sets"][f"{mid_set['fast']},{mid_set['slow']}"]
                    sanity.append(
                        f"middle set in vectorbt: trades {m['trades']:,}, final PnL {m['pnl']:,.2f}"
                    )
    load1 = os.getloadavg()

    label = f"fast={mid_set['fast']} slow={mid_set['slow']}"
    table = Table(
        title=(
            f"benchmarks/sweep.py: ma_crossover, {n:,} ticks, size {args.size:g}, fee {args.fee_bps:g} bps, "
            f"{os.cpu_count()} CPUs"
        ),
        caption=(
            f"load average (1 min) {load0[0]:.2f} at start, {load1[0]:.2f} at end. "
            "vectorbt: mid as close, crossover signals shifted one tick, fills at ask/bid via slippage = "
            "half-spread/mid, whole orders at once (see the docstring). " + " | ".join(sanity)
        ),
    )
    for col in ("step", "sets", "seconds", "s / set", "÷ single run", "ticks×sets/s", "peak RSS MB", "note"):
        table.add_column(col, justify="left" if col in ("step", "note") else "right")
    table.add_row(
        "generate ticks (synth GBM)", "-", f"{gen_s:.2f}", "-", "-", f"{n / gen_s:,.0f}", gen_rss, "ticks/s"
    )
    table.add_row(
        f"ticktape.backtest ({label})", "1", f"{single_s:.2f}", f"{single_s:.3f}", "1.00",
        f"{n / single_s:,.0f}", single_rss,
        "complete result (fills, orders, every equity sample); all runs: " + ", ".join(f"{x:.2f}" for x in singles)
        + " s; their CPU: " + ", ".join(f"{x:.2f}" for x in singles_cpu) + " s",
    )  # fmt: skip
    for step, k, secs, rss, workers, pss, note, around in rows:
        table.add_row(
            step, f"{k:,}", f"{secs:.2f}", f"{secs / k:.4f}", f"{secs / k / around:.3f}",
            f"{n * k / secs:,.0f}", f"{rss} + workers {workers:,.0f}; PSS {pss:,.0f}",
            f"{note}; single run around it {around:.2f} s",
        )  # fmt: skip
    for step, k, v in vbt_rows:
        secs = v["seconds"]
        table.add_row(
            step, f"{k:,}", f"{secs:.2f}", f"{secs / k:.4f}", f"{secs / k / singles[-1]:.3f}",
            f"{n * k / secs:,.0f}", f"{v['peak_rss_mb']:,.0f}", "own venv; chunks of 10 sets",
        )  # fmt: skip
    if not vbt_rows:
        table.add_row(
            "vectorbt", "-", "-", "-", "-", "-", "-", f"no {args.vectorbt_python} (see vectorbt_sweep.py)"
        )
    Console(width=220).print(table)
    if args.json:
        import benchjson

        benchjson.write(args.json, "sweep", table)


if __name__ == "__main__":
    main()
