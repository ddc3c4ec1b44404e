"""The sink's tick-to-decision latency percentiles: close to the exact ones,
in memory that does not grow with the number of ticks."""

from __future__ import annotations

import numpy as np
import pytest

from ticktape.agents.sink import Latency
from ticktape.model.batch import Batch, FailureHeader, ResultsHeader

DECIDED = 1_800_000_000_000_000_000


def _batch(run_id: str, ns: int | None) -> Batch[ResultsHeader]:
    """A result set decided ``ns`` after its tick was received (None: a replayed one)."""
    header = ResultsHeader(
        decided_ns=DECIDED, accepted=1, rejects={}, recv_ns=None if ns is None else DECIDED - ns
    )
    return Batch(run_id=run_id, symbol="A", seq=0, arrays={}, header=header)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_percentiles_are_within_half_a_percent_of_the_exact_ones(seed) -> None:
    rng = np.random.default_rng(seed)
    ns = np.rint(rng.lognormal(np.log(2e6), 1.0, 20_000)).astype(np.int64)  # around 2 ms
    lat = Latency()
    for x in ns:
        lat.add(_batch("r", int(x)))
    lat.add(_batch("r", None))  # a replayed batch carries no latency
    lat.add(Batch(run_id="r", symbol="A", seq=1, arrays={}, header=FailureHeader(error="x")))  # nor a failure
    got = lat.metrics("r")
    for q, name in ((50, "tick_to_decision_p50_ms"), (99, "tick_to_decision_p99_ms")):
        exact = np.percentile(ns, q, method="inverted_cdf") / 1e6
        assert got[name] == pytest.approx(exact, rel=0.005)


def test_a_long_run_keeps_a_fixed_size_histogram_and_forgetting_it_frees_it() -> None:
    lat = Latency()
    lat.add(_batch("r", 1))  # below 1 µs, and far above the last bin: clamped, not lost
    lat.add(_batch("r", 10**15))
    size = lat.counts["r"].nbytes
    for x in np.random.default_rng(3).integers(10**3, 10**9, 100_000):
        lat.add(_batch("r", int(x)))
    assert lat.counts["r"].nbytes == size <= 17_000
    assert lat.counts["r"].sum() == 100_002
    assert lat.metrics("other") == {}
    lat.forget("r")
    assert lat.metrics("r") == {} and not lat.counts
