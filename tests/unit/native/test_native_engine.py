"""The native Engine against the pure-Python reference engine."""

from __future__ import annotations

import contextlib
import math
import pickle
import threading
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape import testing
from ticktape.model.batch import EQUITY_DTYPE, FILL_DTYPE, ORDER_DTYPE, TICK_DTYPE
from ticktape.native import Engine, OrderEvent, OrderType
from ticktape.reference import ReferenceEngine

KINDS = ("fills", "orders", "equity")
COLS = ("ts", "bid", "ask", "bid_size", "ask_size", "target")


@st.composite
def streams(draw: st.DrawFn, max_n: int = 150) -> tuple[dict, dict[str, np.ndarray]]:
    """A random engine config and tick stream (with bad quotes, empty sizes, NaN targets)."""
    cfg = {
        "tick_size": draw(st.sampled_from([0.01, 0.25, 0.05, 1.0, 0.1, 0.5, 0.3])),
        "lot_size": draw(st.sampled_from([1.0, 0.5, 0.1, 2.0, 100.0, 0.3])),
        "latency_ns": draw(st.sampled_from([0, 1, 250_000_000, 2_000_000_000])),
        "fee_bps": draw(st.sampled_from([0.0, 1.5, -0.25])),
        "initial_cash": draw(st.sampled_from([1_000_000.0, 0.0, 12_345.67])),
        "equity_interval_ns": draw(st.sampled_from([1, 1_000_000_000, 700_000_000, 10**12])),
    }
    n = draw(st.integers(0, max_n))
    steps = st.sampled_from([0, 0, 1, 1_000, 100_000_000, 400_000_000, 1_500_000_000])
    dts = draw(st.lists(steps, min_size=n, max_size=n))
    start = draw(st.sampled_from([0, 1_700_000_000_123_456_789, -5_000_000_000]))
    ts = start + np.cumsum(np.array(dts, dtype=np.int64))
    moves = draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n))
    bid_t = 10_000 + np.cumsum(np.array(moves, dtype=np.int64))
    spread = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    bid = bid_t * cfg["tick_size"]
    ask = (bid_t + spread) * cfg["tick_size"]
    quality = draw(
        st.lists(st.sampled_from(["ok"] * 12 + ["nan", "zero", "crossed"]), min_size=n, max_size=n)
    )
    for i, q in enumerate(quality):
        if q == "nan":
            bid[i] = np.nan
        elif q == "zero":
            ask[i] = 0.0
        elif q == "crossed":
            bid[i], ask[i] = ask[i] + cfg["tick_size"], bid[i]
    sizes = st.sampled_from([0.0, 1.0, 2.5, 7.0, 100.0, 0.3, np.nan, 1_000.0])
    targets = st.one_of(st.just(np.nan), st.just(np.nan), st.integers(-600, 600).map(lambda k: k * 0.05))
    cols = {
        "ts": ts,
        "bid": bid,
        "ask": ask,
        "bid_size": np.array(draw(st.lists(sizes, min_size=n, max_size=n)), dtype=np.float64),
        "ask_size": np.array(draw(st.lists(sizes, min_size=n, max_size=n)), dtype=np.float64),
        "target": np.array(draw(st.lists(targets, min_size=n, max_size=n)), dtype=np.float64),
    }
    return cfg, cols


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for kind in KINDS:
        a, b = got[kind], want[kind]
        assert a.dtype == b.dtype, kind
        assert len(a) == len(b), (kind, a, b)
        for name in a.dtype.names:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{kind}.{name}")


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in KINDS}


def run(eng, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    return concat([eng.process(*(cols[c] for c in COLS)), eng.finish()])


@settings(max_examples=150, deadline=None)
@given(streams())
def test_engine_matches_reference(stream: tuple[dict, dict[str, np.ndarray]]) -> None:
    cfg, cols = stream
    nat, ref = Engine(**cfg), ReferenceEngine(**cfg)
    assert_same(run(nat, cols), run(ref, cols))
    assert nat.position == ref.position
    assert nat.cash == ref.cash
    assert nat.fees == ref.fees
    assert nat.equity == ref.equity or (math.isnan(nat.equity) and math.isnan(ref.equity))
    assert nat.ticks_processed == ref.ticks_processed == len(cols["ts"])
    assert nat.quotes_ignored == ref.quotes_ignored


@settings(max_examples=150, deadline=None)
@given(streams(), st.data())
def test_batch_split_and_state_round_trip_are_invisible(
    stream: tuple[dict, dict[str, np.ndarray]], data: st.DataObject
) -> None:
    cfg, cols = stream
    n = len(cols["ts"])
    whole = run(Engine(**cfg), cols)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=6)))
    restore_at = set(data.draw(st.lists(st.integers(0, len(cuts)), max_size=3)))
    eng = Engine(**cfg)
    parts = []
    for k, (a, b) in enumerate(zip([0, *cuts], [*cuts, n], strict=True)):
        if k in restore_at:  # a worker restarts from its table state mid-stream
            state = eng.get_state()
            eng = Engine.from_state(state)
            assert eng.get_state() == state
        parts.append(eng.process(*(cols[c][a:b] for c in COLS)))
    parts.append(eng.finish())
    assert_same(concat(parts), whole)


