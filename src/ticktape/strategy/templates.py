"""Strategy templates.

Every template is a :class:`~ticktape.strategy.Strategy` with a frozen config
that includes the :class:`Common` options. Each parameter is declared once,
on its config field (:func:`~ticktape.strategy.params.param`: type, default,
bounds, choices, help), and the rules between fields are the config's
``check()``; validation, coercion, ``ticktape strategy params NAME`` and the
``--param`` help are derived from them (:mod:`ticktape.strategy.params`).

``long_only``
    never hold a short position (short entries become exits);
``size`` / ``sizing`` / ``fraction``
    ``sizing="fixed"`` holds ``size`` units; ``sizing="equity"`` buys (or
    sells short) ``fraction`` of the current equity when a position is
    entered, in whole lots at the deciding tick's price (the engine converts
    it, knowing cash and position: ``target_mode`` 1), and holds that size
    until the position changes;
``stop_loss`` / ``take_profit``
    fractions of the entry price (0 = off). The entry price is the price of
    the tick at which the strategy decided to enter (its signal price, not the
    fill price — fills are not visible to a vectorized strategy). After a stop
    the position stays flat until the template's signal changes.

The vectorized templates describe themselves as four boolean event columns
(enter long, exit long, enter short, exit short); :func:`positions` turns
them into a position path in one pass of numpy, with the carry across
batches in the state (so the path is identical for any split).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import ticktape._native as _native  # noqa: PLR0402 (the from-form reaches mypy through ticktape.__getattr__, in an import cycle: Any?)
from ticktape.compute import indicators
from ticktape.errors import SpecError
from ticktape.strategy import rules
from ticktape.strategy.api import Columns, Context, Feature, Fill, Strategy, Tick, register
from ticktape.strategy.params import Params, fmt, param, window

#: Quantities (``size``, ``max_inventory``) are below 2**53 units: the engine
#: counts them in whole lots below 2**53 (with the default lot size of 1; a
#: finer lot size narrows it, and the engine says so when the run starts).
MAX_UNITS = 2.0**53
#: The farthest a market maker quotes from the mid, in ticks (``spread_ticks``,
#: ``skew``): farther quotes never fill, and the cap keeps quote prices inside
#: the engine's price range.
MAX_TICKS = 1_000_000


@dataclass(frozen=True, kw_only=True)
class Common(Params):
    """Options every template has (see the module docstring)."""

    long_only: bool = param(False, help="never hold a short position (short entries become exits)")
    size: float = param(100.0, gt=0, lt=MAX_UNITS, help="units held when sizing is fixed")
    sizing: str = param(
        "fixed", choices=("fixed", "equity"), help="fixed: hold size units; equity: a fraction of equity"
    )
    fraction: float = param(1.0, gt=0, le=1, help="fraction of equity held when sizing is equity")
    stop_loss: float = param(0.0, ge=0, help="exit at this loss, a fraction of the entry price; 0 = off")
    take_profit: float = param(0.0, ge=0, help="exit at this gain, a fraction of the entry price; 0 = off")

    def check(self) -> None:
        super().check()
        if self.sizing == "fixed" and self.fraction != 1.0:
            raise SpecError("params.fraction: only used with sizing = 'equity' (sizing is 'fixed')")


def _units_only(sizing: str, who: str) -> None:
    if sizing != "fixed":
        raise SpecError(f"params.sizing: {who} sizes in units: must be 'fixed', got {sizing!r}")


def _z_order(entry_z: float, exit_z: float) -> None:
    if not exit_z < entry_z:
        raise SpecError(f"params.exit_z: must be < entry_z, got exit_z={fmt(exit_z)} entry_z={fmt(entry_z)}")


def _lag(values: np.ndarray, carried: float) -> np.ndarray:
    return np.concatenate(([carried], values[:-1]))


def positions(
    enter_long: np.ndarray,
    exit_long: np.ndarray,
    enter_short: np.ndarray,
    exit_short: np.ndarray,
    carry: float | None,
) -> np.ndarray:
    """Position direction (+1, 0, -1; NaN before the first event) per tick.

    The latest entry decides the side; an exit of that side after it makes
    the position flat. Entries win over exits on the same tick (and a short
    entry over a long one). ``carry`` is the direction after the previous
    batch (None: none yet). A state machine in C++ (native/kernels.hpp).

    Examples
    --------
    >>> t, f = True, False
    >>> positions(np.array([f, t, f, f]), np.array([f, f, t, f]),
    ...           np.array([f, f, f, t]), np.array([f, f, f, f]), None).tolist()
    [nan, 1.0, 0.0, -1.0]
    """
    flags = [
        np.ascontiguousarray(e, dtype=bool).view(np.uint8)
        for e in (enter_long, exit_long, enter_short, exit_short)
    ]
    out, _ = _native.positions(*flags, np.nan if carry is None else float(carry))
    return out


def apply_stops(
    price: np.ndarray, pos: np.ndarray, carry: dict[str, Any], stop_loss: float, take_profit: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """Flatten a position path once price moves ``stop_loss`` against (or
    ``take_profit`` in favour of) the entry price; stay flat until the path
    changes. ``carry`` holds (pos, entry, stopped) of the last tick."""
    n = len(pos)
    if n == 0:
        return pos, carry
    prev = carry.get("pos", np.nan)
    prev = np.nan if prev is None else prev
    lagged = _lag(pos, prev)
    change = (pos != lagged) & ~(np.isnan(pos) & np.isnan(lagged))
    regime = np.cumsum(change)
    starts = np.flatnonzero(change)
    entry = np.empty(regime[-1] + 1)
    entry[0] = carry.get("entry", np.nan)
    entry[regime[starts]] = price[starts]
    e = entry[regime]
    d = np.nan_to_num(pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = d * (price / e - 1.0)
        hit = d != 0
        trig = np.zeros(n, dtype=bool)
        if stop_loss > 0:
            trig |= r <= -stop_loss
        if take_profit > 0:
            trig |= r >= take_profit
        hit &= trig
    cum = np.cumsum(hit)
    offset = np.zeros(regime[-1] + 1, dtype=np.int64)
    offset[regime[starts]] = (cum - hit)[starts]
    stopped = (cum - offset[regime]) > 0
    if carry.get("stopped"):
        stopped |= regime == 0
    out = np.where(stopped, 0.0, pos)
    new = {"pos": float(pos[-1]), "entry": float(entry[regime[-1]]), "stopped": bool(stopped[-1])}
    return out, new


class Template(Strategy):
    """A vectorized template: :meth:`events` → positions → stops → sizing."""

    def events(
        self, batch: Columns, f: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[np.ndarray, ...]:
        """(enter_long, exit_long, enter_short, exit_short) boolean columns."""
        raise NotImplementedError

    def on_batch(
        self, batch: Columns, features: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[Any, dict]:
        c = self.config
        state = dict(state)
        with np.errstate(invalid="ignore"):
            el, xl, es, xs = self.events(batch, features, state)
        if c.long_only:
            xl = xl | es
            es = np.zeros_like(es)
        pos = positions(el, xl, es, xs, state.get("dir"))
        if len(pos):
            state["dir"] = None if np.isnan(pos[-1]) else float(pos[-1])
        if c.stop_loss or c.take_profit:
            pos, state["stops"] = apply_stops(
                batch["price"], pos, state.get("stops", {}), c.stop_loss, c.take_profit
            )
        if c.sizing == "fixed":
            return pos * c.size, state
        # a fraction of equity is sized when the position changes, then held
        # (re-sending it every tick would rebalance on every price move)
        prev = state.get("held")
        lagged = np.concatenate(([np.nan if prev is None else prev], pos[:-1]))
        changed = (pos != lagged) & ~np.isnan(pos)
        if len(pos):
            state["held"] = None if np.isnan(pos[-1]) else float(pos[-1])
        return np.where(changed, pos * c.fraction, np.nan), state


@dataclass(frozen=True, kw_only=True)
class MaCrossoverConfig(Common):
    """Moving-average crossover. ``fast``/``slow``: window lengths in ticks
    (bars on bar data), fast < slow; ``fast=1`` means the price itself;
    ``ma``: sma, ema or wma."""

    fast: int = window(50, help="fast moving average, rows (1 = the price itself)")
    slow: int = window(200, help="slow moving average, rows (> fast)")
    ma: str = param("sma", choices=("sma", "ema", "wma"), help="kind of moving average")

    def check(self) -> None:
        super().check()
        if self.slow <= self.fast:
            raise SpecError(f"params.slow: must be > fast, got fast={self.fast} slow={self.slow}")


@register
class MaCrossover(Template):
    """Long while MA(fast) > MA(slow) of the price, short (flat if
    ``long_only``) while it is below; no decision during warm-up or on a tie.
    The classic trend follower."""

    name = "ma_crossover"
    Config = MaCrossoverConfig

    def features(self) -> list[Feature]:
        c = self.config
        out = [Feature("ma_slow", c.ma, {"n": c.slow})]
        if c.fast > 1:
            out.append(Feature("ma_fast", c.ma, {"n": c.fast}))
        return out

    def events(
        self, batch: Columns, f: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[np.ndarray, ...]:
        fast = f["ma_fast"] if self.config.fast > 1 else batch["price"]
        up, down = fast > f["ma_slow"], fast < f["ma_slow"]
        return up, down, down, up


@register
class SmaCrossover(MaCrossover):
    """``ma_crossover`` with simple moving averages (the walking skeleton's name)."""

    name = "sma_crossover"


@dataclass(frozen=True, kw_only=True)
class RsiReversionConfig(Common):
    """RSI mean reversion: long below ``lower``, short above ``upper``, flat
    when RSI crosses back through ``exit``."""

    n: int = window(14, help="RSI window, rows")
    lower: float = param(30.0, ge=0, le=100, help="long below this RSI")
    upper: float = param(70.0, ge=0, le=100, help="short above this RSI (>= lower)")
    exit: float = param(
        50.0, ge=0, le=100, help="flat when RSI is back at this level (between lower and upper)"
    )

    def check(self) -> None:
        super().check()
        lower, upper, exit_ = self.lower, self.upper, self.exit
        if not lower <= upper:
            raise SpecError(f"params.upper: must be >= lower, got lower={fmt(lower)} upper={fmt(upper)}")
        if not lower <= exit_ <= upper:
            raise SpecError(
                f"params.exit: must be between lower and upper, got {fmt(exit_)} "
                f"(lower={fmt(lower)}, upper={fmt(upper)})"
            )


@register
class RsiReversion(Template):
    """Buy oversold, sell overbought: RSI (Wilder) below ``lower`` enters
    long, above ``upper`` enters short; a long exits once RSI is back at or
    above ``exit``, a short once it is at or below it."""

    name = "rsi_reversion"
    Config = RsiReversionConfig

    def features(self) -> list[Feature]:
        return [Feature("rsi", "rsi", {"n": self.config.n})]

    def events(
        self, batch: Columns, f: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[np.ndarray, ...]:
        c, r = self.config, f["rsi"]
        return r < c.lower, r >= c.exit, r > c.upper, r <= c.exit


@dataclass(frozen=True, kw_only=True)
class BollingerReversionConfig(Common):
    """Bollinger reversion over ``n`` with bands ``k`` standard deviations wide."""

    n: int = window(20, ge=2, help="window of the bands' SMA and standard deviation, rows")
    k: float = param(2.0, gt=0, help="band width in standard deviations")


@register
class BollingerReversion(Template):
    """Fade moves outside the bands: long below the lower band, short above
    the upper band, flat when the price is back at the middle (the SMA)."""

    name = "bollinger_reversion"
    Config = BollingerReversionConfig

    def features(self) -> list[Feature]:
        c = self.config
        return [Feature("bb", "bollinger", {"n": c.n, "k": c.k})]

    def events(
        self, batch: Columns, f: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[np.ndarray, ...]:
        p = batch["price"]
        return p < f["bb.lower"], p >= f["bb.middle"], p > f["bb.upper"], p <= f["bb.middle"]


@dataclass(frozen=True, kw_only=True)
class BreakoutConfig(Common):
    """Channel breakout: entries on ``n``-period extremes, exits on ``exit_n``."""

    n: int = window(20, help="entry channel: a new high (low) of the previous n rows goes long (short)")
    exit_n: int = window(10, help="exit channel: rows of the low (high) that closes a long (short)")


@register
class Breakout(Template):
    """Momentum (Donchian): long when the price exceeds the highest price of
    the previous ``n`` ticks/bars, short when it falls below the lowest;
    a long exits below the lowest of the previous ``exit_n``, a short above
    the highest (the turtle rule)."""

    name = "breakout"
    Config = BreakoutConfig

    def features(self) -> list[Feature]:
        c = self.config
        return [
            Feature("hi", "highest", {"n": c.n}, {"x": "high"}),
            Feature("lo", "lowest", {"n": c.n}, {"x": "low"}),
            Feature("xhi", "highest", {"n": c.exit_n}, {"x": "high"}),
            Feature("xlo", "lowest", {"n": c.exit_n}, {"x": "low"}),
        ]

    def events(
        self, batch: Columns, f: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[np.ndarray, ...]:
        p = batch["price"]
        return p > f["hi"], p < f["xlo"], p < f["lo"], p > f["xhi"]


@dataclass(frozen=True, kw_only=True)
class VwapReversionConfig(Common):
    """VWAP reversion: ``n`` rolling ticks (0 = the session VWAP, UTC days);
    z-score of price − VWAP over ``z_n`` ticks; ``entry_z`` / ``exit_z``."""

    n: int = window(0, ge=0, help="VWAP window, rows; 0 = the session VWAP (UTC days)")
    z_n: int = window(100, ge=2, help="window of the z-score of price - VWAP, rows")
    entry_z: float = param(2.0, gt=0, help="enter at this z-score (either side)")
    exit_z: float = param(0.0, ge=0, help="exit once the z-score is back within this (< entry_z)")

    def check(self) -> None:
        super().check()
        _z_order(self.entry_z, self.exit_z)


@register
class VwapReversion(Template):
    """Fade deviations from the volume-weighted average price: long when the
    price is ``entry_z`` standard deviations below VWAP, short when above;
    exit when the deviation is back within ``exit_z``. Needs trade volume."""

    name = "vwap_reversion"
    Config = VwapReversionConfig

    def features(self) -> list[Feature]:
        c = self.config
        params = {"n": c.n} if c.n else {}
        return [Feature("vwap", "vwap", params)]

    def events(
        self, batch: Columns, f: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[np.ndarray, ...]:
        c = self.config
        dev = batch["price"] - f["vwap"]
        z_state = state.get("z")
        stream = (
            indicators.STREAMS["zscore"].from_state(z_state)
            if z_state
            else indicators.STREAMS["zscore"](n=c.z_n)
        )
        z = np.full(len(dev), np.nan)
        known = np.isfinite(dev)  # VWAP is undefined until volume has traded
        z[known] = stream.update(dev[known])
        state["z"] = stream.to_state()
        return z < -c.entry_z, z >= -c.exit_z, z > c.entry_z, z <= c.exit_z


@dataclass(frozen=True, kw_only=True)
class PairsConfig(Common):
    """Pairs trade of ``symbols`` (two): z-score of the log-price spread over
    ``n`` observations; ``entry_z`` / ``exit_z``; ``hedge`` "ols" (rolling
    OLS slope of log A on log B) or "ratio" (slope 1)."""

    symbols: tuple[str, str] = param(help="the two symbols A and B (A is traded in size units)")
    n: int = window(100, ge=3, help="lookback of the hedge ratio and the spread's z-score, observations")
    entry_z: float = param(2.0, gt=0, help="enter at this z-score of the spread (either side)")
    exit_z: float = param(0.5, ge=0, help="exit once the z-score is back within this (< entry_z)")
    hedge: str = param(
        "ols", choices=("ols", "ratio"), help="ols: rolling OLS slope of log A on log B; ratio: slope 1"
    )

    def check(self) -> None:
        super().check()
        _z_order(self.entry_z, self.exit_z)
        _units_only(self.sizing, "pairs (its legs)")


def _rolling_slope(y: np.ndarray, x: np.ndarray, tail: list[list[float]], n: int) -> tuple[np.ndarray, list]:
    """OLS slope of y on x over the last ``n`` points (this one included),
    each window computed from its own values (exact for any split); ``tail``
    carries the previous n - 1 points."""
    ty = np.array([p[0] for p in tail]) if tail else np.empty(0)
    tx = np.array([p[1] for p in tail]) if tail else np.empty(0)
    by, bx = np.concatenate((ty, y)), np.concatenate((tx, x))
    out = np.full(len(y), np.nan)
    if len(by) >= n:
        wy = np.lib.stride_tricks.sliding_window_view(by, n)
        wx = np.lib.stride_tricks.sliding_window_view(bx, n)
        dx = wx - wx.mean(axis=1, keepdims=True)
        dy = wy - wy.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
        k = len(slope)
        m = min(k, len(y))
        out[len(y) - m :] = slope[k - m :]
    start = max(0, len(by) - (n - 1))
    new_tail = [[float(a), float(b)] for a, b in zip(by[start:], bx[start:], strict=True)]
    return out, new_tail


@register
class Pairs(Strategy):
    """Statistical arbitrage on two symbols: when the spread ``log A − β·log B``
    is ``entry_z`` standard deviations (over ``n`` observations) above its
    mean, sell A and buy B; below, the reverse; flat once it is back within
    ``exit_z``. The B leg is sized at entry to ``β · size · price_A /
    price_B`` units (so each leg's notional matches the hedge) and held
    until the exit. The strategy sees both symbols merged in event time
    (each tick updates one symbol; the other's last quote carries over)."""

    name = "pairs"
    Config = PairsConfig

    @property
    def symbols(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.config.symbols)

    def on_batch(
        self, batch: Columns, features: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[Any, dict]:
        c = self.config
        a, b = c.symbols
        state = dict(state)
        with np.errstate(invalid="ignore", divide="ignore"):
            la, lb = np.log(batch[f"{a}.price"]), np.log(batch[f"{b}.price"])
        n = len(batch)
        ok = np.isfinite(la) & np.isfinite(lb)
        beta = np.full(n, np.nan)
        if c.hedge == "ols":
            beta[ok], state["ols"] = _rolling_slope(la[ok], lb[ok], state.get("ols", []), c.n)
        else:
            beta[ok] = 1.0
        spread = la - beta * lb
        known = np.isfinite(spread)
        z = np.full(n, np.nan)
        zs = (
            indicators.STREAMS["zscore"].from_state(state["z"])
            if "z" in state
            else indicators.STREAMS["zscore"](n=c.n)
        )
        z[known] = zs.update(spread[known])
        state["z"] = zs.to_state()
        with np.errstate(invalid="ignore"):
            el, xl, es, xs = z < -c.entry_z, z >= -c.exit_z, z > c.entry_z, z <= c.exit_z
        if c.long_only:
            xl, es = xl | es, np.zeros_like(es)
        d = positions(el, xl, es, xs, state.get("dir"))
        if n:
            state["dir"] = None if np.isnan(d[-1]) else float(d[-1])
        # B units fixed at each entry: beta * size * pA / pB, held through the trade
        with np.errstate(invalid="ignore"):
            hedge_now = beta * c.size * np.exp(la - lb)
        prev = np.concatenate(([np.nan if state.get("dir_prev") is None else state["dir_prev"]], d[:-1]))
        entry = (d != 0) & ~np.isnan(d) & ((d != prev) | np.isnan(prev))
        idx = np.where(entry, np.arange(n), -1)
        last = np.maximum.accumulate(idx) if n else idx
        carried = state.get("units")
        units = np.where(last >= 0, hedge_now[np.maximum(last, 0)], np.nan if carried is None else carried)
        if n:
            state["units"] = float(units[-1]) if np.isfinite(units[-1]) else None
            state["dir_prev"] = state["dir"]
        target_a = d * c.size
        target_b = np.where(d == 0, 0.0, -d * units)
        return {a: target_a, b: target_b}, state


_CONDS = ("entry", "exit", "short_entry", "short_exit")


@dataclass(frozen=True, kw_only=True)
class RulesConfig(Common):
    """Rule conditions (see ticktape.strategy.rules for the COND format): ``entry``
    goes long, ``exit`` closes the long, ``short_entry`` / ``short_exit`` the
    same for shorts; any may be None, but an entry needs its exit unless
    ``stop_loss`` or ``take_profit`` closes the position (the exit is then
    ``{"any": []}``, never true)."""

    entry: Mapping[str, Any] | None = param(
        None, kind="condition", parse=rules.validate_cond, help="go long when true"
    )
    exit: Mapping[str, Any] | None = param(
        None, kind="condition", parse=rules.validate_cond, help="close the long when true"
    )
    short_entry: Mapping[str, Any] | None = param(
        None, kind="condition", parse=rules.validate_cond, help="go short when true"
    )
    short_exit: Mapping[str, Any] | None = param(
        None, kind="condition", parse=rules.validate_cond, help="close the short when true"
    )

    def check(self) -> None:
        super().check()
        protective = self.stop_loss > 0 or self.take_profit > 0
        for enter, leave in (("entry", "exit"), ("short_entry", "short_exit")):
            if getattr(self, leave) is not None and getattr(self, enter) is None:
                raise SpecError(f"params.{leave}: given without params.{enter}")
            if getattr(self, enter) is not None and getattr(self, leave) is None:
                if not protective:
                    raise SpecError(
                        f"params.{leave}: required with params.{enter} "
                        "(or set stop_loss / take_profit to close positions)"
                    )
                object.__setattr__(self, leave, {"any": []})  # never: only the stops close it
        if self.entry is None and self.short_entry is None:
            raise SpecError("params.entry: a rules strategy needs params.entry and/or params.short_entry")
        if self.long_only and self.short_entry is not None:
            raise SpecError("params.short_entry: cannot be used with long_only = true")


def _feature_of(node: dict[str, Any]) -> tuple[Feature, str]:
    """The indicator Feature a VALUE node reads, and the column to take."""
    kind = node["ind"]
    pick = rules.PICKERS.get(kind)
    params = {k: v for k, v in node.items() if k not in ("ind", "source", pick)}
    if kind == "vwap" and not params.get("n"):
        params.pop("n", None)
    source = node.get("source", "close")
    inputs = {} if kind == "atr" else ({"price": source} if kind == "vwap" else {"x": source})
    name = json.dumps([kind, params, source], sort_keys=True)
    return Feature(name, kind, params, inputs), (f"{name}.{node[pick]}" if pick else name)


@register
class Rules(Template):
    """A strategy written as rule conditions (what ``ticktape strategy
    from-text`` produces): comparisons and crossings of prices and
    indicators, combined with all / any / not."""

    name = "rules"
    Config = RulesConfig

    def _nodes(self) -> list[dict[str, Any]]:
        conds = [c for c in (getattr(self.config, k) for k in _CONDS) if c is not None]
        return rules.value_nodes({"all": conds})

    def features(self) -> list[Feature]:
        out: dict[str, Feature] = {}
        for node in self._nodes():
            if "ind" in node:
                f, _ = _feature_of(node)
                out[f.name] = f
        return list(out.values())

    def events(
        self, batch: Columns, f: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[np.ndarray, ...]:
        columns = {}
        for node in self._nodes():
            if "ind" in node:
                columns[rules.node_key(node)] = f[_feature_of(node)[1]]
            else:
                columns[rules.node_key(node)] = batch[node["price"]]
        carry = state.get("rules", {})
        n = len(batch)
        out, new = [], {}
        for name in _CONDS:
            cond = getattr(self.config, name)
            if cond is None:
                out.append(np.zeros(n, dtype=bool))
                continue
            hit, new[name] = rules.evaluate(cond, columns, carry.get(name), length=n)
            out.append(hit)
        state["rules"] = new
        return tuple(out)


@dataclass(frozen=True, kw_only=True)
class MarketMakerConfig(Common):
    """Passive market making: quotes ``spread_ticks`` ticks either side of the
    mid, ``size`` per quote, within ±``max_inventory``; quotes shift by
    ``skew`` ticks per ``max_inventory`` of position (leaning against it).

    The bid is ``floor(m) - spread_ticks`` and the ask ``ceil(m) +
    spread_ticks`` ticks, ``m`` the mid in ticks less the lean, so the ask
    is at least ``2 * spread_ticks`` ticks above the bid. ``spread_ticks`` is
    at least 1: with 0 the bid and the ask are the same price whenever the
    mid falls on the grid (a market an even number of ticks wide), and the
    engine, which matches the strategy's orders only against market data
    (there is no self-trade), would fill both on one trade there: a wash
    trade no venue allows. Quote offsets are at most :data:`MAX_TICKS`; a side
    whose price would not be positive is not quoted.
    """

    spread_ticks: int = param(
        2, ge=1, le=MAX_TICKS, help="ticks from the mid (floor / ceil) to each quote; >= 1"
    )
    max_inventory: float = param(1000.0, gt=0, lt=MAX_UNITS, help="largest position either side (>= size)")
    skew: float = param(
        0.0, ge=-MAX_TICKS, le=MAX_TICKS, help="ticks of quote shift per max_inventory of position"
    )
    tick_size: float = param(0.01, gt=0, help="price increment of the quotes (the instrument's tick size)")

    def check(self) -> None:
        super().check()
        if not self.max_inventory >= self.size:
            raise SpecError(
                f"params.max_inventory: must be >= size, got {fmt(self.max_inventory)} (size {fmt(self.size)})"
            )
        _units_only(self.sizing, "market_maker (its quotes)")


@register
class MarketMaker(Strategy):
    """Quote a bid and an ask around the mid and earn the spread, leaning
    the quotes against inventory. Per-tick strategy (it needs its fills to
    know its inventory): it exercises resting limit orders, queue position
    and maker fees. Quotes move (modify, losing queue priority) only when
    their price changes."""

    name = "market_maker"
    Config = MarketMakerConfig
    sides: ClassVar = ((1, "bid"), (-1, "ask"))

    def on_tick(self, tick: Tick, ctx: Context) -> None:
        c = self.config
        if not (np.isfinite(tick.bid) and np.isfinite(tick.ask)):
            return
        mid_ticks = (tick.bid + tick.ask) / 2.0 / c.tick_size
        lean = c.skew * ctx.position / c.max_inventory
        quotes = ctx.state.setdefault("quotes", {})
        for side, key in self.sides:
            at = (
                np.floor(mid_ticks - lean) - c.spread_ticks
                if side > 0
                else np.ceil(mid_ticks - lean) + c.spread_ticks
            )
            price = round(at) * c.tick_size if at >= 1 else None  # (NaN too: no price, no quote)
            room = c.max_inventory - side * ctx.position
            qty = min(c.size, room)
            oid = quotes.get(key)
            if oid is not None and oid not in ctx.open_orders:
                oid = None
            if price is None or qty < c.size or (c.long_only and side < 0 and ctx.position <= 0):
                if oid is not None:
                    ctx.cancel(oid)
                    quotes.pop(key)
                continue
            if oid is None:
                quotes[key] = ctx.buy(qty, price) if side > 0 else ctx.sell(qty, price)
            elif abs(ctx.open_orders[oid][2] - price) > c.tick_size / 2:
                ctx.modify(oid, price, qty)

    def on_fill(self, fill: Fill, ctx: Context) -> None:
        ctx.state["fills"] = ctx.state.get("fills", 0) + 1
