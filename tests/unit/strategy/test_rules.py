"""Rule trees: validation (messages name the JSON path), evaluation semantics, split invariance."""

from __future__ import annotations

import dataclasses
import doctest
import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ticktape.strategy.rules
from ticktape.errors import SpecError
from ticktape.strategy import REGISTRY, Strategy, catalog, rules
from ticktape.strategy.catalog import validate_spec
from ticktape.strategy.rules import evaluate, node_key, value_nodes

RSI = {"ind": "rsi"}
GOOD_EXIT = {"op": ">", "left": RSI, "right": 70}


def entry_with(cond: Any) -> dict[str, Any]:
    return {"entry": cond, "exit": GOOD_EXIT}


def validate(params: Any) -> dict[str, Any]:
    """The normalized params of a ``rules`` spec."""
    return validate_spec({"strategy": "rules", "params": params})["params"]


# --------------------------------------------------------------------------
# validation

BAD_RULES: list[tuple[dict[str, Any], str]] = [
    (
        entry_with({"all": [GOOD_EXIT, {"op": "<", "left": {"ind": "sma", "n": 0}, "right": 3}]}),
        "params.entry.all[1].left.n: must be an integer >= 1, got 0",
    ),
    (entry_with({"op": "<", "left": {"ind": "sma"}, "right": 3}), "params.entry.left.n: required by 'sma'"),
    (entry_with({"op": "<", "left": {"ind": "sma", "n": 2.5}, "right": 3}), "params.entry.left.n: must be an integer, got 2.5"),
    (entry_with({"op": "<", "left": {"ind": "sma", "n": True}, "right": 3}), "params.entry.left.n: must be an integer, got True"),
    (entry_with({"op": "<", "left": {"ind": "smma", "n": 3}, "right": 3}), "params.entry.left.ind: unknown indicator 'smma'"),
    (entry_with({"op": "<", "left": {"ind": "rsi", "period": 3}, "right": 3}), "params.entry.left.period: unknown parameter of 'rsi'"),
    (entry_with({"op": "=", "left": RSI, "right": 3}), "params.entry.op: must be one of crosses_above"),
    (entry_with({"op": "<", "left": RSI}), "params.entry.right: required by a comparison"),
    (entry_with({"op": "<", "left": 1, "right": 3}), "params.entry: compares two numbers (1 < 3)"),
    (entry_with({"op": "<", "left": "close", "right": 3}), 'params.entry.left: must be a number, a price or an indicator, got \'close\' (a price is written {"price": "close"})'),
    (entry_with({"op": "<", "left": {"price": "last"}, "right": 3}), "params.entry.left.price: must be one of close, open"),
    (entry_with({"op": "<", "left": {"price": "close", "n": 3}, "right": 3}), "params.entry.left.n: unknown key of a price value"),
    (entry_with({"op": "<", "left": {"ind": "bollinger"}, "right": 3}), "params.entry.left.band: required by 'bollinger'"),
    (entry_with({"op": "<", "left": {"ind": "bollinger", "band": "top"}, "right": 3}), "params.entry.left.band: must be one of 'upper', 'middle', 'lower', got 'top'"),
    (entry_with({"op": "<", "left": {"ind": "macd", "fast": 30}, "right": 3}), "params.entry.left.slow: must be > fast, got fast=30 slow=26"),
    (entry_with({"op": "<", "left": {"ind": "atr", "source": "close"}, "right": 3}), "params.entry.left.source: unknown parameter of 'atr'"),
    (entry_with({"op": "<", "left": {"ind": "vwap", "n": -1}, "right": 3}), "params.entry.left.n: must be an integer >= 0, got -1"),
    (entry_with({"op": "<", "left": RSI, "right": math.inf}), "params.entry.right: must be a finite number"),
    (entry_with({"any": GOOD_EXIT}), "params.entry.any: must be a list of conditions"),
    (entry_with({"all": [], "any": []}), "params.entry: must be a condition"),
    (entry_with({"nand": []}), "params.entry.nand: unknown key"),
    (entry_with({"not": [GOOD_EXIT]}), "params.entry.not: must be a condition"),
    (entry_with([GOOD_EXIT]), "params.entry: must be a condition"),
    ({"entry": GOOD_EXIT}, "params.exit: required with params.entry (or set stop_loss / take_profit"),
    ({"exit": GOOD_EXIT}, "params.exit: given without params.entry"),
    ({"short_entry": GOOD_EXIT}, "params.short_exit: required with params.short_entry"),
    ({}, "params.entry: a rules strategy needs params.entry and/or params.short_entry"),
    ({"short_entry": GOOD_EXIT, "short_exit": GOOD_EXIT, "long_only": True}, "params.short_entry: cannot be used with long_only"),
    ({**entry_with(GOOD_EXIT), "size": 0}, "params.size: must be a number > 0, got 0"),
    ({**entry_with(GOOD_EXIT), "fraction": 0.5}, "params.fraction: only used with sizing = 'equity'"),
    ({**entry_with(GOOD_EXIT), "sizing": "equity", "fraction": 1.5}, "params.fraction: must be a number <= 1, got 1.5"),
    ({**entry_with(GOOD_EXIT), "sizing": "kelly"}, "params.sizing: must be one of 'fixed', 'equity', got 'kelly'"),
    ({**entry_with(GOOD_EXIT), "long_only": "yes"}, "params.long_only: must be true or false, got 'yes'"),
    ({**entry_with(GOOD_EXIT), "stop_loss": -0.1}, "params.stop_loss: must be a number >= 0, got -0.1"),
    ({**entry_with(GOOD_EXIT), "trailing": 0.1}, "params.trailing: unknown parameter of 'rules'"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "message"), BAD_RULES, ids=[m[:50] for _, m in BAD_RULES])
