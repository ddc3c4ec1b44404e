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
metrics and counts (docs/sweeps.md, "Over the pipeline").
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.console import Console

from ticktape.config import Settings
from ticktape.errors import SpecError
from ticktape.model.spec import RunSpec, new_run_id
from ticktape.model.sweep import SweepRequest, SweepSet
from ticktape.pipeline.demo import follow
from ticktape.pipeline.topics import DEFAULT_PARTITIONS
from ticktape.runtime.embedded import Runtime
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
    sets = tuple(
        SweepSet(k, spec.run_id, p) for k, (p, spec) in enumerate(zip(param_sets, specs, strict=True))
    )
    return SweepRequest(
        dataclasses.replace(base, run_id=new_run_id()), sets, groups or min(DEFAULT_PARTITIONS, len(sets))
    )


def sweep_pipeline(
    rt: Runtime,
    settings: Settings,
    base: RunSpec,
    param_sets: list[dict[str, Any]],
    console: Console,
    timeout_s: float = 3600.0,
    groups: int | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Run every parameter set through the streaming pipeline as its own run
    (grouped by a sweep id), the data replayed once and the sets evaluated
    in ``groups`` groups (:func:`sweep_request`); returns (sweep id, run rows
    with metrics, in the order of ``param_sets``)."""
    specs = pipeline_specs(base, param_sets)
    req = sweep_request(base, param_sets, specs, groups)
    return req.sweep_id, follow(rt, settings, specs, console, timeout_s, "sweep", req.sweep_id, request=req)
