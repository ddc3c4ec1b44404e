"""Walk-forward validation (ticktape.backtest.walkforward): windows in event time,
each window's out-of-sample run equal to a separate backtest of the chosen set,
the stitched curve's metrics those of ``performance`` on it, bad input in one line."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ticktape
from ticktape.backtest import walkforward as wf
from ticktape.backtest.sweep import sweep
from ticktape.compute.metrics import performance
from ticktape.data import synth
from ticktape.errors import DataError, SpecError

TICKTAPE = Path(sys.executable).with_name("ticktape")
GRID = {"fast": [5, 10, 20], "slow": [30, 60]}
DAY = 86_400 * 10**9


def _bars(days: int = 6 * 252, seed: int = 3) -> pd.DataFrame:
    """Daily bars on business days (a random walk with drift regimes), prices on a 0.01 grid."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2010-01-04", periods=days)
    drift = np.repeat(rng.normal(0, 0.002, days // 60 + 1), 60)[:days]
    close = 50 * np.exp(np.cumsum(drift + rng.normal(0, 0.015, days)))
    open_ = np.concatenate(([close[0]], close[:-1])) * np.exp(rng.normal(0, 0.003, days))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, days))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, days))
    df = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=idx).round(2)
    df["high"] = df[["open", "high", "close"]].max(axis=1)
    df["low"] = df[["open", "low", "close"]].min(axis=1)
    df["volume"] = 1000.0
    df.index.name = "date"
    return df


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return _bars()


@pytest.fixture(scope="module")
def study(bars: pd.DataFrame) -> wf.WalkForwardResult:
    return wf.walkforward(bars, "ma_crossover", GRID, train="2y", test="6m", processes=1)


def _window_frame(df: pd.DataFrame, a: int, b: int) -> pd.DataFrame:
    t = df.index.tz_localize("UTC").as_unit("ns").asi8 if df.index.tz is None else df.index.asi8
    return df[(t >= a) & (t < b)]


def _same_metrics(a: dict[str, float], b: dict[str, float]) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        assert v == b[k] or (math.isnan(v) and math.isnan(b[k])), (k, v, b[k])


# ---------------------------------------------------------------- spans and windows
@given(st.integers(1, 10**4), st.sampled_from(sorted(wf.SPAN_UNITS)))
def test_a_whole_number_and_a_unit_is_a_span(n: int, unit: str) -> None:
    assert wf.parse_span(f"{n}{unit}", "--test") == wf.Span(n, unit)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0m", "must be longer than zero"),
        ("-6m", "must be longer than zero"),
        ("6", "not a span"),
        ("m", "not a span"),
        ("1.5y", "not a span"),
        ("6x", "not a span"),
        ("", "not a span"),
        ("two years", "not a span"),
    ],
)
def test_anything_else_is_one_line_naming_the_option(text: str, why: str) -> None:
    with pytest.raises(SpecError, match=rf"^--train {text!r}: {why}"):
        wf.parse_span(text, "--train")


def test_months_and_years_are_calendar_ones() -> None:
    t0 = pd.Timestamp("2020-01-31", tz="UTC").value
    end = pd.Timestamp("2021-06-01", tz="UTC").value
    ws = wf.windows(t0, end, "1y", "1m")
    assert [w.spans()["test_start"] for w in ws[:3]] == ["2021-01-31", "2021-02-28", "2021-03-31"]
    assert ws[-1].test_end == end  # the last test span is cut short by the end of the data
    assert all(a.test_end == b.test_start for a, b in itertools.pairwise(ws))  # Feb 28 + 1m: Mar 31


SPANS = st.builds(wf.Span, st.integers(1, 40), st.sampled_from(["y", "m", "w", "d", "h"]))


MONTH_ENDS = st.builds(
    lambda y, m, d: pd.Timestamp(year=y, month=m, day=1, tz="UTC").value + (d - 1) * DAY,
    st.integers(1990, 2030),
    st.integers(1, 12),
    st.integers(28, 31),
)


