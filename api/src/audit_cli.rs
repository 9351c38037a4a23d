//! Audit chain wiring and the `gatehouse audit ...` commands: the checkpoint signing key from
//! configuration, the trusted public keys, the periodic checkpoint task, and `audit verify`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use gatehouse_core::crypto::SecretKey;
use gatehouse_core::projections::audit_chain::{
    self, ChainConfig, CheckpointKey, CheckpointPolicy, PublicKey, TrustedKeys, VerifyReport,
};
use gatehouse_core::store::Db;

use crate::config::{AuditCommand, Config};

/// The signing key: GATEHOUSE_AUDIT_SIGNING_KEY, or the file GATEHOUSE_AUDIT_SIGNING_KEY_FILE,
/// or else derived from the secret key (the same on every node that shares it).
fn signing_key(
    config: &Config,
    secret: &SecretKey,
) -> anyhow::Result<(CheckpointKey, &'static str)> {
    if let Some(text) = &config.audit.signing_key {
        let key =
            CheckpointKey::from_base64(text).context("GATEHOUSE_AUDIT_SIGNING_KEY is invalid")?;
        return Ok((key, "configured"));
    }
    if let Some(path) = &config.audit.signing_key_file {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!("cannot read the audit signing key file {}", path.display())
        })?;
        let key = CheckpointKey::from_base64(&text)
            .with_context(|| format!("{} is not a valid audit signing key", path.display()))?;
        return Ok((key, "file"));
    }
    Ok((
        CheckpointKey::derived_from(secret),
        "derived from the secret key",
    ))
}

/// The process's chain configuration: signing key, trusted keys, checkpoint periods.
pub fn chain_config(
    config: &Config,
    secret: &SecretKey,
) -> anyhow::Result<(ChainConfig, &'static str)> {
    let (key, source) = signing_key(config, secret)?;
    let mut trusted = vec![key.public()];
    for (n, text) in config
        .audit
        .verify_keys
        .iter()
        .enumerate()
    {
        trusted.push(
            PublicKey::from_base64(text).with_context(|| {
                format!("GATEHOUSE_AUDIT_VERIFY_KEYS: key {} is invalid", n + 1)
            })?,
        );
    }
    let config = ChainConfig {
        policy: CheckpointPolicy {
            key: Arc::new(key),
            every_entries: config.audit.checkpoint_every,
            every_ms: config
                .audit
                .checkpoint_secs
                .saturating_mul(1000),
        },
        trusted: TrustedKeys::new(trusted),
    };
    Ok((config, source))
}

/// At start: installs the chain configuration, chains audit rows written before the chain
/// existed (once), and starts the task that signs checkpoints of quiet tenants.
pub async fn start_chain(config: &Config, secret: &SecretKey, db: &Db) -> anyhow::Result<()> {
    let (chain, source) = chain_config(config, secret)?;
    tracing::info!(
        key_id = chain.policy.key.key_id(),
        source,
        trusted = ?chain.trusted.ids(),
        every_entries = chain.policy.every_entries,
        every_secs = config.audit.checkpoint_secs,
        "audit chain checkpoints are signed with this key"
    );
    audit_chain::install(chain);
    let chained = audit_chain::backfill(db)
        .await
        .context("cannot chain the existing audit entries")?;
    if chained > 0 {
        tracing::info!(
            chained,
            "chained the audit entries written before the audit chain existed"
        );
    }
    let db = db.clone();
    let period = Duration::from_secs(
        config
            .audit
            .checkpoint_secs
            .clamp(1, 3600) as u64,
    );
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(chain) = audit_chain::installed() else {
                continue;
            };
            match audit_chain::checkpoint_stale(&db, &chain.policy).await {
                Ok(0) => {}
                Ok(signed) => tracing::debug!(signed, "signed audit chain checkpoints"),
                Err(error) => tracing::warn!(%error, "cannot sign audit chain checkpoints"),
            }
        }
    });
    Ok(())
}

/// Runs an `audit` subcommand.
pub fn run(command: AuditCommand, config_file: Option<&Path>) -> anyhow::Result<()> {
    match command {
        AuditCommand::Keygen => {
            let key = CheckpointKey::generate();
            out!("{}", key.to_base64().as_str());
            eprintln!(
                "public key: {}\nkey id:     {}",
                key.public().to_base64(),
                key.key_id()
            );
            Ok(())
        }
        AuditCommand::PublicKey { options } => {
            let config = Config::resolve(options, config_file)?;
            let secret = crate::server::secret_key(&config)?;
            let (key, source) = signing_key(&config, &secret)?;
            out!("{}", key.public().to_base64());
            eprintln!("key id: {} ({source})", key.key_id());
            Ok(())
        }
        AuditCommand::Verify {
            tenant,
            json,
            options,
        } => {
            let config = Config::resolve(options, config_file)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let all_ok = runtime.block_on(verify(&config, tenant.as_deref(), json))?;
            if !all_ok {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn verify(config: &Config, tenant: Option<&str>, json: bool) -> anyhow::Result<bool> {
    let db = Db::connect(&config.database_url)
        .await
        .context("cannot open the store")?;
    let secret = crate::server::secret_key(config)?;
    let (chain, _) = chain_config(config, &secret)?;
    // An upgrade's first start chains the older rows; do it here too if no node has started.
    audit_chain::backfill(&db).await?;
    let tenants = match tenant {
        Some(slug) => {
            let known = audit_chain::tenants(&db).await?;
            if !known.iter().any(|t| t == slug) {
                bail!("no tenant {slug:?} in this store");
            }
            vec![slug.to_owned()]
        }
        None => audit_chain::tenants(&db).await?,
    };
    let mut all_ok = true;
    for slug in &tenants {
        let started = std::time::Instant::now();
        let report = audit_chain::verify(&db, slug, &chain.trusted).await?;
        all_ok &= report.ok;
        if json {
            // The same document as GET .../audit/verify (an entry is named by its event key).
            let document = crate::routes::audit::ChainVerification::from(report);
            out!("{}", serde_json::to_string(&document)?);
        } else {
            print_report(&report, started.elapsed());
        }
    }
    if !json {
        eprintln!(
            "{} tenant(s) checked, {}",
            tenants.len(),
            if all_ok {
                "all intact"
            } else {
                "NOT all intact"
            }
        );
    }
    Ok(all_ok)
}

fn print_report(report: &VerifyReport, elapsed: Duration) {
    let checkpoint = report
        .last_checkpoint_position
        .map(|p| format!("last checkpoint at {p}"))
        .unwrap_or_else(|| "no checkpoint yet".to_owned());
    match &report.problem {
        None => out!(
            "ok {}: {} entries, {} checkpoints verified ({checkpoint}), head {} at {} ({:.0?})",
            report.tenant,
            report.entries_checked,
            report.checkpoints_checked,
            &report.head_hash[..16],
            report.head_position,
            elapsed
        ),
        Some(problem) => {
            let kind = serde_json::to_value(problem.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out!(
                "FAILED {}: {kind} at position {} (entry {}): {}",
                report.tenant,
                problem
                    .position
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                problem
                    .event_key
                    .as_deref()
                    .unwrap_or("-"),
                problem.detail
            )
        }
    }
}
