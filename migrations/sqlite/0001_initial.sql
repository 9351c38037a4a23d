-- Event store used by sqlite-es (cqrs-es). Events are appended and never updated.
CREATE TABLE events (
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL,
    sequence       integer CHECK (sequence >= 0) NOT NULL,
    event_type     text NOT NULL,
    event_version  text NOT NULL,
    payload        text NOT NULL,
    metadata       text NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE TABLE snapshots (
    aggregate_type   text NOT NULL,
    aggregate_id     text NOT NULL,
    last_sequence    integer CHECK (last_sequence >= 0) NOT NULL,
    current_snapshot integer CHECK (current_snapshot >= 0) NOT NULL,
    payload          text NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

-- Short-lived login flow state (state, nonce, PKCE verifier). Consumed once; not an aggregate.
CREATE TABLE login_flows (
    state_hash    text PRIMARY KEY,
    tenant        text NOT NULL,
    connection_id text NOT NULL,
    attempt_id    text NOT NULL,
    binding_hash  text NOT NULL,
    nonce         text NOT NULL,
    pkce_verifier text NOT NULL,
    redirect_uri  text NOT NULL,
    return_to     text,
    created_at    integer NOT NULL,
    expires_at    integer NOT NULL,
    consumed_at   integer
) STRICT;
CREATE INDEX login_flows_expiry ON login_flows (expires_at);

-- Outbound fetch cache shared by all nodes (discovery documents, JWKS).
CREATE TABLE http_cache (
    cache_key  text PRIMARY KEY,
    status     integer NOT NULL,
    headers    text NOT NULL,
    body       blob NOT NULL,
    fetched_at integer NOT NULL
) STRICT;

-- Admin API credentials: only a SHA-256 of each token is kept.
CREATE TABLE admin_credentials (
    id         text PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    label      text NOT NULL,
    created_at integer NOT NULL
) STRICT;

-- Read models (projections), rebuilt from events on demand.
CREATE TABLE tenants_view (
    slug         text PRIMARY KEY,
    display_name text NOT NULL,
    app_url      text NOT NULL,
    created_at   integer NOT NULL,
    updated_at   integer NOT NULL
) STRICT;

CREATE TABLE connections_view (
    tenant        text NOT NULL,
    connection_id text NOT NULL,
    protocol      text NOT NULL,
    label         text NOT NULL,
    created_at    integer NOT NULL,
    updated_at    integer NOT NULL,
    PRIMARY KEY (tenant, connection_id)
) STRICT;

CREATE TABLE users_view (
    tenant        text NOT NULL,
    user_id       text NOT NULL,
    connection_id text NOT NULL,
    subject       text NOT NULL,
    email         text NOT NULL,
    name          text,
    created_at    integer NOT NULL,
    updated_at    integer NOT NULL,
    PRIMARY KEY (tenant, user_id)
) STRICT;

CREATE TABLE login_attempts_view (
    attempt_id    text PRIMARY KEY,
    tenant        text NOT NULL,
    connection_id text,
    protocol      text,
    client_ip     text,
    user_agent    text,
    started_at    integer NOT NULL
) STRICT;

CREATE TABLE audit_log (
    id            integer PRIMARY KEY AUTOINCREMENT,
    event_key     text NOT NULL UNIQUE,
    tenant        text NOT NULL,
    time          integer NOT NULL,
    type          text NOT NULL,
    attempt_id    text,
    connection_id text,
    protocol      text,
    outcome       text,
    reason        text,
    detail        text,
    email         text,
    user_id       text,
    actor         text,
    client_ip     text,
    user_agent    text
) STRICT;
CREATE INDEX audit_log_tenant ON audit_log (tenant, id);
CREATE INDEX audit_log_tenant_time ON audit_log (tenant, time);
CREATE INDEX audit_log_tenant_email ON audit_log (tenant, email, id);
CREATE INDEX audit_log_tenant_outcome ON audit_log (tenant, outcome, id);
