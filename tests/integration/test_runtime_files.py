"""What the embedded runtime leaves on disk: modes, owners, the socket
directory, workers' ready files and logs (issue 22)."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ticktape import store
from ticktape.config import Settings
from ticktape.errors import TicktapeRuntimeError
from ticktape.pipeline.worker import WorkerProcess, ready_path
from ticktape.runtime import embedded as runtime_mod
from ticktape.runtime import postgres as postgres_mod
from ticktape.runtime.embedded import Runtime
from ticktape.runtime.processes import run_coro

pytestmark = pytest.mark.integration

TICKTAPE = str(Path(sys.executable).parent / "ticktape")
ROOT = os.geteuid() == 0


def ticktape(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The installed ``ticktape`` command with ``TICKTAPE_HOME=home`` and the
    embedded services, whatever the environment says."""
    env = {k: v for k, v in os.environ.items() if k not in ("TICKTAPE_KAFKA_URL", "TICKTAPE_DATABASE_URL")}
    env["TICKTAPE_HOME"] = str(home)
    return subprocess.run(
        [TICKTAPE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused command printed (checked to be one)."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("ticktape: error: ") and done.stderr.count("\n") == 1, done.stderr
    return done.stderr.strip()


def pg_user_uid() -> int | None:
    return pwd.getpwnam(postgres_mod.PG_SYSTEM_USER).pw_uid if ROOT else None


# --------------------------------------------------------------------------
# modes inside and outside TICKTAPE_HOME


def test_nothing_outside_the_home_changes_mode(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """(As root the embedded PostgreSQL runs as a system user: ticktape made
    every ancestor of the home searchable by everyone, /root included.)"""
    outer = tmp_path / "p"
    outer.mkdir()
    outer.chmod(0o700)
    home = outer / "h"
    # (above our own base folder, other test sessions may change modes)
    ancestors = [p for p in home.parents if p.is_relative_to(tmp_path_factory.getbasetemp())]
    before = {p: mode(p) for p in ancestors}
    done = ticktape(home, "db", "migrate")
    assert done.returncode == 0, done.stderr
    assert {p: mode(p) for p in ancestors} == before


@pytest.mark.skipif(not ROOT, reason="the postgres user exists when we are root")
def test_postgres_programs_the_postgres_user_cannot_reach_are_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ticktape installed in a folder the postgres system user may not enter
    (a virtualenv under /root, 0700): said so, nothing changed."""
    closed = tmp_path / "closed"
    closed.mkdir()
    closed.chmod(0o700)
    real = postgres_mod.pg_bin_dir()
    (closed / "pginstall").symlink_to(real.parent)
    monkeypatch.setattr(runtime_mod, "pg_bin_dir", lambda: closed / "pginstall" / "bin")
    rt = Runtime(Settings(home=tmp_path / "home"), kafka=False)
    with pytest.raises(TicktapeRuntimeError) as info:
        rt.start()
    message = str(info.value)
    assert "\n" not in message and str(closed) in message and postgres_mod.PG_SYSTEM_USER in message, message
    assert mode(closed) == 0o700 and rt.pids == {}


def _left_by_an_older_ticktape(home: Path) -> None:
    (home / "logs").mkdir(parents=True)
    for path in (home, home / "logs"):
        path.chmod(0o755)
    for path in (home / ".pg.lock", home / ".pg.users", home / "logs" / "postgres.log"):
        path.touch()
        path.chmod(0o644)


@pytest.mark.parametrize("before", ["new", "left by an older ticktape"])
def test_the_home_is_private(tmp_path: Path, before: str) -> None:
    """Files 0600, folders 0700: another user can neither read the logs nor
    hold the lock files (a shared lock on .pg.users kept the server up)."""
    home = tmp_path / "home"
    if before != "new":
        _left_by_an_older_ticktape(home)
    done = ticktape(home, "db", "migrate")
    assert done.returncode == 0, done.stderr
    loose, owners = [], set()
    for path in [home, *home.rglob("*")]:
        st = path.lstat()
        owners.add(st.st_uid)
        want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600 if stat.S_ISREG(st.st_mode) else None
        if want is not None and stat.S_IMODE(st.st_mode) != want:
            loose.append(f"{oct(stat.S_IMODE(st.st_mode))} {path.relative_to(tmp_path)}")
    assert not loose
    assert (home / ".pg.lock").exists() and (home / "logs" / "postgres.log").exists()
    assert owners <= {os.geteuid(), pg_user_uid()}


# --------------------------------------------------------------------------
# the socket directory of a long home


@pytest.fixture
def long_home(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A home whose socket path does not fit in sun_path, and the socket
    directory in /tmp it gets (removed afterwards, whatever it is)."""
    home = tmp_path / ("h" * 80)
    sock = postgres_mod.socket_dir_for(home / "pg")
    assert sock.parent == Path("/tmp"), sock
    assert not os.path.lexists(sock)
    try:
        yield home, sock
    finally:
        if sock.is_symlink() or not sock.exists():
            sock.unlink(missing_ok=True)
        else:
            shutil.rmtree(sock)


def test_the_socket_directory_of_a_long_home_is_private(long_home: tuple[Path, Path]) -> None:
    home, sock = long_home
    done = ticktape(home, "db", "migrate")
    assert done.returncode == 0, done.stderr
    st = sock.lstat()
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid in {os.geteuid(), pg_user_uid()}


@pytest.mark.parametrize("planted", ["open to all", "another user's", "a symlink"])
def test_a_socket_directory_someone_else_made_is_refused(
    long_home: tuple[Path, Path], tmp_path: Path, planted: str
) -> None:
    """The socket directory's name is predictable: a directory made there
    beforehand was used as it was, and through a symlink planted there root
    handed the target to the postgres user."""
    home, sock = long_home
    target = tmp_path / "target"
    target.mkdir()
    target.chmod(0o755)
    if planted == "open to all":
        sock.mkdir()
        sock.chmod(0o777)
    elif planted == "another user's":
        if not ROOT:
            pytest.skip("needs root to make a directory of another user")
        sock.mkdir(mode=0o700)
        os.chown(sock, pwd.getpwnam("nobody").pw_uid, -1)
    else:
        sock.symlink_to(target)
    message = one_line_error(ticktape(home, "db", "migrate"))
    assert str(sock) in message, message
    st = target.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (os.geteuid(), 0o755)
    assert not list(target.iterdir())


# --------------------------------------------------------------------------
# workers: ready files and last words


@pytest.fixture(scope="module")
def own_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A broker and a migrated database of our own (workers killed here would
    stay in the shared broker's consumer group for a session timeout)."""

    home = tmp_path_factory.mktemp("workers") / "home"
    with Runtime(Settings(home=home)) as rt:
        dsn = str(rt.database_url)
        run_coro(lambda: store.migrate(dsn))
        yield {**rt.env(), "TICKTAPE_HOME": str(home)}


def test_a_killed_worker_leaves_no_ready_file(own_services: dict[str, str]) -> None:
    home = Path(own_services["TICKTAPE_HOME"])
    worker = WorkerProcess(own_services, home / "logs" / "worker.log").start()
    try:
        worker.wait_ready(120)
        assert worker.proc is not None
        marker = ready_path(home / "faust", worker.proc.pid)
        assert marker.exists()
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait()
    finally:
        worker.stop()
    assert not marker.exists()


def test_a_worker_removes_ready_files_of_workers_gone(own_services: dict[str, str]) -> None:
    home = Path(own_services["TICKTAPE_HOME"])
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = ready_path(home / "faust", gone.pid)
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.touch()
    with WorkerProcess(own_services, home / "logs" / "worker.log") as worker:
        worker.wait_ready(120)
        assert not stale.exists()


def test_a_dead_workers_last_lines_are_its_own(tmp_path: Path) -> None:
    """Not those of an earlier worker that wrote the same log."""
    log = tmp_path / "logs" / "worker.log"
    log.parent.mkdir()
    log.write_text("an earlier worker's last words\n")
    env = {"TICKTAPE_HOME": str(tmp_path / "home"), "TICKTAPE_KAFKA_PORT": "no-port"}
    worker = WorkerProcess(env, log).start()
    with pytest.raises(TicktapeRuntimeError) as info:
        worker.wait_ready(60)
    lines = str(info.value).splitlines()
    assert lines[0] == "the Faust worker exited with code 1 before it was ready"
    assert lines[-1].strip() == "ticktape: error: TICKTAPE_KAFKA_PORT='no-port' is not a port number"
    assert "earlier worker" not in str(info.value)


def test_a_workers_last_lines_leave_out_terminal_control(tmp_path: Path) -> None:
    """Faust's spinner hides and shows the cursor around a worker's output
    (the bytes are those of a worker.log): the last lines are the text."""
    log = tmp_path / "worker.log"
    log.write_bytes(
        b"[2026-12-07 16:05:01,113] [5632] [ERROR] [^Worker]: Error: ValueError('boom')\n"
        b"Traceback (most recent call last):\n"
        b'  File "agent.py", line 3, in run\n'
        b"ValueError: boom\n"
        b"\x1b[?25l\x1b[32mdone\x1b[0m \xe2\x97\x9c\x08\xe2\x97\xa0\x08ok\n"
        b"\x1b[?25l\x08\x1b[?25h\x1b[?25h"
    )
    assert WorkerProcess({}, log).log_tail(4).splitlines() == [
        "Traceback (most recent call last):",
        '  File "agent.py", line 3, in run',
        "ValueError: boom",
        "done ok",
    ]
