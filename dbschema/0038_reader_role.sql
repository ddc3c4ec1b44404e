-- 0038_reader_role: ticktape_reader, the role the dashboard's queries and
-- any SQL a user types run as (ticktape.store.session.run(..., readonly=True):
-- a read-only transaction that does SET LOCAL ROLE ticktape_reader). It may
-- only SELECT: the server refuses anything else, and it has none of the
-- rights of the user ticktape connects as (a superuser on the embedded
-- PostgreSQL). NOLOGIN: nobody connects as it, so it needs no password.
--
-- On a server where the migrating user may not create roles
-- (TICKTAPE_DATABASE_URL without CREATEROLE) this warns and carries on; the
-- read-only sessions then run in read-only transactions only, and say so
-- (docs/architecture.md, "Progress and control", has the SQL an
-- administrator runs instead).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ticktape_reader') THEN
        BEGIN
            CREATE ROLE ticktape_reader NOLOGIN;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'cannot create the read-only role ticktape_reader (%); the dashboard and typed SQL will run in read-only transactions only', SQLERRM;
            RETURN;
        END;
    END IF;
    -- the migrating user may SET ROLE to it (a superuser needs no membership)
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        BEGIN
            EXECUTE format('GRANT ticktape_reader TO %I', current_user);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'cannot grant ticktape_reader to %: %', current_user, SQLERRM;
        END;
    END IF;
    GRANT USAGE ON SCHEMA public TO ticktape_reader;
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO ticktape_reader;
    -- tables and views the later migrations create
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO ticktape_reader;
END
$$;
