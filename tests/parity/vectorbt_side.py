"""vectorbt's side of tests/parity/test_vectorbt.py, run in vectorbt's own environment.

vectorbt 1.2.0 does not import next to ticktape's plotly (7), so the test
runs this script with the Python of a separate venv (see
tests/parity/test_vectorbt.py for how to make it). It imports numpy,
pandas and vectorbt only, runs an SMA crossover on the bars of a
Yahoo-style CSV (Date,Open,High,Low,Close,...) and prints one JSON object:
vectorbt's version, the final value and every trade (entry and exit dates,
PnL, open or closed).

Usage: python vectorbt_side.py BARS.csv --fast 10 --slow 30 --size 100 --cash 100000 [--long-only]
"""

from __future__ import annotations

import argparse
import json

import pandas as pd
import vectorbt as vbt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bars")
    ap.add_argument("--fast", type=int, required=True)
    ap.add_argument("--slow", type=int, required=True)
    ap.add_argument("--size", type=float, required=True)
    ap.add_argument("--cash", type=float, required=True)
    ap.add_argument("--long-only", action="store_true")
    args = ap.parse_args()
    df = pd.read_csv(args.bars, index_col="Date", parse_dates=True)
    close, open_ = df["Close"], df["Open"]
    fast = vbt.MA.run(close, args.fast).ma
    slow = vbt.MA.run(close, args.slow).ma
    # the state, not the crossing: long while fast > slow, short (or flat) while below, as
    # ticktape's target; decided at a bar's close, filled at the next bar's open
    entries = (fast > slow).vbt.fshift(1)
    exits = (fast < slow).vbt.fshift(1)
    pf = vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=open_,
        size=args.size,
        size_type="amount",
        direction="longonly" if args.long_only else "both",
        init_cash=args.cash,
        fees=0.0,
        freq="1D",
    )
    t = pf.trades.records_readable
    trades = [
        {
            "entry": str(r["Entry Timestamp"].date()),
            "exit": str(r["Exit Timestamp"].date()),
            "pnl": float(r["PnL"]),
            "open": r["Status"] == "Open",
        }
        for _, r in t.iterrows()
    ]
    print(json.dumps({"version": vbt.__version__, "final_value": float(pf.final_value()), "trades": trades}))


if __name__ == "__main__":
    main()
