"""Run control: pause, resume and cancel (the replay's side of it), and the
leases of the runs a command follows.

The CLI writes the request into ``runs.control``
(:func:`ticktape.store.runs.request_control`); the replay agent polls it
(a few times a second, not per tick) through a :class:`RunGate` that every
symbol's replay loop passes before publishing a batch. The gate stops the
replay of a run that ended meanwhile (cancelled, failed by an expired
lease) or was deleted.

A command that follows its runs (``ticktape run``, ``demo``, ``sweep``,
``paper``) owns them: a :class:`LeaseKeeper` renews their leases from a
thread of its own while the command lives (docs/architecture.md,
"Progress and control").
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence

import asyncpg

from ticktape.errors import RunCancelled
from ticktape.store import runs
from ticktape.store.connection import connect
from ticktape.store.retry import Reconnecting

log = logging.getLogger(__name__)


def owner(command: str) -> str:
    """How a run names the command that owns it: ``ticktape run, pid 4242 on host``."""
    return f"ticktape {command}, pid {os.getpid()} on {socket.gethostname()}"


class LeaseKeeper:
    """Renews the leases of ``run_ids`` every ``every`` seconds while in its
    ``with`` block, from a thread of its own: the command's main thread may
    block for longer than a lease (starting its worker, counting the ticks
    of a run). A renewal that fails is tried again at the next turn (a lease
    outlives several)."""

    def __init__(self, dsn: str, run_ids: Sequence[str], every: float = runs.LEASE_RENEW_S) -> None:
        self.dsn = dsn
        self.run_ids = list(run_ids)
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="ticktape-lease", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30.0)

    def _main(self) -> None:
        asyncio.run(self._renew())

    async def _renew(self) -> None:
        conn: asyncpg.Connection | None = None
        try:
            while not self._stop.is_set():
                try:
                    if conn is None or conn.is_closed():
                        conn = await connect(self.dsn)
                    await runs.renew_leases(conn, self.run_ids)
                except Exception as exc:  # whatever it was, the next turn tries again
                    log.warning("could not renew the lease of runs %s: %s", ", ".join(self.run_ids), exc)
                    if conn is not None:
                        conn.terminate()
                        conn = None
                await asyncio.to_thread(self._stop.wait, self.every)
        finally:
            if conn is not None:
                try:
                    await asyncio.wait_for(conn.close(), 5.0)
                except Exception:  # a broken connection: dropped
                    conn.terminate()


async def expire_while(
    conn: asyncpg.Connection, alive: Callable[[], bool], every: float = runs.LEASE_CHECK_S
) -> None:
    """Fail the runs whose lease ran out (:func:`ticktape.store.runs.expire_leases`)
    every ``every`` seconds while ``alive()`` (``ticktape dashboard``: while
    its Streamlit server runs, the page itself being read-only)."""
    while alive():
        await runs.expire_leases(conn)
        await asyncio.sleep(every)


class RunGate:
    """Shared by the replay loops of one run: honours pause/cancel requests.

    Polls ``runs.control`` at most every ``interval`` seconds of wall time.
    """

    def __init__(self, db: Reconnecting, run_id: str, interval: float = 0.25) -> None:
        self.db = db
        self.run_id = uuid.UUID(str(run_id))
        self.interval = interval
        self._next_poll = 0.0
        self._lock = asyncio.Lock()
        self.control: str | None = None
        self.read: dict[str, int] = {}  # ticks published per symbol, for lag
        self.paused_s = 0.0  # wall time spent paused (a paced replay shifts by it)

    async def _poll(self, force: bool = False) -> None:
        async with self._lock:  # one query at a time on the shared connection
            if not force and time.monotonic() < self._next_poll:
                return
            self.control = await self.db.run(lambda conn: runs.read_control(conn, self.run_id))
            if self.read:
                await self.db.run(lambda conn: runs.record_ticks_read(conn, self.run_id, self.read))
            self._next_poll = time.monotonic() + self.interval

    async def flush(self) -> None:
        """Record the final read counts now."""
        await self._poll(force=True)

    async def _set_status(self, status: str) -> None:
        async with self._lock:
            await self.db.run(lambda conn: runs.set_replay_status(conn, self.run_id, status))

    async def wait(self, symbol: str, ticks_read: int) -> None:
        """Return when the run may go on; raise :class:`RunCancelled` if cancelled.

        ``ticks_read`` is how many ticks of ``symbol`` were published so far.
        """
        self.read[symbol] = ticks_read
        await self._poll()
        if self.control == "pause":
            await self._set_status("paused")
            while self.control == "pause":
                await asyncio.sleep(self.interval)
                self.paused_s += self.interval
                await self._poll()
            if self.control != "cancel":
                await self._set_status("running")
        if self.control == "cancel":
            raise RunCancelled(self.run_id)
