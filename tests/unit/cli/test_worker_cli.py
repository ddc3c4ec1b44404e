"""``ticktape worker``: its stages from the option or TICKTAPE_STAGES, refused before anything starts."""

from __future__ import annotations

import pytest


def test_stages_from_the_environment_are_checked_naming_the_variable(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKTAPE_STAGES", "replay,nope")
    res = cli("worker")
    assert res.exit_code == 1
    assert res.stderr.startswith("ticktape: error: TICKTAPE_STAGES: stages: unknown stage ['nope']")
    res = cli("worker", "--stages", "indicators")  # the option wins, and names no variable
    assert res.exit_code == 1
    assert res.stderr.startswith("ticktape: error: stages: indicators, strategy and execution")
