"""Parameter sweeps: many parameter sets of one strategy over one pass of the data.

In process, a sweep reads and validates the data once, computes each
distinct indicator once per batch (100 parameter sets of a moving-average
crossover over 10 distinct lengths compute 10 moving averages, not 200) and
gives every parameter set its own strategy instance and engine, batch by
batch. Each parameter set's results are exactly those of a single
:func:`ticktape.backtest` with the same parameters (tested).

Results can be stored as one run per parameter set grouped by a sweep id
(``runs.sweep_id``), like pipeline runs, so they are analysed with the same
SQL and dashboard.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ticktape import store
from ticktape.backtest.run import BacktestResult, engine_config, make_result, prepare, run_prepared
from ticktape.errors import SpecError
from ticktape.model.spec import EngineConfig, new_run_id
from ticktape.strategy import build


def grid(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of ``space``'s values, in a fixed order (last key fastest).

    Examples
    --------
    >>> grid({"fast": [5, 10], "slow": [50]})
    [{'fast': 5, 'slow': 50}, {'fast': 10, 'slow': 50}]
    """
    keys = list(space)
    for k in keys:
        if not isinstance(space[k], list | tuple) or not space[k]:
            raise SpecError(f"grid.{k}: needs a non-empty list of values")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(space[k] for k in keys))]


def sample(space: dict[str, list[Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` distinct parameter sets drawn from the grid (all of it if smaller), reproducibly."""
    full = grid(space)
    if n < 1:
        raise SpecError(f"sample: n must be >= 1, got {n}")
    if n >= len(full):
        return full
    picks = sorted(random.Random(seed).sample(range(len(full)), n))
    return [full[i] for i in picks]


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["fast=5,10,20", "slow=50:200:50"]`` → ``{"fast": [5, 10, 20], "slow": [50, 100, 150, 200]}``.

    ``a:b:step`` is an inclusive integer (or float) range; listed values are
    numbers when they parse as numbers, else strings (the strategy's config
    checks the types).
    """
    space: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise SpecError(f"--grid {item!r}: expected NAME=V1,V2,... or NAME=START:STOP:STEP")
        if values.count(":") == 2:
            try:
                a, b, step = (float(x) for x in values.split(":"))
            except ValueError:
                raise SpecError(f"--grid {item!r}: START:STOP:STEP must be numbers") from None
            if step <= 0 or b < a:
                raise SpecError(f"--grid {item!r}: need STEP > 0 and STOP >= START")
            count = int((b - a) / step + 1e-9) + 1
            vals = [a + i * step for i in range(count)]
            space[key] = [
                int(v) if float(v).is_integer() and all(float(x).is_integer() for x in (a, b, step)) else v
                for v in vals
            ]
        else:
            space[key] = [_scalar(v.strip()) for v in values.split(",") if v.strip()]
    return space


@dataclass
class SweepResult:
    """One :class:`BacktestResult` per parameter set, plus a summary table."""

    sweep_id: str
    strategy: str
    param_sets: list[dict[str, Any]]
    results: list[BacktestResult]
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """Parameters and headline metrics, one row per parameter set."""
        rows = []
        for p, r in zip(self.param_sets, self.results, strict=True):
            m = r.metrics
            rows.append(
                {
                    **p,
                    "final_equity": r.final_equity,
                    "total_return": m.get("total_return"),
                    "sharpe": m.get("sharpe"),
                    "max_drawdown_pct": m.get("max_drawdown_pct"),
                    "trades": m.get("trades", len(r.trades)),
                }
            )
        return pd.DataFrame(rows)

    def top(self, n: int = 10, by: str = "sharpe") -> pd.DataFrame:
        t = self.table()
        if by not in t:
            raise SpecError(f"--sort {by!r}: not a column of the sweep table ({', '.join(t.columns)})")
        return t.sort_values(by, ascending=False, na_position="last", kind="stable").head(n)


def sweep(
    data: Any,
    strategy: str,
    param_sets: list[dict[str, Any]],
    base: dict[str, Any] | None = None,
    *,
    format: str = "auto",
    engine: EngineConfig | dict[str, Any] | None = None,
    batch_size: int = 50_000,
    periods_per_year: float | None = None,
    **engine_options: Any,
) -> SweepResult:
    """Backtest ``strategy`` with each of ``param_sets`` (over ``base``) in one pass over ``data``.

    Invalid parameter sets are refused before anything runs (SpecError naming
    the set and the field).
    """
    if not param_sets:
        raise SpecError("sweep: no parameter sets")
    strats = []
    for k, p in enumerate(param_sets):
        try:
            strats.append(build(strategy, {**(base or {}), **p}))
        except SpecError as exc:
            raise SpecError(f"parameter set {k} {p}: {exc}") from None
    prepared = prepare(data, format)
    cfg = engine_config(prepared, engine, engine_options)
    t0 = time.perf_counter()
    raw = run_prepared(prepared, strats, cfg, batch_size, None)
    results = [
        make_result(s, cfg, r, prepared.mode, periods_per_year) for s, r in zip(strats, raw, strict=True)
    ]
    return SweepResult(str(uuid.uuid4()), strategy, param_sets, results, time.perf_counter() - t0)


async def store_sweep(conn: Any, result: SweepResult, symbol: str) -> list[str]:
    """Store every parameter set as a complete run (``runs.sweep_id`` = the
    sweep's id) with its signals, orders, fills, equity and metrics; returns
    the run ids. ``symbol`` names the data (e.g. the file's stem)."""

    symbol = Path(symbol).stem if "/" in symbol or "." in symbol else symbol
    ids = []
    for params, r in zip(result.param_sets, result.results, strict=True):
        run_id = new_run_id()
        raw = r.extra["raw"]
        eq = raw["equity"]
        spec = {
            "strategy": r.strategy,
            "params": r.params,
            "engine": dataclasses.asdict(r.engine),
            "sweep": {"id": result.sweep_id, "set": params},
        }
        start = int(eq["ts"][0]) if len(eq) else None
        end = int(eq["ts"][-1]) if len(eq) else None
        async with conn.transaction():
            await store.create_run(
                conn,
                run_id,
                r.strategy,
                spec,
                r.params,
                [symbol],
                start,
                end,
                status="running",
                sweep_id=result.sweep_id,
            )
            await store.write_result_set(
                conn, run_id, symbol, 0, {k: raw[k] for k in ("signals", "orders", "fills", "equity")}
            )
            await store.write_metrics(
                conn,
                run_id,
                {
                    k: v
                    for k, v in r.metrics.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)
                },
            )
            await store.finish_run(
                conn,
                run_id,
                "complete",
                ticks_in=r.ticks_in,
                ticks_processed=r.accepted,
                ticks_rejected=sum(r.rejects.values()),
                rejects=r.rejects,
                orders=len(r.orders),
                fills=len(r.fills),
                wall_seconds=result.seconds / len(result.results),
            )
        ids.append(run_id)
    return ids
