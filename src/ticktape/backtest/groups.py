"""A group of parameter sets of one strategy over a run's symbols, batch by
batch: the hot path of a pipeline sweep (docs/sweeps.md, "Over the pipeline").

Per batch of one symbol the group does the shared work once, as the
in-process sweep (:mod:`ticktape.backtest.sweep`) does: validation, each
distinct feature of its sets (:class:`ticktape.backtest.run.SharedFeatures`)
and the prices on the engine's grid (:class:`ticktape.native.TickBatch`);
per set only its strategy's decisions and its own engine on that batch
(``Engine.process_batch``; strategies that send orders or decide per tick
take the single run's path). Each set's fills and equity samples go
straight into its :class:`ticktape.compute.metrics.RunMetrics`, the
streaming metrics the sink computes a single pipeline run's metrics with,
fed in the order the sink reads them back from the store (by time, then
symbol, then the rows' columns), so every set's metrics are exactly those
of a single run of its spec (tested). Nothing per tick is kept: a set's
outputs are handed over in pieces of at least
:data:`ticktape.backtest.sweep.FLUSH_SAMPLES` equity samples (as a
:class:`~ticktape.backtest.sweep.SetStream`'s; nothing depends on the
pieces, fewer cost less).

The symbols' batches may arrive interleaved in any order (each symbol's in
its own order): a set's outputs are handed to its metrics up to the
watermark, the earliest of the unfinished symbols' latest tick times, so
samples of several symbols are merged in event time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ticktape.backtest.run import SharedFeatures
from ticktape.backtest.sweep import FLUSH_SAMPLES, advance
from ticktape.compute.metrics import RunMetrics
from ticktape.model.batch import EQUITY_DTYPE, FILL_DTYPE
from ticktape.model.spec import EngineConfig
from ticktape.native import Engine, TickBatch
from ticktape.stages import IndicatorState, StrategyState, features_step
from ticktape.strategy import build

_TICK_FIELDS = ("ts", "bid", "ask", "bid_size", "ask_size", "last", "last_size")


@dataclass
class SetSummary:
    """One set's results over all the run's symbols: the metrics a single
    pipeline run of its spec stores (``run_metrics``), its orders (distinct
    order ids, as the sink counts them) and fills; or why it failed."""

    metrics: dict[str, float]
    orders: int
    fills: int
    #: why the set failed (then no metrics), None if it did not
    error: str | None = None


class _Merge:
    """One set's outputs on their way into its RunMetrics, in event time over the symbols."""

    def __init__(self, symbols: Sequence[str], initial_cash: float, grid: str | int | None) -> None:
        self.metrics = RunMetrics(symbols, initial_cash, keep_trades=False, grid=grid)
        self.order = self.metrics.symbols  # (sorted)
        self.fills: list[list[np.ndarray]] = [[] for _ in self.order]
        self.samples: list[list[np.ndarray]] = [[] for _ in self.order]
        self.order_ids = np.empty(0, np.int64)
        self.n_fills = 0
        self.held = 0  # samples added since the last release

    def add(self, j: int, out: dict[str, np.ndarray]) -> None:
        self.fills[j].append(out["fills"])
        self.samples[j].append(out["equity"])
        self.n_fills += len(out["fills"])
        self.held += len(out["equity"])
        if len(out["orders"]):
            self.order_ids = np.union1d(self.order_ids, out["orders"]["order_id"])

    def release(self, before: float) -> None:
        """Hand over every fill and sample earlier than ``before`` (ns; inf: all)."""
        self.held = 0
        parts = []
        for j in range(len(self.order)):
            fills, self.fills[j] = _split(self.fills[j], before, FILL_DTYPE)
            if len(fills) > 1 and (np.diff(fills["ts"]) == 0).any():  # ties in time: the store's order
                keys = [fills[k] for k in ("fee", "qty", "price", "side", "order_id", "ts")]
                fills = fills[np.lexsort(keys)]  # (by time, order id, side, price, qty, fee)
            if len(fills):
                self.metrics.add_fills(self.order[j], fills)
            samples, self.samples[j] = _split(self.samples[j], before, EQUITY_DTYPE)
            parts.append((j, samples))
        n = sum(len(s) for _, s in parts)
        if not n:
            return
        ts = np.concatenate([s["ts"] for _, s in parts])
        sym = np.concatenate([np.full(len(s), j, np.int64) for j, s in parts])
        cols = {k: np.concatenate([s[k] for _, s in parts]) for k in ("cash", "position", "price", "equity")}
        o = np.lexsort([sym, ts])  # (each symbol's samples are in time order)
        if ((np.diff(ts[o]) == 0) & (np.diff(sym[o]) == 0)).any():  # ties: the store's order,
            # by time, symbol, then cash, position, price, equity (NaN last)
            o = np.lexsort([cols["equity"], cols["price"], cols["position"], cols["cash"], sym, ts])
        self.metrics.add(ts[o], sym[o], cols["equity"][o], cols["position"][o], cols["price"][o])


