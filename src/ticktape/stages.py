"""The pure per-batch stage functions of the pipeline.

Agents (ticktape.agents) are thin loops around these; the in-process path
(:func:`run_symbol`) calls the very same functions, which is what makes a
streaming run and an in-process run give identical results.

Each stage keeps explicit, serializable state per (run, symbol) and is
applied once per batch, in batch sequence order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ticktape import quality
from ticktape.batch import SIGNAL_DTYPE, empty
from ticktape.indicators import BarStream
from ticktape.native import Engine
from ticktape.spec import RunSpec
from ticktape.strategy import Strategy, build, compute_features, mid


@dataclass
class IndicatorState:
    """Carry of the indicators stage: validation and feature stream state."""

    last_ts: int | None = None
    rejects: dict[str, int] = field(default_factory=lambda: dict.fromkeys(quality.REASONS, 0))
    accepted: int = 0
    carry: dict[str, Any] = field(default_factory=dict)
    bars: dict[str, Any] | None = None  # BarStream state

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> IndicatorState:
        return cls(**json.loads(raw))


@dataclass
class StrategyState:
    """Carry of the strategy stage: the strategy's own state and last signal."""

    last_signal: float | None = None
    user: dict[str, Any] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> StrategyState:
        return cls(**json.loads(raw))


def indicators_step(
    strategy: Strategy, ticks: np.ndarray, state: IndicatorState, bar_ns: int | None = None, eos: bool = False
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, IndicatorState]:
    """Validate ticks, compute the strategy's feature columns and event-time bars.

    Returns the accepted ticks, their features, the mid-price bars of
    ``bar_ns`` that closed in this batch (all of them at ``eos``) and the new
    state (rejected ticks are counted by reason in ``state.rejects``).
    """
    ok, counts, last_ts = quality.validate(ticks, state.last_ts)
    good = ticks if ok.all() else ticks[ok]
    feats, carry = compute_features(strategy.features(), good, state.carry)
    rejects = {k: state.rejects.get(k, 0) + v for k, v in counts.items()}
    closed, bar_state = empty("bars"), None
    if bar_ns:
        stream = BarStream.from_state(state.bars) if state.bars else BarStream(bar_ns)
        closed = stream.update(good["ts"], mid(good))
        if eos:
            closed = np.concatenate((closed, stream.close()))
        bar_state = stream.to_state()
    return good, feats, closed, IndicatorState(last_ts, rejects, state.accepted + len(good), carry, bar_state)


def strategy_step(
    strategy: Strategy, ticks: np.ndarray, feats: dict[str, np.ndarray], state: StrategyState
) -> tuple[np.ndarray, np.ndarray, StrategyState]:
    """Run the strategy; return (target per tick, signal changes, new state)."""
    target, user = strategy.on_batch(ticks, feats, state.user)
    target = np.asarray(target, dtype=np.float64)
    if target.shape != (len(ticks),):
        raise ValueError(f"strategy {strategy.name!r} returned {target.shape} targets for {len(ticks)} ticks")
    decided = np.flatnonzero(~np.isnan(target))
    last = state.last_signal
    if len(decided):
        vals = target[decided]
        prev = np.concatenate(([np.nan if last is None else last], vals[:-1]))
        change = vals != prev
        sig = np.empty(int(change.sum()), dtype=SIGNAL_DTYPE)
        sig["ts"] = ticks["ts"][decided[change]]
        sig["value"] = vals[change]
        last = float(vals[-1])
    else:
        sig = empty("signals")
    return target, sig, StrategyState(last, user)


def new_engine(spec: RunSpec) -> Engine:
    e = spec.engine
    return Engine(
        tick_size=e.tick_size,
        lot_size=e.lot_size,
        latency_ns=e.latency_ns,
        fee_bps=e.fee_bps,
        initial_cash=e.initial_cash,
        equity_interval_ns=e.equity_interval_ns,
    )


def execution_step(engine: Engine, ticks: np.ndarray, target: np.ndarray, eos: bool) -> dict[str, np.ndarray]:
    """Feed one batch to the native engine; on end of stream, flush it."""
    out = engine.process(
        ticks["ts"], ticks["bid"], ticks["ask"], ticks["bid_size"], ticks["ask_size"], target
    )
    if eos:
        tail = engine.finish()
        out = {k: np.concatenate((out[k], tail[k])) for k in out}
    return out


@dataclass
class SymbolResult:
    """Everything one (run, symbol) stream produced."""

    signals: np.ndarray
    bars: np.ndarray
    fills: np.ndarray
    orders: np.ndarray
    equity: np.ndarray
    ticks_in: int
    accepted: int
    rejects: dict[str, int]


def run_symbol(spec: RunSpec, batches: Iterable[np.ndarray]) -> SymbolResult:
    """Run one symbol's ticks through all stages in process (no broker, no DB)."""
    strategy = build(spec.strategy, spec.params)
    ind, strat, engine = IndicatorState(), StrategyState(), new_engine(spec)
    outs: dict[str, list[np.ndarray]] = {"signals": [], "bars": [], "fills": [], "orders": [], "equity": []}
    n_in = 0
    it = iter(batches)
    ticks = next(it, empty("ticks"))
    while ticks is not None:
        following = next(it, None)  # look ahead one batch to know which is last
        n_in += len(ticks)
        eos = following is None
        good, feats, bars, ind = indicators_step(strategy, ticks, ind, spec.bar_ns, eos)
        target, sig, strat = strategy_step(strategy, good, feats, strat)
        res = execution_step(engine, good, target, eos)
        outs["signals"].append(sig)
        outs["bars"].append(bars)
        for k in ("fills", "orders", "equity"):
            outs[k].append(res[k])
        ticks = following
    joined = {k: np.concatenate(v) for k, v in outs.items()}
    return SymbolResult(ticks_in=n_in, accepted=ind.accepted, rejects=ind.rejects, **joined)
