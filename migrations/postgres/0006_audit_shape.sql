-- The audit event shape and its cursor (core/src/projections/audit.rs).
--
-- `position` is the entry's place in its tenant's hash chain, copied from audit_chain in the
-- transaction that chains it. It is taken under the tenant's head lock, so within a tenant it is
-- gapless and in commit order: a reader that has seen position n has seen every position below
-- n. The commit-order tail goes by it, never by `id`, which is drawn from a sequence before
-- commit (a lower id can become visible after a higher one) and is renumbered by a projection
-- rebuild.
-- `request_id` is the API request that caused the event (event metadata).
ALTER TABLE audit_log ADD COLUMN position bigint;
ALTER TABLE audit_log ADD COLUMN request_id text;
UPDATE audit_log SET position = c.position FROM audit_chain c WHERE c.event_key = audit_log.event_key;

-- Listings by time (newest or oldest first, ties by position) of the common filters read
-- straight from an index, cursor included: (tenant[, email or outcome], time, position). The
-- commit-order tail reads (tenant, position).
DROP INDEX audit_log_tenant;
DROP INDEX audit_log_tenant_time;
DROP INDEX audit_log_tenant_email;
DROP INDEX audit_log_tenant_outcome;
CREATE UNIQUE INDEX audit_log_tenant_position ON audit_log (tenant, position);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant, time, position);
CREATE INDEX audit_log_tenant_email ON audit_log (tenant, email, time, position);
CREATE INDEX audit_log_tenant_outcome ON audit_log (tenant, outcome, time, position);

-- The canonical form an entry hash was computed with: 1 for entries chained before this
-- migration, 2 (which also covers request_id) after it. The form is also in the hashed bytes
-- (their tag names it), so changing it here breaks the entry like any other alteration.
ALTER TABLE audit_chain ADD COLUMN form smallint NOT NULL DEFAULT 1;
