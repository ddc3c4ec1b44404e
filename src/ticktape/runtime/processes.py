"""Child processes that never outlive ticktape, and the small process helpers.

Children die with their parent: each is spawned with ``PR_SET_PDEATHSIG``
(Linux) from a long-lived spawner thread, in its own session (so a terminal's
Ctrl-C reaches only the parent, which then stops them in order), and
:func:`terminate_process` escalates from a polite signal to SIGKILL after a
grace period. Also: glibc's malloc tuned to keep freed memory for the next
batch, free ports, and a log's last lines as plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import psutil

from ticktape.errors import TicktapeRuntimeError

log = logging.getLogger(__name__)
T = TypeVar("T")


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
        return value


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
    return value


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


def reason(exc: BaseException) -> str:
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


def failure_with_log(message: str, log_path: Path, offset: int = 0) -> TicktapeRuntimeError:
    text = tail(log_path, offset=offset)
    if text:
        indented = "\n".join("    " + line for line in text.splitlines())
        message = f"{message}\n  last lines of {log_path}:\n{indented}"
    return TicktapeRuntimeError(message)
