"""Parameter sweeps over the streaming pipeline: every parameter set its own
run, grouped by a sweep id (the in-process sweep is :mod:`ticktape.backtest.sweep`)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from rich.console import Console

from ticktape.config import Settings
from ticktape.errors import SpecError
from ticktape.model.spec import RunSpec, new_run_id
from ticktape.pipeline.demo import follow
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


def sweep_pipeline(
    rt: Runtime,
    settings: Settings,
    base: RunSpec,
    param_sets: list[dict[str, Any]],
    console: Console,
    timeout_s: float = 3600.0,
) -> tuple[str, list[dict[str, Any]]]:
    """Run every parameter set through the streaming pipeline as its own run
    (grouped by a sweep id; the runs share the worker's partitions); returns
    (sweep id, run rows with metrics)."""
    specs = pipeline_specs(base, param_sets)
    sweep_id = str(uuid.uuid4())
    return sweep_id, follow(rt, settings, specs, console, timeout_s, "sweep", sweep_id)
