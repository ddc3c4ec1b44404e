"""Importers: parsing, rejects by reason with line numbers, strict mode, seq, real samples."""

from __future__ import annotations

import contextlib
import csv
import gzip
import itertools
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.data.importers import (
    MAX_WRITE_SPAN_NS,
    REASONS,
    Importer,
    TickBatch,
    _byte_blocks,
    _parsed_ahead,
    _spans,
    bar_ticks,
)
from ticktape.data.readers import write_parquet
from ticktape.errors import ImportFailed


def ticks_of(imp: Importer) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    out: dict[str, list] = {}
    seqs: dict[str, list] = {}
    for b in imp:
        if isinstance(b, TickBatch):
            out.setdefault(b.symbol, []).append(b.ticks)
            seqs.setdefault(b.symbol, []).append(b.seq)
    return {k: np.concatenate(v) for k, v in out.items()}, {k: np.concatenate(v) for k, v in seqs.items()}


def read_rejects(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


BAD_CSV = """time,bid,ask,bid_size,ask_size,venue
2024-01-02T09:00:00.000001Z,100.0,100.1,5,6,X
2024-01-02T09:00:00.000001Z,100.0,100.2,5,6,X
2024-01-02T09:00:00.000001Z,100.0,100.2,5,6,X
not-a-time,100.0,100.1,5,6,X
2024-01-02T09:00:01Z,-1,100.1,5,6,X
2024-01-02T09:00:02Z,100.3,100.1,5,6,X
2024-01-02T09:00:03Z,100.0,100.1,5
2024-01-02T08:00:00Z,100.0,100.1,5,6,X
2024-01-02T09:00:04Z,abc,100.1,5,6,X

2024-01-02T09:00:05Z,100.0,100.1,,,X
"""


def test_generic_csv_counts_each_reject_by_reason_with_line_numbers(tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    src.write_text(BAD_CSV)
    rej = tmp_path / "rejects.csv"
    imp = Importer(
        src,
        "csv",
        symbol="Q",
        mapping={"ts": "time", "bid": "bid", "ask": "ask", "bid_size": "bid_size", "ask_size": "ask_size"},
        rejects_path=rej,
    )
    ticks, seqs = ticks_of(imp)
    rep = imp.report
    assert dict(rep.rejects) == {
        "unknown_column": 1,
        "duplicate": 1,
        "bad_timestamp": 1,
        "non_positive_price": 1,
        "crossed_quote": 1,
        "malformed": 2,
        "out_of_order": 1,
    }
    assert set(rep.rejects) <= set(REASONS)
    assert rep.accepted == 3 == len(ticks["Q"])
    np.testing.assert_array_equal(seqs["Q"], [0, 1, 0])  # two ticks share a microsecond
    assert ticks["Q"]["ts"][0] == 1_704_186_000_000_001_000
    assert np.isnan(ticks["Q"]["bid_size"][2])
    rows = read_rejects(rej)
    by_line = {int(r["line"]): (r["reason"], r["field"]) for r in rows}
    assert by_line == {
        1: ("unknown_column", "venue"),
        4: ("duplicate", "row"),
        5: ("bad_timestamp", "ts"),
        6: ("non_positive_price", "bid"),
        7: ("crossed_quote", "bid"),
        8: ("malformed", "4 fields, expected 6"),
        9: ("out_of_order", "ts"),
        10: ("malformed", "bid"),
    }
    assert rows[1]["text"].startswith("2024-01-02T09:00:00.000001Z,100.0,100.2")


def test_strict_stops_at_the_first_bad_row_with_file_line_and_field(tmp_path: Path) -> None:
    src = tmp_path / "q.csv"
    src.write_text(BAD_CSV)
    imp = Importer(
        src,
        "csv",
        symbol="Q",
        mapping={
            "ts": "time",
            "bid": "bid",
            "ask": "ask",
            "bid_size": "bid_size",
            "ask_size": "ask_size",
            "symbol": "venue",
        },
        strict=True,
    )
    with pytest.raises(ImportFailed, match=r"q\.csv:4: row: duplicate"):
        imp.run()


def test_default_mapping_and_epoch_times(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("symbol,ts,last,last_size\nA,1700000000.5,10,1\nB,1700000000.25,20,2\nA,1700000001,11,1\n")
    ticks, _ = ticks_of(Importer(src, "csv", time_format="s"))
    assert list(ticks["A"]["ts"]) == [1_700_000_000_500_000_000, 1_700_000_001_000_000_000]
    assert list(ticks["B"]["last"]) == [20.0]
    assert np.isnan(ticks["A"]["bid"]).all()


def test_seq_carries_across_blocks(tmp_path: Path) -> None:
    src = tmp_path / "s.csv"
    lines = ["ts,last,last_size"] + [f"2024-01-02T09:00:00.000001Z,{100 + i},1" for i in range(7)]
    src.write_text("\n".join(lines) + "\n")
    ticks, seqs = ticks_of(Importer(src, "csv", symbol="S", block=3))
    np.testing.assert_array_equal(seqs["S"], np.arange(7))
    assert len(ticks["S"]) == 7


def test_dukascopy_and_tickstory_times(tmp_path: Path) -> None:
    duka = tmp_path / "EURUSD_Ticks.csv"
    duka.write_text(
        "Gmt time,Ask,Bid,AskVolume,BidVolume\n"
        "02.01.2024 09:00:00.123,1.1002,1.1000,1.5,2.25\n"
        "02.01.2024 09:00:00.456,1.1003,1.1001,1,2\n"
    )
    ticks, _ = ticks_of(Importer(duka, "dukascopy"))
    t = ticks["EURUSD"]
    assert list(t["ts"]) == [1_704_186_000_123_000_000, 1_704_186_000_456_000_000]
    assert list(t["bid"]) == [1.1, 1.1001] and list(t["ask_size"]) == [1.5, 1.0]
    tick = tmp_path / "tickstory.csv"
    tick.write_text(
        "Timestamp,Bid price,Ask price,Bid volume,Ask volume\n20240102 09:00:00:385,1.1,1.2,1,1\n"
    )
    ticks, _ = ticks_of(Importer(tick, "dukascopy", symbol="X"))
    assert list(ticks["X"]["ts"]) == [1_704_186_000_385_000_000]


def test_tardis_duplicates_by_trade_id(tmp_path: Path) -> None:
    src = tmp_path / "trades.csv"
    src.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "x,BTC,1582329602111000,1,7,buy,9682,0.1\n"
        "x,BTC,1582329602111000,1,7,buy,9682,0.1\n"
        "x,BTC,1582329602111000,1,8,buy,9682,0.1\n"
    )
    imp = Importer(src, "tardis")
    ticks, seqs = ticks_of(imp)
    assert imp.report.rejects == {"duplicate": 1}
    assert list(seqs["BTC"]) == [0, 1]
    assert np.isnan(ticks["BTC"]["bid"]).all() and list(ticks["BTC"]["last_size"]) == [0.1, 0.1]


def test_binance_ws_capture(tmp_path: Path) -> None:
    src = tmp_path / "cap.gz"
    lines = [
        f"100 {json.dumps({'stream': 'x@bookTicker', 'data': {'u': 1, 's': 'BTCUSDT', 'b': '10', 'B': '1', 'a': '11', 'A': '2'}})}",
        f"200 {json.dumps({'stream': 'x@trade', 'data': {'e': 'trade', 'E': 1, 's': 'BTCUSDT', 't': 5, 'p': '10.5', 'q': '0.3', 'T': 1}})}",
        f"300 {json.dumps({'data': {'e': 'depthUpdate', 'E': 1, 's': 'BTCUSDT', 'b': [['10', '0']], 'a': [['11', '4'], ['12', '1']]}})}",
        f"400 {json.dumps({'lastUpdateId': 9, 'bids': [['9', '1']], 'asks': [['13', '2']]})}",
        f"500 {json.dumps({'data': {'e': 'kline', 's': 'BTCUSDT'}})}",
        "600 {not json",
    ]
    with gzip.open(src, "wt") as f:
        f.write("\n".join(lines) + "\n")
    imp = Importer(src, "binance-ws")
    ticks: list[np.ndarray] = []
    events: list[np.ndarray] = []
    for b in imp:
        (ticks if isinstance(b, TickBatch) else events).append(
            b.ticks if isinstance(b, TickBatch) else b.events
        )
    t = np.concatenate(ticks)
    assert list(t["ts"]) == [100, 200] and t["bid"][0] == 10 and t["last"][1] == 10.5
    ev = np.concatenate(events)
    assert list(ev["kind"]) == [10, 10, 10, 11, 10, 10]
    assert list(ev["side"]) == [1, -1, -1, 0, 1, -1]
    assert list(ev["level"][-2:]) == [1, 1]
    assert imp.report.rejects == {"unknown_column": 1, "malformed": 1}


def test_bar_order_heuristic() -> None:
    prices, _ = bar_ticks(
        np.array([10.0, 10, 10]), np.array([12.0, 12, 11]), np.array([9.0, 9, 7]), np.array([11.0, 9.5, 10])
    )
    assert prices.tolist() == [[10, 9, 12, 11], [10, 12, 9, 9.5], [10, 11, 7, 10]]


def test_bars_to_ticks_and_bad_bars(tmp_path: Path) -> None:
    src = tmp_path / "ABC.csv"
    src.write_text(
        "Date,Open,High,Low,Close,Volume\n2024-01-02,10,12,9,11,400\n2024-01-03,10,9,11,10,4\n"
        "2024-01-04,10,12,9,11,400\n"
    )
    imp = Importer(src, "bars")
    ticks, _ = ticks_of(imp)
    t = ticks["ABC"]
    assert list(t["last"][:4]) == [10, 9, 12, 11]
    assert list(t["last_size"][:4]) == [100] * 4
    day = 86_400 * 10**9
    assert list(np.diff(t["ts"][:4])) == [day // 4] * 3
    assert imp.report.rejects == {"malformed": 4}  # one bad bar = its four ticks


def test_parquet_round_trip(tmp_path: Path) -> None:
    ticks = np.zeros(
        5,
        dtype=[
            ("ts", "<i8"),
            ("bid", "<f8"),
            ("ask", "<f8"),
            ("bid_size", "<f8"),
            ("ask_size", "<f8"),
            ("last", "<f8"),
            ("last_size", "<f8"),
        ],
    )
    ticks["ts"] = np.arange(5) * 1000 + 10**18
    ticks["bid"], ticks["ask"] = 1.0, 2.0
    ticks["last"] = np.nan
    path = tmp_path / "t.parquet"
    write_parquet(path, [("P", ticks)])
    got, _ = ticks_of(Importer(path, "parquet"))
    assert got["P"].tobytes() == ticks.astype(got["P"].dtype).tobytes()


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "fmt", "symbol", "accepted", "rejects"),
    [
        ("ticks/truefx_usdjpy_ticks.csv", "truefx", "USDJPY", 1000, {}),
        ("ticks/tardis_binance_btcusdt_trades.csv", "tardis", "BTCUSDT", 9999, {}),
        ("ticks/binance_spot_btcusdt_20240808_ws.gz", "binance-ws", "BTCUSDT", 37797, {}),
        ("bars/orcl-1995-2014.txt", "bars", "ORCL", 4 * 5036, {}),
        ("bars/EURUSD_1h.csv", "bars", "EURUSD", 4 * 5000, {}),
    ],
)
def test_real_samples(name: str, fmt: str, symbol: str, accepted: int, rejects: dict, shared_data) -> None:
    imp = Importer(shared_data(name), fmt, symbol=symbol)
    ticks, _ = ticks_of(imp)
    assert dict(imp.report.rejects) == rejects
    assert imp.report.accepted == accepted
    t = ticks[symbol]
    assert np.all(np.diff(t["ts"]) >= 0)
    if fmt == "binance-ws":
        assert imp.report.book_events > 100_000
    if fmt in ("truefx",):
        assert np.all(t["bid"] <= t["ask"])
        assert t["ts"][0] == 1_357_077_600_295_000_000  # 2013-01-01 22:00:00.295 UTC


def test_fast_and_per_field_paths_agree(tmp_path: Path) -> None:
    """Clean blocks take the typed fast path, a block with a bad value the
    per-field one; both give the same ticks."""
    rows = [f"2024-01-02T09:00:0{i}Z,{100 + i},{101 + i},,{i}" for i in range(6)]
    src = tmp_path / "m.csv"
    src.write_text("ts,bid,ask,bid_size,ask_size\n" + "\n".join(rows) + "\n")
    clean, _ = ticks_of(Importer(src, "csv", symbol="M", block=3))
    bad = list(rows)
    bad[4] = bad[4].replace(",104,", ",x,")
    src.write_text("ts,bid,ask,bid_size,ask_size\n" + "\n".join(bad) + "\n")
    imp = Importer(src, "csv", symbol="M", block=3)
    mixed, _ = ticks_of(imp)
    assert imp.report.rejects == {"malformed": 1}
    keep = [0, 1, 2, 3, 5]
    assert mixed["M"].tobytes() == clean["M"][keep].tobytes()
    assert np.isnan(clean["M"]["bid_size"]).all() and list(clean["M"]["ask_size"]) == [0, 1, 2, 3, 4, 5]


def test_long_imports_are_written_in_bounded_spans() -> None:
    day = 86_400 * 10**9
    ts = np.arange(0, 400 * day, day // 2, dtype=np.int64)
    spans = _spans(ts)
    assert spans[0][0] == 0 and spans[-1][1] == len(ts)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert all(ts[hi - 1] - ts[lo] <= MAX_WRITE_SPAN_NS for lo, hi in spans)
    assert _spans(ts[:10]) == [(0, 10)]


# --------------------------------------------------------------------------
# the pyarrow block path and the line-by-line path give the same result


def run_both(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str = "csv", **kw) -> list:
    """(ticks, seqs, rejects by reason, rows, rejects file, blocks parsed by pyarrow)
    with the pyarrow block path allowed, then forced off."""
    out = []
    real = Importer._parse_arrow
    for allow in (True, False):
        used = []

        def arrow(self, *a, allow=allow, used=used):  # type: ignore[no-untyped-def]
            chunk = real(self, *a) if allow else None
            used.append(chunk is not None)
            return chunk

        monkeypatch.setattr(Importer, "_parse_arrow", arrow)
        rej = tmp_path / f"rejects-{allow}.csv"
        imp = Importer(src, fmt, rejects_path=rej, **kw)
        try:
            ticks, seqs = ticks_of(imp)
        except ImportFailed as exc:  # (no data rows: both paths must say so)
            ticks, seqs = {"error": str(exc)}, {}
        text = rej.read_text() if rej.exists() else ""
        out.append((ticks, seqs, dict(imp.report.rejects), imp.report.rows, text, sum(used)))
    monkeypatch.undo()
    return out


def same(a: tuple, b: tuple) -> None:
    assert a[0].keys() == b[0].keys()
    if "error" in a[0]:
        assert a[0] == b[0]
        return
    for sym in a[0]:
        assert a[0][sym].tobytes() == b[0][sym].tobytes()
        np.testing.assert_array_equal(a[1][sym], b[1][sym])
    assert a[2:5] == b[2:5]


ROW = st.one_of(
    st.tuples(
        st.integers(0, 3),  # time step in µs (0: same microsecond)
        st.sampled_from(["100.5", "100", "-1", "0", "abc", "", "1e2", "100.25"]),
        st.sampled_from(["100.75", "101", "99", "", "nan"]),
        st.sampled_from(["5", "", "-2", "7.5"]),
    ).map(lambda r: ("row", *r)),
    st.sampled_from(["", "only,three,fields", "1,2,3,4,5,6", "garbage"]).map(lambda r: ("raw", r)),
)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(ROW, min_size=1, max_size=40),
    block=st.integers(1, 15),
    crlf=st.booleans(),
    final_newline=st.booleans(),
)
def test_block_and_line_paths_agree(
    tmp_path_factory: pytest.TempPathFactory, rows: list, block: int, crlf: bool, final_newline: bool
) -> None:
    tmp_path = tmp_path_factory.mktemp("agree")
    t = 1_704_186_000_000_000
    lines = ["ts,bid,ask,bid_size"]
    for r in rows:
        if r[0] == "raw":
            lines.append(r[1])
        else:
            t += r[1]
            lines.append(f"{t * 1000},{r[2]},{r[3]},{r[4]}")
    end = "\r\n" if crlf else "\n"
    src = tmp_path / "p.csv"
    src.write_bytes((end.join(lines) + (end if final_newline else "")).encode())
    with pytest.MonkeyPatch.context() as mp:
        a, b = run_both(src, tmp_path, mp, symbol="P", time_format="ns", block=block)
    same(a, b)


@pytest.mark.parametrize("fmt", ["csv", "tardis", "truefx"])
def test_block_path_on_clean_files_matches_line_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    if fmt == "tardis":
        body = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n" + "".join(
            f"binance,BTCUSDT,{1_704_186_000_000_000 + i // 2},{1_704_186_000_000_000 + i},{i // 3 * 3},buy,{100 + i},{1 + i}\n"
            for i in range(50)
        )
    elif fmt == "truefx":
        body = "timestamp,bid,ask\n" + "".join(
            f"2024-01-02 09:00:{i:02d}.5,1.{i:02d},1.{i + 1:02d}\n" for i in range(50)
        )
    else:
        body = "symbol,ts,last,last_size\n" + "".join(
            f" {'AB'[i % 2]} ,{1_700_000_000 + i / 4},{10 + i},{i}\n" for i in range(50)
        )
    src = tmp_path / "c.csv"
    src.write_text(body)
    kw = {"time_format": "s"} if fmt == "csv" else {}
    a, b = run_both(src, tmp_path, monkeypatch, fmt=fmt, block=7, **kw)
    same(a, b)
    assert sum(len(v) for v in a[0].values()) > 0
    assert a[5] > 0 and b[5] == 0  # the blocks did take the pyarrow path, then did not


