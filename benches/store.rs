//! Store benchmarks: event append through the executor (the projections are only woken; no
//! projector runs here, see benches/projections.rs) and audit page queries, on SQLite and on
//! PostgreSQL. The figures below predate the projector (they included the projection update).
//!
//! Run:
//!   cargo bench -p gatehouse-core --bench store -- --warm-up-time 1 --measurement-time 5
//!
//! PostgreSQL: a throwaway database `gh_bench_<random>` is created on `GATEHOUSE_BENCH_PG`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped at the end. When that
//! server cannot be reached, only the PostgreSQL groups are skipped.
//!
//! Measured 2026-12-03 (UTC) on the shared build machine: 2 cores, load average ~3.5 from other
//! builds during the run, so expect ±30% between runs. PostgreSQL 15.20 on 127.0.0.1 (TCP),
//! SQLite in WAL mode on a temporary directory. Command:
//!   cargo bench -p gatehouse-core --bench store -- --warm-up-time 1 --measurement-time 5
//! 20 samples each; criterion medians (target/criterion/*/*/new/estimates.json). One element is
//! one appended event (append) or one page served (audit_page). Filled with 20,000 audit rows
//! (10,000 attempts, 10 tenants, 50 emails per tenant); pages are for `tenant-03`, limit 100.
//!
//!   benchmark                           sqlite                   postgres
//!   append/login_started                  893 µs  1,120 ev/s      1.77 ms    566 ev/s
//!   append/login_started_then_failed     1.59 ms  1,259 ev/s      2.49 ms    804 ev/s
//!   audit_page/newest (100 rows)         1.25 ms    799 pg/s       710 µs  1,409 pg/s
//!   audit_page/outcome_failed (100)       819 µs  1,221 pg/s      2.31 ms    433 pg/s
//!   audit_page/email (20 rows)            172 µs  5,816 pg/s       380 µs  2,634 pg/s
//!   audit_page/email_and_failed (7)       198 µs  5,064 pg/s       269 µs  3,725 pg/s
//!   fill, 20,000 commands, 8 in flight   26.2 s     764 cmd/s     12.2 s  1,644 cmd/s
//!
//! On PostgreSQL, `outcome_failed` runs as a backward scan of the primary key filtering tenant
//! and outcome (~6,000 rows read for 100), not on `audit_log_tenant_outcome`.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use gatehouse_core::domain::login_attempt::{
    LoginAttempt, LoginAttemptCommand, LoginStarted, LoginSucceeded,
};
use gatehouse_core::ids::{Actor, AttemptId, ConnectionId, TenantSlug, UserId};
use gatehouse_core::projections::{AuditFilter, AuditReader, Projections};
use gatehouse_core::store::{Db, Executor, Metadata};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

type LoginExecutor = Executor<Projections>;

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let dir = tempfile::tempdir().expect("temporary directory");
    let sqlite_url = format!(
        "sqlite://{}",
        dir.path()
            .join("bench.sqlite")
            .display()
    );
    let sqlite = runtime
        .block_on(Db::connect(&sqlite_url))
        .expect("SQLite store");
    bench_store(&mut criterion, &runtime, "sqlite", sqlite);

    support::on_scratch_postgres(&runtime, |postgres| {
        bench_store(&mut criterion, &runtime, "postgres", postgres);
    });
    criterion.final_summary();
}

/// Rows in the audit log before the queries run: `FILL_ATTEMPTS` attempts of two events each.
const FILL_ATTEMPTS: usize = 10_000;
/// Tenants the filled rows are spread over.
const FILL_TENANTS: usize = 10;
/// Distinct emails per tenant in the filled rows.
const FILL_EMAILS: usize = 50;
/// Commands in flight while filling.
const FILL_CONCURRENCY: usize = 8;

fn bench_store(criterion: &mut Criterion, runtime: &Runtime, store: &str, db: Db) {
    let executor = Arc::new(Executor::new(db.clone(), Projections::new(db.clone())));

    // The audit log is filled through the executor, so every row comes from a real event and
    // its projection (and the event store holds the matching 20,000 events).
    let started = Instant::now();
    runtime.block_on(fill(executor.clone()));
    runtime
        .block_on(executor.projections().catch_up())
        .expect("project the filled events");
    let elapsed = started.elapsed();
    let commands = FILL_ATTEMPTS * 2;
    println!(
        "{store}: filled {commands} audit rows via the executor in {:.1} s ({:.0} commands/s)",
        elapsed.as_secs_f64(),
        commands as f64 / elapsed.as_secs_f64(),
    );

    // A running PostgreSQL server has autovacuum's statistics for a table this size; the bench
    // does not wait a naptime for them. SQLite is left as Gatehouse leaves it (no ANALYZE).
    if let Db::Postgres(pool) = &db {
        runtime
            .block_on(sqlx::query("ANALYZE").execute(pool))
            .expect("ANALYZE");
    }
    bench_audit(criterion, runtime, store, &db);
    bench_append(criterion, runtime, store, &executor);
}

