"""Type stubs for ticktape.native (the compiled ticktape._native plus enums)."""

from enum import IntEnum
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "BOOK_FILL_DTYPE",
    "DEPTH_DTYPE",
    "ORDER_INSTR_DTYPE",
    "Engine",
    "InputError",
    "L3Kind",
    "Liquidity",
    "OrderAction",
    "OrderBook",
    "OrderEvent",
    "OrderType",
    "QueueModel",
    "Side",
    "SlippageModel",
    "TimeInForce",
    "depth_diffs",
    "from_ticks",
    "instructions",
    "to_ticks",
]

#: dtype of OrderBook.submit fills: [('maker_id','<i8'),('price','<i8'),('qty','<i8')]
BOOK_FILL_DTYPE: Final[np.dtype]
#: dtype of Engine.process(orders=): see ticktape.model.batch.ORDER_INSTR_DTYPE
ORDER_INSTR_DTYPE: Final[np.dtype]
#: dtype of Engine.process(depth=): see ticktape.model.batch.DEPTH_DTYPE
DEPTH_DTYPE: Final[np.dtype]

class InputError(ValueError):
    """Bad input to Engine.process; the message names the field and the index."""

class Side(IntEnum):
    BUY = 1
    SELL = -1

class OrderType(IntEnum):
    MARKET = 0
    LIMIT = 1
    STOP = 2
    STOP_LIMIT = 3

class OrderAction(IntEnum):
    NEW = 0
    CANCEL = 1
    MODIFY = 2

class Liquidity(IntEnum):
    TAKER = 0
    MAKER = 1

class QueueModel(IntEnum):
    NONE = 0
    RISK_AVERSE = 1
    PROBABILISTIC = 2

class SlippageModel(IntEnum):
    NONE = 0
    IMPACT = 1

class OrderEvent(IntEnum):
    SUBMITTED = 0
    ACCEPTED = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    REJECTED = 5
    TRIGGERED = 6

class TimeInForce(IntEnum):
    GTC = 0
    IOC = 1
    FOK = 2
    POST_ONLY = 3

class L3Kind(IntEnum):
    ADD = 1
    REDUCE = 2
    DELETE = 3
    EXECUTE = 4

def instructions(n: int = 0, **columns: object) -> np.ndarray:
    """An ORDER_INSTR_DTYPE array (price/stop_price NaN, latency_ns -1 unless given)."""

def depth_diffs(n: int = 0, **columns: object) -> np.ndarray:
    """A DEPTH_DTYPE array of L2 diffs (every field 0 unless given)."""

def to_ticks(prices: npt.ArrayLike, tick_size: float, field: str = "price") -> npt.NDArray[np.int64]: ...
def from_ticks(ticks: npt.ArrayLike, tick_size: float) -> npt.NDArray[np.float64]: ...

