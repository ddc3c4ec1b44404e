"""``ticktape runs delete --older-than AGE``: the ages it takes, in the spans
``ticktape walkforward`` takes (one parser: ``m`` is months in both)."""

from __future__ import annotations

import time
from datetime import timedelta

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticktape.cli.runs import parse_age
from ticktape.errors import SpecError

FIXED = {
    "s": timedelta(seconds=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


@given(st.integers(1, 10**5), st.sampled_from(sorted(FIXED)))
def test_a_number_and_a_fixed_unit(n: int, unit: str) -> None:
    assert parse_age(f"{n}{unit}") == n * FIXED[unit]


@pytest.mark.parametrize(
    ("text", "offset"), [("6m", {"months": 6}), ("6mo", {"months": 6}), ("1y", {"years": 1})]
)
def test_months_and_years_are_calendar_ones_back_from_now(text: str, offset: dict[str, int]) -> None:
    before = time.time_ns()
    age = parse_age(text)
    now = pd.Timestamp(time.time_ns(), unit="ns", tz="UTC")
    expected = now - (now - pd.DateOffset(**offset))
    assert abs(age - expected.to_pytimedelta()) < timedelta(seconds=1) + timedelta(
        microseconds=(time.time_ns() - before) / 1e3
    )


@pytest.mark.parametrize("text", ["30", "d", "-3d", "3 days", "3dd", "1.d", "30x", "", "0d"])
def test_anything_else_is_one_line_naming_the_option(text: str) -> None:
    with pytest.raises(SpecError, match=rf"^--older-than {text!r}: "):
        parse_age(text)
