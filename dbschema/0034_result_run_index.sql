-- 0034_result_run_index: the result tables (signals, orders, fills, equity)
-- are indexed by run_id alone, not by (run_id, symbol, ts).
--
-- Why: the sink writes these rows while the run goes, and the three-column
-- B-tree cost the server about 2.3 µs per row inserted (3.4-3.9 µs with it,
-- 1.1-1.3 without, COPY of 5,000-row batches; the key's choice did not
-- matter). Run ids are now UUIDs version 7 (ticktape.model.spec.new_run_id): they
-- grow with time, so a running run's entries go to the right edge of a
-- run_id index, which PostgreSQL appends to without a descent, and its rows
-- lie together on disk: +0.7 µs per row. Every query of these tables reads
-- one run (and maybe one symbol) whole and sorts it anyway: a bitmap scan
-- of the run's rows, the symbol a filter.
DROP INDEX IF EXISTS signals_run_symbol_ts_idx;
DROP INDEX IF EXISTS orders_run_symbol_ts_idx;
DROP INDEX IF EXISTS fills_run_symbol_ts_idx;
DROP INDEX IF EXISTS equity_run_symbol_ts_idx;

CREATE INDEX IF NOT EXISTS signals_run_idx ON signals (run_id);
CREATE INDEX IF NOT EXISTS orders_run_idx  ON orders  (run_id);
CREATE INDEX IF NOT EXISTS fills_run_idx   ON fills   (run_id);
CREATE INDEX IF NOT EXISTS equity_run_idx  ON equity  (run_id);
