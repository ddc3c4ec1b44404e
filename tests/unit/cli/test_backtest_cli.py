"""`ticktape backtest` and `ticktape sweep --no-store` from the shell (no broker, no database)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ticktape import testing
from ticktape.cli.main import main, parse_source
from ticktape.data.synth import depth_diffs
from ticktape.errors import SpecError


@pytest.fixture
def bars_csv(tmp_path):
    path = tmp_path / "bars.csv"
    testing.bars_frame(400, freq="B").to_csv(path, index=False)  # daily bars of business days
    return path


def test_backtest_json(bars_csv, capsys):
    code = main(
        [
            "backtest",
            "--data",
            str(bars_csv),
            "--strategy",
            "ma_crossover",
            "--param",
            "fast=5",
            "--param",
            "slow=20",
            "--param",
            "ma=ema",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "bars" and out["metrics"]["periods_per_year"] == 252.0
    assert len(out["fills"]) > 4 and len(out["trades"]) > 2
    assert {"entry_ts", "exit_ts", "pnl", "mae", "mfe"} <= set(out["trades"][0])


def test_backtest_from_a_spec_file(bars_csv, tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"strategy": "rsi_reversion", "params": {"n": 7, "long_only": True}}))
    assert main(["backtest", "--data", str(bars_csv), "--spec", str(spec)]) == 0
    assert "rsi_reversion (bars)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--strategy", "ma_crossover", "--param", "fast"], "expected NAME=VALUE"),
        (["--strategy", "ma_crossover", "--param", "fast=x"], "params.fast: must be an integer, got 'x'"),
        ([], "give --strategy NAME or --spec FILE"),
    ],
)
def test_backtest_bad_input_is_one_line(bars_csv, capsys, args, message):
    assert main(["backtest", "--data", str(bars_csv), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_backtest_bad_data_names_the_row(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("Date,Open,High,Low,Close\n2020-01-01,1,2,0.5,1.5\n2020-01-02,1,2,0.5,oops\n")
    assert main(["backtest", "--data", str(path), "--strategy", "ma_crossover"]) == 1
    assert f"{path}:3: column 'Close' = 'oops' is not a number" in capsys.readouterr().err


def test_sweep_prints_the_top_table(bars_csv, capsys):
    code = main(
        [
            "sweep",
            "--data",
            str(bars_csv),
            "--strategy",
            "ma_crossover",
            "--grid",
            "fast=3,5",
            "--grid",
            "slow=10:30:10",
            "--no-store",
            "--json",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 6 and {r["fast"] for r in rows} == {3, 5}


def test_sweep_table_prints_integers_as_integers_and_whole_headers(bars_csv, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # (narrower than the table: it must not cut its headers)
    grid = ["--grid", "fast=3,5", "--grid", "slow=10:30:10"]
    code = main(["sweep", "--data", str(bars_csv), "--strategy", "ma_crossover", *grid, "--no-store"])
    assert code == 0
    out = capsys.readouterr().out
    assert "…" not in out
    for header in ("final_equity", "total_return", "max_drawdown_pct", "trades"):
        assert header in out
    assert ".0000" not in out and "│    3 │   10 │" in out


def test_backtest_metrics_have_labels_units_and_the_return_grid(bars_csv, capsys):
    assert main(["backtest", "--data", str(bars_csv), "--strategy", "ma_crossover"]) == 0
    out = capsys.readouterr().out
    for label in ("Sharpe ratio", "Return grid", "Returns on the grid", "Longest drawdown", "Total return"):
        assert label in out
    assert "sharpe" not in out and "_ns" not in out


def test_run_source_option_parses_every_form():
    assert parse_source("store") == {"kind": "store"}
    assert parse_source("parquet:/data/x.parquet") == {"kind": "parquet", "path": "/data/x.parquet"}
    assert parse_source("generator:1000:7") == {"kind": "generator", "n_ticks": 1000, "seed": 7}
    rid = "0b7c1c4e-3f0e-4a55-9a3e-5d8b7f1e2a10"
    assert parse_source(f"topic:{rid}:5:9") == {
        "kind": "topic",
        "run_id": rid,
        "start_offset": 5,
        "end_offset": 9,
    }
    for bad in ("ftp:x", "generator:many", "topic:", "parquet"):
        with pytest.raises(SpecError, match="--source"):
            parse_source(bad)


def test_backtest_with_a_depth_file_walks_the_levels(tmp_path, capsys):
    n = 300  # (epoch ns times: told by their magnitude)
    t = testing.quotes(n, t0=1_704_186_001 * 10**9, bid=100.0 + np.sin(np.arange(n) / 15).round(2), size=3.0)
    ev = depth_diffs(t, levels=2, mean_size=1000.0)  # 3 lots at the touch, plenty one cent further
    pd.DataFrame(t).to_csv(tmp_path / "ticks.csv", index=False)
    pd.DataFrame({"ts": ev["ts"], "side": ev["side"], "price": ev["price"], "qty": ev["size"]}).to_parquet(
        tmp_path / "depth.parquet"
    )
    args = ["backtest", "--data", str(tmp_path / "ticks.csv"), "--strategy", "ma_crossover"]
    args += ["--param", "fast=5", "--param", "slow=20", "--param", "size=10", "--tick-size", "0.01", "--json"]
    assert main([*args, "--depth", str(tmp_path / "depth.parquet")]) == 0
    fills = pd.DataFrame(json.loads(capsys.readouterr().out)["fills"])
    per_order = fills.groupby("order_id")["price"].nunique()
    assert len(per_order) > 2 and (per_order == 2).all()  # each order takes 3 lots, then the next level
    assert main([*args, "--depth", str(tmp_path / "depth.parquet"), "--depth-refill-ms", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["engine"]["depth_refill_ns"] == 0