def test_gzip_and_last_line_without_newline(tmp_path: Path) -> None:
    body = "ts,bid,ask\n" + "\n".join(f"{1_704_186_000 + i},{100 + i},{101 + i}" for i in range(10))
    src = tmp_path / "z.csv.gz"
    src.write_bytes(gzip.compress(body.encode()))
    ticks, _ = ticks_of(Importer(src, "csv", symbol="Z", time_format="s", block=4))
    assert list(ticks["Z"]["bid"]) == [100 + i for i in range(10)]


@settings(max_examples=120, deadline=None)
@given(
    lines=st.lists(st.text(st.sampled_from("ab,\r"), max_size=300), max_size=30),
    block=st.integers(1, 5),
    final_newline=st.booleans(),
    gz=st.booleans(),
    max_line=st.integers(1, 400),
)
def test_byte_blocks_are_the_file_cut_after_whole_lines(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[str],
    block: int,
    final_newline: bool,
    gz: bool,
    max_line: int,
) -> None:
    """Every line of the file comes once, in order, with its number: whole
    in a block, or (longer than ``max_line``) as a block of its own that
    holds only its first bytes."""

    body = "\n".join(lines).encode() + (b"\n" if final_newline and lines else b"")
    src = tmp_path_factory.mktemp("blocks") / "b.csv"
    src.write_bytes(gzip.compress(body) if gz else body)
    if not body:
        with pytest.raises(ImportFailed, match="empty file"):
            list(_byte_blocks(src, block, None, max_line))
        return
    want = (body if body.endswith(b"\n") else body + b"\n").split(b"\n")[:-1]
    got: dict[int, bytes | None] = {}
    for b in _byte_blocks(src, block, None, max_line):
        if b.long is not None:
            assert b.data == b"" and b.lineno not in got
            assert len(want[b.lineno - 1]) > max_line and want[b.lineno - 1].startswith(b.long)
            got[b.lineno] = None
            continue
        assert b.data.endswith(b"\n")
        for k, line in enumerate(b.data.split(b"\n")[:-1]):
            assert b.lineno + k not in got
            got[b.lineno + k] = line
    assert list(got) == list(range(1, len(want) + 1))
    for no, line in got.items():
        assert line is None or (line == want[no - 1] and len(line) <= max_line)


