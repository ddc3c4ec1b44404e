"""``ticktape sweep --data``: invalid sets listed while the valid ones run, bad grids and budgets in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ticktape.data import synth

TICKTAPE = Path(sys.executable).with_name("ticktape")


@pytest.fixture(scope="module")
def ticks_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = np.concatenate(list(synth.generate_process(synth.ProcessConfig(symbol="S", n_ticks=3000, seed=2))))
    path = tmp_path_factory.mktemp("sweep") / "ticks.csv"
    pd.DataFrame({k: t[k] for k in ("ts", "bid", "ask", "bid_size", "ask_size")}).to_csv(path, index=False)
    return path


def test_an_invalid_set_is_one_line_and_the_valid_sets_run(cli, ticks_csv):
    args = [
        "sweep",
        "--data",
        ticks_csv,
        "--strategy",
        "ma_crossover",
        "--grid",
        "fast=5,50",
        "--grid",
        "slow=20,40",
    ]
    res = cli(*args, "--no-store", "--json", "--processes", "1")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [(r["set"], r["fast"], r["slow"]) for r in rows] == [(0, 5, 20), (1, 5, 40)]
    lines = res.stderr.strip().splitlines()
    assert lines == [
        "ticktape: skipped parameter set 2 {'fast': 50, 'slow': 20}: "
        "params.slow: must be > fast, got fast=50 slow=20",
        "ticktape: skipped parameter set 3 {'fast': 50, 'slow': 40}: "
        "params.slow: must be > fast, got fast=50 slow=40",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--grid", "fast=50", "--grid", "slow=20"],
            "ticktape: error: sweep: no valid parameter set (1 invalid); parameter set 0 "
            "{'fast': 50, 'slow': 20}: params.slow: must be > fast, got fast=50 slow=20",
        ),
        (
            ["--grid", "fast=", "--grid", "slow=20"],
            "ticktape: error: --grid 'fast=': expected NAME=V1,V2,...",
        ),
        (
            ["--grid", "fast=5", "--grid", "slow=20", "--memory-budget", "1M"],
            "ticktape: error: memory budget 1 MB is too small for one parameter set: it needs",
        ),
        (
            ["--grid", "fast=5", "--grid", "slow=20", "--memory-budget", "lots"],
            "ticktape: error: --memory-budget 'lots': expected bytes or a size like 3G, 512M",
        ),
    ],
)
def test_bad_grids_and_budgets_are_one_line_from_the_installed_command(ticks_csv, extra, message):
    args = [
        str(TICKTAPE),
        "sweep",
        "--data",
        str(ticks_csv),
        "--strategy",
        "ma_crossover",
        *extra,
        "--no-store",
    ]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
