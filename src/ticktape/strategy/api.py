"""Strategy API.

A strategy is a class with a frozen, typed config (``Config``, a dataclass).
It declares the indicator columns it needs (:meth:`Strategy.features`) and
decides in one of two ways, both first-class:

* **vectorized** — :meth:`Strategy.on_batch` gets the batch's columns
  (:class:`Columns`: ``ts``, ``price``, ``bid``, ``ask``, ...), the declared
  indicator columns and its own explicit state, and returns per tick a
  target position (NaN = no decision) and/or explicit order instructions
  (:func:`orders`). This is the fast path (whole batches in numpy). A
  vectorized strategy decides from market data and its own state only; it
  does not see fills (the engine turns targets into orders knowing the
  position), which is what makes its results independent of batch size.
* **per tick** — :meth:`Strategy.on_tick` is called for every tick with a
  :class:`Context` (position, cash, open orders, the tick's indicator values,
  the strategy's state) and places orders through it; :meth:`Strategy.on_fill`
  gets every fill in event order before the next decision that could know
  about it. This is the slow path (one engine call per tick, ~10⁵ ticks/s),
  for logic that is easier written as a loop or needs fill feedback.

Strategies never import Faust, Kafka or SQL: the same class runs in
``ticktape.backtest``, over the streaming pipeline and on a live feed.

Sources an indicator can read (``Feature.inputs``): ``price`` (the mid when
the quote is valid, else the last trade), ``bid``, ``ask``, ``mid``,
``last``, ``volume`` (the trade size, 0 on quote-only ticks), ``ts`` and, on
bar data, ``open``, ``high``, ``low``, ``close`` (on ticks all four are
``price``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ticktape.compute import indicators
from ticktape.errors import SpecError
from ticktape.model.batch import ORDER_INSTR_DTYPE
from ticktape.native import OrderAction, OrderType, Side, TimeInForce


# ---------------------------------------------------------------- features
@dataclass(frozen=True)
class Feature:
    """One indicator a strategy needs: ``kind`` (a key of
    :data:`ticktape.compute.indicators.STREAMS`) with ``params``, fed from ``inputs``.

    ``inputs`` maps the indicator's input names to sources (see the module
    docstring); by default ``x`` reads ``price``, ``high``/``low``/``close``
    read the same-named source and ``volume``/``ts`` theirs. A single-output
    indicator's column is ``name``; a multi-output one gives ``name.<output>``
    (e.g. ``macd.hist``).
    """

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, str] = field(default_factory=dict)

    def stream(self) -> Any:
        cls = indicators.STREAMS.get(self.kind)
        if cls is None:
            raise SpecError(
                f"feature {self.name!r}: unknown indicator {self.kind!r}; "
                f"known: {', '.join(sorted(indicators.STREAMS))}"
            )
        try:
            return cls(**dict(self.params))
        except (TypeError, ValueError) as exc:
            raise SpecError(f"feature {self.name!r} ({self.kind}): {exc}") from None

    def sources(self) -> list[str]:
        cls = indicators.STREAMS[self.kind]
        return [self.inputs.get(i, _DEFAULT_SOURCE.get(i, i)) for i in cls.inputs]


_DEFAULT_SOURCE = {"x": "price", "price": "price"}

#: The columns a strategy's batch carries (:class:`Columns`).
TICK_SOURCES = ("ts", "price", "bid", "ask", "mid", "bid_size", "ask_size", "last", "volume")


class Columns(dict):
    """A batch as named numpy columns (``batch["price"]``), all the same length."""

    def __len__(self) -> int:
        ts = self.get("ts")
        return 0 if ts is None else len(ts)


def tick_columns(ticks: np.ndarray) -> Columns:
    """The strategy's view of a TICK_DTYPE batch (see the module docstring)."""
    bid, ask, last = ticks["bid"], ticks["ask"], ticks["last"]
    with np.errstate(invalid="ignore"):
        mid_ = (bid + ask) * 0.5
        quoted = np.isfinite(mid_) & (bid > 0) & (ask > 0)
        volume = np.where(np.isfinite(ticks["last_size"]), ticks["last_size"], 0.0)
    price = mid_ if quoted.all() else np.where(quoted, mid_, last)
    return Columns(
        ts=ticks["ts"],
        price=price,
        bid=bid,
        ask=ask,
        mid=mid_,
        bid_size=ticks["bid_size"],
        ask_size=ticks["ask_size"],
        last=last,
        volume=volume,
        open=price,
        high=price,
        low=price,
        close=price,
    )


def mid(ticks: np.ndarray) -> np.ndarray:
    """Mid price of quote ticks."""
    return (ticks["bid"] + ticks["ask"]) * 0.5


