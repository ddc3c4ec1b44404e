"""Running the Faust worker: in this process, or as a managed child process.

A crashed agent can leave a Faust worker deaf to SIGTERM, so the manager
escalates to SIGKILL after a grace period and never leaves a worker behind,
nor its ready file (``ready-<pid>`` in the worker's data folder: a worker
killed never removes its own, and a later worker given the same pid would
have looked ready at once).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import uvloop
from faust.worker import Worker

from ticktape.config import Settings
from ticktape.errors import TicktapeRuntimeError
from ticktape.pipeline.app import STAGES, create_app
from ticktape.runtime.files import make_private_dir, open_private
from ticktape.runtime.processes import spawn_child, tail, terminate_process


def run_worker(
    kafka_url: str,
    database_url: str,
    datadir: Path,
    loglevel: str = "warning",
    stages: tuple[str, ...] | None = None,
) -> None:
    """Run the ticktape Faust worker (``stages``: default all) until SIGTERM/SIGINT."""

    loop: asyncio.AbstractEventLoop
    try:
        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    make_private_dir(datadir)
    remove_stale_ready_files(datadir)
    ready = ready_path(datadir, os.getpid())
    app = create_app(kafka_url, database_url, datadir, stages=stages or STAGES, ready_file=ready)
    worker = Worker(app, loglevel=loglevel, loop=loop, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        ready.unlink(missing_ok=True)


def ready_path(datadir: Path, pid: int) -> Path:
    """The file a worker creates once it is consuming (see create_app)."""
    return datadir / f"ready-{pid}"


def remove_stale_ready_files(datadir: Path) -> None:
    """Remove the ready files of workers gone (killed: none removes its own),
    and one with our pid (a worker before us had it)."""
    for path in datadir.glob("ready-*"):
        try:
            pid = int(path.name.removeprefix("ready-"))
        except ValueError:
            continue
        if pid == os.getpid() or not psutil.pid_exists(pid):
            path.unlink(missing_ok=True)


class WorkerProcess:
    """A ``ticktape worker`` child process, stopped for sure on :meth:`stop`."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        grace_s: float = 10.0,
        loglevel: str = "warning",
        stages: str = "all",
    ) -> None:
        self.env = env
        self.loglevel = loglevel
        self.stages = stages
        self.log_path = log_path
        self.grace_s = grace_s
        self.proc: subprocess.Popen | None = None
        self._log_offset = 0  # where this worker's lines start in its (shared) log
        self._datadir: Path | None = None  # its TICKTAPE_HOME/faust, known at start

    @property
    def _ready_file(self) -> Path | None:
        if self.proc is None or self._datadir is None:
            return None
        return ready_path(self._datadir, self.proc.pid)

    def start(self) -> WorkerProcess:
        if self.proc is not None and self.proc.poll() is None:
            return self
        # (before the worker starts: a bad setting must not leave it behind)
        self._datadir = Path(self.env.get("TICKTAPE_HOME") or Settings.from_env().home) / "faust"
        self.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open_private(self.log_path, "ab") as log:
            self._log_offset = os.fstat(log.fileno()).st_size
            # own session + SIGKILL when this process dies (runtime.spawn_child)
            self.proc = spawn_child(
                [
                    sys.executable,
                    "-m",
                    "ticktape",
                    "worker",
                    "--loglevel",
                    self.loglevel,
                    "--stages",
                    self.stages,
                ],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # (one left by an earlier worker with this pid; ours comes seconds later)
        marker = self._ready_file
        assert marker is not None
        marker.unlink(missing_ok=True)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the worker has joined the group and recovered its tables.

        Raises :class:`TicktapeRuntimeError` (with the worker's last log
        lines) if it exits first or is not ready in ``timeout`` seconds.
        """
        marker = self._ready_file
        assert self.proc is not None and marker is not None
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if not self.alive():
                message = f"the Faust worker exited with code {self.proc.returncode} before it was ready"
                if words := self.log_tail():
                    message += f"\n  last lines of {self.log_path}:\n" + textwrap.indent(words, "    ")
                raise TicktapeRuntimeError(message)
            if time.monotonic() > deadline:
                raise TicktapeRuntimeError(
                    f"the Faust worker was not ready after {timeout:.0f} s: {self.log_path}"
                )
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines this worker wrote to its log, as text
        (no terminal control: Faust's spinner hides and shows the cursor)."""
        return tail(self.log_path, lines, self._log_offset)

    def stop(self) -> None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL it and its descendants;
        remove its ready file (a worker killed leaves it)."""
        if self.proc is None:
            return
        marker = self._ready_file
        terminate_process(self.proc, signals=((signal.SIGTERM, self.grace_s),), name="faust worker")
        if marker is not None:
            marker.unlink(missing_ok=True)
        self.proc = None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
