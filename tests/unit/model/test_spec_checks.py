"""A run spec refuses a non-finite number anywhere, naming its field, and
keeps its run id in one spelling (issue 22, items 3 and 7)."""

from __future__ import annotations

import json
import math
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticktape.errors import SpecError
from ticktape.model.spec import RunSpec, parse_run_id

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
