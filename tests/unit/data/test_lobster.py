"""LOBSTER reader and verifier: crafted files, bad input, the CLI, and the real samples."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from ticktape.data.lobster import (
    MESSAGE_DTYPE,
    load_messages,
    load_orderbook,
    orderbook_levels,
    read_messages,
    verify,
)
from ticktape.errors import LobsterFormatError

AMZN = "AMZN_2012-06-21_34200000_57600000_{}_1.csv"
AAPL = "AAPL_2012-06-21_34200000_57600000_{}_10.csv"
NO_ASK, NO_BID = (9999999999, 0), (-9999999999, 0)


def write(tmp_path: Path, messages: list[str], rows: list[str], name: str = "x") -> tuple[Path, Path]:
    m, b = tmp_path / f"{name}_message.csv", tmp_path / f"{name}_orderbook.csv"
    m.write_text("".join(line + "\n" for line in messages))
    b.write_text("".join(line + "\n" for line in rows))
    return m, b


# A level-1 stream: liquidity that rested before the data began (ids 97-99),
# and a level that enters from beyond the window.
CRAFTED_MESSAGES = [
    "34200.000000001,1,1,10,1000000,1",  # add buy 10 @100: bid becomes 30 (20 pre-existing)
    "34200.5,2,99,5,1000000,1",  # partial cancel of an unknown (pre-existing) order
    "34201,4,98,50,1010000,-1",  # execution of a pre-existing ask: level 2 enters (7 @101.1)
    "34201,5,0,3,1005000,-1",  # hidden execution: no book change
    "34202,3,97,7,1011000,-1",  # delete of an unknown order at the entered level: no asks left
    "34202.25,1,2,4,1012000,-1",  # add ask
    "34203,4,1,10,1000000,1",  # execution of a known order: bid 15 remains
    "34204,7,0,0,-1,-1",  # trading halt: no book change
]
CRAFTED_ROWS = [
    "1010000,50,1000000,30",
    "1010000,50,1000000,25",
    "1011000,7,1000000,25",
    "1011000,7,1000000,25",
    "9999999999,0,1000000,25",
    "1012000,4,1000000,25",
    "1012000,4,1000000,15",
    "1012000,4,1000000,15",
]


def test_crafted_stream_verifies(tmp_path: Path) -> None:
    m, b = write(tmp_path, CRAFTED_MESSAGES, CRAFTED_ROWS)
    r = verify(m, b)
    assert (r.messages, r.seeded, r.mismatched) == (8, 1, 0)
    # row 2: 101.10 entered from beyond the level-1 window; everything else exact
    assert (r.exact, r.unverifiable) == (6, 1)
    assert r.first_mismatches == []


def test_chunking_does_not_change_the_result(tmp_path: Path) -> None:
    m, b = write(tmp_path, CRAFTED_MESSAGES, CRAFTED_ROWS)
    whole = verify(m, b).to_dict()
    for chunk in (1, 2, 3):
        assert verify(m, b, chunk_rows=chunk).to_dict() == whole


def test_mismatch_is_reported_with_index_side_level(tmp_path: Path) -> None:
    rows = list(CRAFTED_ROWS)
    rows[6] = rows[7] = "1012000,4,1000000,16"  # execution of known order 1 leaves 15, not 16
    m, b = write(tmp_path, CRAFTED_MESSAGES, rows)
    r = verify(m, b)
    assert r.mismatched == 1
    (mm,) = r.first_mismatches
    assert (mm.index, mm.side, mm.level, mm.expected, mm.got) == (6, "bid", 1, (1000000, 16), (1000000, 15))
    # the book is re-synchronised to the file: the next row is verified again
    assert r.exact + r.unverifiable + r.mismatched == r.messages - r.seeded


def test_stale_level_better_than_the_window_is_a_mismatch(tmp_path: Path) -> None:
    msgs = ["1,1,1,10,1000000,1", "2,1,2,5,1010000,-1"]
    rows = ["1010000,8,1000000,10", "1010000,8,1000000,10"]  # the add of 5 is missing
    m, b = write(tmp_path, msgs, rows)
    r = verify(m, b)
    assert r.mismatched == 1
    assert r.first_mismatches[0].expected == (1010000, 8)
    assert r.first_mismatches[0].got == (1010000, 13)


def test_level_10_deeper_level_enters(tmp_path: Path) -> None:
    # 2-level file: deleting the best ask lets an unannounced third level in
    msgs = ["1,1,5,10,1000000,-1", "2,3,5,10,1000000,-1"]
    rows = [
        "1000000,10,990000,1,1010000,3,980000,2",
        "1010000,3,990000,1,1020000,9,980000,2",
    ]
    m, b = write(tmp_path, msgs, rows)
    r = verify(m, b)
    assert (r.exact, r.unverifiable, r.mismatched) == (0, 1, 0)
    # comparing only level 1 leaves nothing unverifiable
    r1 = verify(m, b, levels=1)
    assert (r1.exact, r1.unverifiable, r1.mismatched) == (1, 0, 0)
    with pytest.raises(ValueError, match=r"levels must be in 1\.\.2"):
        verify(m, b, levels=3)


def test_reused_id_and_cross_trade(tmp_path: Path) -> None:
    # id 3 rests at 99, its cancel happens beyond the level-1 window (not in the
    # file); the exchange then reuses id 3 at the top. A cross trade (type 6)
    # changes nothing.
    msgs = [
        "1,1,1,10,1000000,1",
        "2,1,3,5,990000,1",
        "3,1,3,7,1000000,1",
        "4,6,-1,100,1000000,0",
        "5,3,3,7,1000000,1",
    ]
    rows = [
        "1010000,1,1000000,10",
        "1010000,1,1000000,10",
        "1010000,1,1000000,17",
        "1010000,1,1000000,17",
        "1010000,1,1000000,10",
    ]
    m, b = write(tmp_path, msgs, rows)
    r = verify(m, b)
    assert (r.exact, r.unverifiable, r.mismatched) == (4, 0, 0)


def test_gzipped_files(tmp_path: Path) -> None:
    m, b = tmp_path / "g_message.csv.gz", tmp_path / "g_orderbook.csv.gz"
    with gzip.open(m, "wt") as f:
        f.write("".join(x + "\n" for x in CRAFTED_MESSAGES))
    with gzip.open(b, "wt") as f:
        f.write("".join(x + "\n" for x in CRAFTED_ROWS))
    r = verify(m, b)
    assert (r.messages, r.exact, r.unverifiable, r.mismatched) == (8, 6, 1, 0)
    with gzip.open(m, "wt") as f:
        f.write("".join(x + "\n" for x in [*CRAFTED_MESSAGES[:3], "34201,1,5,x,1000000,1"]))
    with pytest.raises(LobsterFormatError, match=r"g_message\.csv\.gz:4: field size = 'x' is not a number"):
        load_messages(m)


def test_empty_levels_dummy_prices(tmp_path: Path) -> None:
    msgs = ["1,1,1,10,1000000,1", "2,3,1,10,1000000,1"]
    rows = ["9999999999,0,1000000,10", "9999999999,0,-9999999999,0"]
    m, b = write(tmp_path, msgs, rows)
    r = verify(m, b)
    assert (r.exact, r.mismatched) == (1, 0)


def test_read_messages_types_and_exact_ns(tmp_path: Path) -> None:
    m, _ = write(tmp_path, CRAFTED_MESSAGES, CRAFTED_ROWS)
    a = load_messages(m)
    assert a.dtype == MESSAGE_DTYPE
    assert a["time_ns"][0] == 34_200_000_000_001
    assert a["time_ns"][5] == 34_202_250_000_000
    assert a["type"].tolist() == [1, 2, 4, 5, 3, 1, 4, 7]
    assert a["price"][0] == 1_000_000
    ob = load_orderbook(tmp_path / "x_orderbook.csv")
    assert ob.shape == (8, 4) and ob.dtype == np.int64
    assert orderbook_levels(tmp_path / "x_orderbook.csv") == 1
    assert sum(len(c) for c in read_messages(m, chunk_rows=3)) == 8


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("34201,1,5,abc,1000000,1", r"x_message\.csv:3: field size = 'abc' is not a number"),
        ("34201,1,5,10,1000000", r"x_message\.csv:3: expected 6 fields"),
        ("34201,1,5,0,1000000,1", r"x_message\.csv:3: field size = 0 must be > 0"),
        ("34201,1,5,-3,1000000,1", r"x_message\.csv:3: field size = -3 must be > 0"),
        ("34201,1,5,10,1000000,2", r"x_message\.csv:3: field direction = 2 must be 1 \(buy\) or -1"),
        ("34201,9,5,10,1000000,1", r"x_message\.csv:3: field type = 9 is not a LOBSTER event type"),
        ("34201,1,5,10,100.5,1", r"x_message\.csv:3: field price = 100\.5 is not an integer"),
        ("34201,1,5,10,,1", r"x_message\.csv:3: field price = nan is missing"),
        ("nan,1,5,10,1000000,1", r"x_message\.csv:3: field time = nan"),
        ("34199,1,5,10,1000000,1", r"x_message\.csv:3: field time = 34199\.0 goes backwards"),
        ("34201,1,5,10,0,1", r"x_message\.csv:3: field price = 0 must be > 0"),
    ],
)
def test_bad_message_line_names_file_line_field(tmp_path: Path, line: str, pattern: str) -> None:
    msgs = [CRAFTED_MESSAGES[0], CRAFTED_MESSAGES[1], line]
    m, b = write(tmp_path, msgs, CRAFTED_ROWS[:3])
    with pytest.raises(LobsterFormatError, match=pattern):
        verify(m, b)
    with pytest.raises(LobsterFormatError, match=pattern):
        load_messages(m)


def test_bad_orderbook_and_length_mismatch(tmp_path: Path) -> None:
    rows = list(CRAFTED_ROWS)
    rows[4] = "9999999999,-1,1000000,25"
    m, b = write(tmp_path, CRAFTED_MESSAGES, rows)
    with pytest.raises(LobsterFormatError, match=r"x_orderbook\.csv:5: field ask_size_1 = -1 must be >= 0"):
        verify(m, b)
    m, b = write(tmp_path, CRAFTED_MESSAGES, CRAFTED_ROWS[:-2], name="short")
    with pytest.raises(LobsterFormatError, match=r"short_orderbook\.csv:7: file ends here"):
        verify(m, b)
    m, b = write(tmp_path, CRAFTED_MESSAGES, [r + ",1" for r in CRAFTED_ROWS], name="wide")
    with pytest.raises(LobsterFormatError, match=r"wide_orderbook\.csv:1: 5 fields is not a multiple of 4"):
        verify(m, b)
    with pytest.raises(FileNotFoundError, match="no such file"):
        verify(tmp_path / "missing.csv", tmp_path / "x_orderbook.csv")


def test_cli_verify_json_and_table(cli, tmp_path: Path) -> None:
    m, b = write(tmp_path, CRAFTED_MESSAGES, CRAFTED_ROWS)
    res = cli("lobster", *["verify", str(m), str(b), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert (d["messages"], d["exact"], d["unverifiable"], d["mismatched"]) == (8, 6, 1, 0)
    res = cli("lobster", *["verify", str(m), str(b)])
    assert res.exit_code == 0
    assert "unverifiable" in res.stdout and "mismatched" in res.stdout


def test_cli_verify_mismatch_exit_1(cli, tmp_path: Path) -> None:
    rows = list(CRAFTED_ROWS)
    rows[6] = rows[7] = "1012000,4,1000000,16"
    m, b = write(tmp_path, CRAFTED_MESSAGES, rows)
    res = cli("lobster", *["verify", str(m), str(b), "--json"])
    assert res.exit_code == 1
    d = json.loads(res.stdout)
    assert d["mismatched"] == 1
    assert d["first_mismatches"][0] == {
        "index": 6,
        "line": 7,
        "side": "bid",
        "level": 1,
        "expected": [1000000, 16],
        "got": [1000000, 15],
    }
    res = cli("lobster", *["verify", str(m), str(b)])
    assert res.exit_code == 1 and "first mismatches" in res.stdout


def test_cli_bad_input_one_line(cli, tmp_path: Path) -> None:
    m, b = write(tmp_path, [*CRAFTED_MESSAGES[:2], "34201,1,5,abc,1000000,1"], CRAFTED_ROWS[:3])
    res = cli("lobster", *["verify", str(m), str(b)])
    assert res.exit_code == 1
    assert "ticktape: error:" in res.stderr and "x_message.csv:3: field size" in res.stderr
    res = cli("lobster", *["verify", str(m), str(b), "--levels", "0"])
    assert res.exit_code == 1
    for missing in (tmp_path / "nope.csv", tmp_path):  # a missing file, a directory
        res = cli("lobster", *["verify", str(m), str(missing)])
        assert res.exit_code == 1 and "ticktape: error:" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.shared_data
def test_real_amzn_level_1_full_day(shared_data) -> None:
    m, b = (shared_data("lobster/" + AMZN.format(kind)) for kind in ("message", "orderbook"))
    r = verify(m, b)
    assert r.messages == 57_515
    assert r.mismatched == 0, r.first_mismatches
    assert r.exact + r.unverifiable == r.messages - 1
    assert r.exact > 0.8 * r.messages


@pytest.mark.shared_data
def test_real_aapl_level_10(shared_data) -> None:
    m, b = (shared_data("lobster/" + AAPL.format(kind)) for kind in ("message", "orderbook"))
    r = verify(m, b)
    assert r.messages == 999
    assert r.mismatched == 0, r.first_mismatches
    assert r.exact + r.unverifiable == 998
    # all ten levels compared; the first 3 levels never need an unannounced level
    assert verify(m, b, levels=3).unverifiable <= r.unverifiable


@pytest.mark.shared_data
def test_real_cli_json(cli, shared_data) -> None:
    m, b = (shared_data("lobster/" + AAPL.format(kind)) for kind in ("message", "orderbook"))
    res = cli("lobster", *["verify", str(m), str(b), "--json", "--levels", "10"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["mismatched"] == 0
