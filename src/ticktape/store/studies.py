"""Studies: research over several runs (a walk-forward study), one row each
in ``studies`` (dbschema/0039_studies.sql), its runs grouped by ``runs.study_id``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from ticktape.errors import SpecError
from ticktape.store.runs import json_value

#: The kinds of study (the table's check constraint).
STUDY_KINDS = ("walkforward",)
#: A study's statuses: running while its runs are made, then complete or failed.
STUDY_STATUSES = ("running", "complete", "failed")


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), sort_keys=True, allow_nan=False)


def parse_study_id(text: object) -> uuid.UUID:
    """A study id as a UUID; SpecError naming it when it is not one."""
    try:
        return uuid.UUID(str(text))
    except ValueError:
        raise SpecError(f"study_id: {text!r} is not a study id (a UUID)") from None


async def create_study(
    conn: asyncpg.Connection, study_id: str | uuid.UUID, kind: str, spec: Mapping[str, Any]
) -> None:
    """Insert a ``running`` study with its ``spec`` (JSON-able, no NaN)."""
    if kind not in STUDY_KINDS:
        raise ValueError(f"unknown study kind {kind!r}; expected one of {STUDY_KINDS}")
    await conn.execute(
        "INSERT INTO studies (study_id, kind, spec) VALUES ($1, $2, $3::text::jsonb)",
        parse_study_id(study_id),
        kind,
        _json(spec),
    )


async def attach_runs(conn: asyncpg.Connection, study_id: str | uuid.UUID, run_ids: Sequence[str]) -> None:
    """Group ``run_ids`` under the study (``runs.study_id``)."""
    await conn.execute(
        "UPDATE runs SET study_id = $1 WHERE run_id = ANY($2::uuid[])",
        parse_study_id(study_id),
        [uuid.UUID(str(r)) for r in run_ids],
    )


async def finish_study(
    conn: asyncpg.Connection,
    study_id: str | uuid.UUID,
    status: str,
    summary: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """End a study: its status, ``ended_at`` = now, its summary or error."""
    if status not in STUDY_STATUSES[1:]:
        raise ValueError(f"a study ends complete or failed, not {status!r}")
    await conn.execute(
        "UPDATE studies SET status = $2, ended_at = now(), summary = $3::text::jsonb, error = $4 "
        "WHERE study_id = $1",
        parse_study_id(study_id),
        status,
        None if summary is None else _json(summary),
        error,
    )


async def read_study(conn: asyncpg.Connection, study_id: str | uuid.UUID) -> dict[str, Any]:
    """The study's row as a dict (spec and summary decoded) with ``runs``: its
    runs' ``run_id`` (str), ``symbols`` and ``status``, oldest first.

    Raises
    ------
    SpecError
        Not a UUID, or no such study.
    """
    sid = parse_study_id(study_id)
    row = await conn.fetchrow("SELECT * FROM studies WHERE study_id = $1", sid)
    if row is None:
        raise SpecError(f"study_id: no study {study_id}")
    study = dict(row)
    study["study_id"] = str(study["study_id"])
    study["spec"] = json_value(study["spec"])
    study["summary"] = json_value(study["summary"]) if study["summary"] is not None else None
    runs = await conn.fetch(
        "SELECT run_id, symbols, status FROM runs WHERE study_id = $1 ORDER BY data_start, run_id", sid
    )
    study["runs"] = [
        {"run_id": str(r["run_id"]), "symbols": list(r["symbols"]), "status": r["status"]} for r in runs
    ]
    return study
