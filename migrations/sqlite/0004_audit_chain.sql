-- Tamper evidence (core/src/projections/audit_chain.rs): each tenant's audit entries form a
-- SHA-256 hash chain, and signed checkpoints pin its head now and then. The chain is kept apart
-- from audit_log so that `gatehouse projections rebuild`, which empties audit_log and replays
-- the events, leaves the chain and its checkpoints as they were: the rebuilt rows must still
-- fit them.

-- One row per chained audit entry: its place in the tenant's chain, the hash of its content
-- and the link hash (over the previous link, the position and the content hash).
CREATE TABLE audit_chain (
    tenant     text NOT NULL,
    position   integer NOT NULL CHECK (position > 0),
    event_key  text NOT NULL UNIQUE,
    entry_hash blob NOT NULL,
    link_hash  blob NOT NULL,
    PRIMARY KEY (tenant, position)
) STRICT;

-- Each tenant's chain head; appends lock it, so two writers never take the same position.
CREATE TABLE audit_chain_heads (
    tenant              text PRIMARY KEY,
    position            integer NOT NULL,
    link_hash           blob NOT NULL,
    checkpoint_position integer NOT NULL,
    checkpoint_time     integer NOT NULL
) STRICT;

-- Ed25519 signatures over a tenant's chain head at a position.
CREATE TABLE audit_checkpoints (
    tenant    text NOT NULL,
    position  integer NOT NULL,
    head_hash blob NOT NULL,
    time      integer NOT NULL,
    key_id    text NOT NULL,
    signature blob NOT NULL,
    PRIMARY KEY (tenant, position)
) STRICT;

-- Present until the audit rows written before this migration have been chained (in id order,
-- once, by the first node that starts).
CREATE TABLE audit_chain_backfill (pending integer PRIMARY KEY) STRICT;
INSERT INTO audit_chain_backfill (pending) VALUES (1);
