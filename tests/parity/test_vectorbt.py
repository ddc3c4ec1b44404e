"""Parity with vectorbt on public data, run in vectorbt's own environment.

An SMA crossover (10/30, 100 shares, no fees, 100,000 cash) on the ORCL daily
bars that ship with backtrader (../shared/data/bars/orcl-1995-2014.txt; the
test skips when ../shared is absent), long-only and long/short: the same
closed trades (entry and exit dates, PnL) and the same final equity as
vectorbt's ``Portfolio.from_signals``.

vectorbt 1.2.0 does not import next to ticktape's plotly (7: it needs
plotly < 6), so vectorbt runs in its own venv: tests/parity/vectorbt_side.py
with that venv's Python, whose JSON this test compares. ``make test`` makes
the venv, build/vectorbt-venv (``make bench`` times vectorbt in the same
one), or point ``TICKTAPE_VECTORBT_PYTHON`` at the Python of any
environment where ``import vectorbt`` works. Without either the test fails,
saying how to make one.

Conventions (how vectorbt is driven to do what ``ticktape.backtest`` does on
bars): ticktape's ``sma_crossover`` holds +size while SMA(fast) >
SMA(slow) of the close and -size (long/short) or nothing (long-only) while
below, decided at a bar's close and filled at the next bar's open. So
vectorbt gets the *state* as signals (``entries = fast > slow``, ``exits =
fast < slow``, not the crossings: repeated entries are ignored, and both
start at the first bar where both averages exist), shifted one bar
(``fshift(1)``) with ``price = open``; ``direction="both"`` makes an exit
reverse a long into a short (and an entry a short into a long), as
ticktape's target does. A tie holds in both. Final equity: cash + position
x the last close in both. vectorbt's trade list also holds the trade still
open at the end; ticktape counts it in ``n_open_trades``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import ticktape

FAST, SLOW, SIZE, CASH = 10, 30, 100, 100_000.0
ROOT = Path(__file__).resolve().parents[2]
SIDE = Path(__file__).with_name("vectorbt_side.py")

pytestmark = pytest.mark.shared_data


def vectorbt_python() -> Path:
    """The Python of an environment where vectorbt imports, or fail saying how to make one."""
    given = os.environ.get("TICKTAPE_VECTORBT_PYTHON")
    path = Path(given) if given else ROOT / "build" / "vectorbt-venv" / "bin" / "python"
    if not path.exists():
        pytest.fail(
            f"no vectorbt environment at {path}: vectorbt 1.2.0 does not import next to plotly 7; "
            "`make build/vectorbt-venv/bin/python` (make test does) makes one, or set TICKTAPE_VECTORBT_PYTHON"
        )
    return path


def _vectorbt(orcl: Path, long_only: bool) -> dict:
    cmd = [str(vectorbt_python()), str(SIDE), str(orcl), "--fast", str(FAST), "--slow", str(SLOW)]
    cmd += ["--size", str(SIZE), "--cash", str(CASH)] + (["--long-only"] if long_only else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    assert out.returncode == 0, f"{' '.join(cmd)} failed: {out.stderr.strip()[-2000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def orcl(shared_data):
    return shared_data("bars/orcl-1995-2014.txt")


@pytest.mark.parametrize("long_only", [True, False], ids=["long_only", "long_short"])
def test_same_trades_and_final_equity_as_vectorbt(orcl, long_only):
    theirs = _vectorbt(orcl, long_only)
    ours = ticktape.backtest(
        pd.read_csv(orcl),
        "sma_crossover",
        {"fast": FAST, "slow": SLOW, "size": SIZE, "long_only": long_only},
        tick_size=1e-6,
        initial_cash=CASH,
    )
    t = ours.trades
    closed = t[~t["open"]]
    mine = list(
        zip(
            pd.to_datetime(closed["entry_ts"], utc=True).dt.strftime("%Y-%m-%d"),
            pd.to_datetime(closed["exit_ts"].astype("int64"), utc=True).dt.strftime("%Y-%m-%d"),
            closed["pnl"],
            strict=True,
        )
    )
    vbt_closed = [(x["entry"], x["exit"], x["pnl"]) for x in theirs["trades"] if not x["open"]]
    assert len(mine) == len(vbt_closed) > 50, theirs["version"]
    for (e1, x1, p1), (e2, x2, p2) in zip(mine, vbt_closed, strict=True):
        assert (e1, x1) == (e2, x2)
        assert p1 == pytest.approx(p2, abs=1e-6)
    assert ours.metrics["n_trades"] == len(vbt_closed)
    assert ours.metrics["n_open_trades"] == sum(x["open"] for x in theirs["trades"])
    assert ours.final_equity == pytest.approx(theirs["final_value"], abs=1e-6)