@settings(max_examples=60, deadline=None)
@given(
    start=st.one_of(st.integers(0, 2 * 10**18), MONTH_ENDS),
    length=st.integers(DAY, 30 * 365 * DAY),
    train=SPANS,
    test=SPANS,
    anchored=st.booleans(),
)
def test_test_spans_follow_each_other_to_the_end_of_the_data(
    start: int, length: int, train: wf.Span, test: wf.Span, anchored: bool
) -> None:
    try:
        ws = wf.windows(start, start + length, train, test, anchored=anchored)
    except DataError as exc:  # the first training span reaches the end of the data
        assert "reaches the end of the data" in str(exc)
        assert wf._shift(start, (train, 1)) >= start + length
        return
    except SpecError as exc:
        assert "more than" in str(exc)
        return
    assert ws[0].test_start == wf._shift(start, (train, 1))
    assert ws[-1].test_end == start + length
    for w in ws:
        assert w.train_start < w.train_end == w.test_start < w.test_end <= start + length
        assert w.train_start == start if anchored else w.train_start >= start
    for a, b in itertools.pairwise(ws):
        assert b.test_start == a.test_end  # no gap, no overlap (step = test)
        assert b.train_start >= a.train_start


def test_a_longer_step_leaves_gaps_and_a_shorter_one_is_refused() -> None:
    t0, end = pd.Timestamp("2020-01-01", tz="UTC").value, pd.Timestamp("2022-01-01", tz="UTC").value
    ws = wf.windows(t0, end, "6m", "3m", "6m")
    assert [w.spans()["test_start"] for w in ws] == ["2020-07-01", "2021-01-01", "2021-07-01"]
    assert ws[0].spans()["test_end"] == "2020-10-01"
    with pytest.raises(
        SpecError, match=r"^--step 1m: shorter than --test 3m: the out-of-sample spans would overlap"
    ):
        wf.windows(t0, end, "6m", "3m", "1m")


def test_windows_longer_than_the_data_are_one_line() -> None:
    t0, end = pd.Timestamp("2020-01-01", tz="UTC").value, pd.Timestamp("2021-01-01", tz="UTC").value
    with pytest.raises(
        DataError,
        match=r"^--train 2y: the first training span \(2020-01-01 to 2022-01-01\) reaches the end of the data "
        r"\(2020-01-01 to 2021-01-01\), so nothing is left out of sample",
    ):
        wf.windows(t0, end, "2y", "6m")


def test_more_windows_than_the_most_are_refused() -> None:
    t0 = pd.Timestamp("2000-01-01", tz="UTC").value
    with pytest.raises(SpecError, match=r"^--test 1s / --step 1s: more than 10,000 windows"):
        wf.windows(t0, t0 + 365 * DAY, "1s", "1s")


# ---------------------------------------------------------------- the study
def test_each_window_out_of_sample_is_a_separate_backtest_of_the_chosen_set(
    bars: pd.DataFrame, study: wf.WalkForwardResult
) -> None:
    assert len(study.windows) == 8  # 6 years of business days: 2 years in sample, then 8 half years
    for w in study.windows:
        df = _window_frame(bars, w.window.test_start, w.window.test_end)
        alone = ticktape.backtest(df, "ma_crossover", w.params, engine=study.engine)
        _same_metrics(w.out_of_sample.metrics, alone.metrics)
        pd.testing.assert_frame_equal(w.out_of_sample.equity, alone.equity)
        pd.testing.assert_frame_equal(w.out_of_sample.fills, alone.fills)
        assert w.test_rows == len(df)


def test_each_window_chose_the_best_set_in_sample(bars: pd.DataFrame, study: wf.WalkForwardResult) -> None:
    for w in study.windows:
        df = _window_frame(bars, w.window.train_start, w.window.train_end)
        alone = ticktape.backtest(df, "ma_crossover", w.params, engine=study.engine)
        _same_metrics({k: w.in_sample[k] for k in alone.metrics}, alone.metrics)
        every = sweep(df, "ma_crossover", wf.grid(GRID), engine=study.engine, processes=1)
        best = max(s.metrics["sharpe"] for s in every.sets if math.isfinite(s.metrics["sharpe"]))
        assert w.in_sample["sharpe"] == best
        assert w.params == next(s.params for s in every.sets if s.metrics["sharpe"] == best)  # first of a tie


