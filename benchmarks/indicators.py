"""Values/s of every streaming indicator (ticktape.compute.indicators.STREAMS).

Feeds the same random-walk series (default 10M values) to a fresh stream of
each indicator with its default parameters (n = 20 where there is no
default): as one batch, as 50,000-value batches, and as 50,000-value batches
with the carry state serialized to JSON and restored between batches (what a
pipeline stage does). Each figure is the best of ``--repeat`` runs (the first
touch of fresh output memory costs more than the arithmetic). Prints one
table.

Usage: python benchmarks/indicators.py [--values N] [--batch B] [--n N] [--repeat R]
"""

from __future__ import annotations

import argparse
import inspect
import json
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from ticktape.compute.indicators import STREAMS


def columns(m: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-4, m)))
    spread = rng.uniform(0, 0.01, m)
    return {
        "x": close,
        "close": close,
        "price": close,
        "high": close + spread,
        "low": close - spread,
        "volume": rng.integers(1, 100, m).astype(float),
        "ts": np.cumsum(rng.integers(1, 10_000_000, m)),  # ~5 ms apart: sessions roll over
    }


def run(cls, params: dict, cols: list[np.ndarray], batch: int | None, state: bool) -> float:
    stream = cls(**params)
    m = len(cols[0])
    t = time.perf_counter()
    if batch is None:
        stream.update(*cols)
    else:
        for i in range(0, m, batch):
            if state:
                stream = cls.from_state(json.loads(json.dumps(stream.to_state())))
            stream.update(*(c[i : i + batch] for c in cols))
    return m / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=10_000_000)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--n", type=int, default=20, help="window length where the indicator has no default")
    ap.add_argument("--repeat", type=int, default=2, help="report the best of this many runs")
    args = ap.parse_args()
    data = columns(args.values)
    table = Table(
        title=f"ticktape.compute.indicators, {args.values:,} values (M values/s, best of {args.repeat})"
    )
    for col in ("indicator", "params", "one batch", f"{args.batch:,}-value batches", "... + JSON state"):
        table.add_column(col, justify="left" if col in ("indicator", "params") else "right")
    for name, cls in STREAMS.items():
        sig = inspect.signature(cls).parameters
        params = {p: args.n for p, v in sig.items() if v.default is inspect.Parameter.empty}
        shown = {p: v.default for p, v in sig.items()} | params
        cols = [data[c] for c in cls.inputs]
        rates = [
            run(cls, params, cols, b, s) for b, s in ((None, False), (args.batch, False), (args.batch, True))
        ]
        table.add_row(
            name, ", ".join(f"{k}={v}" for k, v in shown.items()), *(f"{r / 1e6:.1f}" for r in rates)
        )
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