fn bench_append(
    criterion: &mut Criterion,
    runtime: &Runtime,
    store: &str,
    executor: &LoginExecutor,
) {
    let mut group = criterion.benchmark_group(format!("{store}/append"));
    let tenant = TenantSlug::parse("bench-append").unwrap();

    group.throughput(Throughput::Elements(1));
    group.bench_function("login_started", |b| {
        b.to_async(runtime).iter(|| async {
            let id = AttemptId::new();
            let start = LoginAttemptCommand::Start(started(&tenant));
            run(executor, id, start).await;
        })
    });

    // Start then Fail: the second command replays the first event and its projection reads
    // the projected start back; two appends, so two elements.
    group.throughput(Throughput::Elements(2));
    group.bench_function("login_started_then_failed", |b| {
        b.to_async(runtime).iter(|| async {
            let id = AttemptId::new();
            run(executor, id, LoginAttemptCommand::Start(started(&tenant))).await;
            run(executor, id, failed(Some("someone@bench.test".to_owned()))).await;
        })
    });
    group.finish();
}

fn bench_audit(criterion: &mut Criterion, runtime: &Runtime, store: &str, db: &Db) {
    let mut group = criterion.benchmark_group(format!("{store}/audit_page"));
    let reader = AuditReader::new(db.clone());
    let tenant = tenant_name(3);
    let email = email_name(3, 7);
    let filters = [
        ("newest", AuditFilter::default()),
        (
            "outcome_failed",
            AuditFilter {
                outcome: Some("failed".to_owned()),
                ..AuditFilter::default()
            },
        ),
        (
            "email",
            AuditFilter {
                email: Some(email.clone()),
                ..AuditFilter::default()
            },
        ),
        (
            "email_and_failed",
            AuditFilter {
                email: Some(email),
                outcome: Some("failed".to_owned()),
                ..AuditFilter::default()
            },
        ),
    ];

    group.throughput(Throughput::Elements(1));
    for (name, filter) in filters {
        let filter = AuditFilter {
            tenant: tenant.clone(),
            limit: Some(100),
            ..filter
        };
        let rows = runtime
            .block_on(reader.page(&filter))
            .unwrap()
            .entries
            .len();
        println!("{store}/audit_page/{name}: {rows} rows per page");
        group.bench_with_input(BenchmarkId::from_parameter(name), &filter, |b, filter| {
            b.to_async(runtime).iter(|| async {
                let page = reader.page(filter).await.unwrap();
                criterion::black_box(page);
            })
        });
    }
    group.finish();
}

async fn fill(executor: Arc<LoginExecutor>) {
    let mut tasks = JoinSet::new();
    for chunk in 0..FILL_CONCURRENCY {
        let executor = executor.clone();
        tasks.spawn(async move {
            for i in (chunk..FILL_ATTEMPTS).step_by(FILL_CONCURRENCY) {
                let tenant_index = i % FILL_TENANTS;
                let tenant = TenantSlug::parse(&tenant_name(tenant_index)).unwrap();
                let email = email_name(tenant_index, (i / FILL_TENANTS) % FILL_EMAILS);
                let id = AttemptId::new();
                run(&executor, id, LoginAttemptCommand::Start(started(&tenant))).await;
                // One attempt in three fails.
                let outcome = if i % 3 == 0 {
                    failed(Some(email))
                } else {
                    LoginAttemptCommand::Succeed(LoginSucceeded {
                        issuer: "https://idp.bench.test".to_owned(),
                        subject: format!("subject-{i}"),
                        email,
                        name: None,
                        user_id: UserId::new(),
                    })
                };
                run(&executor, id, outcome).await;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("fill task");
    }
}

async fn run(executor: &LoginExecutor, id: AttemptId, command: LoginAttemptCommand) {
    let metadata = Metadata {
        actor: Actor::person(id),
        request_id: None,
    };
    executor
        .execute::<LoginAttempt>(&id.to_string(), command, &metadata)
        .await
        .expect("login attempt command");
}

fn started(tenant: &TenantSlug) -> LoginStarted {
    LoginStarted {
        tenant: tenant.clone(),
        connection_id: Some(ConnectionId::parse("okta").unwrap()),
        protocol: Some("oidc".to_owned()),
        method: "sso".to_owned(),
        client_ip: Some("192.0.2.10".to_owned()),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) bench".to_owned()),
    }
}

fn failed(email: Option<String>) -> LoginAttemptCommand {
    LoginAttemptCommand::Fail {
        reason: "email_not_verified".to_owned(),
        detail: "the identity provider did not verify the email".to_owned(),
        email,
    }
}

fn tenant_name(index: usize) -> String {
    format!("tenant-{index:02}")
}

fn email_name(tenant: usize, index: usize) -> String {
    format!("user{index}@tenant-{tenant:02}.test")
}
