-- 0001_core: the core tables of ticktape.
--
-- Runs unchanged on TimescaleDB and on plain PostgreSQL (the embedded
-- default): everything Timescale-specific sits in DO blocks that first check
-- pg_extension, and plain PostgreSQL gets a time_bucket() fallback so the
-- same queries work on both.
--
-- Time: timestamptz has microsecond precision. The engine's int64 ns
-- timestamps are truncated (floored) to microseconds in `ts`; result tables
-- also keep the exact value in `ts_ns`.

-- TimescaleDB when the server has it (needs shared_preload_libraries; if it
-- is installed but cannot be loaded we carry on as plain PostgreSQL).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'timescaledb is available but could not be created (%); continuing on plain PostgreSQL', SQLERRM;
        END;
    END IF;
END
$$;

-- time_bucket(interval, timestamptz) on plain PostgreSQL: date_bin with
-- TimescaleDB's default origin (Monday 2000-01-03), so weekly buckets start
-- on Mondays on both. Unlike TimescaleDB's, it cannot bucket by months/years.
DO $$
BEGIN
    IF to_regprocedure('time_bucket(interval, timestamp with time zone)') IS NULL THEN
        CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz)
            RETURNS timestamptz
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            AS $f$ SELECT date_bin(bucket_width, ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') $f$;
        COMMENT ON FUNCTION time_bucket(interval, timestamptz) IS
            'ticktape fallback for TimescaleDB time_bucket (date_bin, origin 2000-01-03 UTC)';
    END IF;
END
$$;

-- Recorded market data (L1 quotes and trades). Missing fields are NULL.
-- seq orders ticks that share a timestamp.
CREATE TABLE ticks (
    symbol    text        NOT NULL,
    ts        timestamptz NOT NULL,
    seq       bigint      NOT NULL,
    bid       float8,
    ask       float8,
    bid_size  float8,
    ask_size  float8,
    last      float8,
    last_size float8,
    PRIMARY KEY (symbol, ts, seq)
);

CREATE TABLE runs (
    run_id          uuid PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    status          text NOT NULL
                    CHECK (status IN ('pending', 'running', 'complete', 'failed', 'cancelled')),
    strategy        text,
    spec            jsonb,
    params          jsonb,
    symbols         text[],
    data_start      timestamptz,
    data_end        timestamptz,
    ticks_in        bigint NOT NULL DEFAULT 0,
    ticks_processed bigint NOT NULL DEFAULT 0,
    ticks_rejected  bigint NOT NULL DEFAULT 0,
    rejects         jsonb  NOT NULL DEFAULT '{}'::jsonb,
    orders          bigint NOT NULL DEFAULT 0,
    fills           bigint NOT NULL DEFAULT 0,
    wall_seconds    float8,
    error           text
);
CREATE INDEX runs_created_at_idx ON runs (created_at DESC);

CREATE TABLE run_progress (
    run_id          uuid        NOT NULL,
    symbol          text        NOT NULL,
    ticks_processed bigint      NOT NULL DEFAULT 0,
    last_ts         timestamptz,
    done            boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, symbol)
);

-- Idempotency ledger of the sink: one row per batch written. A batch
-- delivered twice (at-least-once) finds its row here and writes nothing.
CREATE TABLE sink_batches (
    run_id     uuid        NOT NULL,
    symbol     text        NOT NULL,
    stream     text        NOT NULL,
    seq        bigint      NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, symbol, stream, seq)
);

CREATE TABLE signals (
    run_id uuid        NOT NULL,
    symbol text        NOT NULL,
    ts     timestamptz NOT NULL,
    ts_ns  bigint      NOT NULL,
    value  float8
);

-- side: +1 buy / -1 sell; type and event: codes of ticktape.native
CREATE TABLE orders (
    run_id   uuid        NOT NULL,
    symbol   text        NOT NULL,
    ts       timestamptz NOT NULL,
    ts_ns    bigint      NOT NULL,
    order_id bigint      NOT NULL,
    side     smallint    NOT NULL,
    type     smallint    NOT NULL,
    event    smallint    NOT NULL,
    price    float8,
    qty      float8
);

CREATE TABLE fills (
    run_id   uuid        NOT NULL,
    symbol   text        NOT NULL,
    ts       timestamptz NOT NULL,
    ts_ns    bigint      NOT NULL,
    order_id bigint      NOT NULL,
    side     smallint    NOT NULL,
    price    float8,
    qty      float8,
    fee      float8
);

CREATE TABLE equity (
    run_id   uuid        NOT NULL,
    symbol   text        NOT NULL,
    ts       timestamptz NOT NULL,
    ts_ns    bigint      NOT NULL,
    cash     float8,
    position float8,
    price    float8,
    equity   float8
);

CREATE INDEX signals_run_symbol_ts_idx ON signals (run_id, symbol, ts);
CREATE INDEX orders_run_symbol_ts_idx  ON orders  (run_id, symbol, ts);
CREATE INDEX fills_run_symbol_ts_idx   ON fills   (run_id, symbol, ts);
CREATE INDEX equity_run_symbol_ts_idx  ON equity  (run_id, symbol, ts);

CREATE TABLE run_metrics (
    run_id uuid   NOT NULL,
    name   text   NOT NULL,
    value  float8,
    PRIMARY KEY (run_id, name)
);

-- Hypertables on TimescaleDB (all tables are still empty here). Unique
-- indexes of a hypertable must include its time column: ticks' primary key
-- does; the result tables have none.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        PERFORM create_hypertable('ticks', 'ts', chunk_time_interval => INTERVAL '1 day',
                                  create_default_indexes => false, if_not_exists => true);
        PERFORM create_hypertable('signals', 'ts', chunk_time_interval => INTERVAL '7 days',
                                  create_default_indexes => false, if_not_exists => true);
        PERFORM create_hypertable('orders', 'ts', chunk_time_interval => INTERVAL '7 days',
                                  create_default_indexes => false, if_not_exists => true);
        PERFORM create_hypertable('fills', 'ts', chunk_time_interval => INTERVAL '7 days',
                                  create_default_indexes => false, if_not_exists => true);
        PERFORM create_hypertable('equity', 'ts', chunk_time_interval => INTERVAL '7 days',
                                  create_default_indexes => false, if_not_exists => true);
    END IF;
END
$$;

-- One-minute OHLC bars of the mid price, on both TimescaleDB and plain
-- PostgreSQL (a plain view; a continuous aggregate can replace it later).
-- `ticks` counts the quotes (ticks with both bid and ask) in the bar.
CREATE VIEW bars_1m AS
SELECT symbol,
       time_bucket(INTERVAL '1 minute', ts) AS bucket,
       (array_agg((bid + ask) / 2 ORDER BY ts, seq))[1]           AS open,
       max((bid + ask) / 2)                                       AS high,
       min((bid + ask) / 2)                                       AS low,
       (array_agg((bid + ask) / 2 ORDER BY ts DESC, seq DESC))[1] AS close,
       count(*)                                                   AS ticks
FROM ticks
WHERE bid IS NOT NULL AND ask IS NOT NULL
GROUP BY symbol, time_bucket(INTERVAL '1 minute', ts);
