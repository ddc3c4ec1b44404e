"""``ticktape report ID -o FILE``: a stored run's and a sweep's report written
whole; bad input (an unknown or malformed id, an output in a missing or
unusable directory) is one line, exit 1, and no file."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

TICKTAPE = Path(sys.executable).with_name("ticktape")


@pytest.fixture
def store_env(db_url, monkeypatch):
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", db_url)
    return {**os.environ, "TICKTAPE_DATABASE_URL": db_url}


def test_a_run_and_a_sweep_report(cli, stored, store_env, tmp_path):
    out = tmp_path / "run.html"
    res = cli("report", stored["pair"], "-o", out)
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and f"Run {stored['pair'][:8]}" in page
    assert f"{out}: Run {stored['pair'][:8]}" in res.stdout and "charts" in res.stdout
    res = cli("report", stored["sweep"], "--output", tmp_path / "sweep.html", "--metric", "total_return")
    assert res.exit_code == 0, res.output
    assert "Total return by fast and slow" in (tmp_path / "sweep.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.html", "sweep.html"]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["00000000-0000-0000-0000-000000000000"],
            "ID: no run, sweep or study 00000000-0000-0000-0000-000000000000 in this store",
        ),
        (["not-an-id"], "ID: 'not-an-id' is not a run, sweep or study id (a UUID)"),
        (["SWEEP", "--metric", "sharpness"], "--metric: the sets of sweep SWEEP have no metric 'sharpness'"),
    ],
)
def test_bad_ids_are_one_line_and_write_nothing(cli, stored, store_env, tmp_path, args, line):
    args = [a.replace("SWEEP", stored["sweep"]) for a in args]
    line = line.replace("SWEEP", stored["sweep"])
    res = cli("report", *args, "-o", tmp_path / "r.html")
    assert res.exit_code == 1
    assert res.stderr.startswith(f"ticktape: error: {line}") and res.stderr.count("\n") == 1, res.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_outputs_are_one_line_before_the_store_is_opened(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("TICKTAPE_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")  # (never reached)
    (tmp_path / "afile").write_text("x")
    rid = str(uuid.uuid4())
    cases = {
        tmp_path
        / "missing"
        / "r.html": f"-o {tmp_path / 'missing' / 'r.html'}: the directory {tmp_path / 'missing'} does not exist",
        tmp_path
        / "afile"
        / "r.html": f"-o {tmp_path / 'afile' / 'r.html'}: the directory {tmp_path / 'afile'} is not a directory",
        tmp_path: f"-o {tmp_path}: is a directory; give a file name",
    }
    for out, line in cases.items():
        res = cli("report", rid, "-o", out)
        assert res.exit_code == 1, out
        assert res.stderr.startswith(f"ticktape: error: {line}") and res.stderr.count("\n") == 1, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_the_installed_command_refuses_bad_input_in_one_line(stored, store_env, tmp_path):
    cases = [
        (
            [str(uuid.UUID(int=1)), "-o", str(tmp_path / "r.html")],
            f"ID: no run, sweep or study {uuid.UUID(int=1)} in this store",
        ),
        (
            [stored["pair"], "-o", str(tmp_path / "no" / "r.html")],
            f"the directory {tmp_path / 'no'} does not exist",
        ),
        (["1234", "-o", str(tmp_path / "r.html")], "ID: '1234' is not a run, sweep or study id (a UUID)"),
    ]
    for args, line in cases:
        done = subprocess.run(
            [TICKTAPE, "report", *args],
            env=store_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("ticktape: error: ") and line in done.stderr, done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
