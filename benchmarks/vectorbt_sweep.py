"""vectorbt's side of benchmarks/sweep.py, run in vectorbt's own environment.

vectorbt 1.2.0 does not import next to ticktape's plotly (7): it needs
plotly < 6. So benchmarks/sweep.py runs this script with the Python of a
separate venv (``--vectorbt-python``), made once with::

    python3 -m venv benchmarks/.venv-vectorbt
    benchmarks/.venv-vectorbt/bin/pip install vectorbt==1.2.0 "plotly<6"

(``make bench`` makes the same venv as build/vectorbt-venv and passes it.)

(tested with vectorbt 1.2.0, numba 0.68.1, numpy 2.4.6, pandas 3.1.2,
plotly 5.24.1). It imports numpy, pandas and vectorbt only, reads the ticks
that sweep.py saved (``.npy``, ticktape's TICK_DTYPE), runs the grid and
prints one JSON object: seconds, peak RSS and, per set, total profit and
trade count. numba's compilation is excluded (a warm-up on a small slice
first). The conventions are in benchmarks/sweep.py's docstring.

Usage: python vectorbt_sweep.py TICKS.npy --fast 10,20 --slow 200,400 --size 100 --fee-bps 1 --cash 1e6
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import vectorbt as vbt

#: Columns per from_signals call: vectorbt allocates close, call_seq and its
#: order records as (ticks x columns) arrays, so 10M ticks x 10 columns is
#: already a few GB; the grid runs in chunks of this many sets.
CHUNK = 10


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    with contextlib.suppress(OSError):  # kernels that refuse it: the peak so far
        Path("/proc/self/clear_refs").write_text("5")


def run_grid(
    ticks: np.ndarray, fasts: list[int], slows: list[int], size: float, fee_bps: float, cash: float
) -> dict[str, dict[str, float]]:
    """{"fast,slow": {"pnl", "trades"}}: MA crossovers on the mid, signals
    shifted one tick, filled at the ask / bid (slippage = half-spread / mid),
    long and short, ``size`` units, ``fee_bps`` of the traded value."""
    bid, ask = ticks["bid"], ticks["ask"]
    price = pd.Series((bid + ask) * 0.5, name="mid")
    half_spread = pd.Series((ask - bid) / (ask + bid))  # mid * (1 +- this) = ask / bid
    out = {}
    for c in range(0, len(slows), CHUNK):  # each chunk's slow averages once, for every fast one
        part = slows[c : c + CHUNK]
        slow_ma = vbt.MA.run(price, window=part, short_name="slow")
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
                init_cash=cash,
                max_orders=int(entries.to_numpy().sum() + exits.to_numpy().sum()) + 1,
            )
            pnl = pf.total_profit().to_numpy()  # from the order records: no (ticks x columns) values
            trades = pf.trades.count().to_numpy()
            for j, s in enumerate(part):
                out[f"{f},{s}"] = {"pnl": float(pnl[j]), "trades": int(trades[j])}
            del pf, entries, exits, fast_ma
            gc.collect()  # vectorbt's objects hold reference cycles: free each chunk now
        del slow_ma
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ticks", help=".npy file of TICK_DTYPE ticks")
    ap.add_argument("--fast", required=True)
    ap.add_argument("--slow", required=True)
    ap.add_argument("--size", type=float, default=100.0)
    ap.add_argument("--fee-bps", type=float, default=1.0)
    ap.add_argument("--cash", type=float, default=1_000_000.0)
    args = ap.parse_args()
    ticks = np.load(args.ticks)
    fasts = [int(x) for x in args.fast.split(",")]
    slows = [int(x) for x in args.slow.split(",")]
    run_grid(ticks[:4000], [2], [5, 6], args.size, args.fee_bps, args.cash)  # numba compiles here
    gc.collect()
    reset_peak()
    t0 = time.perf_counter()
    res = run_grid(ticks, fasts, slows, args.size, args.fee_bps, args.cash)
    secs = time.perf_counter() - t0
    print(
        json.dumps({"version": vbt.__version__, "seconds": secs, "peak_rss_mb": peak_rss_mb(), "sets": res})
    )


if __name__ == "__main__":
    main()
