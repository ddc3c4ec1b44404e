"""Partition counts derived from a load (``ticktape topics create``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticktape.config import MAX_PARTITIONS
from ticktape.errors import CommandError
from ticktape.pipeline.topics import group_topics, partitions_for


@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 64))
def test_every_worker_gets_the_same_number_of_partitions_and_every_stream_one(
    symbols: int, sweep: int, workers: int
) -> None:
    n = partitions_for(symbols, sweep, workers)
    assert n % workers == 0 and workers <= n <= MAX_PARTITIONS
    # one partition per keyed stream, unless that would pass the cap
    assert n >= min(symbols * sweep, MAX_PARTITIONS // workers * workers)
    assert n < max(symbols * sweep, workers) + workers  # no more than rounding up needs


def test_a_count_below_one_names_the_option() -> None:
    with pytest.raises(CommandError, match=r"^--workers: must be >= 1, got 0$"):
        partitions_for(2, 1, 0)
    with pytest.raises(CommandError, match=r"^--sweep: must be >= 1, got -1$"):
        partitions_for(2, -1, 1)


def test_the_keyed_topics_of_each_group_follow_its_stages() -> None:
    assert group_topics("ticktape-indicators-strategy-execution") == ["ticktape.ticks"]
    assert group_topics("ticktape-replay") == []
