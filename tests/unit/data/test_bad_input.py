"""Bad input to the data commands ends in one clear line, never in wrong data.

Driven through the installed ``ticktape`` command in a subprocess (its exit
code is what a shell sees), except where noted.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ticktape.data.importers import Importer, TickBatch

TICKTAPE = Path(sys.executable).with_name("ticktape")


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands run here never reach the user's data folder or database."""
    monkeypatch.setenv("TICKTAPE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")


def ticktape(
    *args: object, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The installed command's exit code, stdout and stderr."""
    return subprocess.run(
        [str(TICKTAPE), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    """The single ``ticktape: error:`` line of a failed command (no traceback)."""
    assert res.returncode != 0, res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("ticktape: error: "), res.stderr
    return lines[0]


def rejects(path: Path) -> dict[int, tuple[str, str]]:
    with open(path, newline="") as f:
        return {int(r["line"]): (r["reason"], r["field"]) for r in csv.DictReader(f)}


# --------------------------------------------------------------------------
# exit codes


def test_a_missing_file_exits_non_zero(tmp_path: Path) -> None:
    assert "no such file" in one_error_line(ticktape("data", "import", tmp_path / "nope.csv"))


# --------------------------------------------------------------------------
# silent wrong data


def test_infinite_prices_are_rejected_not_stored(tmp_path: Path) -> None:
    src = tmp_path / "inf.csv"
    src.write_text(
        "ts,bid,ask,bid_size\n"
        "2024-01-02T09:00:00Z,100,101,1\n"
        "2024-01-02T09:00:01Z,inf,101,1\n"
        "2024-01-02T09:00:02Z,100,1e999,1\n"
        "2024-01-02T09:00:03Z,100,101,-inf\n"
        "2024-01-02T09:00:04Z,100,101,inf\n"
        "2024-01-02T09:00:05Z,100,101,1\n"
    )
    res = ticktape("data", "import", src, "--dry-run", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    got = rejects(tmp_path / "inf.csv.rejects.csv")
    assert got == {
        3: ("malformed", "bid"),
        4: ("malformed", "ask"),
        5: ("malformed", "bid_size"),
        6: ("malformed", "bid_size"),
    }


def test_epoch_seconds_past_2262_are_bad_timestamps_not_1702(tmp_path: Path) -> None:
    src = tmp_path / "far.csv"
    src.write_text("ts,bid,ask\n1704186000,100,101\n10000000000,100,101\n-10000000000,100,101\n")
    for fmt in ("s", "auto"):
        imp = Importer(src, "csv", symbol="F", time_format=fmt, rejects_path=tmp_path / f"r-{fmt}.csv")
        ticks = np.concatenate([b.ticks for b in imp if isinstance(b, TickBatch)])
        assert ticks["ts"].tolist() == [1_704_186_000 * 10**9], fmt
        assert rejects(tmp_path / f"r-{fmt}.csv") == {3: ("bad_timestamp", "ts"), 4: ("bad_timestamp", "ts")}


def test_a_header_only_file_is_an_error_not_zero_ticks(tmp_path: Path) -> None:
    src = tmp_path / "empty.csv"
    src.write_text("ts,bid,ask\n")
    assert "no data rows" in one_error_line(ticktape("data", "import", src, "--dry-run", cwd=tmp_path))
    src.write_text("")
    assert "empty" in one_error_line(ticktape("data", "import", src, "--dry-run", cwd=tmp_path))


def test_backtest_messages_name_file_lines_and_truncate_values(tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    huge = "x" * 5_000_000
    src.write_text(f"Date,Open,High,Low,Close\n2020-01-01,1,2,0.5,1.5\n\n2020-01-02,1,2,0.5,{huge}\n")
    line = one_error_line(ticktape("backtest", "--data", src, "--strategy", "ma_crossover"))
    assert f"{src}:4: column 'Close' = 'xxx" in line and "is not a number" in line
    assert len(line) < 400
    src.write_text("ts,bid,ask\n2024-01-02T09:00:00Z,100,101\n2024-01-02T09:00:01Z,100,101\nnot a time,1,2\n")
    line = one_error_line(ticktape("backtest", "--data", src, "--strategy", "ma_crossover"))
    assert f"{src}:4: column 'ts' = 'not a time' is not a time" in line


# --------------------------------------------------------------------------
# files that are not CSV


def test_a_parquet_file_to_csv_import_is_one_line(tmp_path: Path) -> None:
    src = tmp_path / "ticks.parquet"
    pq.write_table(pa.table({"ts": [1, 2], "bid": [1.0, 2.0]}), src)
    line = one_error_line(ticktape("data", "import", src, "--dry-run", cwd=tmp_path))
    assert "Parquet" in line and "--format parquet" in line


def test_a_binary_file_is_one_line(tmp_path: Path) -> None:
    src = tmp_path / "noise.csv"
    src.write_bytes(np.random.default_rng(1).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes())
    for fmt in ("csv", "truefx", "dukascopy", "tardis", "bars", "binance-ws", "parquet"):
        line = one_error_line(ticktape("data", "import", src, "--format", fmt, "--dry-run", cwd=tmp_path))
        assert str(src) in line, fmt


def test_a_sparse_2_gb_file_is_one_line_read_no_further_than_needed(tmp_path: Path) -> None:
    src = tmp_path / "sparse.csv"
    with open(src, "wb") as f:
        f.truncate(2 << 30)
    for fmt in ("csv", "bars", "binance-ws"):
        res = ticktape("data", "import", src, "--format", fmt, "--dry-run", cwd=tmp_path, timeout=60)
        assert "not a text file" in one_error_line(res), fmt


# --------------------------------------------------------------------------
# data generate


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ticks", "-5"], "--ticks"),
        (["--rate", "0"], "--rate"),
        (["--price", "-1"], "--price"),
        (["--vol", "0"], "--vol"),
        (["--tick-size", "0"], "--tick-size"),
        (["--depth", "-1"], "--depth"),
        (["--from-bars", "BARS", "--bar-seconds", "0"], "--bar-seconds"),
        (["--from-bars", "BARS", "--ticks-per-bar", "-1"], "--ticks-per-bar"),
        (["--from-bars", "NOBARS"], "no such file"),
        (["--from-bars", "NOTBARS"], "open"),
        (["--out", "MISSING/x.parquet", "--ticks", "10"], "MISSING"),
        (["--out", "MISSING/x.csv", "--ticks", "10"], "MISSING"),
    ],
)
def test_bad_generate_arguments_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bars.csv").write_text("Date,Open,High,Low,Close\n2020-01-01,1,2,0.5,1.5\n")
    (tmp_path / "notbars.csv").write_text("ts,bid,ask\n2020-01-01,1,2\n")
    paths = {
        "BARS": tmp_path / "bars.csv",
        "NOBARS": tmp_path / "nope.csv",
        "NOTBARS": tmp_path / "notbars.csv",
        "MISSING/x.parquet": tmp_path / "missing" / "x.parquet",
        "MISSING/x.csv": tmp_path / "missing" / "x.csv",
    }
    argv = [str(paths.get(a, a)) for a in args]
    env_args = ["data", "generate", *argv]
    line = one_error_line(ticktape(*env_args, cwd=tmp_path))
    assert message.replace("MISSING", str(tmp_path / "missing")) in line


def test_generate_from_bars_refuses_bad_bars_with_the_line(tmp_path: Path) -> None:
    src = tmp_path / "bars.csv"
    src.write_text("Date,Open,High,Low,Close\n2020-01-01,1,2,0.5,1.5\n2020-01-02,1,0.9,0.5,1.5\n")
    line = one_error_line(ticktape("data", "generate", "--from-bars", src, "--out", tmp_path / "o.parquet"))
    assert f"{src}:3:" in line


def test_import_exit_code_is_the_entry_points(tmp_path: Path) -> None:
    """(A guard for the tests above: the environment does not hide the code.)"""
    assert os.access(TICKTAPE, os.X_OK)
    assert ticktape("data", "--help").returncode == 0
