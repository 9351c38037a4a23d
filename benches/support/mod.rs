//! What the store benches share: a throwaway PostgreSQL database for a run, and a generator of
//! login-attempt events for filling an event store. Each bench uses part of it.
#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};

use chrono::{DateTime, Duration as Span, SecondsFormat, Utc};
use cqrs_es::DomainEvent;
use gatehouse_core::domain::login_attempt::{LoginAttemptEvent, LoginStarted, LoginSucceeded};
use gatehouse_core::domain::tenant::{Tenant, TenantCommand};
use gatehouse_core::ids::{Actor, AttemptId, ConnectionId, TenantSlug, UserId};
use gatehouse_core::projections::Projections;
use gatehouse_core::store::{Db, Executor, Metadata};
use sqlx::{Connection, PgConnection};
use tokio::runtime::Runtime;

// ---------------------------------------------------------------------------------------------
// A scratch PostgreSQL database

/// Runs `bench` on a PostgreSQL database that exists only for it, created on
/// `GATEHOUSE_BENCH_PG` (default `postgres://postgres@127.0.0.1:5432/postgres`) and dropped
/// afterwards, even when the bench panics. When that server cannot be reached, says so and
/// skips the bench.
pub fn on_scratch_postgres(runtime: &Runtime, bench: impl FnOnce(Db)) {
    let admin_url = std::env::var("GATEHOUSE_BENCH_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let scratch = match runtime.block_on(ScratchDatabase::create(&admin_url)) {
        Ok(scratch) => scratch,
        Err(error) => {
            println!("PostgreSQL at {admin_url} is unreachable ({error}); skipping postgres/*");
            return;
        }
    };
    let postgres = runtime
        .block_on(Db::connect(&scratch.url))
        .expect("PostgreSQL store");
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| bench(postgres.clone())));
    if let Db::Postgres(pool) = postgres {
        runtime.block_on(pool.close());
    }
    runtime.block_on(scratch.drop_database());
    if let Err(payload) = outcome {
        panic::resume_unwind(payload);
    }
}

/// A PostgreSQL database that exists only for this run.
struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create(admin_url: &str) -> Result<Self, sqlx::Error> {
        let mut admin = PgConnection::connect(admin_url).await?;
        let name = format!("gh_bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url, |(base, _)| base);
        Ok(ScratchDatabase {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }

    async fn drop_database(self) {
        let result = async {
            let mut admin = PgConnection::connect(&self.admin_url).await?;
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin)
            .await?;
            admin.close().await
        };
        if let Err(error) = result.await {
            println!("could not drop the scratch database {}: {error}", self.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generated events

/// Reasons of the failed attempts, with their safe details.
const REASONS: &[(&str, &str)] = &[
    (
        "email_domain_not_allowed",
        "the address is not in an allowed domain",
    ),
    (
        "state_mismatch",
        "the answer does not belong to this sign-in",
    ),
    ("idp_error", "the identity provider refused the sign-in"),
    ("code_expired", "the code has expired"),
    (
        "saml_signature_invalid",
        "the assertion signature does not verify",
    ),
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/18.0 Safari",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0",
];

/// Creates the tenants through the real executor, so their events are exactly what Gatehouse
/// writes.
pub async fn create_tenants(db: &Db, slugs: &[String], acting: &str) {
    let executor = Executor::new(db.clone(), Projections::new(db.clone()));
    let admin = Actor::admin(acting);
    let metadata = Metadata {
        actor: admin.clone(),
        request_id: None,
    };
    for slug in slugs {
        let command = TenantCommand::Create {
            slug: TenantSlug::parse(slug).expect("tenant slug"),
            display_name: format!("Bench tenant {slug}"),
            app_url: format!("https://{slug}.example.com/"),
            return_origins: Vec::new(),
            actor: admin.clone(),
        };
        executor
            .execute::<Tenant>(slug, command, &metadata)
            .await
            .unwrap_or_else(|e| panic!("create {slug}: {e}"));
    }
}

/// What generated login attempts look like.
pub struct AttemptMix<'a> {
    /// Tenants the attempts are spread over.
    pub tenants: &'a [String],
    /// Distinct addresses per tenant.
    pub emails_per_tenant: u64,
    /// The attempts' times span this many milliseconds, ending at `now`, increasing with `i`.
    pub span_ms: i64,
    /// How many attempts there are in all.
    pub attempts: u64,
    /// When the last one happened.
    pub now: DateTime<Utc>,
}

impl AttemptMix<'_> {
    /// The tenant attempt `i` goes to.
    pub fn tenant_of(&self, i: u64) -> &str {
        &self.tenants[(splitmix(i) % self.tenants.len() as u64) as usize]
    }

    /// The two rows (`events` columns aggregate_type, aggregate_id, sequence, event_type,
    /// event_version, payload, metadata) of login attempt `i`: `login.started`, then
    /// `login.succeeded` (70%) or `login.failed` (30%, five reasons), serialized from the core's
    /// own event types. The same `i` always gives the same content but for the ids.
    pub fn attempt_rows(&self, i: u64) -> [[String; 7]; 2] {
        let mix = splitmix(i);
        let tenant = self.tenant_of(i);
        let email_n = (mix >> 8) % self.emails_per_tenant;
        let email = format!("person{email_n}@{tenant}.example.com");
        let attempt = AttemptId::new();
        let at = self.now
            - Span::milliseconds(
                self.span_ms - (self.span_ms * i as i64) / self.attempts.max(1) as i64,
            );
        let begun = LoginAttemptEvent::Started(LoginStarted {
            tenant: TenantSlug::parse(tenant).expect("tenant slug"),
            connection_id: Some(ConnectionId::parse("okta").expect("connection id")),
            protocol: Some(["oidc", "saml", "oauth2"][(mix >> 40) as usize % 3].to_owned()),
            method: "sso".to_owned(),
            client_ip: Some(format!(
                "10.{}.{}.{}",
                (mix >> 16) % 256,
                (mix >> 24) % 256,
                (mix >> 32) % 256
            )),
            user_agent: Some(USER_AGENTS[(mix >> 44) as usize % USER_AGENTS.len()].to_owned()),
        });
        let finished = if (mix >> 48) % 10 < 7 {
            LoginAttemptEvent::Succeeded(LoginSucceeded {
                issuer: format!("https://idp.{tenant}.example.com"),
                subject: format!("sub-{email_n}"),
                email: email.clone(),
                name: Some(format!("Person {email_n}")),
                user_id: UserId::new(),
            })
        } else {
            let (reason, detail) = REASONS[(mix >> 52) as usize % REASONS.len()];
            LoginAttemptEvent::Failed {
                reason: reason.to_owned(),
                detail: detail.to_owned(),
                email: Some(email),
            }
        };
        let actor = Actor::person(attempt);
        let row = |sequence: usize, event: LoginAttemptEvent, offset_ms: i64| {
            let time =
                (at + Span::milliseconds(offset_ms)).to_rfc3339_opts(SecondsFormat::Millis, true);
            [
                "login_attempt".to_owned(),
                attempt.0.to_string(),
                sequence.to_string(),
                event.event_type(),
                event.event_version(),
                serde_json::to_string(&event).expect("event payload"),
                serde_json::json!({ "time": time, "actor": actor.0 }).to_string(),
            ]
        };
        [row(1, begun, 0), row(2, finished, 900)]
    }
}

/// A fixed, well-mixed 64-bit value for `n` (SplitMix64), so every run generates the same mix.
pub fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
