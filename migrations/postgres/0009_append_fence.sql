-- Commit order for the projector without depending on the whole server's oldest transaction.
--
-- Every statement that appends events takes a shared, transaction-level advisory lock first (a
-- statement trigger, so every writer does, whatever its code). The projector takes the same
-- lock exclusively for an instant, which waits only for the appends in flight in THIS database
-- to commit or roll back, and reads the highest position then: every event at or below it has
-- committed, and every later append draws a higher position. Events are then applied in
-- position order up to that mark. (Migration 0008 bounded batches by pg_snapshot_xmin, which a
-- long transaction in any database of the server held back, stalling the projection.)
CREATE FUNCTION gatehouse_events_append_fence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- 0x6761_7465_6665_6e63: "gatefenc" in ASCII; the projector uses the same key.
    PERFORM pg_advisory_xact_lock_shared(7449363237505953379);
    RETURN NULL;
END
$$;

CREATE TRIGGER events_append_fence BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_events_append_fence();