def test_the_stitched_curve_chains_the_pieces_returns_and_its_metrics_are_performance_of_it(
    study: wf.WalkForwardResult,
) -> None:
    cash = study.engine.initial_cash
    value = cash
    for w in study.windows:
        piece = wf.equity_series(w.out_of_sample.equity)
        part = study.stitched[piece.index]
        np.testing.assert_allclose(part.to_numpy(), value * piece.to_numpy() / cash, rtol=1e-12)
        np.testing.assert_allclose(
            part.pct_change().iloc[1:], piece.pct_change().iloc[1:], rtol=1e-9, atol=1e-15
        )
        value = float(part.iloc[-1])
    assert len(study.stitched) == sum(len(wf.equity_series(w.out_of_sample.equity)) for w in study.windows)
    _same_metrics(
        study.metrics,
        {
            k: float(v)
            for k, v in performance(
                study.stitched, wf.oos_trades(study.windows), positions=wf.oos_positions(study.windows)
            ).items()
        },
    )
    total = np.prod([1 + w.out_of_sample.final_equity / cash - 1 for w in study.windows]) * cash
    assert float(study.stitched.iloc[-1]) == pytest.approx(total, rel=1e-12)


PIECES = st.lists(
    st.lists(st.floats(1.0, 1e7, allow_nan=False), min_size=1, max_size=20), min_size=1, max_size=8
)


@settings(max_examples=100, deadline=None)
@given(pieces=PIECES, cash=st.floats(1.0, 1e7))
def test_stitching_chains_the_returns_of_any_pieces(pieces: list[list[float]], cash: float) -> None:
    t, series = 0, []
    for values in pieces:
        series.append(pd.Series(values, index=pd.to_datetime(np.arange(t, t + len(values)) * DAY, utc=True)))
        t += len(values) + 3  # (gaps between pieces are allowed)
    out = wf.stitch(series, cash)
    assert len(out) == sum(map(len, pieces)) and out.index.is_monotonic_increasing
    value = cash
    for p in series:
        np.testing.assert_allclose(out[p.index].to_numpy(), value * p.to_numpy() / cash, rtol=1e-12)
        value = float(out[p.index].iloc[-1])
    assert value == pytest.approx(cash * np.prod([p.iloc[-1] / cash for p in series]), rel=1e-9)


def test_overlapping_pieces_are_refused() -> None:
    t = pd.date_range("2024-01-01", periods=3, tz="UTC")
    with pytest.raises(ValueError, match=r"^stitch: the pieces overlap in time at 2024-01-02"):
        wf.stitch([pd.Series([1.0, 2.0], index=t[:2]), pd.Series([3.0], index=t[1:2])], 1.0)


@given(
    st.lists(st.fixed_dictionaries({"a": st.integers(1, 4), "b": st.sampled_from(["x", "y"])}), min_size=1)
)
def test_stability_counts_what_was_chosen(chosen: list[dict[str, Any]]) -> None:
    t = wf.stability(chosen).set_index("parameter")
    for name in ("a", "b"):
        values = [c[name] for c in chosen]
        assert t.loc[name, "distinct"] == len(set(values))
        assert t.loc[name, "changes"] == sum(x != y for x, y in itertools.pairwise(values))
        assert t.loc[name, "share"] == values.count(t.loc[name, "most_chosen"]) / len(values)
        assert values.count(t.loc[name, "most_chosen"]) == max(values.count(v) for v in values)
    assert t.loc["a", "mean"] == pytest.approx(np.mean([c["a"] for c in chosen]))
    assert math.isnan(t.loc["b", "mean"])


