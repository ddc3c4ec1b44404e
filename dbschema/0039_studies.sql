-- 0039_studies: research studies over several runs (ticktape walkforward;
-- see ticktape.backtest.walkforward and docs/walkforward.md). A study's
-- spec is what it was asked (strategy, grid, spans, selection metric,
-- engine); its summary what it found (per window the chosen set, in- and
-- out-of-sample metrics, efficiency; the stitched curve's metrics;
-- parameter stability). Its out-of-sample runs are ordinary runs grouped
-- by runs.study_id. The study and its runs are stored in one transaction,
-- so a study is never half stored.
CREATE TABLE IF NOT EXISTS studies (
    study_id   uuid        PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('walkforward')),
    spec       jsonb       NOT NULL,
    summary    jsonb,
    status     text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete', 'failed')),
    error      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz
);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS study_id uuid;
CREATE INDEX IF NOT EXISTS runs_study_id_idx ON runs (study_id) WHERE study_id IS NOT NULL;
-- the app's read-only role reads studies (user-facing tables grant it
-- themselves: 0043 ends the blanket default of 0038)
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ticktape_reader') THEN
        GRANT SELECT ON studies TO ticktape_reader;
    END IF;
END
$$;
