//! Verifying a tenant's chain: one streaming pass, then a few point checks.

use ed25519_dalek::Signature;
use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::Row;

use super::{
    checkpoint_message, link_hash, to32, EntryContent, TrustedKeys, AUDITED_AGGREGATES, GENESIS,
};
use crate::on_db;
use crate::store::{Db, StoreError};

// Verifying

/// What is wrong with a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// An entry's content differs from what was chained.
    Altered,
    /// An entry is missing: a position gap, a chained entry absent from the audit log, or an
    /// entry that no longer follows its predecessor.
    Removed,
    /// An entry that was never chained, or whose link does not fit and that no event recorded.
    Inserted,
    /// Two entries changed places.
    Reordered,
    /// Entries after a signed checkpoint (or after the recorded head) were removed from the end.
    Truncated,
    /// A checkpoint's signature does not verify.
    CheckpointSignatureInvalid,
    /// A checkpoint names a key that is not trusted.
    CheckpointUnknownKey,
    /// A checkpoint signed a head that the recomputed chain does not have at its position.
    CheckpointMismatch,
    /// Committed events that are in no audit chain (a node stopped between commit and
    /// projection); `gatehouse projections rebuild` chains them.
    Unprojected,
}

/// The first problem found.
#[derive(Clone, Debug, Serialize)]
pub struct ChainProblem {
    /// What kind.
    pub kind: ProblemKind,
    /// Chain position of the bad entry (or checkpoint), when it has one.
    pub position: Option<i64>,
    /// Its audit log row id, when the row exists.
    pub entry_id: Option<i64>,
    /// Its event key (`aggregate:id:sequence`), when known.
    pub event_key: Option<String>,
    /// Explanation.
    pub detail: String,
}

/// The result of verifying one tenant's chain.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// Tenant slug.
    pub tenant: String,
    /// True when the chain, every checkpoint and the head are intact.
    pub ok: bool,
    /// Entries recomputed before stopping.
    pub entries_checked: u64,
    /// Checkpoints whose signature and head were checked.
    pub checkpoints_checked: u64,
    /// Position of the last entry checked.
    pub head_position: i64,
    /// Hex link hash at that position.
    pub head_hash: String,
    /// Position of the last checkpoint, if any.
    pub last_checkpoint_position: Option<i64>,
    /// The first problem, when not ok.
    pub problem: Option<ChainProblem>,
}

struct Checkpoint {
    position: i64,
    head: Vec<u8>,
    time: i64,
    key_id: String,
    signature: Vec<u8>,
}

impl Checkpoint {
    /// Signature and key first; the head is compared by the caller.
    fn check_signature(&self, tenant: &str, keys: &TrustedKeys) -> Option<ChainProblem> {
        let problem = |kind, detail: String| ChainProblem {
            kind,
            position: Some(self.position),
            entry_id: None,
            event_key: None,
            detail,
        };
        let Some(key) = keys.get(&self.key_id) else {
            return Some(problem(
                ProblemKind::CheckpointUnknownKey,
                format!(
                    "the checkpoint at position {} is signed by key {:?}, which is not among the trusted keys ({})",
                    self.position,
                    self.key_id,
                    keys.ids().join(", ")
                ),
            ));
        };
        let valid = match (to32(&self.head), Signature::from_slice(&self.signature)) {
            (Some(head), Ok(signature)) => {
                let message =
                    checkpoint_message(tenant, self.position, &head, self.time, &self.key_id);
                key.verify_strict(message.as_bytes(), &signature)
                    .is_ok()
            }
            _ => false,
        };
        (!valid).then(|| {
            problem(
                ProblemKind::CheckpointSignatureInvalid,
                format!(
                    "the signature of the checkpoint at position {} does not verify",
                    self.position
                ),
            )
        })
    }
}