def test_efficiency_and_stability_are_reported(study: wf.WalkForwardResult) -> None:
    t = study.table()
    assert list(t["window"]) == list(range(8))
    for w, eff in zip(study.windows, t["efficiency"], strict=True):
        is_, oos = w.in_sample["annualized_return"], w.out_of_sample.metrics["annualized_return"]
        assert (eff == oos / is_) if is_ > 0 else math.isnan(eff)
    s = study.stability().set_index("parameter")
    for name in GRID:
        chosen = [w.params[name] for w in study.windows]
        assert s.loc[name, "chosen"] == ", ".join(map(str, chosen))
        assert s.loc[name, "mean"] == pytest.approx(np.mean(chosen))
    summary = study.summary()
    assert [w["run_id"] for w in summary["windows"]] == [w.run_id for w in study.windows]
    assert summary["stitched"]["rule"] == wf.STITCH_RULE


def test_anchored_windows_train_from_the_start(bars: pd.DataFrame) -> None:
    res = wf.walkforward(bars, "ma_crossover", GRID, train="3y", test="1y", anchored=True, processes=1)
    assert len(res.windows) == 3
    assert {w.window.train_start for w in res.windows} == {res.windows[0].window.train_start}
    assert [w.train_rows for w in res.windows] == sorted(w.train_rows for w in res.windows)


def test_ticks_walk_forward_and_each_piece_is_a_separate_backtest() -> None:
    cfg = synth.ProcessConfig(symbol="S", n_ticks=60_000, seed=5)
    ticks = np.concatenate(list(synth.generate_process(cfg)))
    assert (ticks["ts"][-1] - ticks["ts"][0]) / 60e9 > 45  # minutes
    res = wf.walkforward(
        ticks,
        "ma_crossover",
        {"fast": [10, 20], "slow": [100, 200]},
        train="20min",
        test="10min",
        processes=1,
        tick_size=0.01,
    )
    assert len(res.windows) >= 3
    for w in res.windows:
        keep = (ticks["ts"] >= w.window.test_start) & (ticks["ts"] < w.window.test_end)
        alone = ticktape.backtest(ticks[keep], "ma_crossover", w.params, engine=res.engine)
        _same_metrics(w.out_of_sample.metrics, alone.metrics)
        pd.testing.assert_frame_equal(w.out_of_sample.equity, alone.equity)
    _same_metrics(
        res.metrics,
        {
            k: float(v)
            for k, v in performance(
                res.stitched, wf.oos_trades(res.windows), positions=wf.oos_positions(res.windows)
            ).items()
        },
    )


# ---------------------------------------------------------------- the reference data
@pytest.mark.shared_data
def test_orcl_each_window_out_of_sample_equals_a_separate_backtest(shared_data: Any) -> None:
    path = shared_data("bars/orcl-1995-2014.txt")
    res = wf.walkforward(
        path,
        "ma_crossover",
        {"fast": [5, 10, 20], "slow": [50, 100]},
        train="2y",
        test="6m",
        tick_size="auto",
    )
    assert len(res.windows) == 36  # 1997-01-03 .. 2014-12-31 in half years
    frame = pd.read_csv(path, parse_dates=["Date"], index_col="Date")
    for w in res.windows:
        df = _window_frame(frame, w.window.test_start, w.window.test_end)
        alone = ticktape.backtest(df, "ma_crossover", w.params, engine=res.engine)
        _same_metrics(w.out_of_sample.metrics, alone.metrics)
        pd.testing.assert_frame_equal(w.out_of_sample.equity, alone.equity)
    _same_metrics(
        res.metrics,
        {
            k: float(v)
            for k, v in performance(
                res.stitched, wf.oos_trades(res.windows), positions=wf.oos_positions(res.windows)
            ).items()
        },
    )


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"select": "luck"}, SpecError, r"^--select 'luck': not a metric to choose by; one of: sharpe, "),
        ({"train": "0y"}, SpecError, r"^--train '0y': must be longer than zero"),
        ({"test": "-1m"}, SpecError, r"^--test '-1m': must be longer than zero"),
        ({"test": "half a year"}, SpecError, r"^--test 'half a year': not a span"),
        (
            {"train": "7y"},
            DataError,
            r"^--train 7y: the first training span \(2010-01-04 to 2017-01-04\) reaches",
        ),
        (
            {"space": {"fast": [50], "slow": [20]}},
            SpecError,
            r"^sweep: no valid parameter set \(1 invalid\); parameter set 0 \{'fast': 50, 'slow': 20\}: "
            r"params.slow: must be > fast",
        ),
    ],
)
def test_bad_input_is_one_line(bars: pd.DataFrame, kwargs: dict[str, Any], error: type, message: str) -> None:
    args = {"train": "2y", "test": "6m", **kwargs}
    space = args.pop("space", GRID)
    with pytest.raises(error, match=message):
        wf.walkforward(bars, "ma_crossover", space, processes=1, **args)


