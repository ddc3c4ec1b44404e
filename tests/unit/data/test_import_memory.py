"""Reading a file takes bounded memory, whatever its lines, and every line is
counted: stored (accepted), rejected with its line number, or blank.

The importers run in a child process whose peak RSS (its ``VmHWM``) must
stay under a fixed budget; hypothesis feeds them random
bytes, lines longer than the limit and random mixes of valid and invalid
rows.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ticktape.data.importers import MAX_LINE

#: Peak RSS allowed to a process that reads files (MB): the modules it
#: imports take about 130 MB, a block of lines being parsed the rest. The
#: old block sizing took 11.9 GB for one line of 60 KB.
BUDGET_MB = 600

#: The peak RSS of this process (VmHWM: the resident high-water mark of
#: the program it runs; ``ru_maxrss`` of ``wait4`` would also count the
#: memory of the test process it was forked from).
PEAK = """
def _peak_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

CHILD = (
    PEAK
    + r"""
import json, sys
from ticktape.data.importers import Importer
from ticktape.errors import ImportFailed

out = []
for path, fmt, rejects in json.loads(sys.argv[1]):
    try:
        imp = Importer(path, fmt, symbol="M", rejects_path=rejects)
        r = imp.run()
        out.append({"accepted": r.accepted, "rows": r.rows, "book_events": r.book_events})
    except ImportFailed as exc:
        out.append({"error": str(exc)})
print(json.dumps({"files": out, "peak_mb": _peak_mb()}))
"""
)

#: ``ticktape ARGS`` as the installed command runs them (its entry point),
#: then the peak RSS on the last line of stderr.
COMMAND = (
    PEAK
    + r"""
import sys
from ticktape.cli.main import main

try:
    code = main(sys.argv[1:])
finally:
    print(f"peak_mb={_peak_mb()}", file=sys.stderr)
sys.exit(code)
"""
)


def run_child(args: list[str]) -> tuple[str, str, int]:
    """stdout, stderr and exit code of a child process."""
    res = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    return res.stdout, res.stderr, res.returncode


HEADERS = {
    "csv": "ts,bid,ask,bid_size",
    "truefx": "timestamp,bid,ask",
    "dukascopy": "Gmt time,Bid,Ask,BidVolume,AskVolume",
    "tardis": "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
    "bars": "Date,Open,High,Low,Close,Volume",
    "binance-ws": None,
}


def valid_row(fmt: str, k: int, value: int) -> str:
    t = 1_704_186_000 + k
    p = 100 + value % 7
    if fmt == "csv":
        return f"{t},{p},{p + 1},{value}"
    if fmt == "truefx":
        return f"2024-01-02 09:{k // 60 % 60:02d}:{k % 60:02d}.{value % 1000:03d},{p},{p + 1}"
    if fmt == "dukascopy":
        return f"02.01.2024 09:{k // 60 % 60:02d}:{k % 60:02d}.{value % 1000:03d},{p},{p + 1},1,2"
    if fmt == "tardis":
        return f"x,BTC,{t * 10**6},{t * 10**6},{k},buy,{p},{value % 5 + 1}"
    if fmt == "bars":
        return f"2024-01-{1 + k % 28:02d} {k // 28 % 24:02d}:00:00,{p},{p + 2},{p - 1},{p + 1},{value}"
    data = {"u": k, "s": "BTC", "b": str(p), "B": "1", "a": str(p + 1), "A": "2"}
    if value % 3 == 0:
        data = {"e": "depthUpdate", "s": "BTC", "b": [[str(p), "1"]], "a": [[str(p + 1), "0"]]}
    return f"{t * 10**9} " + json.dumps({"data": data})


LINE = st.one_of(
    st.tuples(st.just("valid"), st.integers(0, 10**6)),
    st.tuples(st.just("field"), st.sampled_from(["", "abc", "inf", "-1", "1e999", "nan", "0", " "])),
    st.tuples(st.just("count"), st.integers(-2, 2)),
    st.tuples(
        st.just("bytes"), st.binary(max_size=120).map(lambda b: b.replace(b"\n", b"").replace(b"\0", b""))
    ),
    st.tuples(st.just("blank"), st.sampled_from(["", "   ", "\r", "\t "])),
)
LONG = st.tuples(
    st.just("long"), st.integers(MAX_LINE + 1, 3 * MAX_LINE), st.sampled_from([b"x", b" ", b"1,"])
)


def render(fmt: str, lines: list[tuple]) -> tuple[bytes, int]:
    """The file's bytes, and how many depthUpdate lines it has (binance-ws)."""
    out: list[bytes] = [] if HEADERS[fmt] is None else [HEADERS[fmt].encode()]
    book = 0
    for k, line in enumerate(lines):
        kind = line[0]
        if kind == "valid":
            text = valid_row(fmt, k, line[1])
            book += fmt == "binance-ws" and '"depthUpdate"' in text
            out.append(text.encode())
        elif kind == "field":
            parts = valid_row(fmt, k, 1).split(",")
            parts[1 + k % (len(parts) - 1)] = line[1]
            out.append(",".join(parts).encode())
        elif kind == "count":
            parts = valid_row(fmt, k, 2).split(",")
            parts = parts[: len(parts) + line[1]] if line[1] < 0 else parts + ["9"] * line[1]
            out.append(",".join(parts).encode())
        elif kind == "bytes":
            out.append(line[1])
        elif kind == "long":
            out.append((line[2] * line[1])[: line[1]])
        else:
            out.append(line[1].encode())
    return b"\n".join(out) + b"\n", book


