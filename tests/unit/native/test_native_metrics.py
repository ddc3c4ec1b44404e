"""The native fold behind ticktape.compute.metrics.PerformanceStream
(ticktape._native.PerfCore, native/metrics.hpp): its sums do not depend on
how the samples were cut, and they are the documented definitions computed
directly over whole arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape import _native
from ticktape.compute.metrics import DAY_NS

HOUR = 3600 * 10**9
#: grids: every sample, an hour, a day (two candidate risk-free rates)
GRIDS = [(1, [0.0]), (HOUR, [1e-6]), (DAY_NS, [0.0, 2e-5])]
SCALARS = ("samples", "first_ts", "last_ts", "e0", "e1", "eq_sum", "dd_abs", "dd_pct", "under")
SCALARS += ("spell_from", "longest", "held_ns")


@st.composite
def curves(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    n = draw(st.integers(1, 300))
    gaps = draw(
        st.lists(
            st.sampled_from([1, 10**9, HOUR // 3, HOUR, DAY_NS // 2, 3 * DAY_NS]), min_size=n, max_size=n
        )
    )
    ts = 1_700_000_000 * 10**9 + np.cumsum(np.array(gaps, dtype=np.int64))
    eq = np.array(
        draw(st.lists(st.sampled_from([90.0, 99.5, 100.0, 100.25, 104.0, 250.0]), min_size=n, max_size=n))
    )
    gross = np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 3.0]), min_size=n, max_size=n)))
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=5)))
    return ts, eq, gross, cuts


def _fold(ts: np.ndarray, eq: np.ndarray, gross: np.ndarray, cuts: list[int]) -> _native.PerfCore:
    core = _native.PerfCore(GRIDS)
    for a, b in zip([0, *cuts], [*cuts, len(ts)], strict=True):
        core.add(ts[a:b], eq[a:b], gross[a:b])
    core.finish()
    return core


@settings(max_examples=200, deadline=None)
@given(curves())
def test_the_sums_do_not_depend_on_the_pieces(curve):
    ts, eq, gross, cuts = curve
    whole, cut = _fold(ts, eq, gross, []), _fold(ts, eq, gross, cuts)
    for name in SCALARS:
        assert getattr(whole, name) == getattr(cut, name), name
    for k in range(len(GRIDS)):
        assert whole.grid(k) == cut.grid(k), k


def _points(ts: np.ndarray, eq: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid's points by the definition: the first sample, then the last sample of every bucket."""
    b = ts // width
    last = np.flatnonzero(np.append(b[1:] != b[:-1], True))
    idx = np.unique(np.concatenate(([0], last)))
    return b[idx], eq[idx]


@settings(max_examples=200, deadline=None)
@given(curves())
def test_the_sums_are_the_definitions(curve):
    ts, eq, gross, _ = curve
    core = _fold(ts, eq, gross, [])
    assert (core.samples, core.first_ts, core.last_ts, core.e0, core.e1) == (
        len(ts),
        ts[0],
        ts[-1],
        eq[0],
        eq[-1],
    )
    assert core.eq_sum == pytest.approx(eq.sum(), rel=1e-12)
    peak = np.maximum.accumulate(eq)
    assert core.dd_abs == (peak - eq).max()
    assert core.dd_pct == ((peak - eq) / peak).max()
    assert core.held_ns == int(np.diff(ts)[gross[:-1] != 0].sum())
    # the longest spell from the sample before a fall to the first sample back at the peak
    under = peak - eq > 0
    longest, start = 0, None
    for i in range(len(ts)):
        if under[i] and start is None:
            start = ts[i - 1]
        elif not under[i] and start is not None:
            longest, start = max(longest, ts[i] - start), None
    assert (core.longest, core.under) == (longest, start is not None)
    for k, (width, rf) in enumerate(GRIDS):
        g = core.grid(k)
        buckets, pe = _points(ts, eq, width)
        last = ts // width
        closes = np.flatnonzero(np.append(last[1:] != last[:-1], True))
        assert g["closes"] == len(closes)
        assert g["weekend"] == int(np.count_nonzero((last[closes] * width // DAY_NS + 3) % 7 >= 5))
        r = pe[1:] / pe[:-1] - 1.0
        assert g["n"] == len(r)
        assert g["adjacent"] == int(np.count_nonzero(np.diff(buckets) <= 1))
        if len(r):
            assert g["mean"] == pytest.approx(r.mean(), rel=1e-9, abs=1e-15)
            assert g["m2"] == pytest.approx(((r - r.mean()) ** 2).sum(), rel=1e-9, abs=1e-15)
            assert g["abs_r"] == np.abs(r).max()
            for d, rate in zip(g["down"], rf, strict=True):
                assert d == pytest.approx((np.minimum(r - rate, 0.0) ** 2).sum(), rel=1e-9, abs=1e-15)
