"""The image's build steps without a Docker engine: the Dockerfile's RUN lines
call docker/steps.sh, and so does this test (tests/unit/test_compose.py
checks the Dockerfile calls exactly these three)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
STEPS = ROOT / "docker" / "steps.sh"


def step(*args: str | Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "TICKTAPE_"))}
    done = subprocess.run(
        ["sh", str(STEPS), *map(str, args)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, f"steps.sh {args[0]}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_wheel_installs_in_a_clean_venv_and_runs_a_backtest(tmp_path: Path) -> None:
    step("wheel", ROOT, tmp_path / "dist")
    (wheel,) = (tmp_path / "dist").glob("ticktape-*.whl")
    step("install", tmp_path / "dist", tmp_path / "venv")
    # the venv's own ticktape, with the compiled module inside the package
    native = list((tmp_path / "venv").glob("lib/python*/site-packages/ticktape/_native*.so"))
    assert native, "the wheel has no compiled module"
    out = step("check", tmp_path / "venv")
    assert "20,000 ticks/bars used" in out
    assert wheel.stat().st_size > 0