/// A chain row whose link did not fit, classified after the stream with a few point queries.
struct Break {
    /// The content differs from the chained entry hash (else only the link does not fit).
    altered: bool,
    position: i64,
    entry_id: Option<i64>,
    event_key: String,
    previous: [u8; 32],
    entry: [u8; 32],
    stored_link: [u8; 32],
}

/// The streaming state of a verification.
struct Walk<'k> {
    tenant: String,
    keys: &'k TrustedKeys,
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    previous: [u8; 32],
    expected: i64,
    entries: u64,
    checkpoints_checked: u64,
    problem: Option<ChainProblem>,
    broken: Option<Break>,
}

impl Walk<'_> {
    /// One chain row, with its audit row's content when the row exists. False stops the walk.
    fn step(
        &mut self,
        position: i64,
        event_key: &str,
        stored_entry: &[u8],
        stored_link: &[u8],
        entry: Option<(i64, Option<i64>, EntryContent<'_>)>,
    ) -> bool {
        if position != self.expected {
            self.problem = Some(ChainProblem {
                kind: ProblemKind::Removed,
                position: Some(self.expected),
                entry_id: None,
                event_key: None,
                detail: format!(
                    "the entry at position {} was removed from the chain (the next one is at {position})",
                    self.expected
                ),
            });
            return false;
        }
        let Some((entry_id, row_position, content)) = entry else {
            self.problem = Some(ChainProblem {
                kind: ProblemKind::Removed,
                position: Some(position),
                entry_id: None,
                event_key: Some(event_key.to_owned()),
                detail: format!(
                    "the entry at position {position} ({event_key}) was removed from the audit log"
                ),
            });
            return false;
        };
        let Some(entry) = content.hash() else {
            self.problem = Some(ChainProblem {
                kind: ProblemKind::Altered,
                position: Some(position),
                entry_id: Some(entry_id),
                event_key: Some(event_key.to_owned()),
                detail: format!(
                    "the entry at position {position} ({event_key}) claims canonical form {}, \
                     which does not exist",
                    content.form
                ),
            });
            return false;
        };
        let altered = stored_entry != entry;
        let link = link_hash(&self.previous, position, &entry);
        if altered || stored_link != link {
            self.broken = Some(Break {
                altered,
                position,
                entry_id: Some(entry_id),
                event_key: event_key.to_owned(),
                previous: self.previous,
                entry,
                stored_link: to32(stored_link).unwrap_or([0; 32]),
            });
            return false;
        }
        // Pages and cursors go by the row's copy of its position: a changed copy would reorder
        // what readers see, or hide the entry from a tail.
        if row_position != Some(position) {
            self.problem = Some(ChainProblem {
                kind: ProblemKind::Reordered,
                position: Some(position),
                entry_id: Some(entry_id),
                event_key: Some(event_key.to_owned()),
                detail: format!(
                    "entry {entry_id} ({event_key}) is chained at position {position} but the \
                     audit log lists it at {}",
                    row_position.map_or("no position".to_owned(), |p| p.to_string())
                ),
            });
            return false;
        }
        self.previous = link;
        self.expected += 1;
        self.entries += 1;
        while let Some(checkpoint) = self
            .checkpoints
            .get(self.next_checkpoint)
        {
            if checkpoint.position > position {
                break;
            }
            self.next_checkpoint += 1;
            if let Some(problem) = checkpoint.check_signature(&self.tenant, self.keys) {
                self.problem = Some(problem);
                return false;
            }
            if checkpoint.position < position || checkpoint.head != link {
                self.problem = Some(ChainProblem {
                    kind: ProblemKind::CheckpointMismatch,
                    position: Some(checkpoint.position),
                    entry_id: None,
                    event_key: None,
                    detail: format!(
                        "the signed checkpoint at position {} does not match the recomputed chain: \
                         entries up to it were rewritten",
                        checkpoint.position
                    ),
                });
                return false;
            }
            self.checkpoints_checked += 1;
        }
        true
    }
}

