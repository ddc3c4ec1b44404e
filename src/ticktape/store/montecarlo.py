"""Monte Carlo studies of runs (``montecarlo_studies``, dbschema/0040_montecarlo.sql).

A study is written in one INSERT once all its draws are done
(:func:`insert_study`), so it is stored whole or not at all; it goes with
its run (:data:`ticktape.store.runs.RUN_TABLES`, and ``ON DELETE CASCADE``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from ticktape.model.spec import parse_run_id
from ticktape.store.runs import json_value

#: The columns of a study as :func:`read_studies` returns them.
STUDY_COLUMNS = (
    "study_id",
    "run_id",
    "method",
    "n",
    "seed",
    "block_length",
    "params",
    "summary",
    "fan",
    "created_at",
)


async def insert_study(
    conn: asyncpg.Connection,
    study_id: str | uuid.UUID,
    run_id: str | uuid.UUID,
    method: str,
    n: int,
    seed: int,
    block_length: float | None,
    params: Mapping[str, Any],
    summary: Mapping[str, Any],
    fan: Mapping[str, Any],
) -> None:
    """Store one study (its JSON documents must hold finite numbers or null)."""
    await conn.execute(
        "INSERT INTO montecarlo_studies"
        " (study_id, run_id, method, n, seed, block_length, params, summary, fan)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb, $9::text::jsonb)",
        uuid.UUID(str(study_id)),
        parse_run_id(run_id),
        method,
        int(n),
        int(seed),
        None if block_length is None else float(block_length),
        *(json.dumps(doc, sort_keys=True, allow_nan=False) for doc in (params, summary, fan)),
    )


async def read_studies(conn: asyncpg.Connection, run_id: str | uuid.UUID) -> list[dict[str, Any]]:
    """The studies of ``run_id``, oldest first, as dicts (ids as str, JSON decoded)."""
    rows = await conn.fetch(
        f"SELECT {', '.join(STUDY_COLUMNS)} FROM montecarlo_studies WHERE run_id = $1"
        " ORDER BY created_at, study_id",
        parse_run_id(run_id),
    )
    out = []
    for row in rows:
        item = dict(row)
        for key in ("study_id", "run_id"):
            item[key] = str(item[key])
        for key in ("params", "summary", "fan"):
            item[key] = json_value(item[key])
        out.append(item)
    return out


async def count_studies(conn: asyncpg.Connection, run_id: str | uuid.UUID) -> int:
    """How many studies ``run_id`` has."""
    return int(
        await conn.fetchval("SELECT count(*) FROM montecarlo_studies WHERE run_id = $1", parse_run_id(run_id))
    )
