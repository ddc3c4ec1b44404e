"""Connecting to PostgreSQL: one line naming the (masked) DSN when it cannot be reached."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import asyncpg

from ticktape.config import mask_dsn
from ticktape.errors import StoreConnectionError
from ticktape.store.codec import sql_literal

# --------------------------------------------------------------------------
# connecting


_PERMANENT = (
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidPasswordError,
    asyncpg.InvalidAuthorizationSpecificationError,
)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, FileNotFoundError):
        return "no server socket (is the server running?)"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text


async def connect(dsn: str, *, timeout: float = 10.0, retry_until: float = 0.0) -> asyncpg.Connection:
    """Open a connection; raise :class:`StoreConnectionError` with one clear line.

    Parameters
    ----------
    dsn
        libpq-style URL, e.g. ``postgresql://postgres@/ticktape?host=/sock``.
    timeout
        Seconds for one connection attempt.
    retry_until
        Keep retrying transient failures (refused, starting up) this many
        seconds; 0 tries once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_until
    while True:
        try:
            return await asyncpg.connect(
                dsn,
                timeout=timeout,
                server_settings={"application_name": "ticktape", "temp_buffers": "64MB"},
            )
        except _PERMANENT as exc:
            raise StoreConnectionError(
                f"cannot reach PostgreSQL at {mask_dsn(dsn)}: {_reason(exc)}"
            ) from None
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if loop.time() + 0.1 >= deadline:
                raise StoreConnectionError(
                    f"cannot reach PostgreSQL at {mask_dsn(dsn)}: {_reason(exc)}"
                ) from None
        await asyncio.sleep(0.1)


async def has_timescale(conn: asyncpg.Connection) -> bool:
    """True when the timescaledb extension is installed in this database."""
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
    )


@contextlib.asynccontextmanager
async def commits_not_waiting(*conns: asyncpg.Connection | None) -> AsyncGenerator[None, None]:
    """Inside, commits on these connections do not wait for their WAL flush
    (``synchronous_commit = off``): a bulk load commits month after month
    without a disk wait each; a crash loses at most the last moments, which an
    idempotent re-import restores. Each connection's setting is put back after
    (on an error too, without hiding the error)."""
    sessions = [c for c in conns if c is not None]
    before = [await c.fetchval("SHOW synchronous_commit") for c in sessions]
    for c in sessions:
        await c.execute("SET synchronous_commit = off")

    async def restore() -> None:
        for c, value in zip(sessions, before, strict=True):
            await c.execute(f"SET synchronous_commit = {sql_literal(value)}")

    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the error that got us here matters more
            await restore()
        raise
    await restore()
