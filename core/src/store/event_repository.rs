use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;

use super::Db;

/// The cqrs-es event repository of whichever database is configured.
pub enum EventRepo {
    /// sqlite-es.
    Sqlite(SqliteEventRepository),
    /// postgres-es.
    Postgres(PostgresEventRepository),
}

impl EventRepo {
    /// A repository over `db`'s `events` and `snapshots` tables.
    pub fn new(db: &Db) -> Self {
        match db {
            Db::Sqlite(pool) => EventRepo::Sqlite(SqliteEventRepository::new(pool.clone())),
            Db::Postgres(pool) => EventRepo::Postgres(PostgresEventRepository::new(pool.clone())),
        }
    }
}

macro_rules! delegate {
    ($self:ident, |$repo:ident| $call:expr) => {
        match $self {
            EventRepo::Sqlite($repo) => $call.await,
            EventRepo::Postgres($repo) => $call.await,
        }
    };
}

impl PersistedEventRepository for EventRepo {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        delegate!(self, |repo| repo.get_events::<A>(aggregate_id))
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        delegate!(self, |repo| repo.get_last_events::<A>(aggregate_id, last_sequence))
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        delegate!(self, |repo| repo.get_snapshot::<A>(aggregate_id))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        delegate!(self, |repo| repo.persist::<A>(events, snapshot_update))
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        delegate!(self, |repo| repo.stream_events::<A>(aggregate_id))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        delegate!(self, |repo| repo.stream_all_events::<A>())
    }
}
