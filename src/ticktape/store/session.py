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
run: in a read-only transaction of a session that logs in as the role
:data:`READER_ROLE` (SELECT on the results and market data only;
dbschema/0038, 0043), so the server refuses every write and there is no
more privileged user to switch to. It logs in with ``TICKTAPE_READER_URL``,
or the database's DSN with the reader's user and no password (what the
embedded PostgreSQL accepts). Where that login is refused the dashboard's
own queries fall back to the database's user in a read-only transaction
with ``SET LOCAL ROLE`` (or, where even that is refused, the read-only
transaction alone), and a warning says so once per database
(:func:`readonly_note`); SQL a user types (``typed=True``) never falls
back: it is refused with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from ticktape.config import Settings, mask_dsn, with_user
from ticktape.errors import (
    MigrationError,
    SqlRefused,
    StoreConnectionError,
    StoreError,
    TicktapeRuntimeError,
)
from ticktape.runtime.embedded import Runtime
from ticktape.store.connection import connect
from ticktape.store.schema import READER_ROLE
from ticktape.store.schema import migrate as apply_migrations

T = TypeVar("T")
log = logging.getLogger(__name__)

_readonly_notes: dict[str, str] = {}  # masked DSN -> why READER_ROLE's login could not be used there


def readonly_note(dsn: str) -> str | None:
    """Why read-only sessions on ``dsn`` could not log in as :data:`READER_ROLE`
    (None: they do, or none ran yet in this process)."""
    return _readonly_notes.get(mask_dsn(dsn))


def _note(url: str, note: str) -> None:
    where = mask_dsn(url)
    if where not in _readonly_notes:
        log.warning("database %s: %s", where, note)
    _readonly_notes[where] = note


async def _become_reader(conn: asyncpg.Connection) -> str:
    """Inside a read-only transaction of the database's user: ``SET LOCAL
    ROLE`` :data:`READER_ROLE`; returns what the session then is."""
    try:
        async with conn.transaction():  # a savepoint: a refused SET ROLE leaves the transaction usable
            await conn.execute(f"SET LOCAL ROLE {READER_ROLE}")
        return f"run as the database's user with SET LOCAL ROLE {READER_ROLE}"
    except (asyncpg.InvalidParameterValueError, asyncpg.InsufficientPrivilegeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        return f"run in read-only transactions only (nor may it SET ROLE {READER_ROLE}: {reason})"


async def _read_only(fn: Callable[..., Awaitable[T]], url: str, reader_url: str, typed: bool) -> T:
    """``await fn(conn)`` in a read-only transaction logged in as the reader
    (see the module's docstring for the fallback)."""
    try:
        conn = await connect(reader_url)
    except StoreConnectionError as exc:
        refused = str(exc).rpartition(": ")[2]
        conn = await connect(url)  # (a server that is down says so here, as itself)
        if typed:
            await conn.close()
            raise SqlRefused(
                f"typed SQL runs only logged in as the read-only role {READER_ROLE}, and "
                f"{mask_dsn(reader_url)} refused it ({refused}); set TICKTAPE_READER_URL "
                "(docs/dashboard.md, 'SQL')"
            ) from None
        try:
            async with conn.transaction(readonly=True):
                how = await _become_reader(conn)
                _note(
                    url, f"the read-only login {mask_dsn(reader_url)} was refused ({refused}); queries {how}"
                )
                return await fn(conn)
        finally:
            await conn.close()
    try:
        async with conn.transaction(readonly=True):
            return await fn(conn)
    finally:
        await conn.close()


def run(
    fn: Callable[..., Awaitable[T]],
    *,
    dsn: str | None = None,
    settings: Settings | None = None,
    migrate: bool = True,
    second: bool = False,
    what: str | None = None,
    readonly: bool = False,
    typed: bool = False,
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
        Run ``fn`` in one read-only transaction logged in as
        :data:`READER_ROLE` (without migrating): the server refuses any
        write. For the dashboard's queries and SQL a user types.
    typed
        With ``readonly``: ``fn`` runs SQL a user typed, so a refused
        reader login is a :class:`~ticktape.errors.SqlRefused`, never the
        fallback.

    Raises
    ------
    StoreConnectionError, MigrationError, StoreError
        One line naming the (masked) database.
    """
    prefix = f"{what}: " if what else ""

    async def go(url: str) -> T:
        if readonly:
            return await _read_only(fn, url, conf.reader_url or with_user(url, READER_ROLE), typed)
        conn = await connect(url)
        other = None
        try:
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

    conf = settings or Settings.from_env()
    where = "the embedded PostgreSQL"
    try:
        url = dsn or conf.database_url
        if url:
            where = mask_dsn(url)
            return asyncio.run(go(url))
        with Runtime(conf, kafka=False) as rt:
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
