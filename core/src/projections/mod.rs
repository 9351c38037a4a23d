//! Read models: SQL tables derived from events, for administration and audit. A login never
//! reads them (it reads aggregates), so a lagging or failed projection cannot break sign-in.
//!
//! The request that appends events does not write them: it only wakes this node's projector
//! ([`Projector`]), which tails the event store in commit order and applies each batch of events
//! in one transaction together with its position (`projection_positions`), so a crash leaves
//! neither a gap nor a duplicate. Every write is idempotent as well: the audit log keys rows by
//! (aggregate type, id, sequence) and the other views are upserts. `rebuild` empties the tables
//! and replays the whole event store through the same path.

mod audit;
pub mod audit_chain;
mod batch;
mod credentials;
pub mod audit_export;
pub mod audit_summary;
mod projector;
mod rebuild;
mod views;

use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::{Aggregate, EventEnvelope, Query};
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use tokio::sync::Notify;

pub use audit::{
    bind_params, ActorKind, AuditCursor, AuditEntry, AuditFilter, AuditOrder, AuditPage,
    AuditReader, AuditRow, KindFilter, SqlParam, TargetKind, DEFAULT_PAGE, ENTRY_COLUMNS, MAX_PAGE,
};
pub use credentials::{access_scope, credential_scope, ACCESS_SUFFIX, PLATFORM_SCOPE};
pub use projector::{lag, Projector, ProjectorSettings};
pub use rebuild::rebuild;

use crate::domain::audit_read::AuditRead;
use crate::domain::credential::Credential;
use crate::domain::login_attempt::LoginAttempt;
use crate::domain::session::Session;
use crate::domain::tenant::Tenant;
use crate::domain::user::{Identity, User};
use crate::store::{Db, StoreError};

/// The SQL projections. The executor wakes them after each append; [`Projector`] applies.
#[derive(Clone)]
pub struct Projections {
    db: Db,
    wake: Arc<Notify>,
}

impl Projections {
    /// Projections into `db`.
    pub fn new(db: Db) -> Self {
        Projections {
            db,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Tells this node's projector that events were appended (a permit is kept when it is
    /// busy, so no append goes unnoticed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// A connection inside a projection transaction, of either store.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl<'c> From<&'c mut SqliteConnection> for Conn<'c> {
    fn from(conn: &'c mut SqliteConnection) -> Self {
        Conn::Sqlite(conn)
    }
}

impl<'c> From<&'c mut PgConnection> for Conn<'c> {
    fn from(conn: &'c mut PgConnection) -> Self {
        Conn::Postgres(conn)
    }
}

/// Runs `$body` with `$conn` bound to the concrete connection (`&mut &mut XConnection`; write
/// `&mut **$conn` as the executor).
#[macro_export]
#[doc(hidden)]
macro_rules! on_conn {
    ($target:expr, |$conn:ident| $body:expr) => {
        match $target {
            $crate::projections::Conn::Sqlite($conn) => $body,
            $crate::projections::Conn::Postgres($conn) => $body,
        }
    };
}

/// One aggregate's projection logic. Writes go through `conn`, or are queued in `pending` for
/// the batch's multi-row writes (see `batch`), inside the transaction that also moves the
/// projection's position.
#[async_trait]
pub(crate) trait Project<A: Aggregate> {
    async fn project(
        &self,
        conn: &mut Conn<'_>,
        pending: &mut batch::Pending,
        event: &EventEnvelope<A>,
    ) -> Result<(), StoreError>;
}

/// An event as read from the store for projecting: its commit-order key and serialized form.
#[derive(Debug)]
pub(crate) struct StoredEvent {
    /// Transaction id (PostgreSQL; always 0 on SQLite).
    pub txid: i64,
    /// `position` (PostgreSQL) or rowid (SQLite).
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub payload: String,
    pub metadata: String,
}

impl StoredEvent {
    fn envelope<A: Aggregate>(&self) -> Result<EventEnvelope<A>, StoreError> {
        let payload: A::Event = serde_json::from_str(&self.payload).map_err(|e| {
            StoreError::Corrupt(format!("{} {}: {e}", A::TYPE, self.aggregate_id))
        })?;
        let metadata = serde_json::from_str(&self.metadata)
            .map_err(|e| StoreError::Corrupt(format!("metadata: {e}")))?;
        Ok(EventEnvelope {
            aggregate_id: self.aggregate_id.clone(),
            sequence: usize::try_from(self.sequence)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            payload,
            metadata,
        })
    }
}

/// Lists the projected aggregates once: the executor's wake-up (`Query`) for each, and the
/// projector's dispatch of a stored event by aggregate type. An event of a type missing here
/// stops the projector with an error (it is never skipped).
macro_rules! query_for {
    ($($aggregate:ty),*) => {
        $(
            #[async_trait]
            impl Query<$aggregate> for Projections {
                async fn dispatch(&self, _id: &str, _events: &[EventEnvelope<$aggregate>]) {
                    self.wake();
                }
            }
        )*

        impl Projections {
            /// Applies one stored event to the read models through `conn` and `pending`.
            pub(crate) async fn apply_stored(
                &self,
                conn: &mut Conn<'_>,
                pending: &mut batch::Pending,
                event: &StoredEvent,
            ) -> Result<(), StoreError> {
                $(
                    if event.aggregate_type == <$aggregate as Aggregate>::TYPE {
                        let envelope = event.envelope::<$aggregate>()?;
                        return Project::<$aggregate>::project(self, conn, pending, &envelope)
                            .await;
                    }
                )*
                Err(StoreError::Corrupt(format!(
                    "no projection knows aggregate type {:?}",
                    event.aggregate_type
                )))
            }
        }
    };
}

query_for!(Tenant, LoginAttempt, User, Identity, Session, Credential, AuditRead);
