"""``ticktape strategy from-text`` and ``ticktape strategy validate`` through the ``ticktape`` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


BARS = "Date,Open,High,Low,Close\n" + "".join(
    f"2020-01-{d:02d},{100 + d},{101 + d},{99 + d},{100.5 + d}\n" for d in range(1, 29)
)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"strategy": "ma_crossover", "params": {"fast": 3, "slow": 9}, "engine": {"fee_bps": 2}}, None),
        ({"strategy": "ma_crossover", "engine": {"tick_size": 0.5}}, None),
        ({"strategy": "ma_crossover", "engine": {"fees": 2}}, "engine.fees: unknown engine setting"),
        ({"strategy": "ma_crossover", "engine": {"tick_size": "x"}}, "engine.tick_size: must be a number"),
        ({"strategy": "ma_crossover", "engine": 3}, "engine: must be an object"),
        ({"strategy": "ma_crossover", "symbols": ["A"]}, "symbols: unknown key of a strategy spec"),
        ({"strategy": "ma_crossover", "params": {"fast": "x"}}, "params.fast: must be an integer"),
        ([1, 2], "spec: must be an object"),
    ],
)
def test_validate_and_backtest_read_a_spec_file_alike(cli, tmp_path: Path, spec, says) -> None:
    """One reader: what ``strategy validate`` accepts ``backtest --spec`` runs,
    and both refuse a bad file with the same line (an ``engine`` key was
    refused by validate and accepted by backtest)."""
    path, data = tmp_path / "s.json", tmp_path / "bars.csv"
    path.write_text(json.dumps(spec))
    data.write_text(BARS)
    checked = cli("strategy", "validate", path)
    ran = cli("backtest", "--data", data, "--spec", path)
    if says is None:
        assert checked.exit_code == 0 and "a valid 'ma_crossover' spec" in checked.stdout, checked.output
        assert ran.exit_code == 0, ran.output
        return
    assert checked.exit_code == ran.exit_code == 1
    assert checked.stderr == ran.stderr
    assert checked.stderr.startswith(f"ticktape: error: {path}: {says}"), checked.stderr
