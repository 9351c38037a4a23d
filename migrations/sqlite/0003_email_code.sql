-- Email one-time codes: short-lived, not an aggregate (the attempt records each step). The code
-- is kept only as a keyed hash; the browser handle and the link token only as SHA-256.
CREATE TABLE email_codes (
    handle_hash text PRIMARY KEY,
    link_hash   text NOT NULL UNIQUE,
    tenant      text NOT NULL,
    attempt_id  text NOT NULL,
    email       text NOT NULL,
    code_mac    text NOT NULL,
    return_to   text,
    tries       integer NOT NULL DEFAULT 0,
    created_at  integer NOT NULL,
    expires_at  integer NOT NULL,
    consumed_at integer
) STRICT;
CREATE INDEX email_codes_expiry ON email_codes (expires_at);

-- Fixed-window counters for rate limits (code sending per email and per client IP), shared by
-- every node. Keys are keyed hashes, never the address itself.
CREATE TABLE rate_limits (
    bucket       text NOT NULL,
    window_start integer NOT NULL,
    hits         integer NOT NULL,
    PRIMARY KEY (bucket, window_start)
) STRICT;
CREATE INDEX rate_limits_window ON rate_limits (window_start);