def counted(path: Path, fmt: str, result: dict, rejects: Path, book: int) -> None:
    """Every data line of ``path`` was accepted, rejected (with its number) or blank."""
    raw = path.read_bytes().split(b"\n")
    if raw[-1] == b"":  # (a last line without its newline is a line too)
        raw.pop()
    first = 1 if HEADERS[fmt] is not None else 0
    data = [
        no
        for no, line in enumerate(raw, start=1)
        if no > first and (len(line) > MAX_LINE or line.decode("utf-8", "replace").rstrip("\r").strip())
    ]
    entries: dict[int, list[str]] = {}
    csv.field_size_limit(2 * MAX_LINE)  # (a rejected line is written whole, up to the limit)
    if rejects.exists():
        with open(rejects, newline="") as f:
            for r in csv.DictReader(f):
                if int(r["line"]) != (1 if first else -1):  # (the header's unknown columns)
                    entries.setdefault(int(r["line"]), []).append(r["field"])
    assert set(entries) <= set(data), sorted(set(entries) - set(data))
    if fmt != "bars":
        assert result["accepted"] == len(data) - len(entries) - book, (result, len(data), entries)
        return
    # a bar is four ticks: a line refused whole is one reject, else each tick is stored or rejected
    whole = ("fields, expected", "line longer than", "inside the line")
    ticks = sum(4 if any(w in f for f in fs for w in whole) else len(fs) for fs in entries.values())
    assert result["accepted"] + ticks == 4 * len(data), (result, len(data), entries)


def check(files: list[tuple[str, bytes, int]], tmp: Path) -> None:
    specs, books = [], []
    for k, (fmt, body, book) in enumerate(files):
        path = tmp / f"f{k}.csv"
        path.write_bytes(body)
        specs.append((str(path), fmt, str(tmp / f"f{k}.rejects.csv")))
        books.append(book)
    out, err, code = run_child([sys.executable, "-c", CHILD, json.dumps(specs)])
    assert code == 0 and "Traceback" not in err, err
    got = json.loads(out)
    assert got["peak_mb"] < BUDGET_MB, f"peak RSS {got['peak_mb']:.0f} MB"
    for (path, fmt, rejects), result, book in zip(specs, got["files"], books, strict=True):
        if "error" in result:  # a file refused as a whole: one line naming it
            assert path in result["error"] and "\n" not in result["error"], result
            continue
        counted(Path(path), fmt, result, Path(rejects), book)


FILE = st.sampled_from(list(HEADERS)).flatmap(
    lambda fmt: st.tuples(
        st.just(fmt),
        st.lists(LINE, max_size=60).flatmap(
            lambda lines: st.lists(st.tuples(st.integers(0, len(lines)), LONG), max_size=2).map(
                lambda longs: _insert(lines, longs)
            )
        ),
    )
)


def _insert(lines: list[tuple], longs: list[tuple[int, tuple]]) -> list[tuple]:
    out = list(lines)
    for at, long in sorted(longs, key=lambda x: -x[0]):
        out.insert(at, long)
    return out


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(files=st.lists(FILE, min_size=1, max_size=4))
def test_random_mixes_of_lines_are_counted_in_bounded_memory(
    tmp_path_factory: pytest.TempPathFactory, files: list[tuple[str, list[tuple]]]
) -> None:
    check([(fmt, *render(fmt, lines)) for fmt, lines in files], tmp_path_factory.mktemp("mix"))


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    noise=st.binary(min_size=0, max_size=200_000),
    fmt=st.sampled_from(list(HEADERS)),
    head=st.booleans(),
    long=st.integers(0, 4 * MAX_LINE),
)
def test_random_bytes_are_refused_or_counted_in_bounded_memory(
    tmp_path_factory: pytest.TempPathFactory, noise: bytes, fmt: str, head: bool, long: int
) -> None:
    header = (HEADERS[fmt] or "").encode() + b"\n" if head and HEADERS[fmt] else b""
    body = header + b"z" * long + noise
    check([(fmt, body, 0)], tmp_path_factory.mktemp("noise"))


@pytest.mark.parametrize(
    "body",
    [
        b"ts,bid,ask," + b"x" * 60_000,  # the probe: one line of 60 KB, no newline
        b"ts,bid,ask\n" + b"9" * (40 << 20) + b"\n1704186000,1,2\n",  # a data line of 40 MB
        b"ts,bid,ask\n" + b"1704186000,1,2\n" + b"," * (20 << 20),  # a last line of 20 MB, no newline
    ],
)
def test_the_import_command_reads_long_lines_in_bounded_memory(tmp_path: Path, body: bytes) -> None:
    src = tmp_path / "x.csv"
    src.write_bytes(body)
    args = ["data", "import", str(src), "--dry-run", "--rejects", str(tmp_path / "r.csv")]
    _, err, code = run_child([sys.executable, "-c", COMMAND, *args])
    *lines, last = err.strip().splitlines()
    peak = float(last.removeprefix("peak_mb="))
    assert peak < BUDGET_MB, f"peak RSS {peak:.0f} MB"
    err = "\n".join(lines)
    assert "Traceback" not in err
    if code:
        assert err.startswith("ticktape: error: ") and len(err.strip().splitlines()) == 1, err
    else:
        with open(tmp_path / "r.csv", newline="") as f:
            assert any(r["field"].startswith("line longer than") for r in csv.DictReader(f))
