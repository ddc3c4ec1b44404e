"""The numbered migrations of dbschema/, applied in order and recorded in ``schema_migrations``."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import asyncpg

from ticktape.config import dbschema_dir
from ticktape.errors import MigrationError
from ticktape.store.codec import sql_literal
from ticktape.store.connection import connect

log = logging.getLogger(__name__)

#: pg_advisory_lock key serialising concurrent migrate() calls.
MIGRATION_LOCK_KEY = 0x7469636B74617065  # "ticktape"

# --------------------------------------------------------------------------
# migrations


_MIGRATION_NAME = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")


#: The read-only role (dbschema/0038, 0043): the app's queries and typed SQL log in as it.
READER_ROLE = "ticktape_reader"


async def set_reader_password(conn: asyncpg.Connection, password: str) -> None:
    """Let :data:`READER_ROLE` log in with ``password`` (``ticktape db migrate``
    with ``TICKTAPE_READER_PASSWORD``: a server that asks for passwords,
    as the compose file's TimescaleDB does)."""
    try:
        await conn.execute(f"ALTER ROLE {READER_ROLE} LOGIN PASSWORD {sql_literal(password)}")
    except asyncpg.PostgresError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise MigrationError(f"cannot set the password of {READER_ROLE}: {reason}") from None


def migrations(folder: Path | None = None) -> list[tuple[int, str, Path]]:
    """The numbered migrations on disk: (version, name, path), in order.

    ``name`` is the file stem, e.g. ``"0001_core"``.
    """
    folder = dbschema_dir() if folder is None else folder
    found: dict[int, tuple[int, str, Path]] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations with version {version}: {found[version][2].name}, {path.name}"
            )
        found[version] = (version, path.stem, path)
    return [found[v] for v in sorted(found)]


async def migrate(conn_or_dsn: asyncpg.Connection | str, *, folder: Path | None = None) -> list[str]:
    """Apply the migrations not yet recorded in ``schema_migrations``, in order.

    Each file runs in its own transaction together with its ledger row.
    Concurrent callers (other processes) are serialised by an advisory lock;
    the later one applies nothing. Returns the names applied (``"0001_core"``).
    """
    if isinstance(conn_or_dsn, str):
        conn = await connect(conn_or_dsn)
        try:
            return await migrate(conn, folder=folder)
        finally:
            await conn.close()
    conn = conn_or_dsn
    todo = migrations(folder)
    applied: list[str] = []

    def relay(_conn: object, message: Any) -> None:  # server WARNINGs of the migrations
        if getattr(message, "severity_en", message.severity) == "WARNING":
            log.warning("migration: %s", message.message)

    conn.add_log_listener(relay)
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    int PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {
            r["version"]: r["name"] for r in await conn.fetch("SELECT version, name FROM schema_migrations")
        }
        for version, name, path in todo:
            if version in done:
                if done[version] != name:
                    raise MigrationError(
                        f"migration {version} is recorded as {done[version]!r} but the file is {path.name}"
                    )
                continue
            sql = path.read_text(encoding="utf-8")
            try:
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        version,
                        name,
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {path.name} failed: {exc}") from exc
            applied.append(name)
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        finally:
            conn.remove_log_listener(relay)
    return applied
