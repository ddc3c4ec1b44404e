"""The pure per-batch stage functions of the pipeline.

Agents (ticktape.agents) are thin loops around these; the in-process path
(:func:`ticktape.backtest.run.run_symbol`) calls the very same functions, which is what makes a
streaming run and an in-process run give identical results.

Each stage keeps explicit, serializable state per (run, symbol) and is
applied once per batch, in batch sequence order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ticktape.compute import quality
from ticktape.compute.indicators import BarStream
from ticktape.errors import DataError, SpecError
from ticktape.model.batch import DEPTH_DTYPE, SIGNAL_DTYPE, empty
from ticktape.model.spec import RunSpec
from ticktape.native import Engine, InputError
from ticktape.strategy import (
    Columns,
    Context,
    Decisions,
    Feature,
    Fill,
    Strategy,
    Tick,
    build,
    compute_features,
    tick_columns,
)


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


def features_step(
    features: list[Feature],
    ticks: np.ndarray,
    state: IndicatorState,
    bar_ns: int | None = None,
    eos: bool = False,
) -> tuple[np.ndarray, Columns, dict[str, np.ndarray], np.ndarray, IndicatorState]:
    """Validate ticks, compute ``features`` and the event-time bars.

    Returns the accepted ticks, their columns, the feature columns, the price bars of
    ``bar_ns`` that closed in this batch (all of them at ``eos``) and the new
    state (rejected ticks are counted by reason in ``state.rejects``).
    """
    good, counts, last_ts = quality.accept(ticks, state.last_ts)
    cols = tick_columns(good)
    feats, carry = compute_features(features, cols, state.carry)
    rejects = {k: state.rejects.get(k, 0) + v for k, v in counts.items()}
    closed, bar_state = empty("bars"), None
    if bar_ns:
        stream = BarStream.from_state(state.bars) if state.bars else BarStream(bar_ns)
        closed = stream.update(good["ts"], cols["price"])
        if eos:
            closed = np.concatenate((closed, stream.close()))
        bar_state = stream.to_state()
    state = IndicatorState(last_ts, rejects, state.accepted + len(good), carry, bar_state)
    return good, cols, feats, closed, state


def indicators_step(
    strategy: Strategy, ticks: np.ndarray, state: IndicatorState, bar_ns: int | None = None, eos: bool = False
) -> tuple[np.ndarray, Columns, dict[str, np.ndarray], np.ndarray, IndicatorState]:
    """:func:`features_step` with the strategy's own features."""
    return features_step(strategy.features(), ticks, state, bar_ns, eos)


def _signals(
    ts: np.ndarray, target: np.ndarray | None, last: float | None
) -> tuple[np.ndarray, float | None]:
    """Changes of the target decision (the signal stream stored per run)."""
    if target is None:
        return empty("signals"), last
    decided = np.flatnonzero(~np.isnan(target))
    if not len(decided):
        return empty("signals"), last
    vals = target[decided]
    prev = np.concatenate(([np.nan if last is None else last], vals[:-1]))
    change = vals != prev
    sig = np.empty(int(change.sum()), dtype=SIGNAL_DTYPE)
    sig["ts"] = ts[decided[change]]
    sig["value"] = vals[change]
    return sig, float(vals[-1])


def strategy_step(
    strategy: Strategy, ticks: np.ndarray | Columns, feats: dict[str, np.ndarray], state: StrategyState
) -> tuple[Decisions, np.ndarray, StrategyState]:
    """Run a vectorized strategy on one batch; return (decisions, signal changes, new state)."""
    cols = ticks if isinstance(ticks, Columns) else tick_columns(ticks)
    value, user = strategy.on_batch(cols, feats, state.user)
    dec = Decisions.coerce(value, len(cols), strategy.name)
    sig, last = _signals(cols["ts"], dec.target, state.last_signal)
    return dec, sig, StrategyState(last, user)


def new_engine(spec: RunSpec, strategy: Strategy | None = None) -> Engine:
    """The native engine of one (run, symbol) stream: the spec's execution
    settings and how the strategy's targets are meant (units or a fraction
    of equity, :attr:`Strategy.target_mode`)."""
    strategy = strategy if strategy is not None else build(spec.strategy, spec.params)
    return Engine(**spec.engine.native_kwargs(), target_mode=strategy.target_mode)


