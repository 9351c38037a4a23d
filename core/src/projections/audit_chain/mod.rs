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
//! The canonical form covers every field a compliance reader relies on. Version 1: event key,
//! tenant, time, type, attempt, connection, protocol, outcome, reason, detail, email, user,
//! actor, client IP and user agent; each text field is `0x00` when absent or `0x01`, its byte
//! length as u64 big-endian and its UTF-8 bytes, and the time is an i64 big-endian. Version 2
//! (migration 0006) is version 1's fields followed by the request id, under the tag
//! `gatehouse audit entry v2`. Each chain row records its form (`audit_chain.form`); entries
//! chained before version 2 keep verifying as version 1. A row that claims another form than
//! it was chained with no longer matches its entry hash, since the tag is hashed. The row id is
//! not covered (a rebuild renumbers it); the chain position is, and `audit_log.position` must
//! equal it.
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
mod batch;
mod keys;
mod verify;

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::audit::AuditRow;
use crate::store::{Db, StoreError};

pub use append::{append_batch, backfill, checkpoint_stale};
pub(crate) use batch::insert_chained_batch;
pub use keys::{ChainConfig, CheckpointKey, CheckpointPolicy, KeyError, PublicKey, TrustedKeys};
pub use verify::{tenants, verify, ChainProblem, ProblemKind, VerifyReport};

/// The link before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];
const ENTRY_TAG_V1: &[u8] = b"gatehouse audit entry v1\0";
const ENTRY_TAG_V2: &[u8] = b"gatehouse audit entry v2\0";
/// The canonical form new entries are chained with.
pub const CURRENT_FORM: i16 = 2;
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
    /// Canonical form: 1 or [`CURRENT_FORM`].
    pub form: i16,
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
    /// Covered from form 2 on.
    pub request_id: Option<&'a str>,
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
    /// SHA-256 of the entry in its canonical form; `None` for a form this build does not know.
    pub fn hash(&self) -> Option<[u8; 32]> {
        let mut h = Sha256::new();
        match self.form {
            1 => h.update(ENTRY_TAG_V1),
            2 => h.update(ENTRY_TAG_V2),
            _ => return None,
        }
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
        if self.form >= 2 {
            put_text(&mut h, self.request_id);
        }
        Some(h.finalize().into())
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

/// A row's content in the current form.
fn content_of<'a>(row: &'a AuditRow, email: Option<&'a str>) -> EntryContent<'a> {
    EntryContent {
        form: CURRENT_FORM,
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
        request_id: row.request_id.as_deref(),
    }
}

/// The hash of a row's content in the current form.
fn current_hash(row: &AuditRow, email: Option<&str>) -> [u8; 32] {
    content_of(row, email)
        .hash()
        .expect("CURRENT_FORM is a form that `hash` knows")
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

/// True when the event store holds the event that `event_key` (`aggregate_type:aggregate_id:
/// sequence`) names.
async fn event_recorded(db: &Db, event_key: &str) -> Result<bool, StoreError> {
    let Some((kind, rest)) = event_key.split_once(':') else {
        return Ok(false);
    };
    let Some((id, sequence)) = rest.rsplit_once(':') else {
        return Ok(false);
    };
    let Ok(sequence) = sequence.parse::<i64>() else {
        return Ok(false);
    };
    Ok(crate::on_db!(db, |pool| {
        sqlx::query(
            "SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(kind)
        .bind(id)
        .bind(sequence)
        .fetch_optional(pool)
        .await?
        .is_some()
    }))
}