class OrderBook:
    """Price-time priority limit order book over int64 price ticks and int64 lots."""

    def __init__(self) -> None: ...
    def add(self, order_id: int, side: int, price: int, qty: int) -> None:
        """Rest a limit order (market data, no matching). ValueError on duplicate id or qty <= 0."""
    def cancel(self, order_id: int, qty: int | None = None) -> None:
        """Reduce by qty (keeps priority) or delete (qty None or >= resting). KeyError if unknown."""
    def execute(self, order_id: int, qty: int) -> None:
        """Execution of a resting order. KeyError if unknown, ValueError if qty > resting."""
    def submit(self, order_id: int, side: int, type: int, price: int, qty: int) -> np.ndarray:
        """Aggressive order; returns BOOK_FILL_DTYPE fills in match order.

        LIMIT remainder rests under order_id; MARKET remainder is cancelled
        (price is ignored for MARKET).
        """
    def place(
        self, order_id: int, side: int, type: int, price: int, qty: int, tif: int = 0
    ) -> tuple[np.ndarray, bool]:
        """Order with a time in force (TimeInForce: 0 GTC, 1 IOC, 2 FOK, 3 POST_ONLY).

        Returns (fills, accepted). FOK is rejected (no fills) unless all of
        qty can trade now within the limit; POST_ONLY (LIMIT only) is
        rejected if it would trade on arrival; IOC cancels what did not trade.
        """
    def modify(self, order_id: int, price: int, qty: int) -> np.ndarray:
        """Same price and smaller qty keeps time priority; a new price or larger qty
        re-enters the order at the back (trading first if it crosses). KeyError if unknown."""
    def apply_l3(
        self,
        kind: npt.ArrayLike,
        order_id: npt.ArrayLike,
        side: npt.ArrayLike,
        price: npt.ArrayLike,
        qty: npt.ArrayLike,
    ) -> None:
        """Apply a bulk L3 stream in C++ without the GIL.

        kind: int8 (1 add, 2 reduce, 3 delete, 4 execute); order_id, price,
        qty: int64; side: int8 (used by add only). Unknown ids on reduce,
        delete and execute are ignored; a duplicate add id, a bad side/qty or
        an unknown kind raises ValueError naming the index (earlier events
        stay applied).
        """
    def best_bid(self) -> tuple[int, int] | None: ...
    def best_ask(self) -> tuple[int, int] | None: ...
    def depth(self, side: int, n: int) -> npt.NDArray[np.int64]:
        """Shape (k, 2) [price, qty], best first, k <= n."""
    def volume_at(self, side: int, price: int) -> int: ...
    def order(self, order_id: int) -> tuple[int, int, int] | None:
        """(side, price, qty) of a resting order, or None."""
    def orders(self, side: int, price: int | None = None) -> npt.NDArray[np.int64]:
        """Shape (k, 3) [order_id, price, qty] of a side's (or one level's) resting orders in priority order."""
    def replay_check(
        self,
        kind: npt.ArrayLike,
        order_id: npt.ArrayLike,
        side: npt.ArrayLike,
        price: npt.ArrayLike,
        qty: npt.ArrayLike,
        expected: npt.ArrayLike,
        start: int = 0,
    ) -> tuple[int, int]:
        """LOBSTER-style replay from ``start`` comparing the top levels with ``expected``
        (shape (n, 4 * levels), LOBSTER orderbook layout) after every event.

        kind 0 is a no-op; reduce/delete/execute of an unknown id take their
        qty from the pseudo-order at (side, price), then from the level's
        oldest orders. Returns (first differing row or n, shortfall).
        """
    @staticmethod
    def pseudo_id(side: int, price: int) -> int:
        """Negative id of the pseudo-order standing for unseen liquidity at (side, price)."""
    def clear(self) -> None: ...
    def __len__(self) -> int: ...

class TickBatch:
    """A batch of L1 ticks checked and converted to the price grid once, for
    the many engines of a sweep (:meth:`Engine.process_batch`)."""

    def __init__(
        self,
        ts: npt.ArrayLike,
        bid: npt.ArrayLike,
        ask: npt.ArrayLike,
        bid_size: npt.ArrayLike,
        ask_size: npt.ArrayLike,
        last: npt.ArrayLike | None = None,
        last_size: npt.ArrayLike | None = None,
        *,
        tick_size: float,
        lot_size: float = 1.0,
    ) -> None:
        """Raises InputError / ValueError naming the field and the index, as ``Engine.process``."""
    def __len__(self) -> int: ...

