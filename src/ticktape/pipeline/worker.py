"""Running the Faust worker: in this process, or as a managed child process.

A worker started on services that do not answer yet (a compose stack coming
up, a broker restarting) waits for them: one log line per attempt naming the
service and where it is, the wait doubling up to :data:`RETRY_MAX_S`, until
they answer or the worker is stopped (SIGTERM). It then creates the topics
it needs, adopting the partition count of those that exist, and warns when
its consumer group has more workers than a keyed topic has partitions.

A crashed agent can leave a Faust worker deaf to SIGTERM, so the manager
escalates to SIGKILL after a grace period and never leaves a worker behind,
nor its ready file (``ready-<pid>`` in the worker's data folder: a worker
killed never removes its own, and a later worker given the same pid would
have looked ready at once).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import faust
import psutil
import uvloop
from aiokafka.admin import AIOKafkaAdminClient
from faust.worker import Worker

from ticktape.config import Settings, kafka_hosts, mask_dsn
from ticktape.errors import StoreConnectionError, TicktapeRuntimeError
from ticktape.pipeline import metrics, topics
from ticktape.pipeline.app import STAGES, create_app
from ticktape.runtime.files import make_private_dir, open_private
from ticktape.runtime.kafka import kafka_metadata, tcp_check
from ticktape.runtime.processes import reason, run_coro, spawn_child, tail, terminate_process
from ticktape.store.connection import connect

log = logging.getLogger(__name__)

#: Seconds before the second attempt to reach a service; each later wait doubles, up to RETRY_MAX_S.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
#: Seconds one attempt may take.
ATTEMPT_S = 5.0


def run_worker(
    kafka_url: str,
    database_url: str,
    datadir: Path,
    loglevel: str = "warning",
    stages: tuple[str, ...] | None = None,
    settings: Settings | None = None,
) -> None:
    """Run the ticktape Faust worker (``stages``: default all) until SIGTERM/SIGINT.

    The pipeline's topics are created first where missing (``settings``:
    partitions and replication of new topics; existing ones keep their
    count, which the worker adopts), and the worker's metrics served when
    ``settings.metrics_port`` is set.
    """
    settings = settings or Settings.from_env()
    partitions, created = run_coro(
        lambda: topics.create(kafka_url, settings.partitions, settings.replication, adopt=True)
    )
    if settings.partitions not in (None, partitions):
        log.warning(
            "the topics at %s have %d partitions (TICKTAPE_PARTITIONS=%d is for new topics): using %d",
            kafka_url,
            partitions,
            settings.partitions,
            partitions,
        )
    if created:
        log.warning("created topics %s with %d partitions", ", ".join(created), partitions)
    loop: asyncio.AbstractEventLoop
    try:
        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    make_private_dir(datadir)
    remove_stale_ready_files(datadir)
    ready = ready_path(datadir, os.getpid())
    app = create_app(
        kafka_url, database_url, datadir, partitions=partitions, stages=stages or STAGES, ready_file=ready
    )
    watch_partitions(app, kafka_url, partitions)
    if settings.metrics_port is not None:
        metrics.serve(app, settings.metrics_host, settings.metrics_port)
    worker = Worker(app, loglevel=loglevel, loop=loop, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        ready.unlink(missing_ok=True)


def wait_for_services(
    kafka_url: str | None,
    database_url: str | None,
    first_s: float = RETRY_FIRST_S,
    max_s: float = RETRY_MAX_S,
) -> None:
    """Block until the broker and the database (those given) answer.

    Each failed attempt logs one line naming the service, where it is (the
    DSN masked) and why, then waits: ``first_s``, doubling up to ``max_s``.
    A signal (SIGTERM, Ctrl-C) ends the wait as it ends the worker.
    """

    async def broker() -> None:
        assert kafka_url is not None
        errors: list[OSError] = []
        for host, port in kafka_hosts(kafka_url):  # (one answering is enough)
            try:
                tcp_check(host, port, timeout=ATTEMPT_S)
                break
            except OSError as exc:
                errors.append(exc)
        else:
            raise errors[0]
        await kafka_metadata(kafka_url, timeout=ATTEMPT_S)

    async def database() -> None:
        assert database_url is not None
        conn = await connect(database_url, timeout=ATTEMPT_S)
        await conn.close()

    services = [("Kafka", kafka_url, broker), ("PostgreSQL", database_url, database)]
    for what, where, probe in services:
        if where is None:
            continue
        shown = mask_dsn(where)
        delay, failed = first_s, False
        while True:
            try:
                run_coro(probe)
                break
            except StoreConnectionError as exc:  # (its line names the database)
                log.warning("%s; next try in %.0f s", exc, delay)
                failed = True
            except Exception as exc:
                log.warning("cannot reach %s at %s: %s; next try in %.0f s", what, shown, reason(exc), delay)
                failed = True
            time.sleep(delay)
            delay = min(2 * delay, max_s)
        if failed:
            log.warning("%s at %s answers", what, shown)


def watch_partitions(app: faust.App, kafka_url: str, partitions: int) -> None:
    """After each rebalance, warn (once per group size) when the worker's
    consumer group has more members than its keyed topics have partitions."""
    group = str(app.conf.id)
    keyed = topics.group_topics(group)
    said: set[int] = set()

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]  # (mode awaits a coroutine handler)
    async def _check(sender: Any, **kwargs: Any) -> None:
        try:
            members = await asyncio.wait_for(group_members(kafka_url, group), ATTEMPT_S)
        except Exception as exc:  # (a warning's look-up must not stop the worker)
            log.info("could not count the members of consumer group %s: %s", group, reason(exc))
            return
        if members > partitions and members not in said:
            said.add(members)
            for topic in keyed:
                log.warning("%s", topics.partitions_warning(topic, partitions, group, members))


async def group_members(kafka_url: str, group: str) -> int:
    """The members of consumer group ``group`` now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_url, request_timeout_ms=int(ATTEMPT_S * 1000))
    try:
        await admin.start()
        (response,) = await admin.describe_consumer_groups([group])
        return sum(len(item[5]) for item in response.groups if item[0] == 0)
    finally:
        await admin.close()


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
