"""Monte Carlo studies in process (ticktape.backtest.montecarlo): the maths
against its analytic value and numpy, determinism whatever the processes,
the generator's calibration, and the refusals."""

import dataclasses
import math

import numpy as np
import pytest

from ticktape import backtest
from ticktape.backtest.montecarlo import (
    PathsInput,
    RunSeries,
    calibrate,
    check_options,
    simulate,
)
from ticktape.backtest.run import prepare
from ticktape.compute import metrics
from ticktape.compute.resample import FAN_POINTS, STATS
from ticktape.data.stats import TickStats
from ticktape.data.synth import generate_process
from ticktape.errors import CommandError, DataError
from ticktape.model.sources import ProcessConfig
from ticktape.model.spec import EngineConfig, RunSpec

RUN = "0190a1b2-0000-7000-8000-000000000001"
YEAR = metrics.YEAR_NS


def _series(trades=None, returns=None) -> RunSeries:
    rng = np.random.default_rng(11)
    pnl = rng.normal(25.0, 400.0, 2_000) if trades is None else np.asarray(trades, float)
    r = rng.normal(0.0003, 0.01, 400) if returns is None else np.asarray(returns, float)
    return RunSeries(RUN, 1e6, pnl, r, 86_400 * 10**9, 252.0, 0, YEAR)


def _same(a, b):
    return all(np.array_equal(a.draws[k], b.draws[k], equal_nan=True) for k in STATS) and np.array_equal(
        a.fan_paths, b.fan_paths
    )


def test_trade_bootstrap_mean_matches_the_analytic_mean():
    """With replacement, E[final PnL] = n x mean(pnl); the mean over N draws
    is within 3 of its standard errors sqrt(n) std(pnl) / sqrt(N) of it."""
    s = _series()
    res = simulate(s, "trades", 2_000, seed=4, processes=1)
    final_pnl = res.draws["final_equity"] - s.initial_equity
    n, draws = len(s.trade_pnl), len(final_pnl)
    analytic = n * s.trade_pnl.mean()
    se = math.sqrt(n) * s.trade_pnl.std(ddof=0) / math.sqrt(draws)
    assert abs(final_pnl.mean() - analytic) < 3 * se
    # the draws do vary, by about sqrt(n) std(pnl)
    assert final_pnl.std() == pytest.approx(math.sqrt(n) * s.trade_pnl.std(), rel=0.1)


def test_without_replacement_only_the_path_changes():
    s = _series()
    res = simulate(s, "trades", 50, seed=1, replace=False, processes=1)
    assert np.allclose(res.draws["final_equity"], s.initial_equity + s.trade_pnl.sum(), rtol=0, atol=1e-6)
    assert res.draws["max_drawdown_pct"].std() > 0


def test_percentiles_are_numpys_on_the_same_draws():
    """Each draw rebuilt by numpy from its documented generator
    (SeedSequence(seed).spawn(n)[k], integers with replacement); the stored
    percentiles and probabilities are numpy's of those draws."""
    s = _series()
    n, seed = 300, 9
    res = simulate(s, "trades", n, seed=seed, processes=1, drawdown_threshold=0.01)
    finals, dds = [], []
    for child in np.random.SeedSequence(seed).spawn(n):
        pnl = s.trade_pnl[np.random.default_rng(child).integers(0, len(s.trade_pnl), len(s.trade_pnl))]
        eq = np.concatenate(([s.initial_equity], s.initial_equity + np.cumsum(pnl)))
        peak = np.maximum.accumulate(eq)
        finals.append(eq[-1])
        dds.append(((peak - eq) / peak).max())
    finals, dds = np.array(finals), np.array(dds)
    assert np.allclose(res.draws["final_equity"], finals, rtol=1e-12)
    assert np.allclose(res.draws["max_drawdown_pct"], dds, rtol=1e-12)
    stats = res.summary["stats"]["final_equity"]
    for q in (1, 5, 25, 50, 75, 95, 99):
        assert stats[f"p{q}"] == pytest.approx(np.percentile(finals, q), rel=1e-12)
    assert res.summary["p_loss"] == np.mean(finals < s.initial_equity)
    assert res.summary["p_drawdown_beyond"] == np.mean(dds > 0.01)
    for q in (5, 50, 95):
        assert res.fan[f"p{q}"][-1] == pytest.approx(np.percentile(finals, q), rel=1e-12)
        assert res.fan[f"p{q}"][0] == s.initial_equity
    assert len(res.fan["x"]) == FAN_POINTS and res.fan_paths.shape == (n, FAN_POINTS)


