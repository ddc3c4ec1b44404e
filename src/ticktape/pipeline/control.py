"""Pause, resume and cancel a running run: the replay's side of it.

The CLI writes the request into ``runs.control``
(:func:`ticktape.store.runs.request_control`); the replay agent polls it
(a few times a second, not per tick) through a :class:`RunGate` that every
symbol's replay loop passes before publishing a batch.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from ticktape.errors import RunCancelled
from ticktape.store import runs
from ticktape.store.retry import Reconnecting


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
