"""The Monitor's bounded queries against the real store: fill markers merged
in SQL keep every fill's quantity and notional; recent fills are the latest."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape import store
from ticktape.dashboards import queries
from ticktape.model.batch import DTYPES
from ticktape.runtime.processes import run_coro

pytestmark = pytest.mark.timeout(300)
T0 = 1_704_186_000 * 10**9


@pytest.fixture(scope="module")
def run_with_fills(db_url: str) -> tuple[str, np.ndarray]:
    run_id = str(uuid.uuid4())
    rng = np.random.default_rng(5)
    fills = np.zeros(3_000, DTYPES["fills"])
    fills["ts"] = T0 + np.sort(rng.choice(3_600 * 10**6, 3_000, replace=False)) * 1_000
    fills["order_id"] = np.arange(3_000)
    fills["side"] = rng.choice([-1, 1], 3_000)
    fills["price"] = 100 + rng.normal(0, 1, 3_000).round(2)
    fills["qty"] = rng.integers(1, 500, 3_000)

    async def seed() -> None:
        conn = await store.connect(db_url)
        try:
            await store.create_run(conn, run_id, "sma_crossover", {}, {}, ["F"], None, None)
            await store.write_result_set(conn, run_id, "F", 0, {"fills": fills})
        finally:
            await conn.close()

    run_coro(seed)
    return run_id, fills


@settings(max_examples=15, deadline=None)
@given(a=st.integers(0, 3_600), span=st.integers(1, 3_600), most=st.sampled_from([10, 300, 5_000]))
def test_fill_markers_merge_without_losing_quantity_or_notional(db_url, run_with_fills, a, span, most):
    run_id, fills = run_with_fills
    start, end = T0 + a * 10**9, T0 + (a + span) * 10**9
    width = max(1, span * 10**9 // max(1, most // 2) + 1)
    got, merged = queries.fill_markers(db_url, run_id, "F", start, end, most, width)
    mine = fills[(fills["ts"] >= start) & (fills["ts"] <= end)]
    assert merged == (len(mine) > most)
    assert int(got["n"].sum()) == len(mine)
    if merged:
        assert len(got) <= 2 * (span * 10**9 // width + 1)
    for side in (-1, 1):
        s, g = mine[mine["side"] == side], got[got["side"] == side]
        assert g["qty"].sum() == pytest.approx(s["qty"].sum())
        assert (g["price"] * g["qty"]).sum() == pytest.approx((s["price"] * s["qty"]).sum(), rel=1e-9)


def test_recent_fills_are_the_latest_up_to_a_time(db_url, run_with_fills):
    run_id, fills = run_with_fills
    upto = int(fills["ts"][1_000])
    got = queries.recent_fills(db_url, run_id, "F", upto, n=5)
    assert got["order_id"].tolist() == [1_000, 999, 998, 997, 996]
