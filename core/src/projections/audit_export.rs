//! Reading a whole range of a tenant's audit log for export, in constant memory: keyset
//! batches of [`EXPORT_BATCH`] entries, each one short query that continues after the last
//! position read. No batch is kept once the caller has taken it, and no connection is held
//! between batches, so a slow download never pins a database connection.
//!
//! The entries are exactly those [`AuditReader::page`](super::AuditReader::page) would list
//! for the same filter, page after page: the same condition ([`AuditFilter::where_clause`]),
//! the same order and the same row reader ([`AuditEntry::from_row`]).

use super::audit::{bind_params, AuditEntry, AuditFilter, ENTRY_COLUMNS};
use crate::on_db;
use crate::store::{Db, StoreError};

/// Entries read per query during an export.
pub const EXPORT_BATCH: i64 = 1000;

/// A running export: each [`AuditExport::next_batch`] gives the next entries in the filter's
/// order until the range is exhausted.
pub struct AuditExport {
    db: Db,
    filter: AuditFilter,
    batch: i64,
    done: bool,
}

impl AuditExport {
    /// An export of what `filter` selects (its `limit` is ignored; its cursor, if any, is where
    /// the export starts).
    pub fn new(db: Db, filter: AuditFilter) -> Self {
        AuditExport::with_batch(db, filter, EXPORT_BATCH)
    }

    /// The same with `batch` entries per query (at least 1).
    pub fn with_batch(db: Db, filter: AuditFilter, batch: i64) -> Self {
        AuditExport {
            db,
            filter,
            batch: batch.max(1),
            done: false,
        }
    }

    /// The next entries, at most one batch; empty once everything was read. Entries recorded
    /// after the export started are included when they fall after the last one read (oldest
    /// first) and are otherwise not.
    pub async fn next_batch(&mut self) -> Result<Vec<AuditEntry>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let (condition, params) = self.filter.where_clause(1);
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM audit_log{condition}{} LIMIT {}",
            self.filter.order_by(),
            self.batch
        );

        let entries = on_db!(&self.db, |pool| {
            let rows = bind_params(sqlx::query(&sql), &params)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(AuditEntry::from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        match entries.last() {
            Some(last) if entries.len() as i64 == self.batch => {
                self.filter.cursor = Some(last.cursor());
            }
            _ => self.done = true,
        }
        Ok(entries)
    }
}
