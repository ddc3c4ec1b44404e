-- 0031_bar_policy_batches: the bar refresh policies (0003) refresh one day,
-- one week and one month of buckets per batch on TimescaleDB >= 2.19.
--
-- Why: since 2.19 a refresh policy works in batches of `buckets_per_batch`
-- buckets, one transaction each, and the default is 10: for bars_1s, one
-- batch per 10 seconds of every chunk that has invalidated rows. Measured on
-- 2.28.3 (docs/timescaledb.md): after writing two days of ticks, one run of
-- the bars_1s policy took 122 s (17,280 batches); with a day per batch,
-- 0.10 s. Imported history spans months or years, so the default policies
-- ran for hours, and a running policy holds its window to infinity, so
-- `store.refresh_bars` over the same range waited for it (SQLSTATE 55P03)
-- until its deadline and failed.
--
-- Plain PostgreSQL (plain views) and TimescaleDB before 2.19: nothing to do.

DO $$
DECLARE
    pol record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    IF (SELECT string_to_array(substring(extversion FROM '^[0-9]+\.[0-9]+'), '.')::int[] < ARRAY[2, 19]
        FROM pg_extension WHERE extname = 'timescaledb') THEN
        RETURN;
    END IF;
    FOR pol IN
        SELECT j.job_id, j.config, v.per_batch
        FROM timescaledb_information.jobs j
        JOIN (VALUES ('bars_1s', 86400), ('bars_1m', 10080), ('bars_1h', 720)) AS v(name, per_batch)
          ON v.name = j.hypertable_name
        WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
    LOOP
        PERFORM alter_job(pol.job_id,
                          config => pol.config || jsonb_build_object('buckets_per_batch', pol.per_batch));
    END LOOP;
END
$$;