@settings(max_examples=100, deadline=None)
@given(streams())
def test_latency_no_fill_before_arrival_nor_on_creating_tick(
    stream: tuple[dict, dict[str, np.ndarray]],
) -> None:
    cfg, cols = stream
    cols["ts"] = np.arange(len(cols["ts"]), dtype=np.int64) * 300_000_000  # one tick per ts
    out = run(Engine(**cfg), cols)
    orders = out["orders"]
    created = {int(o["order_id"]): int(o["ts"]) for o in orders if o["event"] == OrderEvent.SUBMITTED}
    for f in out["fills"]:
        t0 = created[int(f["order_id"])]
        assert f["ts"] > t0
        assert f["ts"] >= t0 + cfg["latency_ns"]
    for o in orders[orders["event"] == OrderEvent.ACCEPTED]:
        assert o["ts"] >= created[int(o["order_id"])] + cfg["latency_ns"]


@settings(max_examples=100, deadline=None)
@given(streams())
def test_equity_is_cash_plus_position_times_mark(
    stream: tuple[dict, dict[str, np.ndarray]],
) -> None:
    cfg, cols = stream
    eng = Engine(**cfg)
    out = run(eng, cols)
    for row in out["equity"]:
        want = row["cash"] if row["position"] == 0 else row["cash"] + row["position"] * row["price"]
        assert row["equity"] == want
    # one sample per grid step; finish() may add one more at the last tick's ts
    assert np.all(np.diff(out["equity"]["ts"][:-1]) > 0)
    assert np.all(np.diff(out["equity"]["ts"]) >= 0)
    if len(cols["ts"]):
        assert out["equity"]["ts"][-1] == cols["ts"][-1]
        assert out["equity"]["equity"][-1] == eng.equity
    fills = out["fills"]
    assert eng.position == pytest.approx(float(np.sum(fills["side"] * fills["qty"])))
    cash = cfg["initial_cash"] - np.sum(fills["side"] * fills["price"] * fills["qty"]) - fills["fee"].sum()
    assert eng.cash == pytest.approx(cash, rel=1e-12, abs=1e-6)


# ------------------------------------------------------------ hand-written


def ticks(n: int, **quote: Any) -> dict:
    """n quotes one second apart from 0, 100.00 / 100.02, 10 a side (keywords of testing.quotes change that)."""
    return testing.columns(testing.quotes(n, **({"t0": 0, "ask": 100.02, "size": 10.0} | quote)))


def test_output_dtypes_are_the_batch_dtypes() -> None:
    out = Engine(0.01).process(*(ticks(0)[c] for c in COLS))
    assert out["fills"].dtype == FILL_DTYPE
    assert out["orders"].dtype == ORDER_DTYPE
    assert out["equity"].dtype == EQUITY_DTYPE


def test_partial_fills_over_ticks_and_fees_reduce_cash() -> None:
    cols = ticks(4, size=3.0)
    cols["target"][0] = 5.0
    eng = Engine(0.01, fee_bps=10.0, initial_cash=1_000.0)
    out = run(eng, cols)
    assert out["fills"][["ts", "order_id", "side", "price", "qty"]].tolist() == [
        (1 * 10**9, 1, 1, 100.02, 3.0),
        (2 * 10**9, 1, 1, 100.02, 2.0),
    ]
    events = out["orders"][["ts", "event", "qty"]].tolist()
    assert events == [
        (0, OrderEvent.SUBMITTED, 5.0),
        (10**9, OrderEvent.ACCEPTED, 5.0),
        (10**9, OrderEvent.PARTIALLY_FILLED, 3.0),
        (2 * 10**9, OrderEvent.FILLED, 2.0),
    ]
    assert np.all(out["orders"]["type"] == OrderType.MARKET)
    fee = 10.0 * 1e-4 * 100.02 * 3.0 + 10.0 * 1e-4 * 100.02 * 2.0
    assert eng.fees == pytest.approx(fee)
    assert eng.cash == pytest.approx(1_000.0 - 5 * 100.02 - fee)
    assert eng.position == 5.0
    assert eng.equity == pytest.approx(eng.cash + 5 * 100.01)


