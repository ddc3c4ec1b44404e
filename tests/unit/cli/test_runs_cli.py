"""``ticktape runs delete --older-than AGE``: the ages it takes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticktape.cli.runs import parse_age
from ticktape.errors import CommandError

UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


@given(st.integers(0, 10**5), st.sampled_from(sorted(UNITS)))
def test_a_number_and_a_unit(n: int, unit: str) -> None:
    assert parse_age(f"{n}{unit}") == n * UNITS[unit]


@pytest.mark.parametrize("text", ["30", "d", "-3d", "3 days", "3dd", "1.d", "30x", ""])
def test_anything_else_is_one_line_naming_the_option(text: str) -> None:
    with pytest.raises(CommandError, match=r"^--older-than: .* is not an age"):
        parse_age(text)
