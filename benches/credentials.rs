//! What authenticating an admin API request costs, on SQLite and PostgreSQL: every admin request
//! finds the credential by its token's SHA-256 and folds the credential's events (nothing is
//! cached, so a revocation holds at once on every node).
//!
//! Run:
//!   cargo bench -p gatehouse-core --bench credentials
//!
//! PostgreSQL: a throwaway database `gh_bench_<random>` on `GATEHOUSE_BENCH_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`), dropped at the end; skipped when unreachable
//! or when `GATEHOUSE_BENCH_STORES` does not name it.
//!
//! Groups (criterion medians; one element = one authentication):
//! - `{store}/authenticate/active`: a valid tenant admin token among 1,000 credentials (hash
//!   lookup, then the aggregate's events: created).
//! - `{store}/authenticate/revoked`: a revoked one (created and revoked: refused).
//! - `{store}/authenticate/unknown`: a token that matches no hash (the lookup alone).

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{Criterion, Throughput};
use gatehouse_core::projections::Projections;
use gatehouse_core::service::{CredentialAdmin, Issuer, NewCredential};
use gatehouse_core::store::{Credentials, Db, Executor, Metadata};
use tokio::runtime::Runtime;

const CREDENTIALS: usize = 1_000;

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
    let sqlite = runtime
        .block_on(Db::connect(&Db::sqlite_url(dir.path())))
        .expect("SQLite store");
    bench_store(&mut criterion, &runtime, "sqlite", sqlite);

    if std::env::var("GATEHOUSE_BENCH_STORES").is_ok_and(|s| !s.contains("postgres")) {
        criterion.final_summary();
        return;
    }
    support::on_scratch_postgres(&runtime, |postgres| {
        bench_store(&mut criterion, &runtime, "postgres", postgres);
    });
    criterion.final_summary();
}

fn bench_store(criterion: &mut Criterion, runtime: &Runtime, store: &str, db: Db) {
    let executor = Executor::new(db.clone(), Projections::new(db.clone()));
    let table = Credentials::new(db.clone());
    let admin = CredentialAdmin::on_store(&executor, &table);
    let (active, revoked) = runtime.block_on(async {
        let slug = "bench-tenant";
        let command = gatehouse_core::domain::tenant::TenantCommand::Create {
            slug: gatehouse_core::ids::TenantSlug::parse(slug).expect("a slug"),
            display_name: "Bench".into(),
            app_url: "https://app.bench.test/".into(),
            return_origins: Vec::new(),
            actor: gatehouse_core::ids::Actor::system(),
        };
        let metadata = Metadata {
            actor: gatehouse_core::ids::Actor::system(),
            request_id: None,
        };
        executor
            .execute::<gatehouse_core::domain::tenant::Tenant>(slug, command, &metadata)
            .await
            .expect("a tenant");
        let mut tokens = Vec::with_capacity(CREDENTIALS);
        for n in 0..CREDENTIALS {
            let role = if n % 2 == 0 {
                "tenant_admin"
            } else {
                "auditor"
            };
            let issued = admin
                .create(
                    &Issuer::System,
                    NewCredential {
                        role: role.into(),
                        tenant: Some(slug.into()),
                        label: Some(format!("bench {n}")),
                        expires_at: None,
                    },
                    None,
                )
                .await
                .expect("a credential");
            tokens.push((issued.credential.id, issued.token.to_string()));
        }
        let (revoked_id, revoked_token) = tokens.pop().expect("credentials");
        admin
            .revoke(&Issuer::System, &revoked_id, None)
            .await
            .expect("revoked");
        (tokens[CREDENTIALS / 2].1.clone(), revoked_token)
    });
    assert!(runtime
        .block_on(admin.authenticate(&active))
        .expect("store")
        .is_some());
    assert!(runtime
        .block_on(admin.authenticate(&revoked))
        .expect("store")
        .is_none());

    let mut group = criterion.benchmark_group(format!("{store}/authenticate"));
    group.throughput(Throughput::Elements(1));
    for (name, token) in [
        ("active", active.as_str()),
        ("revoked", revoked.as_str()),
        ("unknown", "gh_not-a-token-of-this-store"),
    ] {
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| async {
                admin
                    .authenticate(token)
                    .await
                    .expect("store")
            })
        });
    }
    group.finish();
}
