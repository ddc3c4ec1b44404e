"""A run spec refuses a non-finite number anywhere, naming its field, and
keeps its run id in one spelling (issue 22, items 3 and 7)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticktape.errors import SpecError
from ticktape.model.spec import EngineConfig, RunSpec, parse_run_id

keys = st.text(alphabet="abcdefgh_", min_size=1, max_size=6)
finite = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
values = st.recursive(
    finite, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=8
)


@st.composite
def params_with_one_bad_number(draw):
    """(params, the path of the non-finite number planted in them, it)."""
    params = draw(st.dictionaries(keys, values, max_size=4))
    bad = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    path, node = ["params"], params
    while True:  # walk down to a dict or list and plant it there
        key = draw(keys)
        if isinstance(node, dict) and key not in node:
            node[key] = bad
            path.append(key)
            break
        if isinstance(node, dict):
            child = node[key]
            if not isinstance(child, dict | list):
                node[key] = bad
                path.append(key)
                break
            path.append(key)
            node = child
        else:  # a list
            node.append(bad)
            path.append(str(len(node) - 1))
            break
    return params, ".".join(path), bad


@given(params_with_one_bad_number())
def test_a_non_finite_number_anywhere_is_refused_naming_its_field(case) -> None:
    params, path, bad = case
    text = json.dumps({"strategy": "sma_crossover", "symbols": ["A"], "params": params})  # NaN, Infinity
    name = "NaN" if math.isnan(bad) else ("Infinity" if bad > 0 else "-Infinity")
    with pytest.raises(SpecError, match=f"^{path}: {name} is not a number"):
        RunSpec.from_json(text)


@given(st.uuids())
def test_a_run_id_is_kept_in_its_canonical_spelling(rid: uuid.UUID) -> None:
    for spelling in (str(rid).upper(), rid.hex, f"{{{rid}}}", f"urn:uuid:{rid}"):
        assert RunSpec(strategy="s", symbols=("A",), run_id=spelling).run_id == str(rid)


@pytest.mark.parametrize("text", ["run-1", "", "0190a1b2", 42])
def test_a_run_id_that_is_not_a_uuid_is_refused(text) -> None:
    with pytest.raises(SpecError, match=r"^run_id: .* is not a run id \(a UUID\)$"):
        parse_run_id(text)
    with pytest.raises(SpecError, match=r"^run_id: "):
        RunSpec(strategy="s", symbols=("A",), run_id=text)


SCALARS = [(f"engine.{f.name}", f.type) for f in dataclasses.fields(EngineConfig)] + [
    (f.name, f.type) for f in dataclasses.fields(RunSpec) if f.name not in ("engine", "run_id")
]
WRONG = st.one_of(
    st.text(max_size=3), st.lists(st.integers(), max_size=2), st.dictionaries(keys, st.integers(), max_size=1)
)


@given(
    st.sampled_from([(p, t) for p, t in SCALARS if t.split(" | ")[0] in ("int", "float", "str", "bool")]),
    WRONG,
)
def test_a_value_of_the_wrong_type_is_refused_naming_its_field(field, value) -> None:
    """(Issue 22 item 7: a string where a number belongs was a TypeError traceback.)"""
    path, kind = field
    if kind.startswith("str") and isinstance(value, str):
        return  # (a string is the right type there)
    doc = {"strategy": "sma_crossover", "symbols": ["A"]}
    if path.startswith("engine."):
        doc["engine"] = {path.split(".")[1]: value}
    else:
        doc[path] = value
    with pytest.raises(SpecError) as exc:
        RunSpec.from_dict(doc)
    assert str(exc.value).startswith(f"{path}:"), (doc, str(exc.value))


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"symbols": 5}, "symbols: must be a list of symbol names, got 5"),
        ({"symbols": ["A", 1]}, "symbols.1: must be a symbol name, got 1"),
        ({"symbols": ["A"], "engine": "fast"}, "engine: must be an object of engine settings, got 'fast'"),
    ],
)
def test_symbols_and_engine_of_the_wrong_shape(doc, says) -> None:
    with pytest.raises(SpecError, match=f"^{re.escape(says)}$"):
        RunSpec.from_dict({"strategy": "sma_crossover", **doc})