def depth_at(ticks_ts: np.ndarray, levels: np.ndarray | None) -> np.ndarray | None:
    """L2 level updates (``LEVEL_DTYPE``: ts, side, price, qty) as the
    engine's ``DEPTH_DTYPE`` diffs of a batch of ticks: each update applies
    as the market data of the first tick at or after its time (updates after
    the batch's last tick belong to the next batch: the caller keeps them)."""
    if levels is None or not len(levels):
        return None
    out = np.empty(len(levels), dtype=DEPTH_DTYPE)
    out["i"] = np.searchsorted(ticks_ts, levels["ts"], side="left")
    out["side"] = levels["side"]
    out["price"] = levels["price"]
    out["qty"] = levels["qty"]
    return out


def depth_for_batch(
    good_ts: np.ndarray, carry: np.ndarray, new: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray]:
    """Split the level updates known by the end of a batch (``carry``, from
    before, then the batch's ``new`` ones) into the engine's diffs for its
    accepted ticks and the rest, carried to the next batch: updates after
    the last accepted tick (its trailing ticks were rejected, or none was
    accepted) wait for the next accepted tick, never applied earlier."""
    levels = np.concatenate((carry, new)) if len(carry) else new
    upto = int(np.searchsorted(levels["ts"], good_ts[-1], side="right")) if len(good_ts) else 0
    return depth_at(good_ts, levels[:upto]), levels[upto:]


#: What the strategy's decisions are made of, as the engine names them, and
#: what sets each: (the strategy parameter, the engine setting).
_DECIDED = {
    "target": ("size", "lot_size"),
    "orders.qty": ("size", "lot_size"),
    "orders.price": ("tick_size", "tick_size"),
}
_ENGINE_FIELD = re.compile(r"^([a-z_]+(?:\.[a-z_]+)?)\[(\d+)\] = ")


def refused(
    exc: InputError, strategy: Strategy | None, ticks: np.ndarray, orders: np.ndarray | None
) -> Exception:
    """The native engine's :class:`~ticktape.native.InputError` (``field[i] =
    value why``) as one line for the user: a :class:`SpecError` naming the
    parameter or engine setting behind a refused decision (an order size
    off the lot grid, a quote price off the tick grid, a target out of
    range), a :class:`DataError` for refused market data; either with the
    strategy and the time of the tick."""
    text = str(exc)
    m = _ENGINE_FIELD.match(text)
    field, k = (m.group(1), int(m.group(2))) if m else ("", -1)
    i = (
        k
        if not field.startswith("orders.")
        else (int(orders["i"][k]) if orders is not None and 0 <= k < len(orders) else -1)
    )
    when = f" at the tick of {_iso(int(ticks['ts'][i]))}" if 0 <= i < len(ticks) else ""
    name = strategy.name if strategy is not None else "the strategy"
    if field.startswith("orders.") or field == "target":
        param, setting = _DECIDED.get(field, ("", ""))
        names = (
            [f"params.{param}"]
            if strategy is not None and param in getattr(strategy.config, "__dataclass_fields__", {})
            else []
        )
        names += [f"engine.{setting}"] if setting else []
        return SpecError(
            f"{' or '.join(names) or field}: the engine refused a decision of {name}{when}: {text}"
        )
    return DataError(f"{field or 'ticks'}: the engine refused the market data{when}: {text}")


def _iso(ns: int) -> str:
    return np.datetime_as_string(np.datetime64(ns, "ns"), unit="ms") + "Z"


def execution_step(
    engine: Engine,
    ticks: np.ndarray,
    decisions: Decisions | np.ndarray | None,
    eos: bool,
    depth: np.ndarray | None = None,
    strategy: Strategy | None = None,
) -> dict[str, np.ndarray]:
    """Feed one batch and the strategy's decisions (and the batch's L2 depth
    diffs, ``DEPTH_DTYPE``, when there are any) to the native engine; on end
    of stream, flush it. A batch the engine refuses is a one-line error
    (:func:`refused`; ``strategy``, when given, is named in it)."""
    if not isinstance(decisions, Decisions):
        decisions = Decisions(decisions, None)
    try:
        out = engine.process(
            ticks["ts"],
            ticks["bid"],
            ticks["ask"],
            ticks["bid_size"],
            ticks["ask_size"],
            decisions.target,
            last=ticks["last"],
            last_size=ticks["last_size"],
            orders=decisions.orders,
            depth=depth,
        )
    except InputError as exc:
        raise refused(exc, strategy, ticks, decisions.orders) from None
    if eos:
        tail = engine.finish()
        out = {k: np.concatenate((out[k], tail[k])) for k in out}
    return out


