"""Session fixtures shared by all tests: the runtime (broker + database) and helpers.

Fixtures
--------
runtime (session)
    A started :class:`ticktape.runtime.embedded.Runtime` whose TICKTAPE_HOME is a
    fresh temporary folder (so the embedded PostgreSQL is new). Honours
    TICKTAPE_KAFKA_URL / TICKTAPE_DATABASE_URL when set (CI against real
    services); TICKTAPE_TEST_KAFKA_URL, when set, is the broker the tests
    use whatever TICKTAPE_KAFKA_URL says. Stopped at the end of the session.
kafka_url (session)
    Bootstrap servers of that broker (``"127.0.0.1:PORT"``).
db_url (session)
    DSN of the ``ticktape`` database, migrated.
fresh_db (function)
    DSN of a new, empty database on the same server, dropped afterwards.
cli (function)
    ``cli("data", "import", FILE, ...)`` runs the ``ticktape`` entry point
    (:func:`ticktape.cli.main.main`, as the installed command does) in this
    process and returns its ``exit_code``, ``stdout`` and ``stderr``.
shared_data (function)
    ``shared_data("ticks/FILE")`` is the path of a reference file under
    ../shared/data (next to the repository); the test is skipped, naming the
    path, when the file is absent (the folder is only on developers' and CI
    machines).
documented_metrics (session)
    The metric names of docs/metrics.md: ``{"performance": ..., "stored": ...}``,
    the first column of the table of ``performance``'s keys and of the table
    of what a run stores besides them.
poll_until, apoll_until (function)
    ``poll_until(fn, timeout=10, interval=0.05, message=None)`` calls ``fn``
    until it returns a truthy value and returns that value, or fails the test
    at the deadline. ``apoll_until`` is the async form (``fn`` may be sync or
    return an awaitable).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

# Test the installed package only. `python -m pytest` from the repository root
# puts the root on sys.path, where agents/, tables/ and dashboards/ would
# shadow real top-level packages (PyTables is `import tables`): drop it.
_REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _REPO]

T = TypeVar("T")


def _poll_until(
    fn: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, message: str | None = None
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(message or f"condition {getattr(fn, '__name__', fn)!r} not met within {timeout}s")
        time.sleep(interval)


async def _apoll_until(
    fn: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    interval: float = 0.05,
    message: str | None = None,
) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = fn()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if loop.time() >= deadline:
            pytest.fail(message or f"condition {getattr(fn, '__name__', fn)!r} not met within {timeout}s")
        await asyncio.sleep(interval)


#: The reference data files (real captures and samples), next to the repository.
SHARED_DATA = _REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Callable[[str], Path]:
    """The path of a file under ../shared/data, or skip the test naming it."""

    def path(name: str) -> Path:
        found = SHARED_DATA / name
        if not found.exists():
            pytest.skip(
                f"reference data {found} is absent (../shared/data is only on developers' and CI machines)"
            )
        return found

    return path


@pytest.fixture(scope="session")
def documented_metrics() -> dict[str, set[str]]:
    """The names in the first column of docs/metrics.md's two tables of metric keys."""
    out: dict[str, set[str]] = {}
    section = None
    for line in (_REPO / "docs" / "metrics.md").read_text().splitlines():
        if line.startswith("## "):
            section = (
                "performance"
                if line.startswith("## Performance:")
                else "stored"
                if line.startswith("## What a run stores")
                else None
            )
        elif section and line.startswith("| `"):
            out.setdefault(section, set()).update(re.findall(r"`(\w+)`", line.split("|")[1]))
    return out


@pytest.fixture
def poll_until() -> Callable[..., Any]:
    """Poll a condition with a deadline (sync tests)."""
    return _poll_until


@pytest.fixture
def apoll_until() -> Callable[..., Any]:
    """Poll a condition with a deadline (async tests)."""
    return _apoll_until


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from ticktape.config import Settings, normalize_kafka_url
    from ticktape.runtime.embedded import Runtime

    settings = Settings.from_env().with_home(tmp_path_factory.mktemp("ticktape-home"))
    if url := os.environ.get("TICKTAPE_TEST_KAFKA_URL"):  # any Kafka, for the fault tests
        settings = dataclasses.replace(settings, kafka_url=normalize_kafka_url(url))
    rt = Runtime(settings)
    rt.start()
    try:
        yield rt
    finally:
        rt.stop()


@pytest.fixture(scope="session")
def kafka_url(runtime: Any) -> str:
    return str(runtime.kafka_url)


@pytest.fixture(scope="session")
def db_url(runtime: Any) -> str:
    from ticktape import store
    from ticktape.runtime.processes import run_coro

    dsn = str(runtime.database_url)
    run_coro(lambda: store.migrate(dsn))
    return dsn


@pytest.fixture
async def conn(db_url: str) -> Any:
    """A connection to the test store, closed after the test."""
    from ticktape import store  # (imported once the path is fixed, as above)

    c = await store.connect(db_url)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
def fresh_db(runtime: Any) -> Iterator[str]:
    """A new empty database (not migrated); dropped after the test."""
    import asyncpg

    from ticktape.config import with_database
    from ticktape.runtime.processes import run_coro

    admin = with_database(str(runtime.database_url), "postgres")
    name = f"test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_coro(create)
    try:
        yield with_database(str(runtime.database_url), name)
    finally:
        run_coro(drop)


@dataclasses.dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout then stderr (what a terminal shows)."""
        return self.stdout + self.stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run the ``ticktape`` entry point in this process; its exit code and output."""
    from ticktape.cli.main import main

    def run(*args: Any) -> CliResult:
        capsys.readouterr()  # (what came before is not this command's)
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
