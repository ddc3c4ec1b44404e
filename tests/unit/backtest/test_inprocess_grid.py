"""The instrument's grid inferred from the data when it is not given
(``tick_size="auto"``, ``ticktape backtest`` without ``--tick-size``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ticktape
from ticktape.backtest.run import infer_grid, prepare
from ticktape.data.stats import finest_step
from ticktape.errors import DataError

TICKTAPE = Path(sys.executable).with_name("ticktape")


def fx(n: int = 3000, decimals: int = 5, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mid = np.round(1.1 + np.cumsum(rng.normal(0, 2e-5, n)), decimals)
    step = 10.0**-decimals
    return pd.DataFrame(
        {
            "time": pd.date_range("2024-01-02 09:00", periods=n, freq="250ms", tz="UTC").strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
            "bid": np.round(mid, decimals),
            "ask": np.round(mid + step * rng.integers(1, 4, n), decimals),
            "bid_size": rng.integers(1, 9, n) * 100_000,
            "ask_size": rng.integers(1, 9, n) * 100_000,
        }
    )


def ticktape_cmd(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TICKTAPE), *map(str, args)], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("fmt", ["ticks", "auto"])
def test_an_fx_csv_runs_without_tick_size_and_says_what_it_used(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "eurusd.csv"
    fx().to_csv(src, index=False)
    res = ticktape_cmd("backtest", "--data", src, "--format", fmt, "--strategy", "sma_crossover")
    assert res.returncode == 0, res.stderr
    assert "tick size 0.00001, lot size 1: inferred from the data" in " ".join(res.stdout.split())
    res = ticktape_cmd("backtest", "--data", src, "--strategy", "sma_crossover", "--tick-size", "0.00001")
    assert res.returncode == 0, res.stderr
    assert "tick size 0.00001" not in res.stdout and "lot size 1: inferred" in " ".join(res.stdout.split())


def test_a_price_on_no_grid_is_named_with_its_line(tmp_path: Path) -> None:
    frame = fx(50)
    frame.loc[7, "ask"] = 1.1 + 1 / 3  # (16 decimals)
    src = tmp_path / "odd.csv"
    frame.to_csv(src, index=False)
    res = ticktape_cmd("backtest", "--data", src, "--strategy", "sma_crossover")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(f"ticktape: error: {src}:9: ask = 1.4333333333333333 is on no tick grid"), line
    assert "--tick-size" in line


def test_inferred_grids_fit_every_price_and_size() -> None:
    frame = fx(2000, decimals=3)
    frame["bid_size"] = frame["bid_size"] / 10**7  # 0.01 .. 0.08
    prepared = prepare(frame)
    assert infer_grid(prepared) == {"tick_size": 0.001, "lot_size": 0.01}
    r = ticktape.backtest(frame, "sma_crossover", tick_size="auto", lot_size="auto")
    assert (r.engine.tick_size, r.engine.lot_size) == (0.001, 0.01)
    bars = pd.DataFrame(
        {
            "Date": pd.date_range("2020-01-01", periods=4),
            "Open": 10.25,
            "High": 10.5,
            "Low": 10.0,
            "Close": 10.5,
        }
    )
    assert infer_grid(prepare(bars)) == {"tick_size": 0.01, "lot_size": 1.0}  # (decimals; no volume)
    with pytest.raises(DataError, match=r"data: row 1: open = 10.333333333333334 is on no tick grid"):
        infer_grid(prepare(bars.assign(Open=[10.25, 10 + 1 / 3, 10.25, 10.25])))


def test_finest_step_is_the_fewest_decimals_every_value_has() -> None:
    assert finest_step(np.array([np.nan])) == (None, None)
    assert finest_step(np.array([100.0, 200.0, 1e6])) == (1.0, None)
    assert finest_step(np.array([0.1 + 0.2, 1.5])) == (0.1, None)  # (0.30000000000000004 is 0.3 as typed)
    assert finest_step(np.array([1.23456, 99.0])) == (1e-05, None)
    step, first = finest_step(np.array([1.0, 2.0, 2.0 / 3.0, 1 / 7]))
    assert step == 1e-9 and first == 2


def test_a_given_tick_size_that_does_not_fit_names_the_price_not_a_traceback(tmp_path: Path) -> None:
    src = tmp_path / "eurusd.csv"
    fx(100).to_csv(src, index=False)
    res = ticktape_cmd("backtest", "--data", src, "--strategy", "sma_crossover", "--tick-size", "0.01")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert re.match(
        rf"ticktape: error: {src}:\d+: (bid|ask) = 1\.\d+ is not on the tick grid \(tick size 0.01\)", line
    )
