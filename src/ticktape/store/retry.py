"""Riding out a database that is briefly unavailable.

Every write of the pipeline is idempotent (keyed by run, symbol and batch
sequence), so a stage that loses its connection reconnects with backoff and
repeats the operation; nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from ticktape.config import mask_dsn
from ticktape.errors import StoreConnectionError
from ticktape.store.connection import connect

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Errors after which a new connection may succeed (server restarting, the
#: connection was dropped or refused, the server short of a resource).
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, cannot connect now
    asyncpg.InterfaceError,  # e.g. "connection is closed"
    # "cannot switch to state ..; another operation is in progress": the
    # connection was broken mid-operation and is unusable
    asyncpg.exceptions.InternalClientError,
    # out of memory / shared memory (lock table), disk full, too many
    # connections: the server is short of a resource other sessions hold now
    asyncpg.exceptions.InsufficientResourcesError,
    StoreConnectionError,
)


class Reconnecting:
    """A connection that is re-opened, with backoff, when an operation fails
    transiently; the operation is then repeated (it must be idempotent).

    Gives up (re-raising the last error) after ``give_up_s`` seconds of
    consecutive failures.
    """

    def __init__(self, dsn: str, what: str, give_up_s: float = 120.0) -> None:
        self.dsn = dsn
        self.what = what
        self.give_up_s = give_up_s
        self.conn: asyncpg.Connection | None = None
        self.outages = 0  # how many times the connection had to be re-opened
        self._deadline: float | None = None
        self._delay = 0.1

    async def connection(self) -> asyncpg.Connection:
        """The open connection (opened now if needed)."""
        if self.conn is None or self.conn.is_closed():
            self.conn = await connect(self.dsn)
        return self.conn

    async def failed(self, exc: BaseException) -> None:
        """After a transient failure: drop the connection and wait (backoff),
        or re-raise ``exc`` once ``give_up_s`` of consecutive failures passed."""
        now = asyncio.get_running_loop().time()
        if self._deadline is None:
            self._deadline = now + self.give_up_s
        if now >= self._deadline:
            raise exc
        if self.conn is not None:
            self.conn.terminate()
            self.conn = None
        self.outages += 1
        log.warning(
            "%s: database at %s unavailable (%s); retrying in %.1f s",
            self.what,
            mask_dsn(self.dsn),
            type(exc).__name__,
            self._delay,
        )
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, 5.0)

    def succeeded(self) -> None:
        self._deadline, self._delay = None, 0.1

    async def run(self, op: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``await op(conn)``, repeated on a new connection after transient failures."""
        while True:
            try:
                result = await op(await self.connection())
            except TRANSIENT as exc:
                await self.failed(exc)
            else:
                self.succeeded()
                return result

    async def close(self) -> None:
        """Close the connection; a broken one is terminated instead (never raises)."""
        conn, self.conn = self.conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), 5.0)
        except (*TRANSIENT, asyncpg.PostgresError):
            conn.terminate()