def test_validate_names_the_json_path(params: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as info:
        validate(params)
    assert str(info.value).startswith(message), str(info.value)


BAD_SPECS: list[tuple[Any, str]] = [
    ([], "spec: must be an object"),
    ({"params": {}}, "strategy: must be a strategy name, got None"),
    ({"strategy": "nope"}, "strategy: unknown strategy 'nope'; known: "),
    ({"strategy": "breakout", "params": {}, "symbols": ["X"]}, "symbols: unknown key of a strategy spec"),
    ({"strategy": "breakout", "params": [20]}, "params: must be an object"),
    ({"strategy": "breakout", "params": {"n": "twenty"}}, "params.n: must be an integer, got 'twenty'"),
    ({"strategy": "ma_crossover", "params": {"fast": 50, "slow": 20}}, "params.slow: must be > fast, got fast=50 slow=20"),
    ({"strategy": "ma_crossover", "params": {"ma": "hma"}}, "params.ma: must be one of 'sma', 'ema', 'wma'"),
    ({"strategy": "rsi_reversion", "params": {"lower": 40, "upper": 30}}, "params.upper: must be >= lower"),
    ({"strategy": "rsi_reversion", "params": {"exit": 80}}, "params.exit: must be between lower and upper, got 80"),
    ({"strategy": "rsi_reversion", "params": {"upper": 101}}, "params.upper: must be a number <= 100, got 101"),
    ({"strategy": "bollinger_reversion", "params": {"k": 0}}, "params.k: must be a number > 0, got 0"),
    ({"strategy": "vwap_reversion", "params": {"entry_z": 1, "exit_z": 1}}, "params.exit_z: must be < entry_z"),
    ({"strategy": "pairs"}, "params.symbols: required by 'pairs'"),
    ({"strategy": "pairs", "params": {"symbols": ["KO"]}}, "params.symbols: must be a list of 2 symbols"),
    ({"strategy": "pairs", "params": {"symbols": ["KO", "KO"]}}, "params.symbols: the two symbols must differ"),
    ({"strategy": "pairs", "params": {"symbols": ["KO", 3]}}, "params.symbols[1]: must be a non-empty symbol name"),
    ({"strategy": "pairs", "params": {"symbols": ["KO", "PEP"], "hedge": "kalman"}}, "params.hedge: must be one of 'ols', 'ratio'"),
    ({"strategy": "market_maker", "params": {"spread_ticks": 0}}, "params.spread_ticks: must be an integer >= 1, got 0"),
    ({"strategy": "market_maker", "params": {"sizing": "equity", "fraction": 0.5}}, "params.sizing: market_maker (its quotes) sizes in units: must be 'fixed'"),
    ({"strategy": "pairs", "params": {"symbols": ["KO", "PEP"], "sizing": "equity"}}, "params.sizing: pairs (its legs) sizes in units: must be 'fixed'"),
    ({"strategy": "breakout", "params": {"n": 10**12}}, "params.n: must be an integer <= 10000000, got 1000000000000"),
    ({"strategy": "breakout", "params": {"n": "1e400"}}, "params.n: must be a finite number, got '1e400'"),
    ({"strategy": "breakout", "params": {"size": "inf"}}, "params.size: must be a finite number, got 'inf'"),
    ({"strategy": "breakout", "params": {"size": math.nan}}, "params.size: must be a finite number, got nan"),
    ({"strategy": "breakout", "params": {"size": -5}}, "params.size: must be a number > 0, got -5"),
    ({"strategy": "breakout", "params": {"size": 1e300}}, "params.size: must be a number < 9007199254740992, got 1e+300"),
    ({"strategy": "breakout", "params": {"size": [100]}}, "params.size: must be a number, got [100]"),
    ({"strategy": "market_maker", "params": {"max_inventory": -5}}, "params.max_inventory: must be a number > 0"),
    ({"strategy": "market_maker", "params": {"max_inventory": 50}}, "params.max_inventory: must be >= size, got 50 (size 100)"),
    ({"strategy": "vwap_reversion", "params": {"z_n": 1}}, "params.z_n: must be an integer >= 2, got 1"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "message"), BAD_SPECS, ids=[m[:50] for _, m in BAD_SPECS])
def test_validate_spec_names_the_json_path(spec: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        validate_spec(spec)
    assert str(info.value).startswith(message), str(info.value)


def test_defaults_are_filled_and_numbers_coerced() -> None:
    got = validate_spec({"strategy": "pairs", "params": {"symbols": [" KO", "PEP"], "n": "60", "entry_z": 3}})
    assert got == {
        "strategy": "pairs",
        "params": {
            "long_only": False,
            "size": 100.0,
            "sizing": "fixed",
            "fraction": 1.0,
            "stop_loss": 0.0,
            "take_profit": 0.0,
            "symbols": ["KO", "PEP"],
            "n": 60,
            "entry_z": 3.0,
            "exit_z": 0.5,
            "hedge": "ols",
        },
    }
    assert isinstance(got["params"]["n"], int) and isinstance(got["params"]["entry_z"], float)


def test_every_template_validates_with_its_defaults_and_is_idempotent() -> None:
    for name in catalog.TEMPLATES:
        params = {"symbols": ["A", "B"]} if name == "pairs" else {}
        if name == "rules":
            params = entry_with(
                {"op": "crosses_above", "left": {"price": "close"}, "right": {"ind": "sma", "n": 5}}
            )
        once = validate_spec({"strategy": name, "params": params})
        assert validate_spec(once) == once
        assert json.loads(json.dumps(once)) == once


def test_rules_exit_may_be_left_to_the_stop_loss() -> None:
    got = validate({"entry": GOOD_EXIT, "stop_loss": 0.02})
    assert got["exit"] == {"any": []}  # never: the stop loss closes the position
    assert validate(got) == got


def test_rules_normalization() -> None:
    got = validate(
        entry_with({"not": {"op": "crosses_below", "left": {"ind": "bollinger", "band": "lower", "k": 2}, "right": {"price": "close"}}})
    )  # fmt: skip
    assert got["entry"] == {
        "not": {
            "op": "crosses_below",
            "left": {"ind": "bollinger", "n": 20, "k": 2.0, "band": "lower", "source": "close"},
            "right": {"price": "close"},
        }
    }
    assert got["exit"] == {"op": ">", "left": {"ind": "rsi", "n": 14, "source": "close"}, "right": 70.0}
    assert got["short_entry"] is None and got["short_exit"] is None


def test_a_registered_non_template_strategy_is_checked_by_build(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass(frozen=True)
    class Config:
        lookback: int = 5

    class Custom(Strategy):
        name = "custom_test_strategy"

    Custom.Config = Config
    monkeypatch.setitem(REGISTRY, Custom.name, Custom)
    spec = {"strategy": Custom.name, "params": {"lookback": 7}}
    assert validate_spec(spec) == spec
    with pytest.raises(SpecError, match=r"params.window: unknown parameter"):
        validate_spec({"strategy": Custom.name, "params": {"window": 7}})


# --------------------------------------------------------------------------
# keys and value nodes


def test_node_key_is_canonical() -> None:
    a = node_key({"ind": "bollinger", "band": "upper"})
    b = node_key({"source": "close", "k": 2, "n": 20.0, "band": "upper", "ind": "bollinger"})
    assert a == b == '{"band":"upper","ind":"bollinger","k":2.0,"n":20,"source":"close"}'
    assert node_key({"price": "close"}) == '{"price":"close"}'
    assert node_key(3) == "3.0"


def test_value_nodes_are_unique_sorted_and_skip_numbers() -> None:
    sma = {"ind": "sma", "n": 5}
    cond = {
        "all": [
            {"op": "crosses_above", "left": {"price": "close"}, "right": sma},
            {"not": {"op": ">", "left": {"ind": "sma", "n": 5.0, "source": "close"}, "right": 3}},
            {"any": [{"op": "<", "left": RSI, "right": 30}]},
        ]
    }
    nodes = value_nodes(cond)
    keys = [node_key(n) for n in nodes]
    assert keys == sorted(keys)
    assert nodes == [
        {"ind": "rsi", "n": 14, "source": "close"},
        {"ind": "sma", "n": 5, "source": "close"},
        {"price": "close"},
    ]


# --------------------------------------------------------------------------
# evaluation on hand-made arrays

NAN = math.nan
A = {"price": "close"}
B = {"ind": "sma", "n": 3}


def cols(a: list[float], b: list[float]) -> dict[str, np.ndarray]:
    return {node_key(A): np.array(a, dtype=float), node_key(B): np.array(b, dtype=float)}


def run(cond: dict[str, Any], a: list[float], b: list[float], carry: dict | None = None) -> list[bool]:
    out, _ = evaluate(cond, cols(a, b), carry or {})
    assert out.dtype == bool
    return out.tolist()


def test_crosses_above_and_below() -> None:
    a = [1, 3, 3, 1, 2, 2, 3]
    b = [2, 2, 3, 2, 2, 2, 2]
    up = {"op": "crosses_above", "left": A, "right": B}
    down = {"op": "crosses_below", "left": A, "right": B}
    # above at i: a[i] > b[i] and a[i-1] <= b[i-1]; a tie then above counts, a touch does not
    assert run(up, a, b) == [False, True, False, False, False, False, True]
    assert run(down, a, b) == [False, False, False, True, False, False, False]


def test_comparisons_with_nan_are_false_and_not_does_not_flip_them() -> None:
    a = [NAN, 1, 5, 5]
    b = [1, NAN, 4, 6]
    gt = {"op": ">", "left": A, "right": B}
    assert run(gt, a, b) == [False, False, True, False]
    assert run({"not": gt}, a, b) == [False, False, False, True]
    le = {"op": "<=", "left": A, "right": B}
    assert run(le, a, b) == [False, False, False, True]
    # a crossing needs all four values: the row after a NaN cannot cross
    up = {"op": "crosses_above", "left": A, "right": B}
    assert run(up, [NAN, 2, 1, 3], [1, 1, 2, 2]) == [False, False, False, True]
    assert run(up, [1, 3, 1, 3], [2, NAN, 2, 2]) == [False, False, False, True]


def test_kleene_all_any() -> None:
    a = [NAN, 5, 5, 1]
    b = [0, 0, 0, 0]
    unknown_or_true = {"op": ">", "left": A, "right": B}  # unknown, true, true, true
    false = {"op": "<", "left": 10, "right": B}  # 10 < 0: false everywhere (known)
    true = {"op": ">", "left": 10, "right": B}
    assert run({"all": [unknown_or_true, false]}, a, b) == [False] * 4
    assert run({"not": {"all": [unknown_or_true, false]}}, a, b) == [True] * 4  # false AND unknown = false
    assert run({"any": [unknown_or_true, true]}, a, b) == [True] * 4  # true OR unknown = true
    assert run({"not": {"any": [unknown_or_true, false]}}, a, b) == [False, False, False, False]
    assert run({"all": []}, a, b) == [True] * 4
    assert run({"any": []}, a, b) == [False] * 4


def test_constants_on_either_side() -> None:
    a = [1, 5, 2]
    assert run({"op": "crosses_above", "left": A, "right": 3}, a, [0, 0, 0]) == [False, True, False]
    assert run({"op": "crosses_above", "left": 3, "right": A}, a, [0, 0, 0]) == [False, False, True]
    assert run({"op": ">=", "left": A, "right": 2}, a, [0, 0, 0]) == [False, True, True]


def test_carry_continues_a_cross_across_batches_and_is_json() -> None:
    up = {"op": "crosses_above", "left": A, "right": B}
    first, carry = evaluate(up, cols([1, 1], [2, 2]), {})
    assert json.loads(json.dumps(carry)) == carry
    second, carry2 = evaluate(up, cols([3], [2]), carry)
    assert first.tolist() == [False, False] and second.tolist() == [True]
    third, carry3 = evaluate(up, cols([], []), carry2)  # an empty batch keeps the carry
    assert third.tolist() == [] and carry3 == carry2
    _, nan_carry = evaluate(up, cols([NAN], [2]), {})
    assert next(iter(nan_carry.values())) == [None, 2.0]


def test_evaluate_input_errors() -> None:
    up = {"op": "crosses_above", "left": A, "right": B}
    with pytest.raises(ValueError, match=r'columns: no column for value \{"ind":"sma"'):
        evaluate(up, {node_key(A): np.zeros(3)}, {})
    with pytest.raises(ValueError, match=r"different lengths"):
        evaluate(up, {node_key(A): np.zeros(3), node_key(B): np.zeros(2)}, {})
    with pytest.raises(ValueError, match=r"length: required"):
        evaluate({"all": []}, {}, {})
    assert evaluate({"all": []}, {}, {}, length=2)[0].tolist() == [True, True]
    with pytest.raises(SpecError, match=r"cond.op"):
        evaluate({"op": "=", "left": A, "right": B}, cols([1], [1]), {})


# --------------------------------------------------------------------------
# property: batch-by-batch == whole array == a per-row reference

FIELDS = [{"price": "close"}, {"ind": "sma", "n": 3}, {"ind": "rsi"}]
KEYS = [node_key(v) for v in FIELDS]


def _values() -> st.SearchStrategy:
    return st.one_of(st.sampled_from(FIELDS), st.sampled_from([0.0, 1.0, 2.0]))


def _comparison() -> st.SearchStrategy:
    return st.builds(
        lambda op, left, right: {"op": op, "left": left, "right": right},
        st.sampled_from(rules.OPS),
        st.sampled_from(FIELDS),
        _values(),
    )


CONDS = st.recursive(
    _comparison(),
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=6,
)


def _reference(cond: dict[str, Any], data: dict[str, list[float]], i: int) -> bool | None:  # noqa: PLR0911
    """Per-row Kleene evaluation: True, False or None (unknown)."""

    def val(v: Any, j: int) -> float:
        return float(v) if isinstance(v, int | float) else data[node_key(v)][j]

    if "op" in cond:
        a, b = val(cond["left"], i), val(cond["right"], i)
        if math.isnan(a) or math.isnan(b):
            return None
        op = cond["op"]
        if op in ("crosses_above", "crosses_below"):
            if i == 0:
                return None
            pa, pb = val(cond["left"], i - 1), val(cond["right"], i - 1)
            if math.isnan(pa) or math.isnan(pb):
                return None
            return (a > b and pa <= pb) if op == "crosses_above" else (a < b and pa >= pb)
        return {">": a > b, "<": a < b, ">=": a >= b, "<=": a <= b}[op]
    (key,) = cond
    if key == "not":
        r = _reference(cond["not"], data, i)
        return None if r is None else not r
    parts = [_reference(c, data, i) for c in cond[key]]
    if key == "all":
        return False if False in parts else (None if None in parts else True)
    return True if True in parts else (None if None in parts else False)


@settings(max_examples=200, deadline=None)
@given(
    cond=CONDS,
    rows=st.lists(
        st.tuples(*[st.sampled_from([0.0, 1.0, 2.0, 3.0, NAN]) for _ in FIELDS]), min_size=0, max_size=30
    ),
    cuts=st.lists(st.integers(0, 30), max_size=5),
)
def test_split_invariance_and_reference(cond: dict[str, Any], rows: list[tuple], cuts: list[int]) -> None:
    n = len(rows)
    data = {k: [r[j] for r in rows] for j, k in enumerate(KEYS)}
    columns = {k: np.array(v, dtype=float) for k, v in data.items()}
    whole, _ = evaluate(cond, columns, {}, length=n)
    assert whole.tolist() == [_reference(cond, data, i) is True for i in range(n)]
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    carry: dict[str, Any] = {}
    pieces = []
    for lo, hi in itertools.pairwise(bounds):
        part, carry = evaluate(cond, {k: v[lo:hi] for k, v in columns.items()}, carry, length=hi - lo)
        carry = json.loads(json.dumps(carry))  # the carry survives a round trip through a table
        pieces.append(part)
    split = np.concatenate(pieces) if pieces else np.zeros(0, bool)
    assert split.tolist() == whole.tolist()


def test_docstring_examples() -> None:
    result = doctest.testmod(ticktape.strategy.rules, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
