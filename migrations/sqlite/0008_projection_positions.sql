-- Asynchronous projections (core/src/projections/projector.rs): a projector task tails the
-- event store in commit order and records how far it got in the same transaction as its
-- read-model writes. SQLite has one writer at a time and events are never deleted, so rowid
-- order is commit order; `txid` is always 0 here.

-- How far each projection has applied the event store (rowid of the last event applied);
-- `paused_by` and `paused_until` fence the live projector while `gatehouse projections
-- rebuild` runs (a lease, renewed by each of its batches).
CREATE TABLE projection_positions (
    projection   text PRIMARY KEY,
    txid         integer NOT NULL,
    position     integer NOT NULL,
    paused_by    text,
    paused_until integer NOT NULL DEFAULT 0,
    updated_at   integer NOT NULL
) STRICT;

-- Until now the read models were written inline after each append: they hold every event
-- committed so far.
INSERT INTO projection_positions (projection, txid, position, updated_at)
SELECT 'read_models', 0, COALESCE(MAX(rowid), 0), 0 FROM events;