@pytest.mark.parametrize("method", ["trades", "returns", "blocks"])
def test_same_seed_same_study_with_1_and_2_processes(method):
    s = _series()
    one = simulate(s, method, 120, seed=21, processes=1)
    two = simulate(s, method, 120, seed=21, processes=2)
    assert _same(one, two) and one.summary == two.summary and one.fan == two.fan
    other = simulate(s, method, 120, seed=22, processes=1)
    assert not np.array_equal(one.draws["final_equity"], other.draws["final_equity"])


def test_returns_bootstrap_compounds_the_runs_returns():
    s = _series(returns=[0.01, -0.02, 0.03])
    res = simulate(s, "returns", 1, seed=0, replace=False, processes=1)
    assert res.draws["final_equity"][0] == pytest.approx(1e6 * 1.01 * 0.98 * 1.03, rel=1e-12)


def test_the_run_itself_is_measured_as_a_draw():
    """``original``: the run's returns in their order, measured as a draw is:
    its Sharpe is the run's (mean / std x sqrt(periods per year))."""
    s = _series()
    res = simulate(s, "returns", 5, seed=0, processes=1)
    own = res.summary["original"]
    assert own["final_equity"] == pytest.approx(s.initial_equity * np.prod(1 + s.returns), rel=1e-12)
    assert own["sharpe"] == pytest.approx(
        s.returns.mean() / s.returns.std(ddof=1) * math.sqrt(252.0), rel=1e-9
    )
    trades = simulate(s, "trades", 5, seed=0, processes=1).summary["original"]
    assert trades["final_equity"] == pytest.approx(s.initial_equity + s.trade_pnl.sum(), rel=1e-12)


def test_blocks_state_their_length():
    s = _series()
    auto = simulate(s, "blocks", 10, seed=0, processes=1)
    assert auto.block_length is not None and auto.block_length >= 1 and auto.params["block_length_auto"]
    given = simulate(s, "blocks", 10, seed=0, block_length=20.0, processes=1)
    assert given.block_length == 20.0 and not given.params["block_length_auto"]


def test_refusals_name_the_option():
    s = _series(trades=[])
    with pytest.raises(DataError, match="no closed trades"):
        simulate(s, "trades", 10)
    with pytest.raises(CommandError, match=r"--block-length 500: longer than the run's 400 returns"):
        simulate(_series(), "blocks", 10, block_length=500.0)
    with pytest.raises(DataError, match="1 return"):
        simulate(_series(returns=[0.01]), "returns", 10)
    for kwargs, match in (
        ({"method": "bogus"}, "--method 'bogus': unknown method"),
        ({"n": 0}, "--n: the number of draws must be 1"),
        ({"n": -5}, "--n: the number of draws must be 1"),
        ({"seed": -1}, "--seed"),
        ({"block_length": 5.0}, "--block-length: only --method blocks"),
        ({"method": "blocks", "block_length": 0.5}, "--block-length: a mean block length"),
        ({"method": "blocks", "replace": False}, "--no-replace"),
        ({"processes": 0}, "--processes"),
        ({"drawdown_threshold": 0.0}, "--drawdown-threshold"),
    ):
        args = {"method": "trades", "n": 10, "seed": 0, **kwargs}
        with pytest.raises(CommandError, match=match):
            check_options(**args)


# -------------------------------------------------------------------- synthetic paths


def _ticks(**kw):
    return list(generate_process(ProcessConfig(**{"symbol": "X", "n_ticks": 300_000, "seed": 3, **kw})))


