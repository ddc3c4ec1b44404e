"""Parameter sweeps over the streaming pipeline: one run per parameter set,
grouped by a sweep id, the data replayed once (the in-process sweep is
:mod:`ticktape.backtest.sweep`).

The command creates the runs and sends ONE sweep request
(:class:`ticktape.model.sweep.SweepRequest`). A worker's replay publishes
each symbol's ticks once to the sweep-ticks topic, after one work item per
group of sets to the sweep-groups topic, whose partitions spread the groups
over the workers; each group's hot path reads the ticks straight from the
broker and runs all its sets on every batch
(:class:`ticktape.backtest.groups.SetGroup`); the sink stores each run's
metrics and counts (docs/sweeps.md, "Over the pipeline"). The best sets'
full rows are stored after (``--keep-top``, :func:`store_detail`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import asyncpg
import numpy as np
from rich.console import Console

from ticktape import store
from ticktape.backtest.run import run_symbol
from ticktape.config import Settings
from ticktape.errors import SpecError
from ticktape.model.batch import empty
from ticktape.model.spec import RunSpec, new_run_id
from ticktape.model.sweep import SweepRequest, SweepSet
from ticktape.pipeline import sources
from ticktape.pipeline.demo import follow
from ticktape.pipeline.topics import DEFAULT_PARTITIONS
from ticktape.runtime.embedded import Runtime
from ticktape.store import session
from ticktape.strategy.catalog import check_run


def pipeline_specs(base: RunSpec, param_sets: list[dict[str, Any]]) -> list[RunSpec]:
    """One run spec per parameter set (over ``base``'s params), validated
    before anything runs (SpecError naming the set and the field)."""
    specs = []
    for k, p in enumerate(param_sets):
        try:
            specs.append(
                check_run(dataclasses.replace(base, params={**base.params, **p}, run_id=new_run_id()))
            )
        except SpecError as exc:
            raise SpecError(f"parameter set {k} {p}: {exc}") from None
    return specs


def sweep_request(
    base: RunSpec, param_sets: list[dict[str, Any]], specs: list[RunSpec], groups: int | None = None
) -> SweepRequest:
    """The one request of a sweep of ``param_sets`` (their runs ``specs``) over
    ``base``, cut into ``groups`` groups (default: one per partition of the
    sweep-groups topic, at most one per set).

    Examples
    --------
    >>> base = RunSpec(strategy="ma_crossover", symbols=("A",))
    >>> sets = [{"fast": f, "slow": 50} for f in (5, 10, 20)]
    >>> req = sweep_request(base, sets, pipeline_specs(base, sets), groups=2)
    >>> [[s.index for s in req.group(g)] for g in range(req.n_groups)]
    [[0], [1, 2]]
    """
    if groups is not None and groups < 1:
        raise SpecError(f"--groups {groups}: must be >= 1")
    if base.depth:  # (a group's engines are fed L1 quotes only)
        raise SpecError(
            "depth: a pipeline sweep does not feed L2 depth; run such specs one by one (ticktape run)"
        )
    sets = tuple(
        SweepSet(k, spec.run_id, p) for k, (p, spec) in enumerate(zip(param_sets, specs, strict=True))
    )
    return SweepRequest(
        dataclasses.replace(base, run_id=new_run_id()), sets, groups or min(DEFAULT_PARTITIONS, len(sets))
    )


async def _ticks(conn: asyncpg.Connection, spec: RunSpec, symbol: str, kafka_url: str) -> np.ndarray:
    """All of ``symbol``'s ticks from the run's source, in event order (as its replay reads them)."""
    if spec.source["kind"] == "store":
        it = store.read_ticks(conn, symbol, spec.start_ns, spec.end_ns, batch_size=spec.batch_size)
    else:
        it = sources.batches(spec, symbol, kafka_url=kafka_url, done=[0])
    parts = [arr async for arr in it]
    return np.concatenate(parts) if parts else empty("ticks")


async def store_detail(conn: asyncpg.Connection, spec: RunSpec, kafka_url: str) -> None:
    """Store the full rows (signals, orders, fills, equity, bars) of the sweep
    run ``spec``, its symbols re-run in process (:func:`ticktape.backtest.run.run_symbol`:
    what a pipeline run of ``spec`` stores for a symbol) from the run's
    source, one result set per symbol (``--keep-top``)."""
    for symbol in spec.symbols:
        res = run_symbol(spec, [await _ticks(conn, spec, symbol, kafka_url)])
        rows = {k: getattr(res, k) for k in ("signals", "orders", "fills", "equity", "bars")}
        await store.write_result_set(conn, spec.run_id, symbol, 0, rows)


def sweep_pipeline(
    rt: Runtime,
    settings: Settings,
    base: RunSpec,
    param_sets: list[dict[str, Any]],
    console: Console,
    timeout_s: float = 3600.0,
    groups: int | None = None,
    keep: Callable[[list[dict[str, Any]]], list[int]] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Run every parameter set through the streaming pipeline as its own run
    (grouped by a sweep id), the data replayed once and the sets evaluated
    in ``groups`` groups (:func:`sweep_request`); returns (sweep id, run rows
    with metrics, in the order of ``param_sets``). ``keep(rows)`` names the
    sets (indexes) whose full rows are then stored (:func:`store_detail`)."""
    specs = pipeline_specs(base, param_sets)
    req = sweep_request(base, param_sets, specs, groups)
    rows = follow(rt, settings, specs, console, timeout_s, "sweep", req.sweep_id, request=req)
    for i in keep(rows) if keep is not None else []:
        session.run(lambda conn, i=i: store_detail(conn, specs[i], rt.kafka_url), dsn=rt.database_url)
    return req.sweep_id, rows
