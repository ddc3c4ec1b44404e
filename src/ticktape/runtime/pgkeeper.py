"""Keep the embedded PostgreSQL running while a ticktape process uses it.

``ticktape.runtime`` starts this process (``python -m ticktape.runtime.pgkeeper
SPEC``) instead of starting the server itself, in a session of its own and
not tied to the command that started it: the server outlives that command
as long as another ticktape process uses it (a dashboard open while a run
goes on in another terminal; either may be closed first).

Every process using the server holds a shared ``flock`` on the users file.
When none is left (they stopped, or died: the kernel drops a dead
process's lock) the keeper stops the server, so a ``kill -9`` of the last
user leaves no server behind. It decides, and stops the server, with the
start lock held and the users file locked exclusively: a process attaching
holds the start lock until it has its shared lock, so the server is never
stopped under a process that just found it running. The last user to stop
normally does not wait for the keeper: it stops the server itself
(``Runtime.stop``) and the keeper exits with it. Nothing the keeper starts
inherits its lock files (``close_fds``), nor does the keeper inherit those
of the process that starts it.

The server is the keeper's child and gets SIGQUIT (immediate shutdown) if
the keeper dies. SIGTERM or SIGINT make the keeper stop the server (fast
shutdown, then immediate shutdown, then SIGKILL) and exit. The keeper exits
with the server's exit code when the server stops by itself (a failed
start: ``Runtime`` then shows the server's log).

SPEC is JSON: ``argv``, ``env``, ``cwd``, ``uid``/``gid`` (None: as us),
``log`` (appended to), ``users`` and ``lock`` (the two lock files),
``poll`` (seconds between checks) and ``grace`` (seconds per shutdown step).
Standard library only: it runs as long as the server does.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # preexec_fn of the server
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)


def _claim(users: Any, lock: Any) -> bool:
    """True when nobody uses the server: then the start lock and the users
    file are both locked exclusively, and stay so until we exit (a process
    attaching meanwhile waits, then finds the server gone and starts one)."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # someone is starting, attaching or stopping: ask again later
    try:
        fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fcntl.flock(lock, fcntl.LOCK_UN)
        return False
    return True


def _stop(server: subprocess.Popen[bytes], grace: float) -> None:
    for sig in (signal.SIGINT, signal.SIGQUIT):  # fast shutdown, then immediate
        if server.poll() is not None:
            return
        server.send_signal(sig)
        try:
            server.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass
    server.kill()
    server.wait()


def main(spec: dict[str, Any]) -> int:
    os.umask(0o077)  # (what it opens under TICKTAPE_HOME is ours alone, as Runtime's files are)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    run_as: dict[str, Any] = {}
    if spec.get("uid") is not None:
        run_as = {"user": spec["uid"], "group": spec["gid"], "extra_groups": []}
    with open(spec["log"], "ab") as log, open(spec["users"], "a") as users, open(spec["lock"], "a") as lock:
        server = subprocess.Popen(
            spec["argv"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=spec["env"],
            cwd=spec["cwd"],
            close_fds=True,
            # (runs after the uid switch, which would clear it)
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
            **run_as,
        )
        while True:
            if server.poll() is not None:
                code = server.returncode
                return code if code >= 0 else 128 - code
            if stopping or _claim(users, lock):
                _stop(server, float(spec["grace"]))
                return 0
            time.sleep(float(spec["poll"]))


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
