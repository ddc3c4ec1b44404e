"""Every ``ticktape`` command x bad input (issue 22, "Must show"), through the
INSTALLED entry point in a subprocess, one row per probe.

Each row asserts: a non-zero exit code; stderr exactly one line starting
``ticktape: error:`` that matches the row's pattern (it names the file, row
or field); no "Traceback" anywhere; nothing left running (no process carrying
the row's marker in its environment or its home in its command line); and
nothing half-written (the row counts of every table of the store are
unchanged).

A row runs in one of two settings:

``none``
    A fresh TICKTAPE_HOME and no service URLs: the command would start the
    embedded PostgreSQL and broker there if it got that far, so the row also
    asserts that it was refused before anything started (no ``pg/`` folder).
``own``
    A fresh TICKTAPE_HOME where the command starts its own embedded
    PostgreSQL and broker (a new store).
``shared``
    The session's broker and PostgreSQL (tests/conftest.py ``runtime``),
    given as TICKTAPE_KAFKA_URL / TICKTAPE_DATABASE_URL: for probes that
    must reach the store (a strict import, an unknown run id...).

Section numbers in the row ids are issue 22's (``s1-``... ``s8-``); ``cmd-``
rows are the existing bad-input cases of each command.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ticktape import store

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TICKTAPE = Path(sys.executable).with_name("ticktape")
MARKER = "TICKTAPE_PROBE"
T0 = np.datetime64("2024-01-02T09:00:00", "ms")
RUN = "0190a1b2-0000-7000-8000-00000000beef"  # a run id no row creates


@dataclass(frozen=True)
class Probe:
    """One command x bad input: ``args`` ({name} is a file of :func:`files`),
    the ``pattern`` its one error line must match after ``ticktape: error: ``,
    and the services it gets (``none`` or ``shared``)."""

    id: str
    args: tuple[str, ...]
    pattern: str
    services: str = "none"
    timeout: float = 60.0


def P(id: str, args: str | tuple[str, ...], pattern: str, **kw: object) -> Probe:
    return Probe(id, tuple(args.split()) if isinstance(args, str) else args, pattern, **kw)  # type: ignore[arg-type]


SPEC = '{"strategy": "sma_crossover", "symbols": ["A"]'
PROBES = [
    # -- usage errors (click): one line too, naming the command and the option
    P("cmd-unknown-command", "nope", r"No such command 'nope' \(see: ticktape --help\)"),
    P("cmd-run-missing-argument", "run", r"run: Missing argument 'spec_file' \(see: ticktape run --help\)"),
    P("cmd-unknown-option", "data import {ticks} --bogus", r"data import: No such option: --bogus"),
    P(
        "cmd-int-option-not-a-number",
        "runs list --limit x",
        r"runs list: Invalid value for '--limit'",
    ),
    P("cmd-no-subcommand", "runs", r"runs: give a command"),
    # -- 1: failures exit non-zero
    P("s1-import-missing-file", "data import {missing}", r"{missing}: no such file"),
    P("s1-import-bad-format", "data import {ticks} --format xml", r"format 'xml'"),
    P("s1-import-bad-map", "data import {ticks} --map ts", r"--map .*'ts'"),
    P(
        "s1-import-rejects-one-file",
        "data import {ticks} {ticks} --rejects {tmp}/r.csv",
        r"--rejects names one",
    ),
    P(
        "s1-import-bad-time-format",
        "data import {ticks} --time-format %Q --dry-run",
        r"--time-format: .*'%Q': not a usable strftime pattern",
    ),
    P(
        "s1-import-bad-column-strict",
        "data import {badrow} --strict",
        r"{badrow}:4: .*bid",
        services="shared",
    ),
    P("s1-lobster-missing-file", "lobster verify {lob_m} {missing}", r"^{missing}: no such file$"),
    P("s1-lobster-bad-line", "lobster verify {lob_bad} {lob_b}", r"{lob_bad}:3: field size"),
    P(
        "s1-lobster-levels-0",
        "lobster verify {lob_m} {lob_b} --levels 0",
        r"levels must be in 1\.\.1 .*got 0",
    ),
    P(
        "s1-lobster-mismatch",
        "lobster verify {lob_m} {lob_mis}",
        r"{lob_mis}: 1 of 8 rows mismatch the book replayed from x_message.csv \(the first at line 7\)",
    ),
    P(
        "s1-from-text-not-understood",
        ("strategy", "from-text", "buy when the moon is full"),
        r"could not understand",
    ),
    P("s1-from-text-llm-unconfigured", ("strategy", "from-text", "zzz qqq", "--llm"), r"TICKTAPE_LLM_URL"),
    P(
        "s1-from-text-unwritable-out",
        (
            "strategy",
            "from-text",
            "buy when rsi is below 30 and sell when rsi is above 70",
            "--out",
            "{missing_dir}/s.json",
        ),
        r"{missing_dir}/s.json: cannot write",
    ),
    P("s1-validate-missing-file", "strategy validate {missing}", r"{missing}: cannot read"),
    P("s1-validate-bad-json", "strategy validate {not_json}", r"{not_json}: not valid JSON"),
    P("s1-validate-bad-field", "strategy validate {spec_bad_param}", r"{spec_bad_param}: params.fast"),
    P(
        "s1-validate-unknown-key",
        "strategy validate {spec_unknown_key}",
        r"{spec_unknown_key}: colour: unknown",
    ),
    # -- 2: a file in bounded memory; a line over the limit is a reject with its line number
    *(
        P(
            f"s2-import-long-line-{fmt}",
            f"data import {{long_line_{fmt}}} --format {fmt} --dry-run --strict",
            rf"{{long_line_{fmt}}}:3: 1 fields, expected \d: malformed: xxx.*\(60,000 characters\)",
        )
        for fmt in ("csv", "truefx", "dukascopy", "tardis")
    ),
    P("s2-import-long-header", "data import {long_line} --dry-run", r"{long_line}"),
    *(
        P(f"s2-import-binary-{fmt}", f"data import {{binary}} --format {fmt} --dry-run", r"{binary}")
        for fmt in ("csv", "truefx", "dukascopy", "tardis", "bars", "binance-ws", "parquet")
    ),
    # -- 5: --strict is all or nothing (the store is checked unchanged by every row)
    P(
        "s5-strict-bad-last-row",
        "data import {two_months_bad_last} --strict",
        r"{two_months_bad_last}:7:",
        services="shared",
    ),
    P(
        "s5-strict-several-files",
        "data import {ticks} {two_months_bad_last} --strict",
        r"{two_months_bad_last}:7:",
        services="shared",
    ),
    # -- 7: one line instead of a traceback
    P("s7-run-symbols-not-a-list", "run {spec_symbols_number}", r"symbols"),
    P("s7-run-params-wrong-type", "run {spec_params_list}", r"params.fast"),
    P("s7-run-params-not-object", "run {spec_params_string}", r"params"),
    P("s7-run-nan", "run {spec_nan}", r"params.size: NaN"),
    P("s7-run-infinity", "run {spec_inf}", r"engine.initial_cash: Infinity"),
    P("s7-run-bad-run-id", "run {spec_bad_id}", r"run_id: 'run-1' is not a run id"),
    P("s7-run-not-json", "run {not_json}", r"{not_json}: run spec: not valid JSON"),
    P("s7-run-spec-is-a-list", "run {json_list}", r"{json_list}: run spec: expected a JSON object"),
    P(
        "s7-run-symbol-not-a-string",
        "run {spec_symbol_number}",
        r"{spec_symbol_number}: symbols.0: must be a symbol name",
    ),
    P(
        "s7-run-engine-wrong-type",
        "run {spec_engine_string}",
        r"{spec_engine_string}: engine.fee_bps: must be a number, got 'x'",
    ),
    P("s7-run-batch-size-wrong-type", "run {spec_batch_string}", r"batch_size: must be an integer"),
    P("s7-run-missing-file", "run {missing}", r"{missing}"),
    P("s7-run-spec-is-a-directory", "run {tmp}", r"{tmp}"),
    P("s7-run-speed-0", "run {spec_ok} --speed 0", r"speed"),
    P("s7-run-bad-source", "run {spec_ok} --source ftp:x", r"source"),
    P(
        "s7-run-reused-run-id",
        ("run", "{spec_reused}", "--source", "generator:1000"),
        r"run {reused} exists already",
        services="shared",
    ),
    P(
        "s7-run-unknown-strategy",
        "run {spec_unknown_strategy}",
        r"{spec_unknown_strategy}: strategy: unknown strategy 'nope'",
    ),
    P("s7-paper-nan", "paper {spec_nan} --url ws://127.0.0.1:9", r"params.size: NaN"),
    P("s7-paper-bad-run-id", "paper {spec_bad_id} --url ws://127.0.0.1:9", r"run_id"),
    P(
        "s7-paper-connection-refused",
        "paper {spec_ok} --url ws://127.0.0.1:{closed_port}",
        r"ws://127.0.0.1:{closed_port}.*refused",
    ),
    P("s7-paper-bad-url", "paper {spec_ok} --url http//nope", r"--url|http//nope"),
    P("s7-record-bad-id", "record nope", r"run_id: 'nope' is not a run id"),
    P("s7-record-unknown-run", f"record {RUN}", rf"no run {RUN}", services="shared"),
    P(
        "s7-backtest-size-inf",
        "backtest --data {ticks} --strategy ma_crossover --param size=inf",
        r"params.size",
    ),
    P(
        "s7-backtest-size-negative",
        "backtest --data {ticks} --strategy ma_crossover --param size=-5",
        r"params.size",
    ),
    P(
        "s7-backtest-huge-window",
        "backtest --data {ticks} --strategy ma_crossover --param slow=1000000000000",
        r"params.slow",
    ),
    P(
        "s7-backtest-fast-nan",
        "backtest --data {ticks} --strategy ma_crossover --param fast=nan",
        r"params.fast",
    ),
    P("s7-import-parquet-as-csv", "data import {parquet} --dry-run", r"{parquet}.*Parquet"),
    P("s7-import-sparse-2gb", "data import {sparse} --dry-run", r"{sparse}.*not a text file"),
    P("s7-import-gzip-of-noise", "data import {noise_gz} --dry-run", r"{noise_gz}"),
    P("s7-demo-ticks-0", "demo --ticks 0", r"--ticks: must be >= 1, got 0"),
    P("s7-demo-symbols-negative", "demo --symbols -2", r"--symbols: must be >= 1, got -2"),
    P("s7-runs-list-limit-negative", "runs list --limit -1", r"--limit: must be >= 1, got -1"),
    P("s7-generate-ticks-negative", "data generate --ticks -5", r"--ticks"),
    P("s7-generate-rate-0", "data generate --rate 0", r"--rate"),
    P("s7-generate-price-nan", "data generate --price nan", r"--price"),
    P("s7-generate-tick-size-0", "data generate --tick-size 0", r"--tick-size"),
    P("s7-generate-model", "data generate --model nope", r"--model"),
    P("s7-generate-depth-with-out", "data generate --depth 2 --out {tmp}/g.csv", r"--depth"),
    P(
        "s7-generate-out-no-folder",
        "data generate --ticks 10 --out {missing_dir}/g.parquet",
        r"{missing_dir}",
    ),
    P("s7-generate-from-missing-bars", "data generate --from-bars {missing}", r"{missing}: no such file"),
    P(
        "s7-generate-from-bad-bars",
        "data generate --from-bars {bad_bars} --out {tmp}/g.parquet",
        r"{bad_bars}:3:",
    ),
    # the native engine's refusals at run time: one line naming the field
    P(
        "s7-engine-size-not-whole-lots",
        "backtest --data {ticks} --strategy market_maker --lot-size 1 --param size=0.5",
        r"params.size.*lot",
    ),
    P(
        "s7-engine-mm-tick-size-off-grid",
        "backtest --data {ticks} --strategy market_maker --tick-size 0.01 --param tick_size=0.015",
        r"params.tick_size.*0.01",
    ),
    P(
        "s7-engine-pairs-second-leg-out-of-range",
        "backtest --data {pair} --strategy pairs --param symbols=A,B --param n=20 --param size=1e15",
        r"params.size or engine.lot_size: the engine refused a decision of pairs at the tick of .*: target\[\d+\] = \d+ is out of range",
    ),
    P(
        "s1-validate-bad-engine",
        "strategy validate {spec_file_bad_engine}",
        r"{spec_file_bad_engine}: engine.tick_size: must be > 0",
    ),
    P("s7-record-idle-timeout-0", f"record {RUN} --idle-timeout 0", r"--idle-timeout: must be > 0"),
    P(
        "s7-paper-idle-timeout-negative",
        "paper {spec_ok} --url ws://127.0.0.1:9 --idle-timeout -1",
        r"--idle-timeout: must be > 0",
    ),
    P(
        "s7-paper-max-messages-0",
        "paper {spec_ok} --url ws://127.0.0.1:9 --max-messages 0",
        r"--max-messages: must be >= 1",
    ),
    # a new store (its own embedded PostgreSQL and broker): no run yet, not a missing table
    P("s7-record-unknown-run-new-store", f"record {RUN}", rf"no run {RUN}", services="own", timeout=180),
    P(
        "s7-backtest-cash-negative",
        "backtest --data {ticks} --strategy ma_crossover --cash -5",
        r"engine.initial_cash: must be > 0",
    ),
    P(
        "s7-sweep-top-negative",
        "sweep --strategy ma_crossover --grid fast=2,3 --data {ticks} --no-store --top -1",
        r"--top: must be >= 1",
    ),
    P(
        "s7-sweep-grid-too-large",
        "sweep --strategy ma_crossover --grid fast=1:1000000000:1 --data {ticks} --no-store",
        r"--grid 'fast=1:1000000000:1': 1,000,000,000 values; a sweep takes at most 1,000,000",
    ),
    P(
        "s7-walkforward-span-not-a-span",
        "walkforward --strategy ma_crossover --grid fast=2,3 --data {ticks} --train 10secs --test 5s",
        r"--train '10secs': not a span; write a whole number and a unit",
    ),
    P(
        "s7-walkforward-span-zero",
        "walkforward --strategy ma_crossover --grid fast=2,3 --data {ticks} --train 10s --test 0s",
        r"--test '0s': must be longer than zero",
    ),
    P(
        "s7-walkforward-select-unknown",
        "walkforward --strategy ma_crossover --grid fast=2,3 --data {ticks} --train 10s --test 5s --select luck",
        r"--select 'luck': not a metric to choose by; one of: sharpe, ",
    ),
    P(
        "s7-walkforward-longer-than-the-data",
        "walkforward --strategy ma_crossover --grid fast=2,3 --data {ticks} --train 1m --test 5s",
        r"--train 1m: the first training span \(2024-01-02T09:00:00\+00:00 to 2024-02-02T09:00:00\+00:00\) "
        r"reaches the end of the data",
    ),
    P(
        "s7-walkforward-no-valid-set",
        "walkforward --strategy ma_crossover --grid fast=50 --grid slow=20 --data {ticks} --train 10s --test 5s",
        r"sweep: no valid parameter set \(1 invalid\)",
    ),
    P(
        "s7-generate-out-suffix",
        "data generate --ticks 10 --out {tmp}/g.txt",
        r"--out .*g.txt: must end in .parquet or .csv",
    ),
    # -- 8: silent wrong data becomes a named row (strict) or a counted reject
    P("s8-import-inf-price-strict", "data import {inf_price} --strict --dry-run", r"{inf_price}:3: .*bid"),
    P(
        "s8-import-far-epoch-strict",
        "data import {far_epoch} --strict --dry-run --time-format s",
        r"{far_epoch}:3: .*ts",
    ),
    P("s8-import-header-only", "data import {header_only} --dry-run", r"{header_only}.*no data rows"),
    P("s8-import-empty", "data import {empty} --dry-run", r"{empty}.*empty"),
    P(
        "s8-backtest-huge-cell",
        "backtest --data {huge_cell} --strategy ma_crossover",
        r"{huge_cell}:4: column 'Close' = 'xxx.*is not a number",
    ),
    P(
        "s8-backtest-line-numbers",
        "backtest --data {bad_time} --strategy ma_crossover",
        r"{bad_time}:4: column 'ts' = 'not a time' is not a time",
    ),
    # -- the other commands' existing bad-input cases
    P("cmd-backtest-unknown-strategy", "backtest --data {ticks} --strategy nope", r"unknown strategy 'nope'"),
    P(
        "cmd-backtest-param-no-value",
        "backtest --data {ticks} --strategy ma_crossover --param fast",
        r"--param 'fast': expected NAME=VALUE",
    ),
    P(
        "cmd-backtest-param-twice",
        "backtest --data {ticks} --strategy ma_crossover --param fast=3 --param fast=4",
        r"fast is given twice",
    ),
    P("cmd-backtest-no-strategy", "backtest --data {ticks}", r"give --strategy NAME or --spec FILE"),
    P("cmd-backtest-missing-data", "backtest --data {missing} --strategy ma_crossover", r"{missing}"),
    P(
        "cmd-backtest-bad-format",
        "backtest --data {ticks} --strategy ma_crossover --format xml",
        r"format.*xml",
    ),
    P(
        "cmd-backtest-spec-contradicts",
        "backtest --data {ticks} --spec {spec_file_ok} --strategy breakout",
        r"--strategy 'breakout' contradicts",
    ),
    P(
        "cmd-backtest-spec-bad-engine",
        "backtest --data {ticks} --spec {spec_file_bad_engine}",
        r"{spec_file_bad_engine}: engine.tick_size",
    ),
    P(
        "cmd-backtest-tick-size-off-grid",
        "backtest --data {ticks} --strategy ma_crossover --tick-size 0.5",
        r"{ticks}:\d+: .*0.5",
    ),
    P(
        "cmd-sweep-no-data",
        "sweep --strategy ma_crossover --grid fast=2,3",
        r"give --data FILE .* or --symbols",
    ),
    P("cmd-sweep-bad-grid", "sweep --strategy ma_crossover --grid fast --data {ticks}", r"--grid|fast"),
    P(
        "cmd-sweep-bad-grid-value",
        "sweep --strategy ma_crossover --grid fast=x,y --data {ticks} --no-store",
        r"params.fast",
    ),
    P(
        "cmd-sweep-unknown-strategy",
        "sweep --strategy nope --grid fast=2,3 --data {ticks} --no-store",
        r"unknown strategy 'nope'",
    ),
    P(
        "cmd-sweep-bad-sort",
        "sweep --strategy ma_crossover --grid fast=2,3 --data {ticks} --no-store --sort nope",
        r"--sort 'nope'",
    ),
    P(
        "cmd-sweep-pipeline-bad-source",
        "sweep --strategy ma_crossover --grid fast=2,3 --symbols A --source ftp:x",
        r"source",
    ),
    P("cmd-strategy-params-unknown", "strategy params nope", r"unknown strategy 'nope'"),
    P("cmd-worker-bad-stages", "worker --stages replay,nope", r"nope"),
    # (`worker` given an unreachable broker or database waits, a line per try, until
    # stopped: issue 27; tests/e2e/test_worker_service.py)
    P("cmd-db-migrate-unreachable", "db migrate", r"127.0.0.1:1\b", services="db-down"),
    P(
        "cmd-dashboard-port-taken",
        "dashboard --port {busy_port}",
        r"port {busy_port} on 127.0.0.1 is already in use",
    ),
    P(
        "cmd-report-not-an-id",
        "report nope -o {tmp}/r.html",
        r"ID: 'nope' is not a run, sweep or study id \(a UUID\)$",
    ),
    P(
        "cmd-report-unknown",
        "report " + RUN + " -o {tmp}/r.html",
        rf"ID: no run, sweep or study {RUN} in this store",
        services="shared",
    ),
    P(
        "cmd-report-no-folder",
        "report " + RUN + " -o {missing_dir}/r.html",
        r"-o {missing_dir}/r.html: the directory {missing_dir} does not exist$",
    ),
    P("cmd-runs-show-not-an-id", "runs show nope", r"'nope' is not a run id"),
    P("cmd-runs-show-unknown", f"runs show {RUN}", rf"no run {RUN}", services="shared"),
    P("cmd-runs-pause-unknown", f"runs pause {RUN}", rf"no run {RUN}", services="shared"),
    P("cmd-runs-resume-unknown", f"runs resume {RUN}", rf"no run {RUN}", services="shared"),
    P("cmd-runs-cancel-unknown", f"runs cancel {RUN}", rf"no run {RUN}", services="shared"),
    P("cmd-runs-delete-nothing", "runs delete", r"runs delete: give run ids or --older-than"),
    P(
        "cmd-runs-delete-both",
        f"runs delete {RUN} --older-than 3d",
        r"runs delete: give run ids or --older-than",
    ),
    P("cmd-runs-delete-bad-age", "runs delete --older-than 30x", r"--older-than '30x': not a span"),
    P(
        "cmd-runs-delete-negative-age",
        "runs delete --older-than -3d",
        r"--older-than '-3d': must be longer than zero",
    ),
    P("cmd-runs-delete-bad-id", "runs delete nope", r"'nope' is not a run id"),
    P(
        "cmd-runs-delete-unfinished",
        "runs delete {running}",
        r"{running}.*running.*--force",
        services="shared",
    ),
    P("cmd-data-stats-nothing", "data stats", r"--symbol .*--file"),
    P(
        "cmd-data-stats-bad-time",
        "data stats --symbol A --start yesterdayish",
        r"--start.*'yesterdayish' is not a time",
    ),
    P("cmd-data-stats-missing-file", "data stats --file {missing}", r"{missing}"),
    P("cmd-data-stats-not-parquet", "data stats --file {ticks}", r"{ticks}"),
    P(
        "cmd-data-export-bad-time",
        "data export {tmp}/x.parquet --end tomorrowish",
        r"--end.*'tomorrowish' is not a time",
    ),
    P(
        "cmd-data-export-no-folder",
        "data export {missing_dir}/x.parquet",
        r"{missing_dir}/x.parquet: no folder {missing_dir}$",
    ),
    P("cmd-data-list-bad-gap", "data list --gap-seconds -1", r"--gap-seconds"),
]


# --------------------------------------------------------------------------
# the files the rows name


def _ticks_csv(path: Path, n: int = 200, start: str = "2024-01-02T09:00:00") -> Path:
    base = np.datetime64(start, "ms")
    with open(path, "w") as f:
        f.write("ts,symbol,bid,ask,bid_size,ask_size\n")
        for i in range(n):
            p = 100 + round(np.sin(i / 10) * 2, 2)
            f.write(f"{base + np.timedelta64(100 * i, 'ms')}Z,A,{p:.2f},{p + 0.01:.2f},5,5\n")
    return path


LOB_MESSAGES = [
    "34200.000000001,1,1,10,1000000,1",
    "34200.5,2,99,5,1000000,1",
    "34201,4,98,50,1010000,-1",
    "34201,5,0,3,1005000,-1",
    "34202,3,97,7,1011000,-1",
    "34202.25,1,2,4,1012000,-1",
    "34203,4,1,10,1000000,1",
    "34204,7,0,0,-1,-1",
]
LOB_ROWS = [
    "1010000,50,1000000,30",
    "1010000,50,1000000,25",
    "1011000,7,1000000,25",
    "1011000,7,1000000,25",
    "9999999999,0,1000000,25",
    "1012000,4,1000000,25",
    "1012000,4,1000000,15",
    "1012000,4,1000000,15",
]


def _lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("bad-input")
    w = {}

    def text(name: str, content: str) -> None:
        (d / name).write_text(content)
        w[name.split(".", maxsplit=1)[0]] = str(d / name)

    w["tmp"] = str(d)
    w["missing"] = str(d / "nope.csv")
    w["missing_dir"] = str(d / "no-such-folder")
    w["ticks"] = str(_ticks_csv(d / "ticks.csv"))
    text(
        "badrow.csv",
        "ts,bid,ask\n2024-01-02T09:00:00Z,100,101\n2024-01-02T09:00:01Z,100,101\n2024-01-02T09:00:02Z,x,101\n",
    )
    text("long_line.csv", "ts,bid,ask," + "x" * 60_000 + "\n")  # (the probe: a 60 KB header)
    for fmt, header, row in (
        ("csv", "ts,bid,ask", "2024-01-02T09:00:00Z,100,101"),
        ("truefx", "timestamp,bid,ask", "2024-01-02T09:00:00Z,100,101"),
        ("dukascopy", "time,bid,ask", "2024-01-02T09:00:00Z,100,101"),
        (
            "tardis",
            "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
            "x,A,1704186000000000,1704186000000000,1,buy,100,1",
        ),
    ):  # a 60 KB line after a good one
        text(f"long_line_{fmt}.csv", f"{header}\n{row}\n{'x' * 60_000}\n{row}\n")
    (d / "binary.csv").write_bytes(
        np.random.default_rng(1).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    )
    w["binary"] = str(d / "binary.csv")
    with gzip.open(d / "noise_gz.csv.gz", "wb") as f:
        f.write(np.random.default_rng(2).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    w["noise_gz"] = str(d / "noise_gz.csv.gz")
    # two months of good ticks, then a bad last row (line 7)
    text(
        "two_months_bad_last.csv",
        "ts,symbol,bid,ask\n"
        + "".join(f"2023-0{m}-1{k}T09:00:00Z,STRICTX,100,101\n" for m in (1, 2) for k in (1, 2))
        + "2023-03-01T09:00:00Z,STRICTX,100,101\n"
        + "2023-03-02T09:00:00Z,STRICTX,oops,101\n",
    )
    spec = {
        "symbols_number": '{"strategy": "sma_crossover", "symbols": 5}',
        "symbol_number": '{"strategy": "sma_crossover", "symbols": [1]}',
        "engine_string": SPEC + ', "engine": {"fee_bps": "x"}}',
        "batch_string": SPEC + ', "batch_size": "x"}',
        "unknown_strategy": '{"strategy": "nope", "symbols": ["A"]}',
        "params_list": SPEC + ', "params": {"fast": [1]}}',
        "params_string": SPEC + ', "params": "fast=3"}',
        "nan": SPEC + ', "params": {"size": NaN}}',
        "inf": SPEC + ', "engine": {"initial_cash": Infinity}}',
        "bad_id": SPEC + ', "run_id": "run-1"}',
        "ok": SPEC + "}",
    }
    for name, content in spec.items():
        text(f"spec_{name}.json", content)
    text("json_list.json", "[1, 2]")
    text("not_json.json", "{strategy: sma")
    text("spec_bad_param.json", '{"strategy": "ma_crossover", "params": {"fast": "x"}}')
    text("spec_unknown_key.json", '{"strategy": "ma_crossover", "colour": "red"}')
    text("spec_file_ok.json", '{"strategy": "ma_crossover", "params": {"fast": 3, "slow": 9}}')
    text("spec_file_bad_engine.json", '{"strategy": "ma_crossover", "engine": {"tick_size": -1}}')
    w["lob_m"] = str(_lines(d / "x_message.csv", LOB_MESSAGES))
    w["lob_b"] = str(_lines(d / "x_orderbook.csv", LOB_ROWS))
    w["lob_bad"] = str(
        _lines(d / "bad_message.csv", [*LOB_MESSAGES[:2], "34201,1,5,abc,1000000,1", *LOB_MESSAGES[3:]])
    )
    w["lob_mis"] = str(
        _lines(d / "mis_orderbook.csv", [*LOB_ROWS[:6], "1012000,4,1000000,16", "1012000,4,1000000,16"])
    )
    pq.write_table(pa.table({"ts": [1, 2], "bid": [1.0, 2.0]}), d / "parquet.parquet")
    w["parquet"] = str(d / "parquet.parquet")
    with open(d / "sparse.csv", "wb") as f:
        f.truncate(2 << 30)
    w["sparse"] = str(d / "sparse.csv")
    text("inf_price.csv", "ts,bid,ask\n2024-01-02T09:00:00Z,100,101\n2024-01-02T09:00:01Z,inf,101\n")
    text("far_epoch.csv", "ts,bid,ask\n1704186000,100,101\n10000000000,100,101\n")
    text("header_only.csv", "ts,bid,ask\n")
    text(
        "pair.csv",
        "ts,symbol,bid,ask\n"
        + "".join(
            f"{T0 + np.timedelta64(i, 's')}Z,A,{100 + np.sin(i / 10) * 2 + i * 0.01:.2f},{100.01 + np.sin(i / 10) * 2 + i * 0.01:.2f}\n"
            f"{T0 + np.timedelta64(i, 's') + np.timedelta64(500, 'ms')}Z,B,{0.01 * (1 + i // 50 % 3):.2f},{0.01 * (2 + i // 50 % 3):.2f}\n"
            for i in range(400)
        ),
    )
    text("empty.csv", "")
    text(
        "huge_cell.csv",
        "Date,Open,High,Low,Close\n2020-01-01,1,2,0.5,1.5\n\n2020-01-02,1,2,0.5," + "x" * 5_000_000 + "\n",
    )
    text(
        "bad_time.csv",
        "ts,bid,ask\n2024-01-02T09:00:00Z,100,101\n2024-01-02T09:00:01Z,100,101\nnot a time,1,2\n",
    )
    text("bad_bars.csv", "Date,Open,High,Low,Close\n2020-01-01,1,2,0.5,1.5\n2020-01-02,1,0.9,0.5,1.5\n")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        w["closed_port"] = str(s.getsockname()[1])
    return w


# --------------------------------------------------------------------------
# the store, checked unchanged


def _db(db_url: str, fn):
    async def go():
        conn = await store.connect(db_url)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


async def _counts(conn) -> dict[str, int]:
    tables = await conn.fetch(
        "SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    return {r["t"]: await conn.fetchval(f"SELECT count(*) FROM {r['t']}") for r in tables}


# --------------------------------------------------------------------------
# the table: the rows without services run 4 at a time (they cannot touch
# the shared store), the others one after the other with the store counted
# around each


@dataclass
class Outcome:
    proc: subprocess.CompletedProcess[str]
    seconds: float
    left: list[str]
    pg_started: bool
    store_changed: bool


def _left_running(marker: str, home: Path) -> list[str]:
    left = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            env = p.environ() if p.pid != os.getpid() else {}
        except psutil.Error:
            continue
        if env.get(MARKER) == marker or str(home) in cmd:
            left.append(f"{p.pid}: {cmd}")
    return left


def _probe(probe: Probe, names: dict[str, str], where: Path, services: dict[str, str]) -> Outcome:
    home = where / "home"
    where.mkdir(parents=True)
    marker = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env.update({"TICKTAPE_HOME": str(home), MARKER: marker, "COLUMNS": "200"})
    env.update(services)
    with socket.socket() as busy:  # a port in use, for the dashboard
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        names = {**names, "busy_port": str(busy.getsockname()[1])}
        t0 = time.monotonic()
        argv = [str(TICKTAPE), *(a.format(**names) for a in probe.args)]
        try:
            proc = subprocess.run(
                argv, env=env, cwd=where, capture_output=True, text=True, timeout=probe.timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:  # (a row that hangs fails alone, the others still run)
            out, err = (x.decode() if isinstance(x, bytes) else x or "" for x in (exc.stdout, exc.stderr))
            proc = subprocess.CompletedProcess(argv, -9, out, f"{err}\n(killed after {probe.timeout:.0f} s)")
    seconds = time.monotonic() - t0
    return Outcome(proc, seconds, _left_running(marker, home), (home / "pg").exists(), False)


@pytest.fixture(scope="module")
def outcomes(request, files, seeded, db_url, kafka_url, tmp_path_factory) -> dict[str, Outcome]:
    """Each selected row's outcome (only the rows this session runs)."""
    wanted = {
        item.callspec.params["probe"].id
        for item in request.session.items
        if getattr(item, "callspec", None) and "probe" in item.callspec.params
    }
    probes = [p for p in PROBES if p.id in wanted]
    root = tmp_path_factory.mktemp("probes")
    names = {**files, **seeded}
    Path(files["tmp"], "reused.json").write_text(SPEC + f', "run_id": "{names["reused"]}"}}')
    names["spec_reused"] = str(Path(files["tmp"], "reused.json"))
    services = {
        "none": {},
        "shared": {"TICKTAPE_DATABASE_URL": db_url, "TICKTAPE_KAFKA_URL": kafka_url},
        "db-down": {"TICKTAPE_DATABASE_URL": "postgresql://u@127.0.0.1:1/ticktape"},
        "own": {},
    }
    out: dict[str, Outcome] = {}
    with ThreadPoolExecutor(4) as pool:
        alone = [p for p in probes if p.services == "none"]
        for p, o in zip(alone, pool.map(lambda p: _probe(p, names, root / p.id, {}), alone), strict=True):
            out[p.id] = o
    for p in probes:
        if p.services != "none":
            before = _db(db_url, _counts)
            o = _probe(p, names, root / p.id, services[p.services])
            o.store_changed = _db(db_url, _counts) != before
            out[p.id] = o
    return out


