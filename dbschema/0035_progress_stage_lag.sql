-- 0035_progress_stage_lag: how far behind each stage of the pipeline is, per
-- (run, symbol), as of the stream's latest result set stored: hot_lag_s from
-- the replay publishing a batch to the hot path (indicators, strategy,
-- execution) publishing its results (time in the ticks topic included), and
-- sink_lag_s from then to the sink storing them. Wall-clock seconds.
ALTER TABLE run_progress ADD COLUMN IF NOT EXISTS hot_lag_s double precision;
ALTER TABLE run_progress ADD COLUMN IF NOT EXISTS sink_lag_s double precision;