const CHAIN_SQL: &str = "SELECT c.position, c.event_key, c.entry_hash, c.link_hash, a.id, \
     a.tenant, a.time, a.type, a.attempt_id, a.connection_id, a.protocol, a.outcome, a.reason, \
     a.detail, a.email, a.user_id, a.actor, a.client_ip, a.user_agent, c.form, a.request_id, \
     a.position FROM audit_chain c LEFT JOIN audit_log a ON a.event_key = c.event_key \
     WHERE c.tenant = $1 ORDER BY c.position";

/// Recomputes `tenant`'s chain from the stored entries in one streaming pass (constant memory
/// but for the checkpoint list), checks every checkpoint signature against `keys` and each
/// checkpoint's head against the recomputed chain, and names the first problem.
///
/// Also reported: audit rows of the tenant that are in no chain (inserted), entries removed from
/// the end up to the last checkpoint or recorded head (truncated), and committed events of any
/// tenant that are in no chain (unprojected).
pub async fn verify(db: &Db, tenant: &str, keys: &TrustedKeys) -> Result<VerifyReport, StoreError> {
    let checkpoints = load_checkpoints(db, tenant).await?;
    let last_checkpoint_position = checkpoints.last().map(|c| c.position);
    let mut walk = Walk {
        tenant: tenant.to_owned(),
        keys,
        checkpoints,
        next_checkpoint: 0,
        previous: GENESIS,
        expected: 1,
        entries: 0,
        checkpoints_checked: 0,
        problem: None,
        broken: None,
    };
    on_db!(db, |pool| {
        let mut rows = sqlx::query(CHAIN_SQL)
            .bind(tenant)
            .fetch(pool);
        while let Some(row) = rows.try_next().await? {
            let position: i64 = row.try_get(0)?;
            let event_key: &str = row.try_get(1)?;
            let stored_entry: &[u8] = row.try_get(2)?;
            let stored_link: &[u8] = row.try_get(3)?;
            let entry_id: Option<i64> = row.try_get(4)?;
            let entry = match entry_id {
                None => None,
                Some(id) => Some((
                    id,
                    row.try_get::<Option<i64>, _>(21)?,
                    EntryContent {
                        form: row.try_get(19)?,
                        event_key,
                        tenant: row.try_get(5)?,
                        time: row.try_get(6)?,
                        kind: row.try_get(7)?,
                        attempt_id: row.try_get(8)?,
                        connection_id: row.try_get(9)?,
                        protocol: row.try_get(10)?,
                        outcome: row.try_get(11)?,
                        reason: row.try_get(12)?,
                        detail: row.try_get(13)?,
                        email: row.try_get(14)?,
                        user_id: row.try_get(15)?,
                        actor: row.try_get(16)?,
                        client_ip: row.try_get(17)?,
                        user_agent: row.try_get(18)?,
                        request_id: row.try_get(20)?,
                    },
                )),
            };
            if !walk.step(position, event_key, stored_entry, stored_link, entry) {
                break;
            }
        }
    });
    if let Some(broken) = walk.broken.take() {
        walk.problem = Some(classify_break(db, tenant, broken).await?);
    }
    let last = walk.expected - 1;
    if walk.problem.is_none() {
        walk.problem = tail_problem(db, &mut walk, last).await?;
    }
    if walk.problem.is_none() {
        walk.problem = unchained_row(db, tenant).await?;
    }
    if walk.problem.is_none() {
        walk.problem = unprojected_events(db).await?;
    }
    Ok(VerifyReport {
        tenant: tenant.to_owned(),
        ok: walk.problem.is_none(),
        entries_checked: walk.entries,
        checkpoints_checked: walk.checkpoints_checked,
        head_position: last,
        head_hash: hex::encode(walk.previous),
        last_checkpoint_position,
        problem: walk.problem,
    })
}

