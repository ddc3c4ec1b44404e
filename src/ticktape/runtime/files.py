"""Files under ``TICKTAPE_HOME``: ours alone (folders 0700, files 0600), and the lock files."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ticktape.errors import TicktapeRuntimeError

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


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
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