def test_new_decision_cancels_the_working_order() -> None:
    cols = ticks(4, size=1.0)
    cols["target"][0] = 3.0
    cols["target"][2] = -1.0  # position is 1 then; the rest of order 1 is cancelled
    out = run(Engine(0.01), cols)
    ev = out["orders"][["ts", "order_id", "side", "event", "qty"]].tolist()
    assert ev == [
        (0, 1, 1, OrderEvent.SUBMITTED, 3.0),
        (10**9, 1, 1, OrderEvent.ACCEPTED, 3.0),
        (10**9, 1, 1, OrderEvent.PARTIALLY_FILLED, 1.0),
        (2 * 10**9, 1, 1, OrderEvent.PARTIALLY_FILLED, 1.0),
        (2 * 10**9, 1, 1, OrderEvent.CANCELLED, 1.0),
        (2 * 10**9, 2, -1, OrderEvent.SUBMITTED, 3.0),
        (3 * 10**9, 2, -1, OrderEvent.ACCEPTED, 3.0),
        (3 * 10**9, 2, -1, OrderEvent.PARTIALLY_FILLED, 1.0),
    ]


def test_small_changes_do_not_trade_and_invalid_quotes_do_not_fill() -> None:
    cols = ticks(5)
    cols["target"][:] = [0.4, np.nan, 2.0, np.nan, 2.3]
    cols["ask"][3] = np.nan  # order 1 arrives here but there is no usable quote
    eng = Engine(0.01)
    out = run(eng, cols)
    assert out["fills"][["ts", "qty"]].tolist() == [(4 * 10**9, 2.0)]
    assert eng.quotes_ignored == 1 and eng.position == 2.0


def test_same_timestamp_never_fills_on_the_creating_tick() -> None:
    cols = ticks(3, step_ns=0)
    cols["target"][0] = 1.0
    eng = Engine(0.01)
    first = eng.process(*(cols[c][:1] for c in COLS))
    assert len(first["fills"]) == 0
    second = eng.process(*(cols[c][1:] for c in COLS))
    assert second["fills"][["ts", "qty"]].tolist() == [(0, 1.0)]


def test_latency_delays_release() -> None:
    cols = ticks(5, step_ns=100)
    cols["target"][0] = 1.0
    out = run(Engine(0.01, latency_ns=250), cols)
    assert out["fills"]["ts"].tolist() == [300]
    accepted = out["orders"][out["orders"]["event"] == OrderEvent.ACCEPTED]
    assert accepted["ts"].tolist() == [300]


def test_equity_grid_and_finish_once() -> None:
    cols = ticks(7, step_ns=400_000_000)  # ts 0, .4, .8, 1.2, 1.6, 2.0, 2.4 s
    eng = Engine(0.01)
    out = eng.process(*(cols[c] for c in COLS))
    assert out["equity"]["ts"].tolist() == [0, 1_200_000_000, 2_000_000_000]
    assert eng.finish()["equity"]["ts"].tolist() == [2_400_000_000]
    assert len(eng.finish()["equity"]) == 0
    assert len(Engine(0.01).finish()["equity"]) == 0


def test_structured_array_fields_and_float_ts_are_accepted() -> None:
    cols = ticks(50, size=2.0)
    cols["target"][::7] = np.arange(8) % 3 - 1.0
    arr = np.zeros(50, dtype=TICK_DTYPE)
    for c in COLS[:-1]:
        arr[c] = cols[c]
    raw = arr.tobytes()
    view = np.frombuffer(b"xyz" + raw, dtype=TICK_DTYPE, offset=3)  # unaligned, read-only
    want = run(Engine(0.01), cols)
    got = run(Engine(0.01), {**{c: view[c] for c in COLS[:-1]}, "target": cols["target"]})
    assert_same(got, want)
    got = run(Engine(0.01), {**cols, "ts": cols["ts"].astype(np.float64)})
    assert_same(got, want)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(bid=c["bid"][:3]), r"bid has length 3 but ts has length 5"),
        (
            lambda c: c["ts"].__setitem__(2, -1),
            r"ts\[2\] = -1 goes backwards \(previous 2000000000\)",
        ),
        (lambda c: c.update(ts=np.array([0, 1, np.nan, 3, 4])), r"ts\[2\] = nan is NaN"),
        (lambda c: c.update(ts=np.array([0, 1, 2.5, 3, 4])), r"ts\[2\] = 2.5 is not an integer"),
        (lambda c: c["target"].__setitem__(3, np.inf), r"target\[3\] = inf is not finite"),
        (lambda c: c["target"].__setitem__(1, -np.inf), r"target\[1\] = -inf"),
        (lambda c: c["ask_size"].__setitem__(4, -1.0), r"ask_size\[4\] = -1 is negative"),
        (lambda c: c["bid_size"].__setitem__(0, -0.5), r"bid_size\[0\] = -0.5 is negative"),
        (lambda c: c["bid"].__setitem__(1, 100.005), r"bid\[1\] = 100.005 is not on the tick grid"),
        (lambda c: c["ask"].__setitem__(2, 1e300), r"ask\[2\] = 1e\+300 is out of range"),
        (lambda c: c.update(ask=np.ones((5, 1))), r"ask must be 1-D"),
    ],
)
def test_bad_input_names_field_and_index(change, message: str) -> None:  # type: ignore[no-untyped-def]
    eng = Engine(0.01)
    eng.process(*(ticks(1)[c] for c in COLS))
    before = eng.get_state()
    cols = ticks(5)
    cols["ts"] = cols["ts"] + 10**9
    change(cols)
    with pytest.raises(ValueError, match=message):
        eng.process(*(cols[c] for c in COLS))
    assert eng.get_state() == before  # a rejected batch changes nothing


