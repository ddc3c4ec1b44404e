"""Native execution engine and L3 order book vs the pure-Python reference.

Prints one table. The engine rows measure the books the engine fills on:
its L1 book (the displayed quote) and, once fed depth, its depth book
(native/depthbook.hpp); the L3 OrderBook rows measure the book the LOBSTER
verification replays (it fills no strategy order).

* ticks/s of ``Engine.process`` with an active target-position strategy (a
  decision on every tick, an order every few ticks) vs the reference engine;
* ticks/s of ``Engine.process`` with explicit instructions: a market maker
  that cancels its quotes and places a limit buy at the bid and a limit sell
  at the ask every 5 ticks (risk-averse queue, trades on 30% of the ticks),
  vs the reference engine and, when the ``hftbacktest`` package is
  installed, vs hftbacktest running the same strategy on the same ticks
  (converted to its depth/trade events; its numba strategy is compiled on a
  small warm-up stream first, so compile time is not counted);
* ticks/s of ``Engine.process`` fed L2 depth (``depth=``, 5 diffs per tick:
  the touch levels set, one deeper level set or removed, the levels inside
  the spread removed) with the same market maker plus a 40-lot market order
  every 25 ticks that walks 2-3 levels, vs the reference engine;
* diffs/s of the same depth stream through ``Engine.process`` with no
  orders: the depth book the engine fills on, kept (diffs, the L1 bound,
  the mark) and nothing else, vs the reference engine;
* events/s of an L3 add / reduce / delete / execute stream through the native
  OrderBook (bulk ``apply_l3``: the loop runs in C++ without the GIL; and one
  Python call per event) vs the reference book;
* messages/s of the LOBSTER AMZN level-1 sample (when ../shared/data is
  present): the native replay with a row comparison after every message,
  and the whole ``ticktape.data.lobster.verify`` (parse, replay, resync of
  the rows where a level entered from beyond the window).

The reference runs on a prefix of the same stream (it is ~100x slower); both
sides' results on that prefix are checked to be identical first.

Usage: python benchmarks/native_book.py [--events N] [--ticks N] [--ref-n N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ticktape.native import (
    DEPTH_DTYPE,
    Engine,
    L3Kind,
    OrderAction,
    OrderBook,
    OrderType,
    QueueModel,
    instructions,
)
from ticktape.reference import ReferenceBook, ReferenceEngine

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lobster"


def l3_stream(n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
    """A synthetic L3 stream of about n events, like an exchange feed.

    Every order is added, maybe partly executed or reduced by 1 lot half way
    through its life, then deleted (60%) or executed in full (40%) after a
    random lifetime (mean ~1000 events), so the book stays a few hundred
    orders deep around a random-walking mid and every event is valid.
    """
    rng = np.random.default_rng(seed)
    m = int(n / 2.5)
    oid = np.arange(1, m + 1, dtype=np.int64)
    t_add = np.arange(m, dtype=np.float64)
    life = 1.0 + rng.exponential(400.0, size=m)
    side = np.where(rng.random(m) < 0.5, 1, -1).astype(np.int8)
    mid = 100_000 + np.cumsum(rng.integers(-1, 2, size=m))
    price = (mid - side * (1 + rng.geometric(0.3, size=m))).astype(np.int64)
    qty = rng.integers(2, 100, size=m).astype(np.int64)
    partial = rng.random(m) < 0.5
    p_kind = np.where(rng.random(m) < 0.5, L3Kind.EXECUTE, L3Kind.REDUCE).astype(np.int8)
    executed = rng.random(m) < 0.4
    f_kind = np.where(executed, L3Kind.EXECUTE, L3Kind.DELETE).astype(np.int8)
    f_qty = np.where(partial, qty - 1, qty)
    parts = [  # (time, step within the order, kind, id, side, price, qty)
        (t_add, 0, np.full(m, L3Kind.ADD, np.int8), oid, side, price, qty),
        (t_add[partial] + life[partial] / 2, 1, p_kind[partial], oid[partial], side[partial],
         price[partial], np.ones(int(partial.sum()), np.int64)),
        (t_add + life, 2, f_kind, oid, side, price, f_qty),
    ]  # fmt: skip
    t = np.concatenate([p[0] for p in parts])
    step = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    order = np.lexsort((step, t))
    return tuple(np.concatenate([p[i] for p in parts])[order] for i in range(2, 7))


def per_event(book: OrderBook | ReferenceBook, ev: tuple[np.ndarray, ...]) -> None:
    """One Python call per event (the reference's only way)."""
    add, cancel, execute = book.add, book.cancel, book.execute
    for k, oid, s, p, q in zip(*(a.tolist() for a in ev), strict=True):
        if k == 1:
            add(oid, s, p, q)
        elif k == 3:
            cancel(oid)
        elif k == 2:
            cancel(oid, q)
        else:
            execute(oid, q)


def tick_stream(n: int, seed: int = 2) -> dict[str, np.ndarray]:
    """L1 ticks with a momentum target: +-size on every tick, flipping often."""
    rng = np.random.default_rng(seed)
    bid_t = 10_000 + np.cumsum(rng.integers(-1, 2, size=n))
    ask_t = bid_t + rng.integers(1, 3, size=n)
    signal = bid_t - np.concatenate([np.full(20, bid_t[0]), bid_t[:-20]])
    target = np.where(signal > 0, 10.0, np.where(signal < 0, -10.0, 0.0))
    return {
        "ts": np.cumsum(rng.integers(1, 200_000_000, size=n)).astype(np.int64),
        "bid": bid_t * 0.01,
        "ask": ask_t * 0.01,
        "bid_size": rng.integers(1, 30, size=n).astype(np.float64),
        "ask_size": rng.integers(1, 30, size=n).astype(np.float64),
        "target": target,
    }


def trade_stream(t: dict[str, np.ndarray], seed: int = 4) -> dict[str, np.ndarray]:
    """Trades on ~30% of the ticks, at the bid or the ask, 1-9 lots."""
    rng = np.random.default_rng(seed)
    n = len(t["ts"])
    at_bid = rng.random(n) < 0.5
    last = np.where(at_bid, t["bid"], t["ask"])
    return {
        "last": np.where(rng.random(n) < 0.3, last, np.nan),
        "last_size": rng.integers(1, 10, size=n).astype(np.float64),
    }


def mm_instructions(t: dict[str, np.ndarray], every: int = 5) -> np.ndarray:
    """Every ``every`` ticks: cancel the previous two quotes, place a buy at the bid and a sell at the ask."""
    dec = np.arange(0, len(t["ts"]), every, dtype=np.int64)
    k = np.arange(len(dec), dtype=np.int64)
    ids = np.stack([2 * k - 1, 2 * k, 2 * k + 1, 2 * k + 2], axis=1).ravel()
    m = len(dec)
    ins = instructions(
        i=np.repeat(dec, 4),
        action=np.tile(
            np.array([OrderAction.CANCEL, OrderAction.CANCEL, OrderAction.NEW, OrderAction.NEW]), m
        ),
        order_id=ids,
        side=np.tile(np.array([0, 0, 1, -1]), m),
        type=np.tile(np.array([0, 0, OrderType.LIMIT, OrderType.LIMIT]), m),
        price=np.stack(
            [np.full(m, np.nan), np.full(m, np.nan), t["bid"][dec], t["ask"][dec]], axis=1
        ).ravel(),
        qty=np.tile(np.array([np.nan, np.nan, 1.0, 1.0]), m),
    )
    return ins[2:]  # no quotes to cancel at the first decision


def depth_stream(t: dict[str, np.ndarray], seed: int = 5) -> np.ndarray:
    """L2 diffs for the ticks of ``t``, 5 per tick (DEPTH_DTYPE, prices on the 0.01 grid).

    Per tick: the level just above the bid and just below the ask removed (so
    the book never keeps a stale level inside the spread: the mid moves at
    most one tick at a time), the bid and the ask levels set to the tick's
    sizes, and one level 1-6 ticks deeper on a random side set to 1-49 lots
    or removed (20%). Levels the price walks past are not removed, so the
    book keeps stale levels through the quote on nearly every tick: the
    engine's L1 bound hides them (the row measures that path).
    """
    rng = np.random.default_rng(seed)
    n = len(t["ts"])
    bid_t = np.rint(t["bid"] * 100).astype(np.int64)
    ask_t = np.rint(t["ask"] * 100).astype(np.int64)
    deep_side = np.where(rng.random(n) < 0.5, 1, -1)
    deep_px = np.where(deep_side > 0, bid_t, ask_t) - deep_side * rng.integers(1, 7, size=n)
    deep_qty = np.where(rng.random(n) < 0.2, 0, rng.integers(1, 50, size=n)).astype(np.float64)
    out = np.zeros((n, 5), dtype=DEPTH_DTYPE)
    out["i"] = np.arange(n)[:, None]
    out["side"] = np.stack([np.ones(n), -np.ones(n), np.ones(n), -np.ones(n), deep_side], axis=1)
    out["price"] = np.stack([bid_t + 1, ask_t - 1, bid_t, ask_t, deep_px], axis=1) / 100.0
    out["qty"] = np.stack([np.zeros(n), np.zeros(n), t["bid_size"], t["ask_size"], deep_qty], axis=1)
    return out.ravel()


def l2_instructions(t: dict[str, np.ndarray], every: int = 5, sweep_every: int = 25) -> np.ndarray:
    """The market maker of :func:`mm_instructions`, plus a 40-lot market order (alternating sides) every ``sweep_every`` ticks."""
    rows = []
    oid = 0
    quotes: list[int] = []
    for i in range(0, len(t["ts"]), every):
        rows += [(i, OrderAction.CANCEL, q, 0, 0, np.nan, np.nan) for q in quotes]
        quotes = [oid + 1, oid + 2]
        rows += [
            (i, OrderAction.NEW, oid + 1, 1, OrderType.LIMIT, t["bid"][i], 1.0),
            (i, OrderAction.NEW, oid + 2, -1, OrderType.LIMIT, t["ask"][i], 1.0),
        ]
        oid += 2
        if i % sweep_every == 0:
            oid += 1
            rows.append(
                (i, OrderAction.NEW, oid, 1 if (i // sweep_every) % 2 else -1, OrderType.MARKET, np.nan, 40.0)
            )
    cols = list(zip(*rows, strict=True))
    names = ("i", "action", "order_id", "side", "type", "price", "qty")
    return instructions(**{k: np.array(v) for k, v in zip(names, cols, strict=True)})


def split_orders(ins: np.ndarray, n: int, batch: int) -> list[np.ndarray]:
    """The instructions (or depth diffs) of each batch of ``batch`` ticks, ``i`` relative to the batch (as a strategy emits them)."""
    cuts = np.searchsorted(ins["i"], np.arange(0, n + batch, batch))
    out = []
    for j, a in enumerate(range(0, n, batch)):
        o = ins[cuts[j] : cuts[j + 1]].copy()
        o["i"] -= a
        out.append(o)
    return out


def run_orders(
    eng: Engine | ReferenceEngine,
    t: dict[str, np.ndarray],
    parts: list[np.ndarray],
    batch: int,
    depth: list[np.ndarray] | None = None,
) -> dict:
    outs = []
    for j, a in enumerate(range(0, len(t["ts"]), batch)):
        s = slice(a, a + batch)
        cols = (t["ts"][s], t["bid"][s], t["ask"][s], t["bid_size"][s], t["ask_size"][s])
        d = None if depth is None else depth[j]
        outs.append(
            eng.process(*cols, None, last=t["last"][s], last_size=t["last_size"][s], orders=parts[j], depth=d)
        )
    outs.append(eng.finish())
    return {k: np.concatenate([p[k] for p in outs]) for k in ("fills", "orders", "equity")}


def hftbacktest_rate(t: dict[str, np.ndarray], n: int) -> tuple[float | None, str, int]:
    """(ticks/s, what ran, fills) of hftbacktest running the market maker on
    the first n ticks, or (None, why not, 0)."""
    try:
        import hftbacktest as hb
        from numba import njit
    except ImportError as exc:
        return None, f"hftbacktest not installed ({exc.name})", 0

    def events(a: int, b: int) -> np.ndarray:
        f = hb.EXCH_EVENT | hb.LOCAL_EVENT
        rows = []
        pb = pa = None
        for i in range(a, b):
            ts = int(t["ts"][i])
            bid, ask = float(t["bid"][i]), float(t["ask"][i])
            if pb is not None and pb != bid:
                rows.append((f | hb.DEPTH_EVENT | hb.BUY_EVENT, ts, ts, pb, 0.0, 0, 0, 0.0))
            rows.append((f | hb.DEPTH_EVENT | hb.BUY_EVENT, ts, ts, bid, float(t["bid_size"][i]), 0, 0, 0.0))
            if pa is not None and pa != ask:
                rows.append((f | hb.DEPTH_EVENT | hb.SELL_EVENT, ts, ts, pa, 0.0, 0, 0, 0.0))
            rows.append((f | hb.DEPTH_EVENT | hb.SELL_EVENT, ts, ts, ask, float(t["ask_size"][i]), 0, 0, 0.0))
            if not np.isnan(t["last"][i]):
                side = hb.SELL_EVENT if t["last"][i] <= bid else hb.BUY_EVENT
                rows.append(
                    (
                        f | hb.TRADE_EVENT | side,
                        ts,
                        ts,
                        float(t["last"][i]),
                        float(t["last_size"][i]),
                        0,
                        0,
                        0.0,
                    )
                )
            pb, pa = bid, ask
        return np.array(rows, dtype=hb.binding.event_dtype)

    @njit
    def market_maker(hbt, every):  # type: ignore[no-untyped-def]
        """(feeds, fills) of the market maker quoting 1 lot at the touch every ``every`` feeds."""
        feeds = 0
        oid = 0
        while hbt.wait_next_feed(False, 10**15) == 2:
            feeds += 1
            if feeds % every == 0:
                values = hbt.orders(0).values()
                while values.has_next():
                    o = values.get()
                    if o.cancellable:
                        hbt.cancel(0, o.order_id, False)
                hbt.clear_inactive_orders(0)
                d = hbt.depth(0)
                oid += 1
                hbt.submit_buy_order(0, oid, d.best_bid, 1.0, hb.GTC, hb.LIMIT, False)
                oid += 1
                hbt.submit_sell_order(0, oid, d.best_ask, 1.0, hb.GTC, hb.LIMIT, False)
        return feeds, hbt.state_values(0).num_trades

    def backtest(ev: np.ndarray):  # type: ignore[no-untyped-def]
        asset = (
            hb.BacktestAsset()
            .data(ev)
            .linear_asset(1.0)
            .constant_order_latency(0, 0)
            .risk_adverse_queue_model()
            .no_partial_fill_exchange()  # its partial_fill_exchange stops on this stream (error 14)
            .trading_value_fee_model(0.0, 0.0)
            .tick_size(0.01)
            .lot_size(1.0)
        )
        return hb.HashMapMarketDepthBacktest([asset])

    warm = backtest(events(0, 2_000))
    market_maker(warm, 5)  # numba compile
    warm.close()
    ev = events(0, n)
    hbt = backtest(ev)
    t0 = time.perf_counter()
    feeds, fills = market_maker(hbt, 5)
    dt = time.perf_counter() - t0
    hbt.close()
    if feeds < n - 1:
        return None, f"hftbacktest stopped after {feeds:,} of {n:,} ticks", 0
    return (
        n / dt,
        f"hftbacktest {hb.__version__ if hasattr(hb, '__version__') else ''}: {len(ev):,} events for {n:,} ticks",
        int(fills),
    )


COLS = ("ts", "bid", "ask", "bid_size", "ask_size", "target")


def run_engine(eng: Engine | ReferenceEngine, t: dict[str, np.ndarray], batch: int) -> dict:
    parts = []
    n = len(t["ts"])
    for a in range(0, n, batch):
        parts.append(eng.process(*(t[c][a : a + batch] for c in COLS)))
    parts.append(eng.finish())
    return {k: np.concatenate([p[k] for p in parts]) for k in ("fills", "orders", "equity")}


def best_rate(n: int, fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=4_000_000, help="L3 events (native)")
    ap.add_argument("--ticks", type=int, default=4_000_000, help="ticks (native)")
    ap.add_argument("--ref-n", type=int, default=100_000, help="events / ticks for the reference")
    ap.add_argument("--batch", type=int, default=20_000, help="ticks per Engine.process call")
    ap.add_argument("--hbt-n", type=int, default=300_000, help="ticks for hftbacktest (if installed)")
    ap.add_argument("--l2-ticks", type=int, default=1_000_000, help="ticks fed L2 depth (native)")
    ap.add_argument("--json", type=Path, help="also write the table's figures here (benchmarks/benchjson.py)")
    args = ap.parse_args()

    # --- L3 order book (the LOBSTER verification replays it) ---------------
    ev = l3_stream(args.events)
    head = tuple(a[: args.ref_n] for a in ev)
    nat, ref = OrderBook(), ReferenceBook()
    nat.apply_l3(*head)
    per_event(ref, head)
    assert nat.depth(1, 10**9).tolist() == ref.depth(1, 10**9).tolist()
    assert nat.depth(-1, 10**9).tolist() == ref.depth(-1, 10**9).tolist()

    bulk = best_rate(args.events, lambda: OrderBook().apply_l3(*ev))
    calls = best_rate(args.ref_n, lambda: per_event(OrderBook(), head))
    l3_ref = best_rate(args.ref_n, lambda: per_event(ReferenceBook(), head), repeat=1)

    # --- engine ------------------------------------------------------------
    ticks = tick_stream(args.ticks)
    thead = {c: v[: args.ref_n] for c, v in ticks.items()}
    a = run_engine(Engine(0.01, fee_bps=0.5), thead, args.batch)
    b = run_engine(ReferenceEngine(0.01, fee_bps=0.5), thead, args.batch)
    for k in a:
        assert len(a[k]) == len(b[k]) and all(
            np.array_equal(a[k][f], b[k][f], equal_nan=True) for f in a[k].dtype.names
        ), k
    n_fills = len(run_engine(Engine(0.01), ticks, args.batch)["fills"])
    eng_batched = best_rate(args.ticks, lambda: run_engine(Engine(0.01, fee_bps=0.5), ticks, args.batch))
    eng_one = best_rate(args.ticks, lambda: run_engine(Engine(0.01, fee_bps=0.5), ticks, args.ticks))
    eng_ref = best_rate(
        args.ref_n,
        lambda: run_engine(ReferenceEngine(0.01, fee_bps=0.5), thead, args.batch),
        repeat=1,
    )

    # --- engine with explicit limit orders (market maker) --------------------
    ticks |= trade_stream(ticks)
    ins = mm_instructions(ticks)
    thead = {c: v[: args.ref_n] for c, v in ticks.items()}
    ihead = split_orders(ins[ins["i"] < args.ref_n], args.ref_n, args.batch)
    iall = split_orders(ins, args.ticks, args.batch)
    mm_cfg = {"tick_size": 0.01, "queue_model": QueueModel.RISK_AVERSE, "maker_fee_bps": -0.2, "fee_bps": 0.5}
    a = run_orders(Engine(**mm_cfg), thead, ihead, args.batch)
    b = run_orders(ReferenceEngine(**mm_cfg), thead, ihead, args.batch)
    for k in a:
        assert len(a[k]) == len(b[k]) and all(
            np.array_equal(a[k][f], b[k][f], equal_nan=True) for f in a[k].dtype.names
        ), k
    mm_out = run_orders(Engine(**mm_cfg), ticks, iall, args.batch)
    mm_rate = best_rate(args.ticks, lambda: run_orders(Engine(**mm_cfg), ticks, iall, args.batch))
    mm_ref = best_rate(
        args.ref_n, lambda: run_orders(ReferenceEngine(**mm_cfg), thead, ihead, args.batch), repeat=1
    )
    hbt_n = min(args.hbt_n, args.ticks)
    hbt_rate, hbt_note, hbt_fills = hftbacktest_rate(ticks, hbt_n)
    # ticktape's fills on the ticks hftbacktest ran: its instructions there
    hbt_ours = run_orders(
        Engine(**mm_cfg),
        {c: v[:hbt_n] for c, v in ticks.items()},
        split_orders(ins[ins["i"] < hbt_n], hbt_n, args.batch),
        args.batch,
    )

    # --- engine fed L2 depth: book walk, the same market maker + sweeps -------
    n2 = min(args.l2_ticks, args.ticks)
    t2 = {c: v[:n2] for c, v in ticks.items()}
    dep, ins2 = depth_stream(t2), l2_instructions(t2)
    r2 = min(args.ref_n, n2)
    t2h = {c: v[:r2] for c, v in t2.items()}
    d2h, i2h = (
        split_orders(dep[dep["i"] < r2], r2, args.batch),
        split_orders(ins2[ins2["i"] < r2], r2, args.batch),
    )
    d2, i2 = split_orders(dep, n2, args.batch), split_orders(ins2, n2, args.batch)
    a = run_orders(Engine(**mm_cfg), t2h, i2h, args.batch, d2h)
    b = run_orders(ReferenceEngine(**mm_cfg), t2h, i2h, args.batch, d2h)
    for k in a:
        assert len(a[k]) == len(b[k]) and all(
            np.array_equal(a[k][f], b[k][f], equal_nan=True) for f in a[k].dtype.names
        ), k
    l2_engine = Engine(**mm_cfg)
    l2_out = run_orders(l2_engine, t2, i2, args.batch, d2)
    l2_eng = best_rate(n2, lambda: run_orders(Engine(**mm_cfg), t2, i2, args.batch, d2))
    l2_eng_ref = best_rate(
        r2, lambda: run_orders(ReferenceEngine(**mm_cfg), t2h, i2h, args.batch, d2h), repeat=1
    )

    # --- the depth book alone: the same diffs and quotes, no orders ----------
    none2, none2h = [None] * len(d2), [None] * len(d2h)
    nat_book, ref_book = Engine(**mm_cfg), ReferenceEngine(**mm_cfg)
    a = run_orders(nat_book, t2h, none2h, args.batch, d2h)
    b = run_orders(ref_book, t2h, none2h, args.batch, d2h)
    assert np.array_equal(a["equity"], b["equity"])
    for side in (1, -1):
        lv = ref_book.depth[side]
        want = [[p, *lv[p]] for p in sorted(lv, reverse=side > 0)]
        assert nat_book.depth_levels(side).tolist() == want
    n_dep, n_dep_ref = len(dep), int((dep["i"] < r2).sum())
    book_rate = best_rate(n_dep, lambda: run_orders(Engine(**mm_cfg), t2, none2, args.batch, d2))
    book_ref = best_rate(
        n_dep_ref, lambda: run_orders(ReferenceEngine(**mm_cfg), t2h, none2h, args.batch, d2h), repeat=1
    )

    # --- LOBSTER replay + verification (real sample, when present) ----------
    lob: list[tuple[str, int, str, float, float | None]] = []
    m_csv = SHARED / "AMZN_2012-06-21_34200000_57600000_message_1.csv"
    if m_csv.is_file():
        from ticktape.data.lobster import load_messages, to_l3, verify

        b_csv = Path(str(m_csv).replace("message", "orderbook"))
        msgs = load_messages(m_csv)
        n_msg = len(msgs)
        cols = to_l3(msgs)
        r = verify(m_csv, b_csv)

        keep = cols[0] != 0  # hidden executions, cross trades and halts do not touch the book
        l3 = tuple(np.ascontiguousarray(c[keep]) for c in cols)

        lob = [
            (
                "LOBSTER AMZN lvl 1: book events, apply_l3 (bulk)",
                len(l3[0]),
                "events/s",
                best_rate(len(l3[0]), lambda: OrderBook().apply_l3(*l3)),
                best_rate(len(l3[0]), lambda: ReferenceBook().apply_l3(*l3), repeat=1),
            ),
            (
                f"LOBSTER AMZN lvl 1: verify() parse+replay+resync ({r.unverifiable:,} resyncs)",
                n_msg,
                "msgs/s",
                best_rate(n_msg, lambda: verify(m_csv, b_csv)),
                None,
            ),
        ]

    rows = [
        (f"Engine.process, active strategy, {args.batch:,}-tick batches", args.ticks, "ticks/s", eng_batched, eng_ref),
        ("Engine.process, active strategy, one batch", args.ticks, "ticks/s", eng_one, eng_ref),
        (f"Engine.process, limit orders placed/cancelled every 5 ticks, {args.batch:,}-tick batches",
         args.ticks, "ticks/s", mm_rate, mm_ref),
        (f"Engine.process fed L2 depth (5 diffs/tick), market maker + 40-lot sweeps, {args.batch:,}-tick batches",
         n2, "ticks/s", l2_eng, l2_eng_ref),
        (f"Engine.process fed L2 depth only (5 diffs/tick, no orders): its depth book, {args.batch:,}-tick batches",
         n_dep, "diffs/s", book_rate, book_ref),
        ("OrderBook L3 add/reduce/delete/execute, apply_l3 (bulk)", args.events, "events/s", bulk, l3_ref),
        ("OrderBook L3, one Python call per event", args.ref_n, "events/s", calls, l3_ref),
        *lob,
    ]  # fmt: skip
    w = max(len(r[0]) for r in rows)
    header = ("benchmark", "n", "unit", "native", "reference", "ratio")
    cells = []
    for name, n, unit, rate, base in rows:
        ref_s, ratio = (f"{base:,.0f}", f"{rate / base:.0f}x") if base else ("-", "-")
        cells.append((name, f"{n:,}", unit, f"{rate:,.0f}", ref_s, ratio))
    print(f"{header[0]:<{w}}  {'n':>10}  {'unit':>8}  {'native':>12}  {'reference':>10}  {'ratio':>7}")
    print("-" * (w + 58))
    for name, n, unit, rate, ref_s, ratio in cells:
        print(f"{name:<{w}}  {n:>10}  {unit:>8}  {rate:>12}  {ref_s:>10}  {ratio:>7}")
    notes = [
        f"(reference on the first {args.ref_n:,} events/ticks; engine stream made "
        f"{n_fills:,} fills over {args.ticks:,} ticks; the market maker {len(ins):,} instructions, "
        f"{len(mm_out['fills']):,} fills; fed depth: {len(dep):,} diffs, {len(ins2):,} instructions, "
        f"{len(l2_out['fills']):,} fills, the L1 quote hid stale depth levels on "
        f"{l2_engine.depth_hidden_ticks:,} of {n2:,} ticks)"
    ]
    if hbt_rate is None:
        notes.append(f"hftbacktest: not compared: {hbt_note}")
    else:
        notes.append(
            f"hftbacktest, same market maker on the same first {hbt_n:,} ticks ({hbt_note}): "
            f"{hbt_rate:,.0f} ticks/s; ticktape Engine.process is {mm_rate / hbt_rate:,.1f}x that. Fills: "
            f"ticktape {len(hbt_ours['fills']):,}, hftbacktest {hbt_fills:,} (they differ by design: "
            "hftbacktest's no-partial-fill exchange fills a resting order whole when a trade reaches it, "
            "ticktape fills partially from the traded size after the queue ahead)"
        )
    for line in notes:
        print(line)
    if args.json:
        import benchjson

        data = {
            "mm_ticks_per_s": mm_rate,
            "hftbacktest_ticks_per_s": hbt_rate,
            "hbt_ticks": hbt_n,
            "mm_fills": len(hbt_ours["fills"]),
            "hftbacktest_fills": hbt_fills,
        }
        title = f"benchmarks/native_book.py: native engine and books vs the pure-Python reference (batch {args.batch:,})"
        benchjson.dump(args.json, benchjson.rows_dict("native_book", title, header, cells, notes, data))


if __name__ == "__main__":
    main()
