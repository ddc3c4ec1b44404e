-- 0003_market_data: instruments, L2/L3 book events, OHLCV bars at 1s/1m/1h,
-- and (with TimescaleDB) compression and continuous aggregates.
--
-- Same rule as 0001: runs unchanged on plain PostgreSQL (the embedded
-- default) and on TimescaleDB; every Timescale-specific statement sits in a
-- DO block that checks pg_extension first. Verified on both; see
-- docs/timescaledb.md.

-- Reference data of a symbol. NULL when unknown.
CREATE TABLE instruments (
    symbol    text PRIMARY KEY,
    tick_size float8 CHECK (tick_size IS NULL OR tick_size > 0),
    lot_size  float8 CHECK (lot_size IS NULL OR lot_size > 0),
    currency  text
);

-- Order book events (L2 price-level diffs and L3 order messages) of one
-- symbol, in (ts, seq) order; seq orders events that share a microsecond.
--
-- kind: 1 add order, 2 partial cancel, 3 delete order, 4 execution of a
--       visible order, 5 execution of a hidden order, 7 trading halt (the
--       LOBSTER codes, L3: order_id set);
--       10 level: the total size at (side, price) is now `size` (0 removes
--       the level; L2 diffs, order_id NULL); 11 clear: the book is reset (a
--       snapshot follows as kind 10 events).
-- side: +1 bid / buy, -1 ask / sell, NULL when not applicable.
-- level: 1-based depth of the price level when the source reports it.
CREATE TABLE book_events (
    symbol   text        NOT NULL,
    ts       timestamptz NOT NULL,
    seq      bigint      NOT NULL,
    kind     smallint    NOT NULL,
    side     smallint    CHECK (side IS NULL OR side IN (-1, 1)),
    price    float8,
    size     float8,
    order_id bigint,
    level    smallint,
    PRIMARY KEY (symbol, ts, seq)
);

-- The plain bars_1m view of 0001 is replaced by bars_1s / bars_1m / bars_1h
-- below (continuous aggregates on TimescaleDB, plain views otherwise).
DROP VIEW IF EXISTS bars_1m;

-- Bars: `price` is the mid of the quote when the tick has bid and ask, else
-- the trade price (`last`), so quote feeds give mid bars (as 0001's
-- bars_1m did) and trade-only feeds give trade bars. Columns:
--   symbol, bucket, open, high, low, close,
--   ticks  (ticks with a price in the bar),
--   volume (sum of last_size, NULL without trades),
--   trades (ticks with a trade price).
-- On plain PostgreSQL open/close break ties of equal ts by seq; on
-- TimescaleDB first()/last() order by ts only (ties inside one microsecond
-- are taken in any order).
DO $$
DECLARE
    bar record;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- Chunks: ticks keep 0001's 1 day (10M quotes/day is ~1 GB of heap
        -- per chunk before compression); book events arrive ~10x as often
        -- as L1 ticks, so 6 hours.
        PERFORM create_hypertable('book_events', 'ts', chunk_time_interval => INTERVAL '6 hours',
                                  create_default_indexes => false, if_not_exists => true);
        -- Compression: one segment per symbol, ordered as it is read back.
        -- The policy compresses chunks whose range ended more than 7 days
        -- ago (by wall clock, so imported history is compressed at the next
        -- policy run). Inserts and ON CONFLICT DO NOTHING still work on
        -- compressed chunks (TimescaleDB >= 2.11).
        ALTER TABLE ticks SET (timescaledb.compress,
                               timescaledb.compress_segmentby = 'symbol',
                               timescaledb.compress_orderby = 'ts, seq');
        PERFORM add_compression_policy('ticks', compress_after => INTERVAL '7 days', if_not_exists => true);
        ALTER TABLE book_events SET (timescaledb.compress,
                                     timescaledb.compress_segmentby = 'symbol',
                                     timescaledb.compress_orderby = 'ts, seq');
        PERFORM add_compression_policy('book_events', compress_after => INTERVAL '7 days',
                                       if_not_exists => true);
        FOR bar IN SELECT * FROM (VALUES ('bars_1s', '1 second', '1 minute', '10 seconds'),
                                         ('bars_1m', '1 minute', '5 minutes', '1 minute'),
                                         ('bars_1h', '1 hour', '2 hours', '15 minutes'))
                   AS v(name, width, end_offset, schedule)
        LOOP
            -- materialized_only = false: real-time aggregation, so bars of
            -- ticks written after the last refresh are still visible.
            EXECUTE format(
                $q$CREATE MATERIALIZED VIEW %I
                   WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                   SELECT symbol,
                          time_bucket(INTERVAL %L, ts) AS bucket,
                          first(coalesce((bid + ask) / 2, last), ts) AS open,
                          max(coalesce((bid + ask) / 2, last))       AS high,
                          min(coalesce((bid + ask) / 2, last))       AS low,
                          last(coalesce((bid + ask) / 2, last), ts)  AS close,
                          count(*)                                   AS ticks,
                          sum(last_size)                             AS volume,
                          count(last)                                AS trades
                   FROM ticks
                   WHERE coalesce((bid + ask) / 2, last) IS NOT NULL
                   GROUP BY symbol, time_bucket(INTERVAL %L, ts)
                   WITH NO DATA$q$,
                bar.name, bar.width, bar.width);
            -- start_offset NULL: refresh every invalidated range however old
            -- (backtests import history from years ago; a bounded start
            -- would never materialise it, and data below the watermark is
            -- not aggregated in real time).
            PERFORM add_continuous_aggregate_policy(bar.name::regclass, start_offset => NULL,
                                                    end_offset => bar.end_offset::interval,
                                                    schedule_interval => bar.schedule::interval,
                                                    if_not_exists => true);
        END LOOP;
    ELSE
        FOR bar IN SELECT * FROM (VALUES ('bars_1s', '1 second'), ('bars_1m', '1 minute'),
                                         ('bars_1h', '1 hour')) AS v(name, width)
        LOOP
            EXECUTE format(
                $q$CREATE VIEW %I AS
                   SELECT symbol,
                          time_bucket(INTERVAL %L, ts) AS bucket,
                          (array_agg(price ORDER BY ts, seq))[1]           AS open,
                          max(price)                                       AS high,
                          min(price)                                       AS low,
                          (array_agg(price ORDER BY ts DESC, seq DESC))[1] AS close,
                          count(*)                                         AS ticks,
                          sum(last_size)                                   AS volume,
                          count(last)                                      AS trades
                   FROM (SELECT symbol, ts, seq, last, last_size,
                                coalesce((bid + ask) / 2, last) AS price
                         FROM ticks) t
                   WHERE price IS NOT NULL
                   GROUP BY symbol, time_bucket(INTERVAL %L, ts)$q$,
                bar.name, bar.width, bar.width);
        END LOOP;
    END IF;
END
$$;