def test_a_gap_in_the_data_names_the_window(bars: pd.DataFrame) -> None:
    holed = bars[(bars.index < "2013-01-01") | (bars.index >= "2014-01-01")]
    with pytest.raises(
        DataError, match=r"^window 2: no data in its test span \(2013-01-04 to 2013-07-04: a gap"
    ):
        wf.walkforward(holed, "ma_crossover", GRID, train="2y", test="6m", processes=1)


@pytest.fixture(scope="module")
def bars_csv(bars: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("walkforward") / "bars.csv"
    bars.to_csv(path)
    return path


COMMAND = ["walkforward", "--strategy", "ma_crossover", "--grid", "fast=5,10", "--grid", "slow=30,60"]


def test_the_command_prints_the_windows_and_the_study(cli: Any, bars_csv: Path) -> None:
    res = cli(*COMMAND, "--data", bars_csv, "--train", "2y", "--test", "6m", "--no-store", "--processes", "1")
    assert res.exit_code == 0, res.stderr
    assert "8 windows of ma_crossover, train 2y, test 6m, step 6m, best by sharpe in sample" in res.stdout
    assert "stitched out of sample (returns chained)" in res.stdout
    assert "parameter stability across windows" in res.stdout
    progress = res.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in progress] == [f"window {k} ({k + 1}/8)" for k in range(8)]
    assert all("chosen in sample (Sharpe ratio " in line for line in progress)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--train", "2y", "--test", "6m", "--select", "luck"], "--select 'luck': not a metric to choose by"),
        (["--train", "2years", "--test", "6m"], "--train '2years': not a span"),
        (["--train", "2y", "--test", "0m"], "--test '0m': must be longer than zero"),
        (["--train", "2y", "--test", "6m", "--step", "-6m"], "--step '-6m': must be longer than zero"),
        (["--train", "2y", "--test", "6m", "--step", "1m"], "--step 1m: shorter than --test 6m"),
        (["--train", "9y", "--test", "6m"], "--train 9y: the first training span (2010-01-04 to 2019-01-04)"),
        (
            ["--train", "2y", "--test", "6m", "--grid", "fast=90"],
            "sweep: no valid parameter set (2 invalid); parameter set 0 {'fast': 90, 'slow': 30}",
        ),
    ],
)
def test_bad_input_from_the_installed_command_is_one_line(
    bars_csv: Path, extra: list[str], message: str
) -> None:
    out = subprocess.run(
        [str(TICKTAPE), *COMMAND, "--data", str(bars_csv), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stderr.startswith(f"ticktape: error: {message}"), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stdout == ""


def test_spans_metric_and_grid_are_checked_before_the_data_is_read(cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    for extra, message in (
        (["--train", "2y", "--test", "6m", "--select", "luck"], "--select 'luck'"),
        (["--train", "2", "--test", "6m"], "--train '2'"),
        (["--train", "2y", "--test", "6m", "--grid", "fast=90"], "sweep: no valid parameter set"),
    ):
        res = cli(*COMMAND, "--data", missing, *extra)
        assert res.exit_code == 1
        assert res.stderr.startswith(f"ticktape: error: {message}"), res.stderr
