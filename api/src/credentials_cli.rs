//! `gatehouse credentials create|list|revoke`: credential administration directly on the
//! configured store, as the system. The events it writes are applied to the read models by the
//! serving nodes' projectors (at their next poll), or by the next start.

use std::path::Path;

use anyhow::Context;
use gatehouse_core::projections::Projections;
use gatehouse_core::service::{
    CredentialAdmin, CredentialAdminError, CredentialView, Issuer, NewCredential,
};
use gatehouse_core::store::{Credentials, Db, Executor};

use crate::config::{Config, CredentialsCommand};

/// Runs a `credentials` subcommand.
pub async fn run(command: CredentialsCommand, config_file: Option<&Path>) -> anyhow::Result<()> {
    match command {
        CredentialsCommand::Create {
            role,
            tenant,
            label,
            expires_at,
            options,
        } => {
            let config = Config::resolve(options, config_file)?;
            let store = Store::open(&config).await?;
            let input = NewCredential {
                role,
                tenant,
                label,
                expires_at,
            };
            let issued = store
                .admin()
                .create(&Issuer::System, input, None)
                .await
                .map_err(refusal)?;
            out!("{}", issued.token.as_str());
            eprintln!(
                "created credential {} ({}); the token above is shown once: only its hash is kept",
                issued.credential.id,
                scope(&issued.credential)
            );
            Ok(())
        }
        CredentialsCommand::List {
            tenant,
            json,
            options,
        } => {
            let config = Config::resolve(options, config_file)?;
            let store = Store::open(&config).await?;
            let list = store
                .admin()
                .list(&Issuer::System, tenant.as_deref())
                .await
                .map_err(refusal)?;
            for credential in &list {
                if json {
                    let line = serde_json::json!({
                        "id": credential.id,
                        "role": credential.role.as_str(),
                        "tenant": credential.tenant,
                        "label": credential.label,
                        "status": status(credential),
                        "created_by": credential.created_by,
                        "expires_at": credential.expires_at.map(|t| t.to_rfc3339()),
                        "revoked_at": credential.revoked_at.map(|t| t.to_rfc3339()),
                    });
                    out!("{line}");
                } else {
                    out!(
                        "{}\t{}\t{}\t{}",
                        credential.id,
                        scope(credential),
                        status(credential),
                        credential.label
                    );
                }
            }
            if !json {
                eprintln!("{} credential(s)", list.len());
            }
            Ok(())
        }
        CredentialsCommand::Revoke { id, options } => {
            let config = Config::resolve(options, config_file)?;
            let store = Store::open(&config).await?;
            let view = store
                .admin()
                .revoke(&Issuer::System, &id, None)
                .await
                .map_err(refusal)?;
            out!("revoked {} ({})", view.id, scope(&view));
            Ok(())
        }
    }
}

/// The store and an executor on it (with read models fed by the serving nodes).
struct Store {
    executor: Executor<Projections>,
    table: Credentials,
}

impl Store {
    async fn open(config: &Config) -> anyhow::Result<Store> {
        let db = Db::connect(&config.database_url)
            .await
            .context("cannot open the store")?;
        Ok(Store {
            executor: Executor::new(db.clone(), Projections::new(db.clone())),
            table: Credentials::new(db),
        })
    }

    fn admin(&self) -> CredentialAdmin<'_> {
        CredentialAdmin::on_store(&self.executor, &self.table)
    }
}

fn refusal(error: CredentialAdminError) -> anyhow::Error {
    match error {
        CredentialAdminError::Invalid { field, detail } => {
            let option = field
                .trim_start_matches('/')
                .replace('_', "-");
            anyhow::anyhow!("--{option}: {detail}")
        }
        CredentialAdminError::NotFound(what) => anyhow::anyhow!("no such {what}"),
        CredentialAdminError::Forbidden(why) => anyhow::anyhow!("{why}"),
        CredentialAdminError::Store(store) => anyhow::Error::new(store).context("store failure"),
    }
}

fn scope(credential: &CredentialView) -> String {
    match &credential.tenant {
        Some(tenant) => format!("{} of {tenant}", credential.role.as_str()),
        None => credential.role.as_str().to_owned(),
    }
}

fn status(credential: &CredentialView) -> &'static str {
    if credential.revoked_at.is_some() {
        "revoked"
    } else if credential
        .expires_at
        .is_some_and(|at| at <= chrono::Utc::now())
    {
        "expired"
    } else {
        "active"
    }
}
