-- Pause / resume / cancel of a running run, and replay progress for lag.
-- runs.control is set by `ticktape runs pause|resume|cancel` and read by the
-- replay agent; 'paused' is the status while the replay holds.
ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('pending', 'running', 'paused', 'complete', 'failed', 'cancelled'));
ALTER TABLE runs ADD COLUMN IF NOT EXISTS control text CHECK (control IN ('pause', 'cancel'));
-- ticks the replay has published per (run, symbol): lag = ticks_read - processed
ALTER TABLE run_progress ADD COLUMN IF NOT EXISTS ticks_read bigint NOT NULL DEFAULT 0;
