"""Bad input to the CLI: one clear line naming what and where, exit 1,
nothing left running."""

import asyncio
import os
import socket
import subprocess
import sys
import uuid

import psutil
import pytest

from ticktape import store

pytestmark = pytest.mark.timeout(120)


def _ticktape(args, home, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    full.update({"TICKTAPE_HOME": str(home), "COLUMNS": "80", **env})
    return subprocess.run(
        [sys.executable, "-m", "ticktape", *args],
        check=False,
        env=full,
        capture_output=True,
        text=True,
        timeout=110,
    )


def _error_line(proc):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ticktape: error: ")
    return lines[0]


def _nothing_left(home):
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        assert str(home) not in cmd, f"left running: {cmd}"


def test_missing_spec_file(tmp_path):
    line = _error_line(_ticktape(["run", str(tmp_path / "nope.json")], tmp_path))
    assert "nope.json" in line and "No such file" in line


def test_bad_spec_names_the_field(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text('{"strategy": "sma_crossover", "symbols": ["A"], "params": {"fast": "x"}}')
    line = _error_line(_ticktape(["run", str(spec)], tmp_path))
    assert "params.fast" in line


def test_unreachable_database_url(tmp_path):
    url = "postgresql://u@127.0.0.1:1/ticktape"
    line = _error_line(_ticktape(["db", "migrate"], tmp_path, TICKTAPE_DATABASE_URL=url))
    assert "127.0.0.1:1" in line
    _nothing_left(tmp_path)


def test_unreachable_broker_url_stops_the_embedded_database(tmp_path):
    # (a command; `ticktape worker` is a service: it waits for the broker, tests/e2e/test_worker_service.py)
    spec = tmp_path / "spec.json"
    spec.write_text('{"strategy": "sma_crossover", "symbols": ["A"]}')
    line = _error_line(_ticktape(["run", str(spec)], tmp_path, TICKTAPE_KAFKA_URL="127.0.0.1:1"))
    assert "127.0.0.1:1" in line
    _nothing_left(tmp_path)


def test_broker_port_taken(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        line = _error_line(_ticktape(["worker"], tmp_path, TICKTAPE_KAFKA_PORT=str(port)))
    assert str(port) in line
    _nothing_left(tmp_path)


def test_dashboard_port_taken(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        line = _error_line(_ticktape(["dashboard", "--port", str(port)], tmp_path))
    assert str(port) in line
    _nothing_left(tmp_path)


def test_runs_commands_on_a_fresh_store_name_the_run(tmp_path):
    line = _error_line(_ticktape(["runs", "pause", "00000000-0000-0000-0000-000000000000"], tmp_path))
    assert "no run 00000000-0000-0000-0000-000000000000" in line
    line = _error_line(_ticktape(["runs", "show", "nope"], tmp_path))
    assert "'nope' is not a run id" in line
    _nothing_left(tmp_path)


def test_runs_show_prints_each_stages_lag(db_url, tmp_path):
    run_id, (a, b) = str(uuid.uuid4()), (f"SH{uuid.uuid4().hex[:6]}" for _ in range(2))

    async def seed() -> None:
        conn = await store.connect(db_url)
        try:
            await store.create_run(
                conn, run_id, "sma_crossover", {}, {}, [a, b], None, None, status="running"
            )
            await store.update_progress(conn, run_id, a, 100, None, hot_lag_s=0.25, sink_lag_s=1.5)
            await store.update_progress(conn, run_id, a, 200, None)  # a message without the stamps keeps them
            await store.update_progress(conn, run_id, b, 50, None)
        finally:
            await conn.close()

    asyncio.run(seed())
    proc = _ticktape(["runs", "show", run_id], tmp_path, TICKTAPE_DATABASE_URL=db_url, COLUMNS="80")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(map(len, lines)) <= 80  # read whole in an 80-column terminal
    header = next(line for line in lines if a in line)
    order = [c.strip() for c in header.split("┃")[2:-1]]  # a column per symbol
    assert sorted(order) == sorted([a, b])
    cells = (line.strip("│ ").split("│") for line in lines)
    row = {
        c[0].strip(): dict(zip(order, (x.strip() for x in c[1:]), strict=True)) for c in cells if len(c) == 3
    }
    assert row["hot path lag s"] == {a: "0.250", b: "-"}  # b: nothing stored yet
    assert row["sink lag s"] == {a: "1.500", b: "-"} and row["processed"][a] == "200"


def test_db_migrate_gives_the_reader_its_password(db_url, tmp_path):
    # compose's migrate service: the app then logs in as ticktape_reader with it
    async def secret() -> str | None:
        conn = await store.connect(db_url)
        try:
            return await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = 'ticktape_reader'")
        finally:
            await conn.close()

    proc = _ticktape(
        ["db", "migrate"], tmp_path, TICKTAPE_DATABASE_URL=db_url, TICKTAPE_READER_PASSWORD="r3ad"
    )
    assert proc.returncode == 0, proc.stderr
    assert "ticktape_reader may log in" in proc.stdout and "r3ad" not in proc.stdout + proc.stderr
    stored = asyncio.run(secret())
    assert stored and stored.startswith("SCRAM-SHA-256$")  # (hashed by the server, never the text)


def test_runs_list_keeps_run_ids_whole_in_80_columns(db_url, tmp_path):
    ids = [str(uuid.uuid4()) for _ in range(2)]

    async def seed() -> None:
        conn = await store.connect(db_url)
        try:
            for run_id in ids:
                await store.create_run(conn, run_id, "sma_crossover", {}, {}, ["LONGSYMBOL-ONE"], None, None)
        finally:
            await conn.close()

    asyncio.run(seed())
    for columns in ("80", "200"):
        proc = _ticktape(["runs", "list"], tmp_path, TICKTAPE_DATABASE_URL=db_url, COLUMNS=columns)
        assert proc.returncode == 0, proc.stderr
        assert all(run_id in proc.stdout for run_id in ids)  # (copyable)
        assert max(map(len, proc.stdout.splitlines())) <= int(columns)
    assert "wall s" in proc.stdout  # a wide terminal shows every column
