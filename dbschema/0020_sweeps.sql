-- 0020_sweeps: parameter sweeps store one run per parameter set, grouped by
-- a sweep id (ticktape sweep; see ticktape.backtest.sweep).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS sweep_id uuid;
CREATE INDEX IF NOT EXISTS runs_sweep_id_idx ON runs (sweep_id) WHERE sweep_id IS NOT NULL;
