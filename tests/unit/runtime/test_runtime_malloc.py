"""keep_freed_memory: a process's batch-sized blocks come from (and go back
to) its heap instead of a fresh mapping each."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

_LIBC, _VERSION = platform.libc_ver()
pytestmark = pytest.mark.skipif(
    sys.platform != "linux"
    or _LIBC != "glibc"
    or tuple(int(x) for x in _VERSION.split(".")[:2]) < (2, 33),  # (mallinfo2)
    reason="glibc's malloc only (2.33 or later: mallinfo2)",
)

# How many blocks glibc maps for an 8 MB array (one batch of 100,000 ticks is
# about that), in a fresh interpreter: as it starts, after
# keep_freed_memory(), after the `ticktape` command ran.
PROBE = textwrap.dedent(
    """
    import ctypes, sys
    import numpy as np
    from ticktape.runtime.processes import keep_freed_memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    elif sys.argv[1] == "cli":  # what the `ticktape` command sets up, whichever subcommand
        from ticktape.cli.main import main
        main(["--help"])
    before = libc.mallinfo2().hblks
    block = np.ones(1_000_000)
    print(libc.mallinfo2().hblks - before)
    """
)


def mapped_blocks(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.splitlines()[-1])


def test_batch_sized_blocks_come_from_the_heap() -> None:
    assert mapped_blocks("default") == 1  # (what the setting changes)
    assert mapped_blocks("keep") == 0


def test_the_ticktape_command_sets_it() -> None:
    assert mapped_blocks("cli") == 0
