"""The docs match the code: every metric key returned or stored is documented
in docs/metrics.md (and every documented key exists); every ``>>>`` example
in a ``python`` block of docs/*.md or the README runs; every test, benchmark,
migration or page they name exists."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ticktape.agents.sink import Latency
from ticktape.compute.accounting import trades
from ticktape.compute.metrics import performance, run_metrics
from ticktape.model.batch import Batch, ResultsHeader
from ticktape.native import Engine
from ticktape.testing import SECOND, T0, columns, quotes

REPO = Path(__file__).resolve().parents[2]
DOCS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]


def _a_run() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Equity samples and fills of one symbol that buys, then sells at a profit."""
    ticks = quotes(20, walk=0.05, decimals=2, size=100.0, seed=3)
    cols = columns(ticks)
    cols["target"][[2, 9, 15]] = [10.0, 0.0, -5.0]
    eng = Engine(0.01)
    out = eng.process(**cols)
    end = eng.finish()
    return {"S": np.concatenate([out["equity"], end["equity"]])}, {"S": out["fills"]}


def test_every_key_of_performance_is_documented_and_every_documented_one_returned(documented_metrics):
    equity, fills = _a_run()
    e = equity["S"]
    curve = pd.Series(e["equity"], index=e["ts"])
    got = performance(
        curve,
        trades=trades(fills["S"], e["ts"], e["price"]),
        positions=pd.Series(e["position"], index=e["ts"]),
    )
    assert len(fills["S"]) == 3 and len(got) > 20  # (a run with trades: every statistic computed)
    assert set(got) == documented_metrics["performance"]


def test_every_key_a_run_stores_is_documented_and_every_documented_one_stored(documented_metrics):
    equity, fills = _a_run()
    metrics, _ = run_metrics(equity, fills, 1e6)
    latency = Latency()
    header = ResultsHeader(decided_ns=T0 + SECOND, accepted=1, rejects={}, recv_ns=T0)
    latency.add(Batch(run_id="r", symbol="S", seq=0, arrays={}, header=header))
    # the pipeline's completion adds the run's counts of orders and fills (store.runs), and the sink
    # the latencies of a live run: integration/test_sink.py checks the names stored by a real run
    extra = set(metrics) - set(performance(pd.Series([1.0], index=[T0])))
    stored = extra | set(latency.metrics("r")) | {"orders", "fills"}
    assert extra == {"final_equity", "final_pnl"}
    assert stored == documented_metrics["stored"]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_the_docs_python_examples_run(path: Path) -> None:
    """``>>>`` examples in ```python blocks run (the other blocks are fragments: not run)."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
    examples = "\n".join(b for b in blocks if ">>>" in b)
    test = doctest.DocTestParser().get_doctest(examples, {}, path.name, str(path), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_the_files_the_docs_name_exist(path: Path) -> None:
    # tests and benchmarks move between folders; a page that names one proves nothing if it is gone
    named = set(
        re.findall(r"\b((?:tests|benchmarks|dbschema|docs)/[\w/.-]+\.(?:py|sql|md))\b", path.read_text())
    )
    missing = sorted(n for n in named if not (REPO / n).exists())
    assert not missing, f"{path.name} names files that do not exist: {missing}"
