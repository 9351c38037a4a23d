//! Audit chain benchmarks on SQLite and PostgreSQL: verification throughput over a generated
//! chain (entries/s), and what chaining adds to the write of one audit row (the projection step
//! of every login event).
//!
//! Run:
//!   cargo bench -p gatehouse-core --bench audit_chain
//!
//! `GATEHOUSE_BENCH_CHAIN_ENTRIES` sets the chain length (default 200,000, one tenant, a signed
//! checkpoint every 1,000 entries). PostgreSQL: a throwaway database `gh_bench_<random>` on
//! `GATEHOUSE_BENCH_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped at the
//! end; skipped when unreachable.
//!
//! Groups (criterion medians; one element = one entry verified, or one audit row written):
//! - `{store}/verify/chain`: `audit_chain::verify` of the whole tenant: one streaming pass that
//!   recomputes every entry and link hash, checks 200 Ed25519 checkpoint signatures, then the
//!   tail, unchained-row and unprojected-event checks.
//! - `{store}/write/plain_insert`: the audit row INSERT as it was before the chain (one
//!   statement, autocommit).
//! - `{store}/write/chained_insert`: the same row through the chained path (transaction, head
//!   lock, row, link, head update), i.e. what the login path now pays per audit event.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use gatehouse_core::projections::audit_chain::{
    self, CheckpointKey, CheckpointPolicy, TrustedKeys,
};
use gatehouse_core::projections::AuditRow;
use gatehouse_core::store::Db;
use tokio::runtime::Runtime;

const TENANT: &str = "bench-chain";
const BATCH: usize = 5_000;

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let entries: usize = std::env::var("GATEHOUSE_BENCH_CHAIN_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);

    let dir = tempfile::tempdir().expect("temporary directory");
    let sqlite = runtime
        .block_on(Db::connect(&Db::sqlite_url(dir.path())))
        .expect("SQLite store");
    bench_store(&mut criterion, &runtime, "sqlite", sqlite, entries);

    if std::env::var("GATEHOUSE_BENCH_STORES").is_ok_and(|s| !s.contains("postgres")) {
        criterion.final_summary();
        return;
    }
    support::on_scratch_postgres(&runtime, |postgres| {
        bench_store(&mut criterion, &runtime, "postgres", postgres, entries);
    });
    criterion.final_summary();
}

/// A login-failure-like row, as the projection writes them.
fn row(tenant: &str, n: usize) -> AuditRow {
    AuditRow {
        event_key: format!("login_attempt:{tenant}-{n:08}:1"),
        tenant: tenant.to_owned(),
        time: 1_780_000_000_000 + n as i64,
        kind: "login.failed".to_owned(),
        attempt_id: Some(format!("{:08x}-0000-4000-8000-{n:012}", n)),
        connection_id: Some("okta".to_owned()),
        protocol: Some("oidc".to_owned()),
        outcome: Some("failed".to_owned()),
        reason: Some("email_domain_not_allowed".to_owned()),
        detail: Some("the email domain is not one of the connection's domains".to_owned()),
        email: Some(format!("user{}@example.test", n % 500)),
        actor: Some(format!("attempt:{n}")),
        client_ip: Some("203.0.113.7".to_owned()),
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131 Safari/537.36"
                .to_owned(),
        ),
        ..AuditRow::default()
    }
}

