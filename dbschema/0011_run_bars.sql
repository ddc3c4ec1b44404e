-- Event-time OHLC bars of the mid that a run computed (spec.bar_ns wide),
-- written by the sink with the run's other results. A bar is stored once it
-- closed in event time (or at the end of the stream).
CREATE TABLE IF NOT EXISTS run_bars (
    run_id  uuid        NOT NULL,
    symbol  text        NOT NULL,
    ts      timestamptz NOT NULL,  -- bar start
    ts_ns   bigint      NOT NULL,
    open    float8,
    high    float8,
    low     float8,
    close   float8,
    ticks   bigint      NOT NULL
);
CREATE INDEX IF NOT EXISTS run_bars_run_symbol_ts ON run_bars (run_id, symbol, ts);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('run_bars', 'ts', chunk_time_interval => INTERVAL '30 days',
                                  if_not_exists => true, migrate_data => true);
    END IF;
END
$$;
