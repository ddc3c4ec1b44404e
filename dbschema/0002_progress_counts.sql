-- 0002_progress_counts: per-symbol counts on run_progress, so a run can be
-- completed (and "nothing lost" checked) from the progress rows alone:
-- ticks read, ticks rejected and the rejects by reason, next to ticks_processed.
ALTER TABLE run_progress ADD COLUMN IF NOT EXISTS ticks_in bigint;
ALTER TABLE run_progress ADD COLUMN IF NOT EXISTS ticks_rejected bigint NOT NULL DEFAULT 0;
ALTER TABLE run_progress ADD COLUMN IF NOT EXISTS rejects jsonb NOT NULL DEFAULT '{}'::jsonb;
