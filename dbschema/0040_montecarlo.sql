-- 0040_montecarlo: Monte Carlo studies of a run (ticktape montecarlo RUN;
-- ticktape.backtest.montecarlo, docs/montecarlo.md). One row per study,
-- written in one statement once every draw is done: a study is stored whole
-- or not at all. `summary` holds the distributions of the draws' statistics
-- (percentiles, mean, histogram) and the probabilities; `fan` the percentile
-- paths of equity on a coarse grid. Deleted with its run (store.RUN_TABLES).
CREATE TABLE IF NOT EXISTS montecarlo_studies (
    study_id     uuid PRIMARY KEY,
    run_id       uuid NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    method       text NOT NULL CHECK (method IN ('trades', 'returns', 'blocks', 'paths')),
    n            integer NOT NULL CHECK (n > 0),
    seed         bigint NOT NULL CHECK (seed >= 0),
    block_length double precision CHECK (block_length >= 1),
    params       jsonb NOT NULL,
    summary      jsonb NOT NULL,
    fan          jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS montecarlo_studies_run_idx ON montecarlo_studies (run_id, created_at);
-- the app's read-only role reads the studies (user-facing tables grant it
-- themselves: 0043 ends the blanket default privilege of 0038)
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ticktape_reader') THEN
        GRANT SELECT ON montecarlo_studies TO ticktape_reader;
    END IF;
END
$$;
