"""``ticktape strategy from-text`` and ``ticktape strategy validate`` through the ``ticktape`` entry point."""

from __future__ import annotations

import json
from pathlib import Path

from ticktape.strategy import catalog
from ticktape.strategy.fromtext import parse

PITCH = "buy when the 50 period moving average crosses above the 200 and sell when RSI is above 70"


def test_from_text_prints_the_spec_and_writes_it(cli, tmp_path: Path) -> None:
    out = tmp_path / "spec.json"
    result = cli("strategy", *["from-text", PITCH, "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == parse(PITCH)
    assert json.loads(out.read_text()) == printed
    assert result.stdout.startswith('{\n  "strategy": "rules"')  # indented JSON
    hint = " ".join(result.stderr.split())
    assert f"ticktape backtest --spec {out} --data" in hint


def test_from_text_without_out_only_prints(cli, tmp_path: Path) -> None:
    result = cli("strategy", *["from-text", "20 day breakout"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == catalog.validate_spec({"strategy": "breakout", "params": {"n": 20}})
    assert "--out spec.json" in result.stderr


def test_from_text_not_understood_is_one_error_line(cli) -> None:
    result = cli("strategy", *["from-text", "buy when the moon is full and sell when RSI > 70"])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('ticktape: error: could not understand: "moon"')


def test_from_text_llm_without_configuration(cli, monkeypatch) -> None:
    monkeypatch.delenv("TICKTAPE_LLM_URL", raising=False)
    result = cli("strategy", *["from-text", "buy when the moon is full", "--llm"])
    assert result.exit_code == 1
    assert result.stderr.startswith("ticktape: error: the LLM fallback needs TICKTAPE_LLM_URL")


def test_from_text_unwritable_out(cli, tmp_path: Path) -> None:
    result = cli("strategy", "from-text", "20 day breakout", "--out", str(tmp_path / "no" / "x.json"))
    assert result.exit_code == 1
    assert "cannot write the spec" in result.stderr


def test_validate_accepts_a_good_file_and_names_the_defaults(cli, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"strategy": "rsi_reversion", "params": {"lower": 25, "upper": 75}}))
    result = cli("strategy", *["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: a valid 'rsi_reversion' spec; defaults used for exit, fraction" in result.stdout


def test_validate_round_trips_from_text(cli, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    assert cli("strategy", *["from-text", PITCH, "-o", str(path)]).exit_code == 0
    result = cli("strategy", *["validate", str(path)])
    assert result.exit_code == 0
    assert "a valid 'rules' spec" in result.stdout
    assert "defaults used" not in result.stdout


def test_validate_names_the_bad_field(cli, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    bad = {"op": "<", "left": {"ind": "sma", "n": 0}, "right": 3}
    path.write_text(json.dumps({"strategy": "rules", "params": {"entry": {"all": [bad]}, "exit": bad}}))
    result = cli("strategy", *["validate", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"ticktape: error: {path}: params.entry.all[0].left.n: must be an integer >= 1, got 0"
    )


def test_validate_bad_json_and_missing_file(cli, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{not json")
    result = cli("strategy", *["validate", str(path)])
    assert result.exit_code == 1
    assert "not valid JSON" in result.stderr
    result = cli("strategy", *["validate", str(tmp_path / "missing.json")])
    assert result.exit_code == 1
    assert "cannot read the spec" in result.stderr
