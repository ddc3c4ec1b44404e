"""The SQL store (asyncpg): the only place with SQL, besides the dashboard's read-only queries.

Modules, by what they hold:

- :mod:`~ticktape.store.session`: the one session helper (:func:`session.run`:
  the configured or embedded database, migrated, closed, one-line errors);
- :mod:`~ticktape.store.connection`: connecting (one line naming the masked
  DSN when the database cannot be reached);
- :mod:`~ticktape.store.schema`: the numbered migrations of dbschema/;
- :mod:`~ticktape.store.codec`: binary COPY built and parsed with numpy;
- :mod:`~ticktape.store.ticks` / :mod:`~ticktape.store.tickread`: writing
  ticks once (monthly partitions, staged COPY, ``ON CONFLICT DO NOTHING``) and
  reading them in ``(ts, seq)`` order;
- :mod:`~ticktape.store.catalogue`: symbols, ranges, gaps, bar views, instruments;
- :mod:`~ticktape.store.book`: order book events;
- :mod:`~ticktape.store.results`: run results, written once per
  ``(run_id, symbol, stream, seq)`` (the ``sink_batches`` ledger);
- :mod:`~ticktape.store.runs`: runs, their status, control requests, progress
  and metrics;
- :mod:`~ticktape.store.studies`: studies over several runs (walk-forward),
  their runs grouped by ``runs.study_id``.
- :mod:`~ticktape.store.report`: what ``ticktape report`` reads (which kind
  of result an id names, a run's equity resampled on a time grid, a sweep's sets).
- :mod:`~ticktape.store.montecarlo`: the Monte Carlo studies of runs.

Time: the engine's int64 nanoseconds become ``timestamptz``, which holds
microseconds; ``ts`` is the nanosecond time floored to the microsecond.
Result tables also store the exact value in ``ts_ns``; ``ticks`` does not,
so ticks read back have ``ts`` in whole microseconds (times a 1000).
Missing float values (NaN in numpy) are stored as SQL NULL and read back as
NaN.
"""

from ticktape.store.book import has_book_events, read_book_events, write_book_events
from ticktape.store.catalogue import BAR_VIEWS, refresh_bars, tick_catalogue, tick_symbols, write_instrument
from ticktape.store.codec import datetime_to_ns, decode_copy, encode_copy, ns_to_datetime
from ticktape.store.connection import commits_not_waiting, connect, has_timescale
from ticktape.store.results import (
    RESULT_STREAMS,
    missing_result_sets,
    read_results,
    result_table,
    stream_fills_and_equity,
    write_result_set,
    write_results,
)
from ticktape.store.runs import (
    ENDED,
    LEASE_CHECK_S,
    LEASE_RENEW_S,
    LEASE_S,
    RUN_STATUSES,
    RUN_TABLES,
    UNFINISHED,
    Deleted,
    complete_if_done,
    create_run,
    delete_runs,
    end_unfinished_runs,
    expire_leases,
    find_run,
    finish_run,
    json_value,
    list_runs,
    read_control,
    record_recording,
    renew_leases,
    request_control,
    run_progress,
    run_status,
    run_symbols,
    run_with_metrics,
    start_run,
    update_progress,
    watch_rows,
    write_metrics,
)
from ticktape.store.schema import migrate, migrations
from ticktape.store.tickread import (
    MAX_NULL_RUNS,
    count_ticks,
    decode_tick_arrays,
    decode_ticks,
    read_ticks,
    tick_span,
)
from ticktape.store.ticks import TickWriter, default_tick_seq, delete_ticks, tick_partition, write_ticks

__all__ = [
    "BAR_VIEWS",
    "ENDED",
    "LEASE_CHECK_S",
    "LEASE_RENEW_S",
    "LEASE_S",
    "MAX_NULL_RUNS",
    "RESULT_STREAMS",
    "RUN_STATUSES",
    "RUN_TABLES",
    "UNFINISHED",
    "Deleted",
    "TickWriter",
    "commits_not_waiting",
    "complete_if_done",
    "connect",
    "count_ticks",
    "create_run",
    "datetime_to_ns",
    "decode_copy",
    "decode_tick_arrays",
    "decode_ticks",
    "default_tick_seq",
    "delete_runs",
    "delete_ticks",
    "encode_copy",
    "end_unfinished_runs",
    "expire_leases",
    "find_run",
    "finish_run",
    "has_book_events",
    "has_timescale",
    "json_value",
    "list_runs",
    "migrate",
    "migrations",
    "missing_result_sets",
    "ns_to_datetime",
    "read_book_events",
    "read_control",
    "read_results",
    "read_ticks",
    "record_recording",
    "refresh_bars",
    "renew_leases",
    "request_control",
    "result_table",
    "run_progress",
    "run_status",
    "run_symbols",
    "run_with_metrics",
    "start_run",
    "stream_fills_and_equity",
    "tick_catalogue",
    "tick_partition",
    "tick_span",
    "tick_symbols",
    "update_progress",
    "watch_rows",
    "write_book_events",
    "write_instrument",
    "write_metrics",
    "write_result_set",
    "write_results",
    "write_ticks",
]
