"""Running the Faust worker: in this process, or as a managed child process.

A crashed agent can leave a Faust worker deaf to SIGTERM, so the manager
escalates to SIGKILL after a grace period and never leaves a worker behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ticktape.config import Settings
from ticktape.runtime import make_private_dir, open_private, spawn_child, terminate_process


def run_worker(
    kafka_url: str,
    database_url: str,
    datadir: Path,
    loglevel: str = "warning",
    stages: tuple[str, ...] | None = None,
) -> None:
    """Run the ticktape Faust worker (``stages``: default all) until SIGTERM/SIGINT."""
    from faust.worker import Worker

    from ticktape.app import create_app

    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    make_private_dir(datadir)
    ready = ready_path(datadir, os.getpid())
    app = create_app(
        kafka_url, database_url, datadir, ready_file=ready, **({"stages": stages} if stages else {})
    )
    worker = Worker(app, loglevel=loglevel, loop=loop, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        ready.unlink(missing_ok=True)


def ready_path(datadir: Path, pid: int) -> Path:
    """The file a worker creates once it is consuming (see create_app)."""
    return datadir / f"ready-{pid}"


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

    def start(self) -> WorkerProcess:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open_private(self.log_path, "ab") as log:
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
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Block until the worker has joined the group and recovered its tables."""
        home = Path(self.env.get("TICKTAPE_HOME") or Settings.from_env().home)
        assert self.proc is not None
        marker = ready_path(home / "faust", self.proc.pid)
        deadline = time.monotonic() + timeout
        while not marker.exists():
            if not self.alive():
                raise RuntimeError(f"the Faust worker exited; last log lines:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Faust worker was not ready after {timeout:.0f} s: {self.log_path}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL it and its descendants."""
        if self.proc is None:
            return
        terminate_process(self.proc, signals=((signal.SIGTERM, self.grace_s),), name="faust worker")
        self.proc = None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