def test_ts_backwards_across_batches() -> None:
    eng = Engine(0.01)
    cols = ticks(3)
    eng.process(*(cols[c] for c in COLS))
    with pytest.raises(ValueError, match=r"ts\[0\] = 1000000000 goes backwards \(previous 2000000000\)"):
        eng.process(*(cols[c][1:] for c in COLS))
    eng.process(*(cols[c][2:] for c in COLS))  # equal ts is fine
    assert eng.ticks_processed == 4


def test_bad_config_raises() -> None:
    for kwargs in (
        {"tick_size": 0.0},
        {"tick_size": math.nan},
        {"tick_size": 0.01, "lot_size": -1.0},
        {"tick_size": 0.01, "latency_ns": -1},
        {"tick_size": 0.01, "equity_interval_ns": 0},
        {"tick_size": 0.01, "fee_bps": math.inf},
    ):
        with pytest.raises(ValueError):
            Engine(**kwargs)
    with pytest.raises(ValueError):
        Engine.from_state(b"junk")
    good = Engine(0.01).get_state()
    with pytest.raises(ValueError):
        Engine.from_state(good[:-1])
    with pytest.raises(ValueError):
        Engine.from_state(good + b"\0")


def test_state_keeps_config_orders_and_counters_and_pickles() -> None:
    cols = ticks(3, ask=100.25, size=1.0)
    cols["target"][1] = -4.0
    eng = Engine(0.25, lot_size=0.5, latency_ns=7, fee_bps=2.0, initial_cash=5.0, equity_interval_ns=3)
    eng.process(*(cols[c] for c in COLS))
    eng2 = Engine.from_state(eng.get_state())
    eng3 = pickle.loads(pickle.dumps(eng))
    for e in (eng2, eng3):
        assert e.get_state() == eng.get_state()
        assert (e.tick_size, e.lot_size, e.latency_ns, e.fee_bps, e.initial_cash, e.equity_interval_ns) == (
            0.25, 0.5, 7, 2.0, 5.0, 3,
        )  # fmt: skip
        assert (e.position, e.cash, e.fees, e.ticks_processed, e.open_qty) == (
            eng.position, eng.cash, eng.fees, 3, eng.open_qty,
        )  # fmt: skip
    assert eng.open_qty == -3.0 and eng.position == -1.0


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_corrupt_state_raises_or_loads_but_never_crashes(data: st.DataObject) -> None:
    cols = ticks(4, size=1.0)
    cols["target"][2] = 3.0
    eng = Engine(0.01, latency_ns=10**10)
    eng.process(*(cols[c] for c in COLS))  # leaves a pending order in the state
    state = bytearray(eng.get_state())
    assert Engine.from_state(memoryview(state)).get_state() == state  # any bytes-like
    cut = data.draw(st.integers(0, len(state)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(state) - 1), st.integers(0, 255))))
    for i, v in flips:
        state[i] = v
    try:
        other = Engine.from_state(bytes(state[:cut]))
    except ValueError:
        return
    with contextlib.suppress(ValueError):  # e.g. a corrupted tick size or last ts
        other.process(*(ticks(3)[c] + (10**10 if c == "ts" else 0) for c in COLS))


def test_process_releases_the_gil_and_guards_the_engine() -> None:
    n = 30_000_000  # stride-0 views: no memory, ~1 s of C++ work
    one = {c: np.broadcast_to(v[:1], (n,)) for c, v in ticks(1).items()}
    eng = Engine(0.01)
    done = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            eng.process(*(one[c] for c in COLS))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    worker = threading.Thread(target=work)
    worker.start()
    refused = False
    deadline = time.monotonic() + 60
    while not done.is_set() and time.monotonic() < deadline:
        try:
            eng.ticks_processed  # noqa: B018 - Python runs here while C++ works
        except RuntimeError as exc:
            assert "in use by another thread" in str(exc)
            refused = True
            break
    worker.join()
    assert not errors
    assert refused, "process() finished before another thread could run: GIL held?"
    assert eng.ticks_processed == n
