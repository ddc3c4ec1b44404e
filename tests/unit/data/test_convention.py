"""One column/time convention: a file gives the same timestamps through
``ticktape backtest``, ``ticktape data import`` and ``ticktape data generate
--from-bars`` (each driven through the function the command calls)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticktape.backtest.run import prepare
from ticktape.data import synth
from ticktape.data.convention import TimeParser, frame_rows, ticks_from
from ticktape.data.importers import Importer, TickBatch

# six instants a day apart (bars), each with microseconds
NS = (1_704_186_000 + 86_400 * np.arange(6)) * 10**9 + np.array([123_456, 1, 999_999, 0, 500_000, 42]) * 1000


def iso(ns: int, offset_h: int | None) -> str:
    t = pd.Timestamp(ns, unit="ns", tz="UTC")
    if offset_h is None:
        return t.tz_localize(None).isoformat(sep=" ")
    if offset_h == 0:
        return t.isoformat().replace("+00:00", "Z")
    return t.tz_convert(f"Etc/GMT{-offset_h:+d}").isoformat()


def decimal(ns: int, digits: int) -> str:
    """ns as a decimal number of 10**digits ns (exact)."""
    whole, frac = divmod(ns, 10**digits)
    return f"{whole}.{frac:0{digits}d}".rstrip("0").rstrip(".")


FORMS: dict[str, Callable[[int], str]] = {
    "ISO, UTC (Z)": lambda ns: iso(ns, 0),
    "ISO, no zone": lambda ns: iso(ns, None),
    "ISO, +01:00": lambda ns: iso(ns, 1),
    "ISO, -05:00": lambda ns: iso(ns, -5),
    "epoch seconds": lambda ns: decimal(ns, 9),
    "epoch ms": lambda ns: decimal(ns, 6),
    "epoch us": lambda ns: str(ns // 1000),
    "epoch ns": str,
}


@pytest.mark.parametrize("form", list(FORMS))
def test_one_csv_gives_the_same_timestamps_through_backtest_import_and_generate(
    tmp_path: Path, form: str, cli
) -> None:
    text = [FORMS[form](int(t)) for t in NS]
    ticks = tmp_path / "ticks.csv"
    ticks.write_text("time,bid,ask\n" + "".join(f"{t},{100 + i},{101 + i}\n" for i, t in enumerate(text)))
    bars = tmp_path / "bars.csv"
    bars.write_text("Date,Open,High,Low,Close,Volume\n" + "".join(f"{t},10,12,9,11,100\n" for t in text))
    want = NS.tolist()
    # ticktape backtest FILE: ticks, bars
    assert prepare(ticks).ticks["ts"].tolist() == want
    assert prepare(bars).bars.ts.tolist() == want
    # ticktape data import FILE (csv, bars)
    imp = np.concatenate([b.ticks for b in Importer(ticks, "csv", symbol="T") if isinstance(b, TickBatch)])
    assert imp["ts"].tolist() == want
    imp = np.concatenate([b.ticks for b in Importer(bars, "bars", symbol="B") if isinstance(b, TickBatch)])
    assert imp["ts"][::4].tolist() == want
    # ticktape data generate --from-bars FILE: the bars, and each bar's first tick at its open
    assert np.concatenate(list(synth.read_bars(bars)))["ts"].tolist() == want
    res = cli(
        "data", "generate", "--from-bars", bars, "--bar-seconds", "3600", "--out", tmp_path / "g.parquet"
    )
    assert res.exit_code == 0, res.output
    got = pq.read_table(tmp_path / "g.parquet").column("ts").cast(pa.int64()).to_numpy()
    assert set(want) <= set(got.tolist())


def test_frames_and_parquet_follow_the_same_convention(tmp_path: Path) -> None:
    """What the Python API and Parquet files give: the same instants."""
    stamps = pd.to_datetime(NS, utc=True).tz_convert("America/New_York")
    frame = pd.DataFrame({"ts": stamps, "bid": 100.0, "ask": 101.0})
    assert ticks_from(frame_rows(frame))["ts"].tolist() == NS.tolist()
    assert prepare(frame.set_index("ts")).ticks["ts"].tolist() == NS.tolist()  # the time index
    naive = frame.assign(ts=stamps.tz_convert("UTC").tz_localize(None))
    assert prepare(naive).ticks["ts"].tolist() == NS.tolist()
    as_ms = frame.assign(ts=NS // 10**6)  # integers: the unit told by the magnitude
    assert prepare(as_ms).ticks["ts"].tolist() == (NS // 10**6 * 10**6).tolist()
    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"ts": pa.array(NS).cast(pa.timestamp("ns", tz="UTC")), "bid": [1.0] * 6, "ask": [2.0] * 6}),
        path,
    )
    assert prepare(path).ticks["ts"].tolist() == NS.tolist()
    imp = np.concatenate([b.ticks for b in Importer(path, "parquet", symbol="P") if isinstance(b, TickBatch)])
    assert imp["ts"].tolist() == NS.tolist()


def test_the_first_number_tells_the_unit_and_nothing_wraps_round() -> None:
    for text, unit in [
        ("1704186000", "s"),
        ("1704186000000", "ms"),
        ("1704186000000000", "us"),
        ("1704186000000000000", "ns"),
    ]:
        parse = TimeParser()
        ns, ok = parse([text])
        assert parse.fmt == unit and ok.all() and ns.tolist() == [1_704_186_000 * 10**9]
    # past 2262 in ns (and before 1677): bad, in every form
    for values in (["9999999999"], ["99999999999999999"], ["2300-01-01T00:00:00Z"], ["-9999999999"]):
        assert not TimeParser()(values)[1].any(), values
    assert not TimeParser("s")([10**11])[1].any()
    # an explicit unit wins over the magnitude
    assert TimeParser("ms")(["1704186000"])[0].tolist() == [1_704_186_000 * 10**6]


times = st.integers(100_000_000_000_000_000, 9_000_000_000_000_000_000)  # 1973 .. 2255, in ns


@settings(max_examples=150, deadline=None)
@given(instants=st.lists(times, min_size=1, max_size=8), form=st.sampled_from(list(FORMS)), pad=st.booleans())
def test_every_form_of_an_instant_reads_back_as_that_instant(
    instants: list[int], form: str, pad: bool
) -> None:
    if form == "epoch us":
        instants = [t // 1000 * 1000 for t in instants]
    text = [(" " if pad else "") + FORMS[form](t) for t in instants]
    ns, ok = TimeParser()(text)
    assert ok.all() and ns.tolist() == instants
    # the text of the first value decides: the same values in a list of strings or a pandas column
    ns2, ok2 = TimeParser()(pd.Series(text, dtype=object))
    assert ok2.all() and ns2.tolist() == instants
