-- 0043_reader_login: the read-only role logs in by itself, and sees the
-- results and market data only.
--
-- Until now read-only sessions were the owner's connection with SET LOCAL
-- ROLE ticktape_reader: a typed query could leave the role again
-- (set_config('role', 'none', true) or set_config('session_authorization', ...)
-- inside a SELECT) and read as the owner — a superuser on the embedded
-- PostgreSQL. A session that logs in as ticktape_reader has no one else to
-- become. On the embedded PostgreSQL (trust on a private socket) it needs
-- no password; elsewhere an administrator gives it one and ticktape is told
-- with TICKTAPE_READER_URL (docs/dashboard.md).
--
-- Grants: SELECT on the tables and views a user reads (runs and their
-- results, progress, market data, bars), none on the internal ones (the
-- sink's ledger, recordings, the migrations, the ticks' key-order helper).
-- Later migrations grant SELECT on each new user-facing table themselves:
-- the blanket default privilege of 0038 ends here.
DO $$
DECLARE
    t text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ticktape_reader') THEN
        RETURN;  -- 0038 warned already
    END IF;
    BEGIN
        ALTER ROLE ticktape_reader LOGIN;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot let ticktape_reader log in (%); typed SQL stays off until an administrator runs ALTER ROLE ticktape_reader LOGIN PASSWORD ...', SQLERRM;
    END;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM ticktape_reader;
    FOREACH t IN ARRAY ARRAY['sink_batches', 'run_recordings', 'schema_migrations', 'ticks_key_order'] LOOP
        IF to_regclass(t) IS NOT NULL THEN
            EXECUTE format('REVOKE ALL ON %I FROM ticktape_reader', t);
        END IF;
    END LOOP;
END
$$;