@pytest.fixture(scope="module")
def seeded(db_url: str) -> dict[str, str]:
    """Runs the ``shared`` rows name: one ended (a reused id), one running."""
    out = {}

    async def seed(conn):
        for name, status in (("reused", "complete"), ("running", "running")):
            run = str(uuid.uuid4())
            await store.create_run(conn, run, "sma_crossover", {}, {}, ["A"], None, None)
            await store.start_run(conn, run)
            if status != "running":
                await store.finish_run(conn, run, status)
            out[name] = run

    _db(db_url, seed)
    return out


@pytest.mark.parametrize("probe", PROBES, ids=[p.id for p in PROBES])
def test_bad_input(probe: Probe, outcomes: dict[str, Outcome], files, seeded) -> None:
    o = outcomes[probe.id]
    proc = o.proc
    shown = (
        f"exit {proc.returncode} after {o.seconds:.1f}s\n--- stdout\n{proc.stdout[-3000:]}"
        f"\n--- stderr\n{proc.stderr[-3000:]}"
    )
    assert proc.returncode != 0, shown
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ticktape: error: "), shown
    names = {k: re.escape(v) for k, v in {**files, **seeded}.items()}
    pattern = probe.pattern.format(**names, busy_port=r"\d+")
    assert re.search(pattern, lines[0][len("ticktape: error: ") :]), f"{pattern!r} not in {lines[0]!r}"
    assert len(lines[0]) < 600, lines[0][:600]
    assert not o.left, f"left running: {o.left}"
    if probe.services == "none":
        assert not o.pg_started, "the embedded PostgreSQL was started"
    assert not o.store_changed, "the store changed"