def _tick_loop(
    strategy: Strategy,
    engine: Engine,
    ticks: np.ndarray,
    feats: dict[str, np.ndarray],
    state: StrategyState,
    cols: Columns | None = None,
    depth: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, StrategyState]:
    """The per-tick path: on_fill for every fill known by the tick, then
    on_tick, then one engine step for that tick (with its depth diffs)."""
    user = json.loads(json.dumps(state.user))  # the strategy mutates it: keep the input state intact
    ctx = Context(user, engine.initial_cash)
    pending = ctx.state.setdefault("_pending", [])  # [known_ts, kind, fields...]; kind 0 fill, 1 order event
    cols = tick_columns(ticks) if cols is None else cols
    names = list(feats)
    parts: dict[str, list[np.ndarray]] = {"fills": [], "orders": [], "equity": []}
    targets = np.full(len(ticks), np.nan)
    if depth is not None:  # each tick's diffs, as a one-tick batch's
        cuts = np.searchsorted(depth["i"], np.arange(len(ticks) + 1), side="left")
    for i in range(len(ticks)):
        ts = int(cols["ts"][i])
        if pending and pending[0][0] <= ts:
            due = [p for p in pending if p[0] <= ts]
            pending[:] = [p for p in pending if p[0] > ts]
            for p in due:
                if p[1] == 0:
                    fill = Fill(*p[2:])
                    ctx._on_fill(fill)
                    strategy.on_fill(fill, ctx)
                else:
                    ctx._on_order_event(*p[2:])
        ctx.reserve_ids(engine.max_order_id)
        ctx.price = float(cols["price"][i])
        ctx.features = {k: float(feats[k][i]) for k in names}
        tick = Tick(
            ts,
            ctx.price,
            *(float(cols[k][i]) for k in ("bid", "ask", "bid_size", "ask_size", "last", "volume")),
        )
        strategy.on_tick(tick, ctx)
        target, instr = ctx._take()
        targets[i] = target
        try:
            out = engine.process(
                ticks["ts"][i : i + 1],
                ticks["bid"][i : i + 1],
                ticks["ask"][i : i + 1],
                ticks["bid_size"][i : i + 1],
                ticks["ask_size"][i : i + 1],
                targets[i : i + 1],
                last=ticks["last"][i : i + 1],
                last_size=ticks["last_size"][i : i + 1],
                orders=instr,
                depth=_tick_depth(depth, cuts, i) if depth is not None else None,
            )
        except InputError as exc:
            raise refused(exc, strategy, ticks[i : i + 1], instr) from None
        for k, acc in parts.items():
            acc.append(out[k])
        known = engine.response_latency_ns
        for f in out["fills"]:
            pending.append(
                [
                    int(f["ts"]) + known,
                    0,
                    int(f["ts"]),
                    int(f["order_id"]),
                    int(f["side"]),
                    float(f["price"]),
                    float(f["qty"]),
                    float(f["fee"]),
                ]
            )
        for o in out["orders"]:
            pending.append([int(o["ts"]) + known, 1, int(o["order_id"]), int(o["event"]), float(o["qty"])])
    out = {k: np.concatenate(v) if v else empty(k) for k, v in parts.items()}
    sig, last = _signals(cols["ts"], targets, state.last_signal)
    return out, sig, StrategyState(last, ctx.state)


def _tick_depth(depth: np.ndarray, cuts: np.ndarray, i: int) -> np.ndarray | None:
    if cuts[i] == cuts[i + 1]:
        return None
    part = depth[cuts[i] : cuts[i + 1]].copy()
    part["i"] = 0
    return part


def trade_step(
    strategy: Strategy,
    engine: Engine,
    ticks: np.ndarray,
    feats: dict[str, np.ndarray],
    state: StrategyState,
    eos: bool,
    cols: Columns | None = None,
    depth: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, StrategyState]:
    """Strategy + execution for one batch of accepted ticks, either path
    (``cols``: the ticks' columns when already computed; ``depth``: the
    batch's L2 diffs, ``DEPTH_DTYPE``, see :func:`depth_at`).

    Returns the engine's outputs (fills, orders, equity), the signal changes
    and the strategy's new state.
    """
    if strategy.per_tick:
        out, sig, state = _tick_loop(strategy, engine, ticks, feats, state, cols, depth)
        if eos:
            tail = engine.finish()
            out = {k: np.concatenate((out[k], tail[k])) for k in out}
        return out, sig, state
    dec, sig, state = strategy_step(strategy, ticks if cols is None else cols, feats, state)
    return execution_step(engine, ticks, dec, eos, depth, strategy), sig, state
