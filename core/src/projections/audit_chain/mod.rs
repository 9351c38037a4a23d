//! Tamper evidence for the audit log.
//!
//! Each tenant's audit entries form a hash chain in the order they were projected:
//!
//! ```text
//! entry_hash(n) = SHA-256("gatehouse audit entry v1\0" || canonical fields of entry n)
//! link(n)       = SHA-256("gatehouse audit link v1\0" || link(n-1) || n as i64 BE || entry_hash(n))
//! link(0)       = 32 zero bytes
//! ```
//!
//! The canonical form (version 1) covers every field a compliance reader relies on: event key,
//! tenant, time, type, attempt, connection, protocol, outcome, reason, detail, email, user,
//! actor, client IP and user agent; each text field is `0x00` when absent or `0x01`, its byte
//! length as u64 big-endian and its UTF-8 bytes, and the time is an i64 big-endian. The row id is
//! not covered (a rebuild renumbers it); the chain position is.
//!
//! The chain lives in `audit_chain` (position, event key, entry hash, link), apart from
//! `audit_log`, so a projection rebuild leaves it in place and the rebuilt rows must fit it.
//! An entry is chained in the same transaction that inserts its audit row, after locking the
//! tenant's row in `audit_chain_heads` (an upsert with `RETURNING`, which takes the row lock on
//! PostgreSQL as `SELECT ... FOR UPDATE` would, in one round trip; SQLite has one writer at a
//! time), so nodes sharing one database never take the same position.
//!
//! Every `every_entries` entries, and for a tenant whose head moved more than `every_ms` ago,
//! a checkpoint signs the head with Ed25519 (ed25519-dalek): see [`checkpoint_message`].
//! [`verify`] recomputes a tenant's chain in one streaming pass and names the first problem.

mod append;
mod keys;
mod verify;

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::audit::AuditRow;

pub(crate) use append::insert_chained;
pub use append::{append_batch, backfill, checkpoint_stale};
pub use keys::{ChainConfig, CheckpointKey, CheckpointPolicy, KeyError, PublicKey, TrustedKeys};
pub use verify::{tenants, verify, ChainProblem, ProblemKind, VerifyReport};

/// The link before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];
const ENTRY_TAG: &[u8] = b"gatehouse audit entry v1\0";
const LINK_TAG: &[u8] = b"gatehouse audit link v1\0";
const CHECKPOINT_TAG: &str = "gatehouse audit checkpoint v1";
/// Aggregates whose every event becomes exactly one audit entry (identity links do not).
const AUDITED_AGGREGATES: &str =
    "'tenant', 'login_attempt', 'user', 'session', 'credential', 'audit_read'";

// ---------------------------------------------------------------------------------------------
// Hashes

/// The chained content of one audit entry.
#[derive(Clone, Copy, Debug)]
pub struct EntryContent<'a> {
    pub event_key: &'a str,
    pub tenant: &'a str,
    pub time: i64,
    pub kind: &'a str,
    pub attempt_id: Option<&'a str>,
    pub connection_id: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub email: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

fn put_text(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        None => hasher.update([0u8]),
        Some(text) => {
            hasher.update([1u8]);
            hasher.update((text.len() as u64).to_be_bytes());
            hasher.update(text.as_bytes());
        }
    }
}

impl EntryContent<'_> {
    /// SHA-256 of the canonical form, version 1.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(ENTRY_TAG);
        put_text(&mut h, Some(self.event_key));
        put_text(&mut h, Some(self.tenant));
        h.update(self.time.to_be_bytes());
        put_text(&mut h, Some(self.kind));
        for field in [
            self.attempt_id,
            self.connection_id,
            self.protocol,
            self.outcome,
            self.reason,
            self.detail,
            self.email,
            self.user_id,
            self.actor,
            self.client_ip,
            self.user_agent,
        ] {
            put_text(&mut h, field);
        }
        h.finalize().into()
    }
}

/// The link at `position`, following `previous`.
pub fn link_hash(previous: &[u8; 32], position: i64, entry: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(LINK_TAG);
    h.update(previous);
    h.update(position.to_be_bytes());
    h.update(entry);
    h.finalize().into()
}

/// The exact bytes a checkpoint signature covers.
pub fn checkpoint_message(
    tenant: &str,
    position: i64,
    head: &[u8; 32],
    time: i64,
    key_id: &str,
) -> String {
    format!(
        "{CHECKPOINT_TAG}\ntenant={tenant}\nposition={position}\nhead={}\ntime={time}\nkey={key_id}\n",
        hex::encode(head)
    )
}

fn content_of<'a>(row: &'a AuditRow, email: Option<&'a str>) -> EntryContent<'a> {
    EntryContent {
        event_key: &row.event_key,
        tenant: &row.tenant,
        time: row.time,
        kind: &row.kind,
        attempt_id: row.attempt_id.as_deref(),
        connection_id: row.connection_id.as_deref(),
        protocol: row.protocol.as_deref(),
        outcome: row.outcome.as_deref(),
        reason: row.reason.as_deref(),
        detail: row.detail.as_deref(),
        email,
        user_id: row.user_id.as_deref(),
        actor: row.actor.as_deref(),
        client_ip: row.client_ip.as_deref(),
        user_agent: row.user_agent.as_deref(),
    }
}

fn to32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

static CONFIG: OnceLock<ChainConfig> = OnceLock::new();

/// Installs this process's chain configuration (once; later calls are ignored and return false).
/// Without it, entries are still chained but no checkpoint is signed.
pub fn install(config: ChainConfig) -> bool {
    CONFIG.set(config).is_ok()
}

/// The installed configuration.
pub fn installed() -> Option<&'static ChainConfig> {
    CONFIG.get()
}

#[cfg(test)]
mod tests;
