-- 0036_run_lease: who follows an unfinished run, and until when.
--
-- `ticktape run`, `demo`, `sweep` and `paper` create their runs with `owner`
-- (the command, its pid and host) and a lease, `lease_until`, which they
-- renew every 2 s to 10 s ahead while they follow the runs
-- (ticktape.store.runs: LEASE_S, LEASE_RENEW_S). The worker such a command
-- starts dies with it, so a run whose lease ran out while it was unfinished
-- would never end: the next command that looks at runs, a worker with the
-- replay stage, or `ticktape dashboard` marks it failed, naming its owner
-- (store.expire_leases). NULL: no lease (runs submitted by other clients,
-- and the runs stored before this migration).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS owner text;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS lease_until timestamptz;