class Engine:
    """Batch execution engine over L1 ticks, or L2 depth once fed some (see docs/native.md)."""

    def __init__(
        self,
        tick_size: float,
        lot_size: float = 1.0,
        latency_ns: int | None = None,
        fee_bps: float | None = None,
        initial_cash: float = 1_000_000.0,
        equity_interval_ns: int = 1_000_000_000,
        *,
        entry_latency_ns: int | None = None,
        response_latency_ns: int = 0,
        feed_latency_ns: int = 0,
        maker_fee_bps: float = 0.0,
        taker_fee_bps: float | None = None,
        fee_per_unit: float = 0.0,
        queue_model: int = 0,
        queue_power: float = 2.0,
        slippage_model: int = 0,
        impact_bps: float = 0.0,
        target_mode: int = 0,
        depth_refill_ns: int = -1,
    ) -> None:
        """latency_ns is an alias of entry_latency_ns, fee_bps of taker_fee_bps (default 0).

        depth_refill_ns (L2 depth): what the strategy took at a level shows
        again this long (event time) after the level's last take, unless a
        diff set the level first; -1 (default): only a diff restores it.
        """
    def process(
        self,
        ts: npt.ArrayLike,
        bid: npt.ArrayLike,
        ask: npt.ArrayLike,
        bid_size: npt.ArrayLike,
        ask_size: npt.ArrayLike,
        target: npt.ArrayLike | None = None,
        *,
        last: npt.ArrayLike | None = None,
        last_size: npt.ArrayLike | None = None,
        orders: np.ndarray | None = None,
        depth: np.ndarray | None = None,
        details: bool = False,
    ) -> dict[str, np.ndarray]:
        """Run one batch; returns {'fills', 'orders', 'equity'} (ticktape.model.batch dtypes).

        target None: no target decision in this batch; last/last_size: the
        tick's trade (NaN = none); orders: ORDER_INSTR_DTYPE instructions;
        depth: DEPTH_DTYPE L2 diffs (from the first one on, liquidity and best
        prices come from the depth book, bounded by the latest valid L1
        quote: levels through it are hidden; see docs/native.md).
        details=True adds 'fill_liquidity' (int8, Liquidity) and
        'fill_known_ts' (int64: fill ts + response latency) per fill.
        On InputError / ValueError (message names the field and the index)
        the engine's state is unchanged.
        """
    def process_batch(self, batch: TickBatch, target: npt.ArrayLike | None = None) -> dict[str, np.ndarray]:
        """:meth:`process` of a batch checked once for many engines (a sweep's
        parameter sets) with this engine's targets (no orders, no depth).

        The same outputs as ``process`` of the batch's columns with ``target``:
        while nothing is pending, ticks that ask for no change only move the
        mark and the equity grid (a short path). ``batch`` must have this
        engine's tick and lot size (ValueError otherwise).
        """
    def finish(self, *, details: bool = False) -> dict[str, np.ndarray]:
        """Emit the final equity sample at the last seen tick (once)."""
    def get_state(self) -> bytes: ...
    @staticmethod
    def from_state(state: bytes) -> Engine: ...
    @property
    def position(self) -> float: ...
    @property
    def cash(self) -> float: ...
    @property
    def fees(self) -> float: ...
    @property
    def equity(self) -> float:
        """cash + position * mark (cash when flat)."""
    @property
    def mark(self) -> float:
        """Mid of the latest valid quote (NaN before the first one; on depth with no valid quote yet, the depth's mid)."""
    @property
    def ticks_processed(self) -> int: ...
    @property
    def quotes_ignored(self) -> int:
        """Ticks whose quote was unusable for matching (NaN, <= 0 or crossed)."""
    @property
    def open_qty(self) -> float:
        """Signed unfilled quantity of working/pending orders, in units."""
    @property
    def open_orders(self) -> list[int]:
        """Ids of the live orders (pending, working, resting or untriggered)."""
    @property
    def max_order_id(self) -> int:
        """Highest order id used so far (a NEW must be above it)."""
    @property
    def has_depth(self) -> bool:
        """True once any depth diff arrived (the engine then runs on L2 depth)."""
    def depth_levels(self, side: int) -> npt.NDArray[np.int64]:
        """Levels of one side, best first, shape (k, 3): price ticks, displayed lots, lots taken by the strategy.

        Hidden levels (beyond ``depth_bound``) are listed too: they stay in the book.
        """
    @property
    def depth_bound(self) -> tuple[float, float] | None:
        """The latest valid L1 quote (bid, ask) bounding the depth book's top; None before any."""
    @property
    def depth_hidden_ticks(self) -> int:
        """Depth-fed ticks at which some depth level lay beyond the L1 quote (hidden: a stale or crossed feed)."""
    @property
    def tick_size(self) -> float: ...
    @property
    def lot_size(self) -> float: ...
    @property
    def latency_ns(self) -> int:
        """Alias of entry_latency_ns."""
    @property
    def entry_latency_ns(self) -> int: ...
    @property
    def response_latency_ns(self) -> int: ...
    @property
    def feed_latency_ns(self) -> int: ...
    @property
    def fee_bps(self) -> float:
        """Alias of taker_fee_bps."""
    @property
    def maker_fee_bps(self) -> float: ...
    @property
    def taker_fee_bps(self) -> float: ...
    @property
    def fee_per_unit(self) -> float: ...
    @property
    def queue_model(self) -> int: ...
    @property
    def queue_power(self) -> float: ...
    @property
    def slippage_model(self) -> int: ...
    @property
    def impact_bps(self) -> float: ...
    @property
    def target_mode(self) -> int:
        """0: targets are units; 1: signed fractions of equity (whole lots at the mark)."""
    @property
    def depth_refill_ns(self) -> int:
        """Taken depth shows again this long after a level's last take (-1: never)."""
    @property
    def initial_cash(self) -> float: ...
    @property
    def equity_interval_ns(self) -> int: ...
