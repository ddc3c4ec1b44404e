-- 0037_run_recordings: the ticks `ticktape record RUN` stored for a run, per
-- stored symbol (`--prefix` + the run's symbol) and time range, so that
-- `ticktape runs delete RUN` deletes them with the run's results
-- (store.delete_runs: the symbol's ticks from first_ts to last_ts).
CREATE TABLE IF NOT EXISTS run_recordings (
    run_id   uuid        NOT NULL,
    symbol   text        NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts  timestamptz NOT NULL,
    PRIMARY KEY (run_id, symbol)
);
