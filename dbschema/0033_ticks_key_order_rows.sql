-- 0033_ticks_key_order_rows: ticks_key_order (0032) also holds the number
-- of rows of each month it lists, so that store.count_ticks (a run's
-- progress total, checked before the run starts) adds them up instead of
-- counting every tick of every whole month in the run's range: over years
-- of ticks that count took minutes.
--
-- A listed month's number of rows must stay true, so a DELETE or a
-- TRUNCATE now unlists the month too: the row trigger ticks_key_order_lost
-- also fires on DELETE, and ticks_key_order_truncated on TRUNCATE (both on
-- the months listed from now on, and on those listed already). Months
-- listed before this migration have no number (NULL): they are counted.

ALTER TABLE ticks_key_order ADD COLUMN rows bigint;
COMMENT ON COLUMN ticks_key_order.rows IS
    'rows of the partition when TickWriter listed it (NULL: listed before 0033, not known)';

DO $$
DECLARE
    part record;
BEGIN
    FOR part IN SELECT partition::text AS name FROM ticks_key_order LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS ticks_key_order_lost ON %s', part.name);
        EXECUTE format('CREATE TRIGGER ticks_key_order_lost AFTER INSERT OR UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION ticktape_ticks_key_order_lost()', part.name);
        EXECUTE format('CREATE TRIGGER ticks_key_order_truncated AFTER TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION ticktape_ticks_key_order_lost()', part.name);
    END LOOP;
END
$$;