@pytest.mark.parametrize("regimes", [False, True])
def test_calibration_recovers_the_generators_settings(regimes):
    """Ticks of known settings, calibrated: their volatility, arrival rate,
    spread and regimes come back."""
    truth = {
        "vol": 0.3,
        "rate_per_s": 15.0,
        "spread_ticks": 2.0,
        "spread_vol_mult": 0.0,
        "regimes": regimes,
        "p_news": 2e-4,
        "p_calm": 2e-3,
    }
    cfg = calibrate(_ticks(**truth), "X", 0.01)
    assert cfg.regimes is regimes
    assert cfg.vol == pytest.approx(0.3, rel=0.1)
    assert cfg.rate_per_s == pytest.approx(15.0, rel=0.05)
    assert cfg.spread_ticks == pytest.approx(2.0, abs=0.1)
    assert cfg.n_ticks == 300_000 and cfg.price0 == pytest.approx(100.0, rel=1e-3)
    if regimes:
        assert cfg.news_rate_mult == pytest.approx(4.0, rel=0.15)
        assert cfg.news_vol_mult == pytest.approx(5.0, rel=0.15)
        assert cfg.p_calm == pytest.approx(2e-3, rel=0.3)
        assert cfg.p_news == pytest.approx(2e-4, rel=0.3)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "tick"), [("truefx_usdjpy_ticks.csv", 0.001), ("tardis_binance_btcusdt_trades.csv", 0.01)]
)
def test_calibrated_paths_look_like_real_data(shared_data, name, tick):
    """Real ticks (FX quotes; BTC trades only), calibrated, generated again:
    the same number of (priced) ticks over about the same time, the same mean
    spread (trades only: one tick) and per-tick volatility within 30%."""
    ticks = np.concatenate(list(prepare(shared_data(f"ticks/{name}")).batches(100_000)))
    cfg = calibrate([ticks], "X", tick)
    real, synthetic = TickStats(), TickStats()
    real.update(ticks)
    synthetic.update(np.concatenate(list(generate_process(cfg))))
    a, b = real.summary(), synthetic.summary()
    assert b["ticks"] == cfg.n_ticks and 0.99 * a["ticks"] <= cfg.n_ticks <= a["ticks"]  # (the priced ones)
    assert b["seconds"] == pytest.approx(a["seconds"], rel=0.15)
    assert b["spread"]["mean"] == pytest.approx(a["spread"]["mean"] if "spread" in a else tick, rel=0.05)
    assert b["returns"]["std"] == pytest.approx(a["returns"]["std"], rel=0.3)
    assert cfg.mean_size > 0 and math.isfinite(cfg.vol)


def test_calibration_refuses_data_without_prices():
    t = _ticks()[0][:10].copy()
    t["bid"] = t["ask"] = t["last"] = np.nan
    with pytest.raises(DataError, match="X: no priced ticks"):
        calibrate([t], "X", 0.01)


def _paths_input():
    cfg = calibrate(_ticks(n_ticks=20_000), "X", 0.01)
    spec = RunSpec(
        strategy="ma_crossover",
        symbols=("X",),
        params={"fast": 5, "slow": 40},
        engine=EngineConfig(initial_cash=100_000.0),
        run_id=RUN,
    )
    return PathsInput(RUN, spec, {"X": cfg})


def test_paths_same_seed_same_study_with_1_and_2_processes():
    data = _paths_input()
    one = simulate(data, "paths", 4, seed=5, processes=1)
    two = simulate(data, "paths", 4, seed=5, processes=2)
    assert _same(one, two) and one.summary == two.summary
    assert len(set(one.draws["final_equity"].tolist())) == 4  # the paths differ
    assert one.params["calibration"]["X"]["n_ticks"] == 20_000


def test_a_path_is_a_backtest_of_the_generators_ticks():
    """Draw k: the strategy over generate_process(calibrated, seed of draw k),
    measured as ticktape.backtest measures a run."""
    data = _paths_input()
    res = simulate(data, "paths", 2, seed=8, processes=1)
    for k, child in enumerate(np.random.SeedSequence(8).spawn(2)):
        seed = int(np.random.default_rng(child).integers(0, 2**63))
        ticks = np.concatenate(list(generate_process(dataclasses.replace(data.configs["X"], seed=seed))))
        own = backtest(ticks, "ma_crossover", {"fast": 5, "slow": 40}, initial_cash=100_000.0)
        assert res.draws["final_equity"][k] == pytest.approx(own.metrics["final_equity"], rel=1e-12)
        assert res.draws["max_drawdown_pct"][k] == pytest.approx(own.metrics["max_drawdown_pct"], rel=1e-12)


def test_the_fans_x_is_where_its_points_are():
    """Of 250 trades the fan keeps the equity after trades 0, 2, 5, ... 250:
    x is that count over 250, and each percentile path is numpy's over the
    draws there."""
    s = _series(trades=np.arange(250.0))
    res = simulate(s, "trades", 3, seed=0, replace=False, processes=1)
    at = np.round(np.linspace(0, 250, FAN_POINTS)).astype(int)
    assert res.fan["x"] == (at / 250).tolist()
    paths = []
    for child in np.random.SeedSequence(0).spawn(3):
        pnl = s.trade_pnl[np.random.default_rng(child).permutation(250)]
        paths.append(s.initial_equity + np.concatenate(([0.0], np.cumsum(pnl)))[at])
    assert np.allclose(res.fan["p50"], np.median(paths, axis=0), rtol=1e-12)