async fn load_checkpoints(db: &Db, tenant: &str) -> Result<Vec<Checkpoint>, StoreError> {
    on_db!(db, |pool| {
        let rows = sqlx::query(
            "SELECT position, head_hash, time, key_id, signature FROM audit_checkpoints \
             WHERE tenant = $1 ORDER BY position",
        )
        .bind(tenant)
        .fetch_all(pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(Checkpoint {
                position: row.try_get(0)?,
                head: row.try_get(1)?,
                time: row.try_get(2)?,
                key_id: row.try_get(3)?,
                signature: row.try_get(4)?,
            });
        }
        Ok(out)
    })
}

/// An entry whose content or link does not fit: a forged entry (no event recorded it), an
/// altered one, two entries that changed places, or an entry whose predecessor was removed (and
/// later positions renumbered).
async fn classify_break(db: &Db, tenant: &str, b: Break) -> Result<ChainProblem, StoreError> {
    let event_exists = super::event_recorded(db, &b.event_key).await?;
    let at = |kind, detail: String| ChainProblem {
        kind,
        position: Some(b.position),
        entry_id: b.entry_id,
        event_key: Some(b.event_key.clone()),
        detail,
    };
    if !event_exists {
        return Ok(at(
            ProblemKind::Inserted,
            format!(
                "entry {} at position {} ({}) was inserted: it does not fit the chain and no event recorded it",
                b.entry_id.unwrap_or_default(),
                b.position,
                b.event_key
            ),
        ));
    }
    if b.altered {
        return Ok(at(
            ProblemKind::Altered,
            format!(
                "the content of entry {} at position {} ({}) differs from what was chained",
                b.entry_id.unwrap_or_default(),
                b.position,
                b.event_key
            ),
        ));
    }
    // Did it trade places with the next entry?
    let next: Option<Vec<u8>> = on_db!(db, |pool| {
        sqlx::query("SELECT entry_hash FROM audit_chain WHERE tenant = $1 AND position = $2")
            .bind(tenant)
            .bind(b.position + 1)
            .fetch_optional(pool)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
    });
    if let Some(next_entry) = next.as_deref().and_then(to32) {
        let original = link_hash(&b.previous, b.position, &next_entry);
        if link_hash(&original, b.position + 1, &b.entry) == b.stored_link {
            return Ok(at(
                ProblemKind::Reordered,
                format!(
                    "entries at positions {} and {} changed places ({} was chained at {})",
                    b.position,
                    b.position + 1,
                    b.event_key,
                    b.position + 1
                ),
            ));
        }
    }
    Ok(at(
        ProblemKind::Removed,
        format!(
            "entry {} at position {} ({}) does not follow its predecessor: an entry before it was \
             removed and the positions after it renumbered, or the chain was rewritten",
            b.entry_id.unwrap_or_default(),
            b.position,
            b.event_key
        ),
    ))
}

/// Checkpoints past the end, or a recorded head beyond (or different from) the last entry.
async fn tail_problem(
    db: &Db,
    walk: &mut Walk<'_>,
    last: i64,
) -> Result<Option<ChainProblem>, StoreError> {
    while let Some(checkpoint) = walk
        .checkpoints
        .get(walk.next_checkpoint)
    {
        walk.next_checkpoint += 1;
        if let Some(problem) = checkpoint.check_signature(&walk.tenant, walk.keys) {
            return Ok(Some(problem));
        }
        return Ok(Some(ChainProblem {
            kind: ProblemKind::Truncated,
            position: Some(last + 1),
            entry_id: None,
            event_key: None,
            detail: format!(
                "entries {} to {} were removed from the end: a signed checkpoint covers position {}",
                last + 1,
                checkpoint.position,
                checkpoint.position
            ),
        }));
    }
    let head: Option<(i64, Vec<u8>)> = on_db!(db, |pool| {
        match sqlx::query("SELECT position, link_hash FROM audit_chain_heads WHERE tenant = $1")
            .bind(&walk.tenant)
            .fetch_optional(pool)
            .await?
        {
            Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
            None => None,
        }
    });
    let Some((position, link)) = head else {
        return Ok(None);
    };
    let problem = |kind, position: i64, detail: String| ChainProblem {
        kind,
        position: Some(position),
        entry_id: None,
        event_key: None,
        detail,
    };
    Ok(if position > last {
        Some(problem(
            ProblemKind::Truncated,
            last + 1,
            format!("entries {} to {position} were removed from the end (the recorded head is at {position})", last + 1),
        ))
    } else if position < last {
        Some(problem(
            ProblemKind::Inserted,
            position + 1,
            format!("entries after the recorded head ({position}) were appended outside Gatehouse"),
        ))
    } else if link != walk.previous {
        Some(problem(
            ProblemKind::Altered,
            last,
            "the recorded chain head differs from the recomputed one".to_owned(),
        ))
    } else {
        None
    })
}

