-- 0032_ticks_key_order: which `ticks` partitions (plain PostgreSQL, 0030)
-- hold their rows in (ts, seq) order on disk.
--
-- Why: reading a month through the primary key costs the server about
-- twice what a scan of the table in storage order costs (docs/data.md,
-- "Where the floor is"). A month that TickWriter bulk-loaded from a stream
-- in strictly increasing (ts, seq) order is stored in that order (COPY
-- FREEZE into a new table appends row after row); store.read_ticks then
-- reads it by ranges of blocks (TID range scans) instead of by the key,
-- and checks the order of what comes back.
--
-- A partition is listed here only by TickWriter, when it attaches a month
-- it loaded in order, with what it saw of the month's columns: a reader
-- then reads neither the columns NULL on every row nor, when no two rows
-- share a time, `seq` (only needed to check the order). Anything that could move rows out of order on disk
-- unlists it: store.write_ticks before it writes into a listed partition,
-- and, for every other INSERT or UPDATE (hand-written SQL), the row trigger
-- ticks_key_order_lost that TickWriter puts on the partition. A DELETE
-- keeps the order of the rows left (an INSERT into the space it frees
-- fires the trigger). Dropping a partition leaves its row here, never
-- matched again: the readers join this table with the partitions that
-- exist, and store.delete_ticks removes the rows of what it drops.
--
-- On TimescaleDB the table exists and stays empty.

CREATE TABLE ticks_key_order (
    partition regclass PRIMARY KEY,
    -- no two rows share a ts: the order of ts alone is the order of the key
    ts_unique boolean NOT NULL DEFAULT false,
    -- the float columns that are NULL on every row (quotes only: last, last_size)
    null_columns text[] NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE ticks_key_order IS
    'ticks partitions stored in (ts, seq) order on disk (plain PostgreSQL; see 0032_ticks_key_order)';

CREATE FUNCTION ticktape_ticks_key_order_lost() RETURNS trigger
    LANGUAGE plpgsql
    AS $f$
BEGIN
    DELETE FROM ticks_key_order WHERE partition = TG_RELID;
    RETURN NULL;
END
$f$;
COMMENT ON FUNCTION ticktape_ticks_key_order_lost() IS
    'row trigger of a ticks partition listed in ticks_key_order: a write unlists it (0032_ticks_key_order)';