def _split(parts: list[np.ndarray], before: float, dtype: np.dtype) -> tuple[np.ndarray, list[np.ndarray]]:
    """(the rows earlier than ``before``, the rest as a one-part list) of time-ordered ``parts``."""
    if not parts:
        return np.empty(0, dtype), []
    arr = np.concatenate(parts) if len(parts) > 1 else parts[0]
    if not len(arr):
        return np.empty(0, dtype), []
    if before == math.inf:
        return arr, []
    k = int(np.searchsorted(arr["ts"], before, side="left"))
    return arr[:k], [arr[k:]] if k < len(arr) else []


class SetGroup:
    """A group of parameter sets of ``strategy`` (each ``{**base, **set}``)
    over ``symbols``, fed one batch of one symbol at a time (:meth:`add`),
    each symbol's batches in order, the symbols in any order; a set's
    outputs go to its metrics once it holds ``flush`` equity samples (the
    results never depend on it).

    Examples
    --------
    >>> from ticktape.testing import market
    >>> g = SetGroup("ma_crossover", {"size": 10}, [{"fast": 2, "slow": 5}, {"fast": 3, "slow": 8}],
    ...              EngineConfig(), ["A"])
    >>> g.add("A", market(500), eos=True)
    >>> [s.metrics["final_equity"] > 0 for s in g.results()]
    [True, True]
    """

    def __init__(
        self,
        strategy: str,
        base: dict[str, Any],
        sets: Sequence[dict[str, Any]],
        engine: EngineConfig,
        symbols: Sequence[str],
        return_grid: str | int | None = None,
        flush: int = FLUSH_SAMPLES,
    ) -> None:
        self.engine = engine
        self.flush = flush
        self.strats = [build(strategy, {**base, **p}) for p in sets]
        self.shared = SharedFeatures(self.strats)
        self.symbols = list(symbols)
        kw = engine.native_kwargs()
        self.engines = {s: [Engine(**kw, target_mode=st.target_mode) for st in self.strats] for s in symbols}
        self.states = {s: [StrategyState() for _ in self.strats] for s in symbols}
        self.users: dict[str, list[dict[str, Any]]] = {s: [{} for _ in self.strats] for s in symbols}
        self.indicators = {s: IndicatorState() for s in symbols}
        self.ticks_in = dict.fromkeys(symbols, 0)
        self.done: dict[str, bool] = dict.fromkeys(symbols, False)
        self._last: dict[str, float] = dict.fromkeys(symbols, -math.inf)  # latest accepted tick time
        self._merges = [_Merge(symbols, engine.initial_cash, return_grid) for _ in self.strats]
        self._index = {s: self._merges[0].order.index(s) for s in symbols} if self._merges else {}
        #: the sets that failed (index -> why, one line): the others go on
        self.failed: dict[int, str] = {}
        self._results: list[SetSummary] | None = None

    def add(self, symbol: str, ticks: np.ndarray, eos: bool = False) -> None:
        """The next batch of ``symbol`` (TICK_DTYPE; ``eos``: its last)."""
        if self.done[symbol]:
            raise ValueError(f"{symbol}: a batch after its end of stream")
        good, cols, feats, _, self.indicators[symbol] = features_step(
            self.shared.features, ticks, self.indicators[symbol], None, eos
        )
        self.ticks_in[symbol] += len(ticks)
        batch = TickBatch(
            *(good[k] for k in _TICK_FIELDS), tick_size=self.engine.tick_size, lot_size=self.engine.lot_size
        )
        outs = advance(
            self.strats,
            self.engines[symbol],
            self.states[symbol],
            self.users[symbol],
            self.shared,
            good,
            cols,
            feats,
            batch,
            eos,
            self.failed,
        )
        j = self._index[symbol]
        for merge, out in zip(self._merges, outs, strict=True):
            merge.add(j, out)
        if len(good):
            self._last[symbol] = float(good["ts"][-1])
        self.done[symbol] = eos
        # every later output of a symbol is at or after its latest tick (the engine stamps
        # fills and samples with the tick's time): what is earlier than all of them is final
        watermark = min((t for s, t in self._last.items() if not self.done[s]), default=math.inf)
        for i, merge in enumerate(self._merges):
            if (
                merge.held >= self.flush and i not in self.failed
            ):  # in pieces of this many samples: fewer cost less
                merge.release(watermark)

    @property
    def finished(self) -> bool:
        """Whether every symbol's end of stream was added."""
        return all(self.done.values())

    def results(self) -> list[SetSummary]:
        """Each set's summary, in the order of the sets (once every symbol ended;
        computed once)."""
        if not self.finished:
            raise ValueError(f"symbols not ended yet: {[s for s, d in self.done.items() if not d]}")
        if self._results is None:
            self._results = self._summaries()
        return self._results

    def _summaries(self) -> list[SetSummary]:
        out = []
        for i, m in enumerate(self._merges):
            if i in self.failed:
                out.append(SetSummary({}, 0, 0, self.failed[i]))
                continue
            m.release(math.inf)
            metrics, _ = m.metrics.result()
            metrics = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
            orders = len(m.order_ids)
            metrics.update({"orders": float(orders), "fills": float(m.n_fills)})
            out.append(SetSummary(metrics, orders, m.n_fills))
        return out
