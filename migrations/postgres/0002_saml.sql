-- SAML: the request id a login sent (its answer must carry it as InResponseTo).
ALTER TABLE login_flows ADD COLUMN request_id text NOT NULL DEFAULT '';

-- One-time answer identifiers (SAML assertion IDs), remembered until they expire, shared by
-- every node so that a replay is refused everywhere.
CREATE TABLE replay_records (
    scope      text NOT NULL,
    id_hash    text NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (scope, id_hash)
);
CREATE INDEX replay_records_expiry ON replay_records (expires_at);

-- Form posts from identity providers (SAML HTTP-POST) waiting for the same-site GET that
-- carries the browser's flow cookie. Payloads are sealed; each handoff is used once.
CREATE TABLE acs_handoffs (
    handle_hash   text PRIMARY KEY,
    tenant        text NOT NULL,
    connection_id text NOT NULL,
    payload       text NOT NULL,
    expires_at    bigint NOT NULL
);
CREATE INDEX acs_handoffs_expiry ON acs_handoffs (expires_at);

-- What an identity provider sent for a refused attempt, decoded and redacted by its plugin,
-- for the tenant's administrators. Sealed, and deleted after it expires.
CREATE TABLE attempt_diagnostics (
    attempt_id text PRIMARY KEY,
    tenant     text NOT NULL,
    payload    text NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX attempt_diagnostics_expiry ON attempt_diagnostics (expires_at);
