//! What an identity provider sent for a refused attempt, for the tenant's administrators.

use super::{AdminError, Gatehouse};
use crate::crypto::SealedSecret;
use crate::ids::{AttemptId, TenantSlug};

/// Largest diagnostics text kept for one attempt.
const MAX_DIAGNOSTICS: usize = 64 * 1024;

/// The decoded, redacted answer of a refused attempt.
#[derive(Clone, Debug)]
pub struct AttemptDiagnostics {
    /// The attempt.
    pub attempt_id: String,
    /// The redacted view the plugin produced.
    pub diagnostics: String,
    /// When it will be deleted (Unix ms).
    pub expires_at_ms: i64,
}

fn context(tenant: &str, attempt_id: &str) -> String {
    format!("attempt-diagnostics/{tenant}/{attempt_id}")
}

impl Gatehouse {
    /// Keeps a plugin's diagnostics for a refused attempt, sealed. Failures are logged, never
    /// raised: diagnostics must not change the outcome of a login.
    pub(super) async fn keep_diagnostics(&self, slug: &TenantSlug, attempt_id: AttemptId, text: &str) {
        let text: String = text.chars().take(MAX_DIAGNOSTICS).collect();
        let id = attempt_id.to_string();
        let sealed = self.key.seal(&text, &context(slug.as_str(), &id));
        let Ok(payload) = serde_json::to_string(&sealed) else {
            return;
        };
        if let Err(error) = self.diagnostics.put(&id, slug.as_str(), &payload).await {
            tracing::warn!(%error, attempt = %id, "attempt diagnostics not kept");
        }
    }

    /// The diagnostics of an attempt of `slug`, while they are kept.
    pub async fn attempt_diagnostics(&self, slug: &str, attempt_id: &str) -> Result<AttemptDiagnostics, AdminError> {
        self.load_tenant(slug).await?;
        let Some(attempt) = AttemptId::parse(attempt_id) else {
            return Err(AdminError::NotFound("attempt diagnostics"));
        };
        let id = attempt.to_string();
        let stored = self
            .diagnostics
            .get(slug, &id)
            .await?
            .ok_or(AdminError::NotFound("attempt diagnostics"))?;
        let sealed: SealedSecret = serde_json::from_str(&stored.payload)
            .map_err(|_| AdminError::Internal("stored diagnostics are corrupt".into()))?;
        let text = self
            .key
            .open(&sealed, &context(slug, &id))
            .map_err(|_| AdminError::Internal("stored diagnostics cannot be opened".into()))?;
        Ok(AttemptDiagnostics {
            attempt_id: id,
            diagnostics: text.to_string(),
            expires_at_ms: stored.expires_at,
        })
    }
}
