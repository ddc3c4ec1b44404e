"""Pause, resume and cancel a running run; the replay side of it.

The CLI writes the request into ``runs.control``; the replay agent polls it
(a few times a second, not per tick) through a :class:`RunGate` that every
symbol's replay loop passes before publishing a batch.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from ticktape import store
from ticktape.progress import find_run
from ticktape.retry import Reconnecting
from ticktape.strategy import SpecError

ACTIONS = ("pause", "resume", "cancel")


class RunCancelled(Exception):
    """The run was cancelled while replaying."""


async def request(conn: asyncpg.Connection, run_id: str, action: str) -> str:
    """Ask the replay of ``run_id`` to pause, resume or cancel; return its status."""
    if action not in ACTIONS:
        raise SpecError(f"action: expected one of {', '.join(ACTIONS)}, got {action!r}")
    run = await find_run(conn, run_id)
    rid, status = run["run_id"], run["status"]
    if status in store.ENDED:
        raise SpecError(f"run_id: run {run_id} is already {status}")
    control = None if action == "resume" else action
    await conn.execute("UPDATE runs SET control = $2 WHERE run_id = $1", rid, control)
    if action == "cancel" and status == "pending":  # no replay picked it up yet
        await conn.execute("UPDATE runs SET status = 'cancelled', finished_at = now() WHERE run_id = $1", rid)
        return "cancelled"
    return status


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
            self.control = await self.db.run(
                lambda conn: conn.fetchval("SELECT control FROM runs WHERE run_id = $1", self.run_id)
            )
            if self.read:
                rows = [(self.run_id, s, n) for s, n in self.read.items()]
                await self.db.run(
                    lambda conn: conn.executemany(
                        "INSERT INTO run_progress (run_id, symbol, ticks_read) VALUES ($1, $2, $3)"
                        " ON CONFLICT (run_id, symbol) DO UPDATE"
                        " SET ticks_read = GREATEST(run_progress.ticks_read, EXCLUDED.ticks_read)",
                        rows,
                    )
                )
            self._next_poll = time.monotonic() + self.interval

    async def flush(self) -> None:
        """Record the final read counts now."""
        await self._poll(force=True)

    async def _set_status(self, status: str) -> None:
        async with self._lock:
            await self.db.run(
                lambda conn: conn.execute(
                    "UPDATE runs SET status = $2 WHERE run_id = $1 AND status IN ('running', 'paused')",
                    self.run_id,
                    status,
                )
            )

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
