use std::collections::HashMap;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore, Query};

use super::{Db, EventRepo, StoreError};
use crate::domain::NoServices;
use crate::ids::Actor;

/// How many times a command is re-run after losing an optimistic-concurrency race.
const MAX_ATTEMPTS: usize = 10;

/// Why a command did not run.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused it (a business rule).
    #[error(transparent)]
    Rejected(E),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Context recorded with every event: when, who, and which request.
#[derive(Clone, Debug)]
pub struct Metadata {
    /// Who caused the event.
    pub actor: Actor,
    /// Request id of the HTTP request that caused it, if any.
    pub request_id: Option<String>,
}

impl Metadata {
    fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        map.insert("time".to_owned(), time);
        map.insert("actor".to_owned(), self.actor.0.clone());
        if let Some(id) = &self.request_id {
            map.insert("request_id".to_owned(), id.clone());
        }
        map
    }
}

/// Runs commands against aggregates: load, decide, append, then wake the projections.
///
/// A command that loses a race for the same aggregate (another node appended first) is
/// re-run on the fresh state. After the append commits, the projections are only woken
/// (`Query::dispatch`); the node's projector writes the read models off the request path.
pub struct Executor<Q> {
    db: Db,
    projections: Q,
}

impl<Q> Executor<Q> {
    /// An executor over `db` that feeds `projections`.
    pub fn new(db: Db, projections: Q) -> Self {
        Executor { db, projections }
    }

    /// The projections fed by this executor.
    pub fn projections(&self) -> &Q {
        &self.projections
    }

    fn store<A>(&self) -> PersistedEventStore<EventRepo, A>
    where
        A: Aggregate<Services = NoServices>,
    {
        PersistedEventStore::new_event_store(EventRepo::new(&self.db))
    }

    /// Current state of an aggregate (its default state when it has no events).
    pub async fn load<A>(&self, id: &str) -> Result<A, StoreError>
    where
        A: Aggregate<Services = NoServices> + Clone,
    {
        let mut context = self.store::<A>().load_aggregate(id).await.map_err(store_error)?;
        Ok(context.aggregate().clone())
    }

    /// Executes `command` on aggregate `id` and returns the state after it.
    pub async fn execute<A>(
        &self,
        id: &str,
        command: A::Command,
        metadata: &Metadata,
    ) -> Result<A, CommandError<A::Error>>
    where
        A: Aggregate<Services = NoServices> + Clone,
        A::Command: Clone,
        Q: Query<A>,
    {
        let store = self.store::<A>();
        for attempt in 1..=MAX_ATTEMPTS {
            let mut context = store.load_aggregate(id).await.map_err(store_error)?;
            let sink = EventSink::default();
            let aggregate = context.aggregate();
            aggregate
                .handle(command.clone(), &NoServices, &sink)
                .await
                .map_err(CommandError::Rejected)?;
            let state = aggregate.clone();
            let events = sink.collect().await;
            if events.is_empty() {
                return Ok(state);
            }
            match store.commit(events, context, metadata.to_map()).await {
                Ok(committed) => {
                    self.projections.dispatch(id, &committed).await;
                    return Ok(state);
                }
                Err(AggregateError::AggregateConflict) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(aggregate = A::TYPE, attempt, "append conflict, retrying");
                    // Writers that collided would collide again if they all retried at once:
                    // wait a random, growing moment first.
                    let ceiling_ms = 5 * attempt as u64;
                    let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 1..=ceiling_ms);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                    continue;
                }
                Err(e) => return Err(CommandError::Store(store_error(e))),
            }
        }
        Err(CommandError::Store(StoreError::Conflict))
    }
}

fn store_error<E: std::error::Error>(error: AggregateError<E>) -> StoreError {
    match error {
        AggregateError::AggregateConflict => StoreError::Conflict,
        AggregateError::DeserializationError(e) => StoreError::Corrupt(e.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}
