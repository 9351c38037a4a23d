-- Asynchronous projections (core/src/projections/projector.rs): a projector task tails the
-- event store in commit order and records how far it got in the same transaction as its
-- read-model writes.

-- Commit order. `position` is drawn from a sequence before the appending transaction commits,
-- so a lower position can become visible after a higher one. Each event also records its
-- transaction id; the projector applies only transactions below the oldest one still running
-- (pg_snapshot_xmin), in (txid, position) order, and so never passes over a late commit. Events
-- from before this migration all get txid 0: they were committed already, in position order.
ALTER TABLE events ADD COLUMN txid bigint NOT NULL DEFAULT 0;
ALTER TABLE events ALTER COLUMN txid SET DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_commit_order ON events (txid, position);

-- How far each projection has applied the event store, as (txid, position) of the last event
-- applied; `paused_by` and `paused_until` fence the live projectors while
-- `gatehouse projections rebuild` runs (a lease, renewed by each of its batches).
CREATE TABLE projection_positions (
    projection   text PRIMARY KEY,
    txid         bigint NOT NULL,
    position     bigint NOT NULL,
    paused_by    text,
    paused_until bigint NOT NULL DEFAULT 0,
    updated_at   bigint NOT NULL
);

-- Until now the read models were written inline after each append: they hold every event
-- committed so far.
INSERT INTO projection_positions (projection, txid, position, updated_at)
SELECT 'read_models', 0, COALESCE(MAX(position), 0), 0 FROM events;