fn bench_store(criterion: &mut Criterion, runtime: &Runtime, store: &str, db: Db, entries: usize) {
    let key = Arc::new(CheckpointKey::generate());
    let policy = CheckpointPolicy {
        key: key.clone(),
        every_entries: 1_000,
        every_ms: i64::MAX / 2,
    };
    let trusted = TrustedKeys::new([key.public()]);

    let started = Instant::now();
    runtime.block_on(async {
        let mut n = 0;
        while n < entries {
            let end = (n + BATCH).min(entries);
            let rows: Vec<AuditRow> = (n..end)
                .map(|i| row(TENANT, i))
                .collect();
            audit_chain::append_batch(&db, &rows, Some(&policy))
                .await
                .expect("append");
            n = end;
        }
    });
    println!(
        "{store}: generated a chain of {entries} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Db::Postgres(pool) = &db {
        runtime
            .block_on(sqlx::query("ANALYZE").execute(pool))
            .expect("ANALYZE");
    }
    // One run outside criterion, checked, with its own figure.
    let started = Instant::now();
    let report = runtime
        .block_on(audit_chain::verify(&db, TENANT, &trusted))
        .expect("verify");
    let elapsed = started.elapsed();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.entries_checked, entries as u64);
    println!(
        "{store}: verified {entries} entries and {} checkpoints in {:.2} s ({:.0} entries/s)",
        report.checkpoints_checked,
        elapsed.as_secs_f64(),
        entries as f64 / elapsed.as_secs_f64()
    );

    // The database's share: the same join, read and summed inside the engine.
    let started = Instant::now();
    let sql =
        "SELECT count(*), sum(length(a.user_agent)) FROM audit_chain c LEFT JOIN audit_log a \
               ON a.event_key = c.event_key WHERE c.tenant = $1";
    match &db {
        Db::Sqlite(pool) => {
            sqlx::query(sql)
                .bind(TENANT)
                .fetch_one(pool)
                .await_blocking(runtime);
        }
        Db::Postgres(pool) => {
            sqlx::query(sql)
                .bind(TENANT)
                .fetch_one(pool)
                .await_blocking(runtime);
        }
    }
    println!(
        "{store}: the chain join alone, inside the database: {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let mut group = criterion.benchmark_group(format!("{store}/verify"));
    group.throughput(Throughput::Elements(entries as u64));
    group.sample_size(10);
    group.bench_function("chain", |b| {
        b.to_async(runtime).iter(|| async {
            let report = audit_chain::verify(&db, TENANT, &trusted)
                .await
                .expect("verify");
            assert!(report.ok);
        })
    });
    group.finish();

    let mut group = criterion.benchmark_group(format!("{store}/write"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let counter = std::sync::atomic::AtomicUsize::new(entries);
    let next = || counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    group.bench_function("plain_insert", |b| {
        b.to_async(runtime).iter(|| async {
            let r = row("bench-plain", next());
            plain_insert(&db, &r).await;
        })
    });
    group.bench_function("chained_insert", |b| {
        b.to_async(runtime).iter(|| async {
            let r = row("bench-write", next());
            audit_chain::append_batch(&db, std::slice::from_ref(&r), Some(&policy))
                .await
                .expect("append");
        })
    });
    group.finish();
}

trait AwaitBlocking {
    fn await_blocking(self, runtime: &Runtime);
}

impl<F: std::future::Future<Output = Result<T, sqlx::Error>>, T> AwaitBlocking for F {
    fn await_blocking(self, runtime: &Runtime) {
        runtime.block_on(self).expect("query");
    }
}

/// The audit row insert as the projection did it before the chain.
async fn plain_insert(db: &Db, r: &AuditRow) {
    let sql = "INSERT INTO audit_log (event_key, tenant, time, type, attempt_id, connection_id, \
               protocol, outcome, reason, detail, email, user_id, actor, client_ip, user_agent) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
               ON CONFLICT (event_key) DO NOTHING";
    macro_rules! run {
        ($pool:expr) => {
            sqlx::query(sql)
                .bind(&r.event_key)
                .bind(&r.tenant)
                .bind(r.time)
                .bind(&r.kind)
                .bind(&r.attempt_id)
                .bind(&r.connection_id)
                .bind(&r.protocol)
                .bind(&r.outcome)
                .bind(&r.reason)
                .bind(&r.detail)
                .bind(&r.email)
                .bind(&r.user_id)
                .bind(&r.actor)
                .bind(&r.client_ip)
                .bind(&r.user_agent)
                .execute($pool)
                .await
                .expect("insert")
        };
    }
    match db {
        Db::Sqlite(pool) => {
            run!(pool);
        }
        Db::Postgres(pool) => {
            run!(pool);
        }
    }
}
