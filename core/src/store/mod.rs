//! Persistence: the event store (sqlite-es or postgres-es behind one type), the command
//! executor with conflict retries, and the small non-event tables (flow state, fetch cache,
//! admin credentials). SQL schemas live in `migrations/`.

mod credentials;
mod diagnostics;
mod email_codes;
mod event_repository;
mod executor;
mod flows;
mod handoffs;
mod http_cache;
mod rate_limits;
mod replay;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use credentials::{
    new_token, AdminCredential, Credentials, StoredCredential, BOOTSTRAP_ID, CONFIG_ID, TOKEN_PREFIX,
};
pub use diagnostics::{Diagnostics, StoredDiagnostics, DIAGNOSTICS_TTL_MS};
pub use email_codes::{EmailCode, EmailCodes, NewEmailCode};
pub use event_repository::EventRepo;
pub use executor::{CommandError, Executor, Metadata};
pub use flows::{ConsumeError, Flow, Flows, NewFlow};
pub use handoffs::Handoffs;
pub use http_cache::{CachedResponse, HttpCache};
pub use rate_limits::RateLimits;
pub use replay::Replays;

/// A storage failure that is not a business-rule refusal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the same aggregate first, even after retries.
    #[error("concurrent update conflict")]
    Conflict,
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// Which database backs this deployment. Both run the same SQL for Gatehouse's own tables
/// (`$n` placeholders work in both), and each has its own migrations folder.
#[derive(Clone, Debug)]
pub enum Db {
    /// Embedded SQLite (the zero-setup default).
    Sqlite(SqlitePool),
    /// PostgreSQL (production; several nodes may share it).
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of `$db`.
#[macro_export]
#[doc(hidden)]
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Makes the SQLite database and its WAL and shared-memory files readable by their owner only:
/// they hold addresses, IP addresses and credential hashes. (SQLite gives the files it creates
/// later the database file's mode.)
fn owner_only(file: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut name = file.as_os_str().to_owned();
        for suffix in ["", "-wal", "-shm"] {
            name.push(suffix);
            let path = Path::new(&name);
            if path.exists() {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                    |e| StoreError::Database(format!("cannot restrict {}: {e}", path.display())),
                )?;
            }
            name = file.as_os_str().to_owned();
        }
    }
    Ok(())
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl Db {
    /// Connects to `url` (`sqlite://PATH` or `postgres://...`) and runs the migrations.
    /// Migrations take a database lock on PostgreSQL, so nodes may start together.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Db::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let file = options
                .get_filename()
                .to_path_buf();
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            owner_only(&file)?;
            Db::Sqlite(pool)
        } else {
            return Err(StoreError::Database(
                "database URL must start with sqlite: or postgres://".into(),
            ));
        };
        db.migrate().await?;
        Ok(db)
    }

    /// The URL of the SQLite database kept under `data_dir`.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}", data_dir.join("gatehouse.sqlite").display())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let result = match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|e| StoreError::Database(format!("migration failed: {e}")))
    }

    /// Store name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_db!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, the time format of Gatehouse's own tables.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
