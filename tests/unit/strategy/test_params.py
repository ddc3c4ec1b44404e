"""Parameters declared once, on the config: validation, coercion and building agree everywhere.

The property: over every template and values at and around every declared
bound (plus wrong types, strings that coerce, NaN and infinities),
``validate_spec`` accepts a spec exactly when ``build`` does, and exactly when
``ticktape.backtest`` runs it; a refusal is one SpecError naming the field,
and whatever is accepted runs without any other error. The bad inputs of the
hardening issue also go through the installed ``ticktape`` command.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ticktape
from ticktape.compute import indicators
from ticktape.errors import SpecError
from ticktape.strategy import REGISTRY, build, catalog, rules
from ticktape.strategy.params import MAX_WINDOW, Param, Params, declared, param, to_dict
from ticktape.strategy.templates import Common, MarketMakerConfig
from ticktape.testing import market, with_trades

RSI_ABOVE = {"op": ">", "left": {"ind": "rsi"}, "right": 70}
RSI_BELOW = {"op": "<", "left": {"ind": "rsi", "n": 5}, "right": 30}
CROSS = {"op": "crosses_above", "left": {"price": "close"}, "right": {"ind": "sma", "n": 5}}
BAD_CONDS = [
    {"op": "<", "left": {"ind": "sma", "n": 0}, "right": 3},
    {"op": "<", "left": {"ind": "sma", "n": MAX_WINDOW + 1}, "right": 3},
    {"op": "=", "left": {"ind": "rsi"}, "right": 3},
    {"op": "<", "left": {"ind": "rsi"}, "right": math.inf},
    "rsi > 70",
    [RSI_ABOVE],
]
WRONG = [None, True, False, "abc", "", [], {}, [1], math.nan, math.inf, -math.inf, "nan", "inf", "-Infinity"]
HUGE = [10**12, -(10**12), 10**30, 10**400, 1e300, -1e300, "1e400"]


def _number_values(p: Param) -> list[Any]:
    out: list[Any] = [0, 1, -1, 0.5, "1", " 2 ", "2.0", "1e1"]
    if not p.required:
        out += [p.default, str(p.default)]
    for b in (p.ge, p.gt, p.le, p.lt):
        if b is None:
            continue
        if p.kind == "int":
            out += [int(b) - 1, int(b), int(b) + 1, str(int(b) - 1), str(int(b) + 1), float(b)]
        else:
            out += [np.nextafter(b, -math.inf), float(b), np.nextafter(b, math.inf), repr(float(b)), int(b)]
    return out


def _inside(p: Param) -> list[Any]:
    """Values inside the bounds: the default, the inclusive bounds, just inside the exclusive ones."""
    out: list[Any] = [] if p.required else [p.default, str(p.default)]
    out += [b for b in (p.ge, p.le) if b is not None]
    step = 1 if p.kind == "int" else None
    if p.gt is not None:
        out.append(p.gt + 1 if step else np.nextafter(p.gt, math.inf))
    if p.lt is not None:
        out.append(p.lt - 1 if step else np.nextafter(p.lt, -math.inf))
    return out or [3]


def _values(p: Param) -> st.SearchStrategy[Any]:
    if p.kind in ("int", "float"):
        extra = (
            st.integers(-(10**8), 10**8)
            if p.kind == "int"
            else st.floats(allow_nan=True, allow_infinity=True)
        )
        anything = st.one_of(st.sampled_from(_number_values(p) + WRONG + HUGE), extra)
        return st.one_of(st.sampled_from(_inside(p)), anything)
    if p.kind == "choice":
        return st.sampled_from([*p.choices, *(c.upper() for c in p.choices), "nope", 1, None])
    if p.kind == "bool":
        return st.sampled_from([True, False, "true", "False", " TRUE ", "yes", 1, 0, None, "1"])
    if p.kind == "symbols":
        return st.sampled_from(
            [["A", "B"], ("A", "B"), "A,B", [" A", "B "], ["A", "A"], ["A"], [1, 2], "A", None, ["A", ""]]
        )
    assert p.kind == "condition", p
    return st.sampled_from([RSI_ABOVE, RSI_BELOW, CROSS, {"all": [RSI_ABOVE, CROSS]}, None, *BAD_CONDS])


@st.composite
def specs(draw: st.DrawFn, names: tuple[str, ...] = catalog.TEMPLATES) -> dict[str, Any]:
    name = draw(st.sampled_from(names))
    table = catalog.params_of(name)
    keys = draw(st.lists(st.sampled_from(list(table)), unique=True, max_size=4))
    params = {k: draw(_values(table[k])) for k in keys}
    if name == "pairs" and "symbols" not in params and draw(st.booleans()):
        params["symbols"] = ["A", "B"]
    if name == "rules" and "entry" not in params and draw(st.booleans()):
        params |= {"entry": CROSS, "exit": RSI_ABOVE}
    if draw(st.integers(0, 20)) == 0:
        params["no_such_param"] = 1
    return {"strategy": name, "params": params}


def _outcome(fn, *args) -> tuple[bool, Any]:
    try:
        return True, fn(*args)
    except SpecError as exc:
        return False, str(exc)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_validate_accepts_exactly_what_build_accepts(spec: dict[str, Any]) -> None:
    ok_v, validated = _outcome(catalog.validate_spec, spec)
    ok_b, built = _outcome(build, spec["strategy"], spec["params"])
    assert ok_v == ok_b, (validated, built)
    if not ok_v:
        assert validated == built  # the same refusal, one line naming the field
        assert validated.startswith("params") and "\n" not in validated
        return
    assert validated == {"strategy": spec["strategy"], "params": to_dict(built.config)}
    assert catalog.validate_spec(validated) == validated  # normalized: a fixed point
    assert json.loads(json.dumps(validated, allow_nan=False)) == validated  # JSON as is, finite
    again = build(spec["strategy"], validated["params"])
    assert again.config == built.config


def _ticks(seed: int) -> np.ndarray:
    """400 ticks, every third one also a trade of 5 at the ask (VWAP needs volume)."""
    return with_trades(market(400, seed=seed, trade_every=0), at="ask", size=5.0)


TICKS = _ticks(5)
PAIR = {"A": TICKS, "B": _ticks(6)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_backtest_runs_exactly_what_validate_accepts(spec: dict[str, Any]) -> None:
    name, params = spec["strategy"], dict(spec["params"])
    if name == "market_maker":
        # its quotes are on its own tick_size grid, which must be the data's (0.01): the engine
        # refuses other prices when the run starts (a fact of the data, not of the spec)
        params.pop("tick_size", None)
    ok_v, validated = _outcome(catalog.validate_spec, {"strategy": name, "params": params})
    if ok_v:
        size = validated["params"]["size"]
        # the engine's grids are not the spec's: its orders are whole lots (lot_size 1 here;
        # targets are rounded to lots, the market maker's limit orders are refused otherwise)
        assume(name != "market_maker" or float(size).is_integer())
        # pairs' B leg is beta * size * price_A / price_B units: a size near 2**53 can put it
        # out of the engine's range, which depends on the prices
        assume(name != "pairs" or size <= 1e12)
    data = PAIR if name == "pairs" else TICKS
    ok_r, ran = _outcome(lambda: ticktape.backtest(data, name, params, tick_size=0.01))
    assert ok_v == ok_r, (validated, ran)
    if not ok_r:
        assert ran == validated


def test_every_template_declares_each_field_once_with_help() -> None:
    for name in catalog.TEMPLATES:
        cls = REGISTRY[name]
        assert issubclass(cls.Config, Common), name
        for key, p in catalog.params_of(name).items():
            assert p.help, f"{name}.{key} has no help"
            assert p.kind in ("int", "float", "bool", "choice", "symbols", "condition"), (name, key, p.kind)
            if p.kind == "int" and key in ("n", "fast", "slow", "exit_n", "z_n"):
                assert p.le == MAX_WINDOW, f"{name}.{key}: a window without the cap"


def test_common_params_are_declared_on_common_only() -> None:
    common = declared(Common)
    assert list(common) == ["long_only", "size", "sizing", "fraction", "stop_loss", "take_profit"]
    for name in catalog.TEMPLATES:
        table = catalog.params_of(name)
        for key, p in common.items():
            assert table[key] is p or table[key] == p, (name, key)


def test_spread_ticks_bound_is_the_engines() -> None:
    """spread_ticks >= 1 keeps the bid below the ask (0 would quote both at the mid)."""
    p = catalog.params_of("market_maker")["spread_ticks"]
    assert p.ge == 1
    with pytest.raises(SpecError, match=r"params\.spread_ticks: must be an integer >= 1, got 0"):
        MarketMakerConfig(spread_ticks=0)


def test_market_maker_skips_a_quote_it_cannot_price() -> None:
    """A half-spread deeper than the price: no bid (it would be <= 0), the ask still quotes."""
    r = ticktape.backtest(TICKS, "market_maker", {"spread_ticks": 20_000, "size": 1, "max_inventory": 10})
    assert set(r.orders["side"]) <= {-1}
    assert len(r.orders) > 0


def test_strategy_params_lists_what_is_declared(cli) -> None:
    res = cli("strategy", "params", "ma_crossover", "--json")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    assert [p["name"] for p in got] == [*catalog.own_params("ma_crossover"), *catalog.COMMON]
    fast = next(p for p in got if p["name"] == "fast")
    assert fast == {
        "name": "fast",
        "type": "int",
        "required": False,
        "default": 50,
        "ge": 1,
        "le": MAX_WINDOW,
        "help": catalog.params_of("ma_crossover")["fast"].help,
    }
    assert next(p for p in got if p["name"] == "ma")["choices"] == ["sma", "ema", "wma"]
    sym = json.loads(cli("strategy", "params", "pairs", "--json").stdout)[0]
    assert sym["name"] == "symbols" and sym["required"] and "default" not in sym


def test_strategy_params_table_and_unknown_name(cli) -> None:
    res = cli("strategy", "params", "rsi_reversion")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    row = next(line for line in lines if line.split("│")[1:2] and line.split("│")[1].strip() == "upper")
    assert "70" in row and ">= 0 and <= 100" in row
    res = cli("strategy", "params", "nope")
    assert res.exit_code == 1
    assert res.stderr.startswith("ticktape: error: strategy: unknown strategy 'nope'; known: ")


def test_param_help_of_backtest_and_sweep_is_derived(cli) -> None:
    for command in ("backtest", "sweep"):
        res = cli(command, "--help")
        text = " ".join(res.stdout.replace("│", " ").split())
        for name in ("breakout", "market_maker"):
            own = ", ".join(catalog.own_params(name))
            assert f"{name}: {own}" in text, (command, name)
        assert "ticktape strategy params NAME" in text


def test_a_users_plain_config_is_checked_by_its_annotations(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class Config:
        lookback: int = 5
        scale: float = 1.0
        names: tuple = ()

    class Custom(ticktape.Strategy):
        name = "custom_params_test"

    Custom.Config = Config
    monkeypatch.setitem(REGISTRY, Custom.name, Custom)
    got = catalog.validate_spec({"strategy": Custom.name, "params": {"lookback": "7", "names": "a,b"}})
    assert got["params"] == {"lookback": 7, "scale": 1.0, "names": ["a", "b"]}
    with pytest.raises(SpecError, match=r"params\.scale: must be a finite number, got 'nan'"):
        build(Custom.name, {"scale": "nan"})


def test_a_declaration_needs_a_kind_the_checks_know() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Config(Params):
        weights: list = param((), help="?")  # noqa: RUF009 (the mistake under test)

    with pytest.raises(TypeError, match=r"Config\.weights: param\(\) of a .* needs kind= and parse="):
        declared(Config)


def test_indicator_params_are_what_the_streams_accept() -> None:
    """Every rule-tree indicator is a stream with the same parameter names and
    defaults, and the stream accepts the lowest and the highest values the
    rule tree accepts (its picker's choices are the stream's outputs)."""
    assert set(rules.INDICATORS) == set(indicators.STREAMS)
    for kind, table in rules.INDICATORS.items():
        cls = indicators.STREAMS[kind]
        signature = inspect.signature(cls).parameters
        numeric = {k: p for k, p in table.items() if p.kind in ("int", "float")}
        assert set(numeric) == set(signature) - {"session_ns"}, kind
        if rules.PICKERS.get(kind):
            assert table[rules.PICKERS[kind]].choices == cls.outputs
        for k, p in numeric.items():
            if not p.required and (kind, k) != ("vwap", "n"):  # n = 0: the session VWAP, the stream's None
                assert p.default == signature[k].default, (kind, k)
        low = {k: p.ge if p.ge is not None else np.nextafter(p.gt, math.inf) for k, p in numeric.items()}
        high = {k: p.le if p.le is not None else 1e6 for k, p in numeric.items()}
        if kind == "macd":  # and slow > fast
            low["slow"], high["fast"] = low["fast"] + 1, high["slow"] - 1
        if kind == "vwap":
            low["n"] = None
        cls(**low)
        cls(**high)


def _installed() -> Path:
    return Path(sys.executable).with_name("ticktape")


@pytest.fixture(scope="module")
def ticks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("params") / "ticks.parquet"
    df = pd.DataFrame(TICKS)
    df["ts"] = pd.to_datetime(df["ts"], unit="ns", utc=True)
    df.drop(columns=[c for c in df.columns if c == "symbol"]).to_parquet(path)
    return path


BAD_INPUT = [
    (["--param", "size=inf"], "params.size: must be a finite number, got 'inf'"),
    (["--param", "size=-Infinity"], "params.size: must be a finite number, got '-Infinity'"),
    (["--param", "size=-5"], "params.size: must be a number > 0, got -5"),
    (["--param", "size=NaN"], "params.size: must be a finite number, got 'NaN'"),
    (["--param", "size=1e300"], "params.size: must be a number < 9007199254740992, got 1e+300"),
    (["--param", f"fast={10**12}"], "params.fast: must be an integer <= 10000000, got 1000000000000"),
    (["--param", "slow=ten"], "params.slow: must be an integer, got 'ten'"),
    (["--param", "long_only=maybe"], "params.long_only: must be true or false, got 'maybe'"),
    (["--param", "sizing=kelly"], "params.sizing: must be one of 'fixed', 'equity', got 'kelly'"),
    (["--param", "fast=5", "--param", "fast=6"], "--param 'fast=6': fast is given twice"),
    (["--param", "fast=5", "--param", "nope=1"], "params.nope: unknown parameter of 'ma_crossover'; known: "),
]


def _installed_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(_installed()), *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(("args", "message"), BAD_INPUT, ids=[a[-1] for a, _ in BAD_INPUT])
def test_bad_params_are_one_line_naming_the_field(
    cli, ticks_file: Path, args: list[str], message: str
) -> None:
    res = cli("backtest", "--data", ticks_file, "--strategy", "ma_crossover", *args)
    assert res.exit_code == 1
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"ticktape: error: {message}"), line


@pytest.mark.parametrize(("args", "message"), [BAD_INPUT[0], BAD_INPUT[3], BAD_INPUT[5]])
def test_bad_params_through_the_installed_command(ticks_file: Path, args: list[str], message: str) -> None:
    """``ticktape backtest --data F --strategy ma_crossover --param size=inf; echo $?``: 1, one line."""
    res = _installed_run("backtest", "--data", str(ticks_file), "--strategy", "ma_crossover", *args)
    assert res.returncode == 1
    assert res.stderr.splitlines() == [f"ticktape: error: {message}"], res.stderr


BAD_SPECS = [
    ({"size": "Infinity"}, "params.size: must be a finite number, got 'Infinity'"),
    ({"n": 10**12}, "params.n: must be an integer <= 10000000, got 1000000000000"),
    ({"n": [20]}, "params.n: must be an integer, got [20]"),
    ({"stop_loss": -0.1}, "params.stop_loss: must be a number >= 0, got -0.1"),
    ({"exit_n": "1e400"}, "params.exit_n: must be a finite number, got '1e400'"),
]


@pytest.mark.parametrize(("params", "message"), BAD_SPECS, ids=[m[:30] for _, m in BAD_SPECS])
def test_bad_spec_files_are_refused_alike_by_backtest_and_validate(
    cli, ticks_file: Path, tmp_path: Path, params: dict[str, Any], message: str
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"strategy": "breakout", "params": params}))
    for args in (("backtest", "--data", ticks_file, "--spec", spec), ("strategy", "validate", spec)):
        res = cli(*args)
        assert res.exit_code == 1
        (line,) = res.stderr.splitlines()
        assert line.startswith("ticktape: error: ") and line.endswith(message), line


def test_a_bad_spec_file_through_the_installed_command(ticks_file: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"strategy": "breakout", "params": {"size": "Infinity", "n": 10**12}}))
    for args in (
        ("backtest", "--data", str(ticks_file), "--spec", str(spec)),
        ("strategy", "validate", str(spec)),
    ):
        res = _installed_run(*args)
        assert res.returncode == 1
        (line,) = res.stderr.splitlines()
        assert line.startswith("ticktape: error: ") and line.endswith(BAD_SPECS[0][1]), line


def test_nan_in_a_json_spec_is_refused_naming_the_field(cli, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text('{"strategy": "breakout", "params": {"size": NaN}}')  # Python's json reads it
    res = cli("strategy", "validate", str(spec))
    assert res.exit_code == 1
    assert res.stderr.strip() == f"ticktape: error: {spec}: params.size: must be a finite number, got nan"


DOCS = Path(__file__).resolve().parents[3] / "docs"


def _default_in_doc(text: str) -> Any:
    first = text.split("=", maxsplit=1)[0].strip().strip('"')
    try:
        return float(first)
    except ValueError:
        return {"false": False, "true": True}.get(first, first)


def test_the_docs_tables_match_the_declarations() -> None:
    """docs/strategies-from-text.md lists every template's own parameters with their
    defaults, and the common ones; docs/strategies.md names only parameters that exist."""
    text = (DOCS / "strategies-from-text.md").read_text()
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `(\w+)` \| (.*) \|$", text, re.M)}
    common = re.findall(r"^\| `(\w+)` \[([^\]]+)\] \|", text, re.M)
    assert [k for k, _ in common] == list(catalog.COMMON)
    for key, default in common:
        assert _default_in_doc(default) == catalog.COMMON[key].default, key
    for name in catalog.TEMPLATES:
        cell = rows.get(name)
        if cell is None:  # sma_crossover: named in ma_crossover's row
            assert any(f"`{name}`" in c for c in rows.values()), name
            continue
        named = set(re.findall(r"`(\w+)`", cell)) - set(catalog.TEMPLATES)
        table = catalog.params_of(name)
        assert named <= set(table), (name, named - set(table))
        assert set(catalog.own_params(name)) <= named, (name, set(catalog.own_params(name)) - named)
        for key, default in re.findall(r"`(\w+)`[^`\[|]*?\[([^\]]+)\]", cell):
            assert _default_in_doc(default) == table[key].default, (name, key, default)
    text = (DOCS / "strategies.md").read_text()
    for m in re.finditer(r"^\| `(\w+)`[^|]*\| [^|]+ \| (.*) \|$", text, re.M):
        if m[1] in catalog.TEMPLATES:
            assert set(re.findall(r"`(\w+)`", m[2])) <= set(catalog.params_of(m[1])), m[1]


def test_a_bad_run_spec_is_refused_before_anything_starts(cli, tmp_path: Path) -> None:
    """``ticktape run`` checks the params (check_run) before it starts a broker or a database."""
    path = tmp_path / "run.json"
    for params, message in [
        ({"fast": 10**12}, "params.fast: must be an integer <= 10000000, got 1000000000000"),
        ({"size": "inf"}, "params.size: must be a finite number, got 'inf'"),
        ({"fast": 50, "slow": 20}, "params.slow: must be > fast, got fast=50 slow=20"),
    ]:
        path.write_text(json.dumps({"strategy": "ma_crossover", "symbols": ["X"], "params": params}))
        res = cli("run", path)
        assert res.exit_code == 1
        assert res.stderr.splitlines() == [
            f"ticktape: error: {path}: {message}"
        ]  # (the file, then the field)
