use gatehouse_core::service::SessionInfo;
use serde::Serialize;
use utoipa::ToSchema;

/// The signed-in user of this browser.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// Gatehouse user id.
    pub user_id: String,
    /// Tenant slug.
    pub tenant: String,
    /// Connection used to sign in.
    pub connection_id: String,
    /// Email from the identity provider.
    pub email: String,
    /// Name from the identity provider.
    pub name: Option<String>,
    /// When the session ends (RFC 3339).
    pub expires_at: String,
}

impl From<SessionInfo> for Session {
    fn from(info: SessionInfo) -> Self {
        Session {
            user_id: info.user_id.to_string(),
            tenant: info.tenant,
            connection_id: info.connection_id,
            email: info.email,
            name: info.name,
            expires_at: info.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}
