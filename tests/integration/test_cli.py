"""Bad input to the CLI: one clear line naming what and where, exit 1,
nothing left running."""

import os
import socket
import subprocess
import sys

import psutil
import pytest

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
    line = _error_line(_ticktape(["worker"], tmp_path, TICKTAPE_KAFKA_URL="127.0.0.1:1"))
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
