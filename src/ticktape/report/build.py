"""Which report an id asks for: :func:`build` finds the id among the stored
runs, sweeps and walk-forward studies and gathers the sections of each kind
of result it has.

A new kind of result adds its sections here: the analyses of a run (a
Monte Carlo) append theirs to :func:`run_report`'s, a new kind of id is one
more kind in :func:`build` (and in :func:`ticktape.store.report.id_kind`).
"""

from __future__ import annotations

import uuid

import asyncpg

from ticktape.errors import SpecError
from ticktape.model.spec import parse_run_id
from ticktape.report import montecarlo, run, sweep, walkforward
from ticktape.report.document import Section
from ticktape.store.report import id_kind


def parse_id(ident: str) -> uuid.UUID:
    """A report's id (a run, sweep or study id: a UUID, any spelling); SpecError otherwise.

    >>> str(parse_id("0190ABCD-0000-0000-0000-000000000001"))
    '0190abcd-0000-0000-0000-000000000001'
    """
    try:
        return parse_run_id(ident)
    except SpecError:
        raise SpecError(f"ID: {ident!r} is not a run, sweep or study id (a UUID)") from None


async def run_report(conn: asyncpg.Connection, run_id: str) -> tuple[str, list[Section]]:
    """A run's report: its own sections, then those of the analyses of it."""
    title, sections = await run.report(conn, run_id)
    return title, [*sections, *await montecarlo.sections(conn, run_id)]


async def sweep_report(conn: asyncpg.Connection, sweep_id: str, metric: str) -> tuple[str, list[Section]]:
    """A sweep's report: what was swept, its heatmap of ``metric``, its sets."""
    return await sweep.report(conn, sweep_id, metric)


async def build(
    conn: asyncpg.Connection, ident: str, *, metric: str = sweep.DEFAULT_METRIC
) -> tuple[str, list[Section]]:
    """The title and sections of the report on ``ident``: a run, sweep or study id.

    Parameters
    ----------
    ident
        A UUID, any spelling.
    metric
        The metric a sweep's heatmap shows (a key of its sets' metrics).

    Raises
    ------
    SpecError
        ``ident`` is not a UUID, names nothing stored, or ``metric`` is
        not one of a sweep's metrics (one line naming it).
    """
    key = parse_id(ident)
    kind = await id_kind(conn, key)
    if kind == "run":
        return await run_report(conn, str(key))
    if kind == "sweep":
        return await sweep_report(conn, str(key), metric)
    if kind == "study":
        return f"Walk-forward study {key}", await walkforward.sections(conn, str(key))
    raise SpecError(f"ID: no run, sweep or study {key} in this store (ticktape runs list shows the runs)")
