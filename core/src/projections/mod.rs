//! Read models: SQL tables derived from events, for administration and audit. A login never
//! reads them (it reads aggregates), so a lagging or failed projection cannot break sign-in.
//!
//! Every write is idempotent: the audit log keys rows by (aggregate type, id, sequence) and the
//! other views are upserts, so replaying an event changes nothing. `rebuild` empties the
//! tables and replays the whole event store in append order.

mod audit;
pub mod audit_chain;
mod rebuild;
mod views;

use async_trait::async_trait;
use cqrs_es::{Aggregate, EventEnvelope, Query};

pub use audit::{
    bind_params, AuditCursor, AuditEntry, AuditFilter, AuditOrder, AuditPage, AuditReader, AuditRow,
    KindFilter, SqlParam, DEFAULT_PAGE, ENTRY_COLUMNS, MAX_PAGE,
};
pub use rebuild::rebuild;

use crate::domain::login_attempt::LoginAttempt;
use crate::domain::session::Session;
use crate::domain::tenant::Tenant;
use crate::domain::user::{Identity, User};
use crate::store::{Db, StoreError};

/// The SQL projections, fed by the executor after each append.
#[derive(Clone)]
pub struct Projections {
    db: Db,
}

impl Projections {
    /// Projections into `db`.
    pub fn new(db: Db) -> Self {
        Projections { db }
    }
}

/// One aggregate's projection logic.
#[async_trait]
pub(crate) trait Project<A: Aggregate> {
    async fn project(&self, event: &EventEnvelope<A>) -> Result<(), StoreError>;
}

macro_rules! query_for {
    ($($aggregate:ty),*) => {$(
        #[async_trait]
        impl Query<$aggregate> for Projections {
            async fn dispatch(&self, _aggregate_id: &str, events: &[EventEnvelope<$aggregate>]) {
                for event in events {
                    if let Err(error) = self.project(event).await {
                        // The event is committed; only the read model missed it. It is raised
                        // here and repaired by `gatehouse projections rebuild`.
                        tracing::error!(
                            aggregate = <$aggregate as Aggregate>::TYPE,
                            aggregate_id = %event.aggregate_id,
                            sequence = event.sequence,
                            %error,
                            "projection failed to apply an event"
                        );
                    }
                }
            }
        }
    )*};
}

query_for!(Tenant, LoginAttempt, User, Identity, Session);