def compute_features(
    features: list[Feature], cols: Mapping[str, np.ndarray], carry: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compute feature columns for a batch, continuing from ``carry``.

    ``cols`` is a :class:`Columns` (or a TICK_DTYPE array, converted with
    :func:`tick_columns`). Output is identical for any split of the stream
    into batches (the indicators' streaming forms guarantee it).
    """
    if isinstance(cols, np.ndarray):
        cols = tick_columns(cols)
    out: dict[str, np.ndarray] = {}
    new_carry: dict[str, Any] = {}
    for f in features:
        stream = indicators.STREAMS[f.kind].from_state(carry[f.name]) if f.name in carry else f.stream()
        try:
            args = [cols[s] for s in f.sources()]
        except KeyError as exc:
            raise SpecError(f"feature {f.name!r}: no source column {exc.args[0]!r} in this data") from None
        value = stream.update(*args)
        if isinstance(value, dict):
            for k, v in value.items():
                out[f"{f.name}.{k}"] = v
        else:
            out[f.name] = value
        new_carry[f.name] = stream.to_state()
    return out, new_carry


# ---------------------------------------------------------------- decisions
def orders(n: int = 0) -> np.ndarray:
    """An empty (or ``n``-row, zeroed) array of order instructions.

    Fields (ticktape.model.batch.ORDER_INSTR_DTYPE): ``i`` (index of the deciding
    tick in the batch), ``action`` (:class:`~ticktape.native.OrderAction`),
    ``order_id`` (> every id used before), ``side``, ``type``, ``tif``,
    ``price`` (limit; NaN for market/stop), ``stop_price``, ``qty`` (units),
    ``latency_ns`` (-1: the run's latency model).
    """
    a = np.zeros(n, dtype=ORDER_INSTR_DTYPE)
    if n:
        a["price"] = np.nan
        a["stop_price"] = np.nan
        a["latency_ns"] = -1
    return a


@dataclass
class Decisions:
    """What a strategy decided for one batch: per-tick targets and/or orders."""

    target: np.ndarray | None = None
    orders: np.ndarray | None = None

    @classmethod
    def coerce(cls, value: Any, n: int, who: str) -> Decisions:
        """Accept a target array, an order-instruction array, a (target, orders)
        pair or a Decisions; check shapes and dtypes (naming ``who``)."""
        if isinstance(value, Decisions):
            d = value
        elif isinstance(value, np.ndarray) and value.dtype == ORDER_INSTR_DTYPE:
            d = cls(None, value)
        elif isinstance(value, tuple) and len(value) == 2:
            d = cls(*value)
        else:
            d = cls(value, None)
        if d.target is not None:
            d.target = np.asarray(d.target, dtype=np.float64)
            if d.target.shape != (n,):
                raise ValueError(f"strategy {who!r} returned {d.target.shape} targets for {n} ticks")
        if d.orders is not None:
            if not isinstance(d.orders, np.ndarray) or d.orders.dtype != ORDER_INSTR_DTYPE:
                raise ValueError(
                    f"strategy {who!r} returned orders that are not an ORDER_INSTR_DTYPE array "
                    "(use ticktape.strategy.orders())"
                )
            if len(d.orders) and not (d.orders["i"].min() >= 0 and d.orders["i"].max() < n):
                raise ValueError(f"strategy {who!r} returned orders with tick index i outside 0..{n - 1}")
        return d


# ---------------------------------------------------------------- per tick
@dataclass(frozen=True)
class Tick:
    """One tick as the per-tick path sees it (floats; NaN where absent)."""

    ts: int
    price: float
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    last: float
    volume: float


@dataclass(frozen=True)
class Fill:
    """A fill of one of the strategy's orders, as :meth:`Strategy.on_fill` gets it."""

    ts: int
    order_id: int
    side: int
    price: float
    qty: float
    fee: float


class Context:
    """The per-tick path's window on the simulation.

    Read: ``position``, ``cash``, ``equity`` (at the tick's price),
    ``open_orders`` (id → (side, type, price, open qty)), ``features`` (this
    tick's indicator values), ``state`` (the strategy's own JSON-able dict,
    persisted across batches and restarts). Act: :meth:`buy`, :meth:`sell`,
    :meth:`cancel`, :meth:`modify`, :meth:`target`. Everything the strategy
    knows about its fills comes through :meth:`Strategy.on_fill`, in event
    order, so ``position`` and ``cash`` are what the strategy has been told.
    """

    def __init__(self, state: dict[str, Any], initial_cash: float) -> None:
        self.state = state
        book = state.setdefault("_ctx", {"position": 0.0, "cash": initial_cash, "next_id": 1, "open": {}})
        self._book = book
        self.features: dict[str, float] = {}
        self.price = float("nan")
        self._orders: list[tuple] = []
        self._target = float("nan")

    # -- what the strategy knows
    @property
    def position(self) -> float:
        return self._book["position"]

    @property
    def cash(self) -> float:
        return self._book["cash"]

    @property
    def equity(self) -> float:
        pos = self.position
        return self.cash + (pos * self.price if pos else 0.0)

    @property
    def open_orders(self) -> dict[int, tuple[int, int, float, float]]:
        return {int(k): tuple(v) for k, v in self._book["open"].items()}

    # -- actions
    def _new(self, side: int, qty: float, price: float | None, stop: float | None, tif: int) -> int:
        if not (qty > 0):
            raise ValueError(f"order qty must be > 0, got {qty!r}")
        if stop is not None:
            kind = OrderType.STOP if price is None else OrderType.STOP_LIMIT
        else:
            kind = OrderType.MARKET if price is None else OrderType.LIMIT
        oid = self._book["next_id"]
        self._book["next_id"] = oid + 1
        nan = float("nan")
        self._orders.append(
            (
                OrderAction.NEW,
                oid,
                side,
                int(kind),
                int(tif),
                nan if price is None else price,
                nan if stop is None else stop,
                float(qty),
            )
        )
        self._book["open"][str(oid)] = [side, int(kind), nan if price is None else price, float(qty)]
        return oid

    def buy(
        self, qty: float, price: float | None = None, *, stop: float | None = None, tif: int = TimeInForce.GTC
    ) -> int:
        """Buy ``qty``: market (no price), limit (``price``), stop / stop-limit
        (``stop``). Returns the order id."""
        return self._new(Side.BUY, qty, price, stop, tif)

    def sell(
        self, qty: float, price: float | None = None, *, stop: float | None = None, tif: int = TimeInForce.GTC
    ) -> int:
        """Sell ``qty`` (see :meth:`buy`). Returns the order id."""
        return self._new(Side.SELL, qty, price, stop, tif)

    def cancel(self, order_id: int) -> None:
        """Cancel an open order (it reaches the exchange after the latency)."""
        o = self._book["open"].get(str(order_id))
        if o is None:
            raise KeyError(f"cancel: order {order_id} is not open")
        nan = float("nan")
        self._orders.append((OrderAction.CANCEL, order_id, o[0], o[1], 0, nan, nan, o[3]))

    def modify(self, order_id: int, price: float, qty: float) -> None:
        """Change an open limit order's price and/or size (a new price or a
        larger size loses queue priority)."""
        o = self._book["open"].get(str(order_id))
        if o is None:
            raise KeyError(f"modify: order {order_id} is not open")
        self._orders.append((OrderAction.MODIFY, order_id, o[0], o[1], 0, price, float("nan"), float(qty)))

    def target(self, position: float) -> None:
        """Hold ``position`` (the engine sends the difference as a market order)."""
        self._target = float(position)

    # -- plumbing for ticktape.stages
    def reserve_ids(self, used: int) -> None:
        """New order ids start above ``used`` (the engine's highest id so far)."""
        if self._book["next_id"] <= used:
            self._book["next_id"] = used + 1

    def _take(self) -> tuple[float, np.ndarray]:
        acts = self._orders
        self._orders = []
        target, self._target = self._target, float("nan")
        a = orders(len(acts))
        for k, (action, oid, side, kind, tif, price, stop, qty) in enumerate(acts):
            a[k] = (0, action, oid, side, kind, tif, price, stop, qty, -1)
        return target, a

    def _on_fill(self, f: Fill) -> None:
        b = self._book
        b["position"] += f.side * f.qty
        b["cash"] -= f.side * f.price * f.qty + f.fee

    def _on_order_event(self, order_id: int, event: int, qty: float) -> None:
        o = self._book["open"].get(str(order_id))
        if o is None:
            return
        if event in (3, 4, 5):  # filled, cancelled, rejected
            del self._book["open"][str(order_id)]
        elif event == 2:  # partially filled
            o[3] -= qty


# ---------------------------------------------------------------- base class
class Strategy:
    """Base class of all strategies.

    Subclasses set ``name`` and ``Config`` (a frozen dataclass; its fields
    declared with :func:`ticktape.strategy.params.param` carry their bounds,
    choices and help) and implement :meth:`features` and either
    :meth:`on_batch` (vectorized) or :meth:`on_tick` (per tick, optionally
    with :meth:`on_fill`).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    #: symbols the strategy trades together (multi-symbol strategies, e.g. pairs); None: one symbol
    symbols: tuple[str, ...] | None = None

    @property
    def target_mode(self) -> int:
        """How the engine reads this strategy's targets: 0 units, 1 a signed
        fraction of the current equity (whole lots at the deciding tick's mark)."""
        return 1 if getattr(self.config, "sizing", "fixed") == "equity" else 0

    def __init__(self, config: Any) -> None:
        self.config = config

    def features(self) -> list[Feature]:
        """The indicator columns this strategy reads."""
        return []

    def on_batch(
        self, batch: Columns, features: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[Any, dict]:
        """Vectorized decision: return (targets per tick and/or orders, new state).

        The decision is a float array of target positions (NaN = no decision),
        an order-instruction array (:func:`orders`), a ``(target, orders)``
        pair or a :class:`Decisions`.
        """
        raise NotImplementedError(f"strategy {self.name!r} implements neither on_batch nor on_tick")

    def on_tick(self, tick: Tick, ctx: Context) -> None:
        """Per-tick decision (slow path): act through ``ctx``."""
        raise NotImplementedError

    def on_fill(self, fill: Fill, ctx: Context) -> None:
        """A fill of one of this strategy's orders, in event order (per-tick path only)."""

    @property
    def per_tick(self) -> bool:
        """True when the strategy decides in :meth:`on_tick` (the slow path)."""
        return type(self).on_tick is not Strategy.on_tick


REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator adding a strategy to :data:`REGISTRY` under its name."""
    REGISTRY[cls.name] = cls
    return cls
