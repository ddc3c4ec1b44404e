-- 0030_ticks_partitions: on plain PostgreSQL, `ticks` becomes a table
-- partitioned by RANGE (symbol, ts), one partition per symbol and UTC month.
--
-- Why: a primary key maintained row by row costs the server about twice the
-- rest of a COPY (docs/data.md, "Where the floor is"). With one partition
-- per (symbol, month), a big import of a month that is not stored yet loads
-- a new table without any index, builds the key in one sort and attaches
-- the table (ticktape.data.bulk.TickWriter). Everything else is unchanged:
-- the same name, columns and primary key (symbol, ts, seq) on the parent
-- (each partition holds one symbol and one month, so the key stays unique
-- over the whole table), the same bar views, the same queries.
--
-- Partitions are named ticks_YYYYMM_<first 12 hex digits of md5(symbol)>
-- (ticktape_tick_partition below; ticktape.store computes the same name).
-- They are created on first write (write_ticks, TickWriter) and attached
-- with ATTACH PARTITION, which takes SHARE UPDATE EXCLUSIVE on `ticks`:
-- readers and writers of other partitions are not blocked.
--
-- On TimescaleDB `ticks` stays the hypertable of 0001 (chunks by time);
-- nothing here runs there.

CREATE FUNCTION ticktape_tick_partition(symbol text, month timestamptz)
    RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $f$ SELECT 'ticks_' || to_char(month AT TIME ZONE 'UTC', 'YYYYMM') || '_' || left(md5(symbol), 12) $f$;
COMMENT ON FUNCTION ticktape_tick_partition(text, timestamptz) IS
    'name of the ticks partition of a symbol and a month (plain PostgreSQL; see 0030_ticks_partitions)';

DO $$
DECLARE
    cell record;
    bar record;
    lo timestamptz;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF (SELECT relkind FROM pg_class WHERE oid = 'ticks'::regclass) = 'p' THEN
        RETURN;
    END IF;
    -- the bar views of 0003 read `ticks`; they are made again below
    DROP VIEW IF EXISTS bars_1s, bars_1m, bars_1h;
    ALTER TABLE ticks RENAME TO ticks_0030_old;
    ALTER TABLE ticks_0030_old RENAME CONSTRAINT ticks_pkey TO ticks_0030_old_pkey;
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
    ) PARTITION BY RANGE (symbol, ts);
    -- the ticks stored so far, one partition per (symbol, month)
    FOR cell IN SELECT DISTINCT symbol, date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS month
                FROM ticks_0030_old LOOP
        lo := cell.month;
        EXECUTE format('CREATE TABLE %I PARTITION OF ticks FOR VALUES FROM (%L, %L) TO (%L, %L)',
                       ticktape_tick_partition(cell.symbol, lo), cell.symbol, lo,
                       cell.symbol, (lo AT TIME ZONE 'UTC' + INTERVAL '1 month') AT TIME ZONE 'UTC');
    END LOOP;
    INSERT INTO ticks SELECT symbol, ts, seq, bid, ask, bid_size, ask_size, last, last_size
                      FROM ticks_0030_old ORDER BY symbol, ts, seq;
    DROP TABLE ticks_0030_old;
    -- 0003's plain bar views, unchanged
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
END
$$;