def test_blank_lines_with_text_times_are_skipped_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [f"2024-01-02 09:00:{i:02d}.5,1.{i:02d},1.{i + 1:02d}" for i in range(12)]
    rows[4] = ""
    rows[9] = "\r"
    src = tmp_path / "t.csv"
    src.write_text("timestamp,bid,ask\n" + "\n".join(rows) + "\n")
    a, b = run_both(src, tmp_path, monkeypatch, fmt="truefx", block=5, symbol="T")
    same(a, b)
    assert len(a[0]["T"]) == 10 and a[3] == 10 and a[2] == {}


# --------------------------------------------------------------------------
# parsing ahead in a worker thread (import_to_store)


async def test_parsed_ahead_keeps_order_and_raises_strict_errors_after_the_good_batches(
    tmp_path: Path,
) -> None:
    good = [f"{1_704_186_000 + i},{100 + i},{101 + i}" for i in range(9)]
    src = tmp_path / "s.csv"
    src.write_text("ts,bid,ask\n" + "\n".join([*good, "1704186100,-5,1", *good[:1]]) + "\n")
    imp = Importer(src, "csv", symbol="S", time_format="s", strict=True, block=3)
    got: list[float] = []
    with pytest.raises(ImportFailed, match=r"s\.csv:11: bid: non positive price"):
        async for b in _parsed_ahead(imp, 2):
            got.extend(b.ticks["bid"].tolist())
    # the batches of the blocks before the bad line's block, in order (a block is ~3 lines)
    assert 3 <= len(got) <= 9 and got == [100 + i for i in range(len(got))]


async def test_parsed_ahead_stops_the_worker_and_closes_the_importer(tmp_path: Path) -> None:
    rows = [f"{1_704_186_000 + i},{100 + i},{101 + i}" for i in range(200)]
    src = tmp_path / "s.csv"
    src.write_text("ts,bid,ask,venue\n" + "\n".join(r + ",X" for r in rows) + "\n")
    imp = Importer(src, "csv", symbol="S", time_format="s", block=10, rejects_path=tmp_path / "r.csv")
    seen = 0
    async with contextlib.aclosing(_parsed_ahead(imp, 1)) as batches:
        async for b in batches:
            seen += len(b.ticks)
            break
    assert seen > 0 and imp._rejects_file is None  # closed: the generator was finished
    assert not any(t.name == "ticktape-import" for t in threading.enumerate())
    assert imp.report.rows < 200  # parsing stopped a block or two ahead