/// An audit row of the tenant that is not in the tenant's own chain: rows are chained in the
/// transaction that inserts them, so such a row was inserted behind Gatehouse's back (or moved
/// here from another tenant's log).
async fn unchained_row(db: &Db, tenant: &str) -> Result<Option<ChainProblem>, StoreError> {
    let row: Option<(i64, String)> = on_db!(db, |pool| {
        match sqlx::query(
            "SELECT a.id, a.event_key FROM audit_log a WHERE a.tenant = $1 AND NOT EXISTS \
             (SELECT 1 FROM audit_chain c WHERE c.event_key = a.event_key AND c.tenant = a.tenant) \
             ORDER BY a.id LIMIT 1",
        )
        .bind(tenant)
        .fetch_optional(pool)
        .await?
        {
            Some(row) => Some((row.try_get(0)?, row.try_get(1)?)),
            None => None,
        }
    });
    Ok(row.map(|(id, event_key)| ChainProblem {
        kind: ProblemKind::Inserted,
        position: None,
        entry_id: Some(id),
        detail: format!("entry {id} ({event_key}) was inserted: it is in no chain"),
        event_key: Some(event_key),
    }))
}

const UNPROJECTED_SQL: &str = "SELECT aggregate_type || ':' || aggregate_id || ':' || sequence \
     FROM events e WHERE aggregate_type IN (AUDITED) AND NOT EXISTS (SELECT 1 FROM audit_chain c \
     WHERE c.event_key = e.aggregate_type || ':' || e.aggregate_id || ':' || e.sequence) LIMIT 1000";

async fn unprojected_keys(db: &Db) -> Result<Vec<String>, StoreError> {
    let sql = UNPROJECTED_SQL.replace("AUDITED", AUDITED_AGGREGATES);
    on_db!(db, |pool| {
        let rows = sqlx::query(&sql)
            .fetch_all(pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    })
}

/// Committed events that no chain holds (store-wide). An event being projected right now is
/// briefly in that state too, so candidates are looked at again after a moment.
async fn unprojected_events(db: &Db) -> Result<Option<ChainProblem>, StoreError> {
    let first = unprojected_keys(db).await?;
    if first.is_empty() {
        return Ok(None);
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let again = unprojected_keys(db).await?;
    let still = again
        .iter()
        .filter(|k| first.contains(k))
        .count();
    if still == 0 {
        return Ok(None);
    }
    Ok(Some(ChainProblem {
        kind: ProblemKind::Unprojected,
        position: None,
        entry_id: None,
        event_key: None,
        detail: format!(
            "{still} committed event(s) of this store are in no audit chain (a node stopped between \
             commit and projection?); `gatehouse projections rebuild` chains them in event order"
        ),
    }))
}

/// Every tenant with a chain or a tenant record, sorted.
pub async fn tenants(db: &Db) -> Result<Vec<String>, StoreError> {
    on_db!(db, |pool| {
        let rows = sqlx::query(
            "SELECT tenant FROM audit_chain_heads UNION SELECT slug FROM tenants_view ORDER BY 1",
        )
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::from)
    })
}
