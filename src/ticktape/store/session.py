"""Sessions on the store: the one way every command opens, migrates and closes it.

:func:`run` is the session helper: ``await fn(conn)`` on the configured
database (``TICKTAPE_DATABASE_URL``) or the embedded PostgreSQL (started, or
shared with the other ticktape commands of the same ``TICKTAPE_HOME``),
migrated first, closed after. Anything that keeps the call from reaching,
migrating or using the database ends it with one line naming the (masked)
database: :class:`~ticktape.errors.StoreConnectionError` (cannot reach),
:class:`~ticktape.errors.MigrationError`, or :class:`~ticktape.errors.StoreError`
(the server refused an operation, or the connection was lost).

``readonly=True`` is how the dashboard's queries and any SQL a user types
run: in a read-only transaction, as the role :data:`READER_ROLE` (SELECT
only, created by dbschema/0038_reader_role.sql), so the server refuses
every write. Where that role cannot be used (a ``TICKTAPE_DATABASE_URL``
whose user could not create it, or may not ``SET ROLE`` to it) the session
still runs in a read-only transaction and a warning says so, once per
database (:func:`readonly_note`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from ticktape.config import Settings, mask_dsn
from ticktape.errors import MigrationError, StoreConnectionError, StoreError, TicktapeRuntimeError
from ticktape.runtime.embedded import Runtime
from ticktape.store.connection import connect
from ticktape.store.schema import migrate as apply_migrations

T = TypeVar("T")
log = logging.getLogger(__name__)

#: The role read-only sessions run as (dbschema/0038_reader_role.sql).
READER_ROLE = "ticktape_reader"
_readonly_notes: dict[str, str] = {}  # masked DSN -> why READER_ROLE could not be used there


def readonly_note(dsn: str) -> str | None:
    """Why read-only sessions on ``dsn`` could not run as :data:`READER_ROLE`
    (None: they do, or none ran yet in this process)."""
    return _readonly_notes.get(mask_dsn(dsn))


async def _become_reader(conn: asyncpg.Connection, url: str) -> None:
    """Inside a read-only transaction: ``SET LOCAL ROLE`` :data:`READER_ROLE`,
    or note (and warn, once) why not."""
    try:
        async with conn.transaction():  # a savepoint: a refused SET ROLE leaves the transaction usable
            await conn.execute(f"SET LOCAL ROLE {READER_ROLE}")
        return
    except (asyncpg.InvalidParameterValueError, asyncpg.InsufficientPrivilegeError) as exc:
        reason = str(exc).strip().splitlines()[0]
    where = mask_dsn(url)
    note = (
        f"database {where}: the read-only role {READER_ROLE} cannot be used ({reason}); read-only "
        "sessions run in read-only transactions only (docs/architecture.md, 'Progress and control')"
    )
    if where not in _readonly_notes:
        log.warning("%s", note)
    _readonly_notes[where] = note


def run(
    fn: Callable[..., Awaitable[T]],
    *,
    dsn: str | None = None,
    settings: Settings | None = None,
    migrate: bool = True,
    second: bool = False,
    what: str | None = None,
    readonly: bool = False,
) -> T:
    """``await fn(conn)`` in a session of its own; the one session helper.

    Parameters
    ----------
    fn
        The work: ``fn(conn)``, or ``fn(conn, other)`` with ``second``.
    dsn
        The database; default: ``settings.database_url``, else the embedded
        PostgreSQL (started for the call, or attached to while another
        ticktape command of the same home runs it).
    settings
        Default: :meth:`ticktape.config.Settings.from_env`.
    migrate
        Apply pending migrations first (a new store has no tables).
    second
        Open a second connection for ``fn`` (a reader beside a writer).
    what
        What the call works on (a file...), prefixed to an error's line.
    readonly
        Run ``fn`` in one read-only transaction as :data:`READER_ROLE`
        (without migrating): the server refuses any write. For the
        dashboard's queries and SQL a user types.

    Raises
    ------
    StoreConnectionError, MigrationError, StoreError
        One line naming the (masked) database.
    """
    prefix = f"{what}: " if what else ""

    async def go(url: str) -> T:
        conn = await connect(url)
        other = None
        try:
            if readonly:
                async with conn.transaction(readonly=True):
                    await _become_reader(conn, url)
                    return await fn(conn)
            if migrate:
                await apply_migrations(conn)
            if second:
                other = await connect(url)
                return await fn(conn, other)
            return await fn(conn)
        finally:
            if other is not None:
                await other.close()
            await conn.close()

    settings = settings or Settings.from_env()
    where = "the embedded PostgreSQL"
    try:
        url = dsn or settings.database_url
        if url:
            where = mask_dsn(url)
            return asyncio.run(go(url))
        with Runtime(settings, kafka=False) as rt:
            where = mask_dsn(str(rt.database_url))
            return asyncio.run(go(str(rt.database_url)))
    except (StoreConnectionError, TicktapeRuntimeError) as exc:
        raise type(exc)(f"{prefix}{exc}") from None
    except MigrationError as exc:
        raise MigrationError(f"{prefix}database {where}: {exc}") from None
    except asyncpg.PostgresError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"{prefix}database {where}: {reason} (SQLSTATE {exc.sqlstate})") from None
    except (asyncpg.InterfaceError, ConnectionError) as exc:
        raise StoreError(f"{prefix}database {where}: connection lost ({exc or type(exc).__name__})") from None
