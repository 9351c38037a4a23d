-- Admin API credentials with roles (core/src/domain/credential). The events of the `credential`
-- aggregate are the authority on a credential's role, tenant, expiry and revocation; this table
-- keeps what must never be in an event, the SHA-256 of the token, and the role and tenant again
-- so that a tenant's credentials are listed without reading every aggregate. Credentials made
-- before this migration (`config`, `bootstrap`) become platform admins.
ALTER TABLE admin_credentials ADD COLUMN role text NOT NULL DEFAULT 'platform_admin';
ALTER TABLE admin_credentials ADD COLUMN tenant text;
CREATE INDEX admin_credentials_tenant ON admin_credentials (tenant);
