//! Bodies of the configuration history routes: a tenant's SSO configuration at a moment, and
//! the changes between two moments.

use gatehouse_core::service::{ChangeAuthor, ChangeKind, ConfigChange, ConfigDiff, ConfigSnapshot};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// Query of `GET .../config` (documentation only; read by `routes::config_history`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read from the raw query string, so no field is read here
pub struct ConfigAtQuery {
    /// The moment (RFC 3339); now when omitted. Must not lie in the future nor before the
    /// tenant was created.
    pub at: Option<String>,
}

/// Query of `GET .../config/diff` (documentation only; read by `routes::config_history`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read from the raw query string, so no field is read here
pub struct ConfigDiffQuery {
    /// Start (RFC 3339): changes recorded after it count. May lie before the tenant existed:
    /// the creation then shows as added fields.
    pub from: String,
    /// End (RFC 3339): changes recorded at or before it count; now when omitted. Not before
    /// `from`, not in the future.
    pub to: Option<String>,
}

fn rfc3339(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The event that made a change: who and when.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigEvent {
    /// Sequence number of the event in the tenant's event stream (1 is the creation).
    pub sequence: u64,
    /// When it was recorded (RFC 3339, UTC).
    pub time: String,
    /// Who: `admin:<credential id>` or `system`.
    #[schema(example = "admin:config")]
    pub actor: String,
    /// The admin credential id, when an admin credential acted.
    pub credential_id: Option<String>,
    /// Event type, such as `tenant.connection.configured`.
    #[schema(example = "tenant.connection.configured")]
    pub event_type: String,
    /// Request id of the API request, when known.
    pub request_id: Option<String>,
}

impl From<ChangeAuthor> for ConfigEvent {
    fn from(author: ChangeAuthor) -> Self {
        ConfigEvent {
            sequence: author.sequence as u64,
            time: rfc3339(author.time),
            credential_id: author
                .credential_id()
                .map(str::to_owned),
            actor: author.actor,
            event_type: author.event_type,
            request_id: author.request_id,
        }
    }
}

/// A tenant's SSO configuration as it was at one moment.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigAt {
    /// Tenant slug.
    pub tenant: String,
    /// The moment asked for (RFC 3339, UTC).
    pub at: String,
    /// The last event in force at that moment.
    pub last_change: ConfigEvent,
    /// `slug`, `display_name`, `app_url`, `return_origins`, `connections` (an object by
    /// connection id, each with `protocol`, `label` and `config`, where every secret field is
    /// replaced by `<field>_set: true|false` as in `GET .../connections/{id}`) and
    /// `login_policy`.
    #[schema(value_type = Object)]
    pub config: Value,
}

impl From<ConfigSnapshot> for ConfigAt {
    fn from(snapshot: ConfigSnapshot) -> Self {
        ConfigAt {
            tenant: snapshot.tenant,
            at: rfc3339(snapshot.at),
            last_change: snapshot.last_change.into(),
            config: snapshot.config,
        }
    }
}

/// One field changed by one event.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigFieldChange {
    /// The event that changed it.
    #[serde(flatten)]
    pub event: ConfigEvent,
    /// JSON pointer (RFC 6901) of the field in the `config` document of `GET .../config`,
    /// such as `/connections/okta/config/client_id`. Objects are compared member by member,
    /// arrays as a whole.
    #[schema(example = "/login_policy/guests_allowed")]
    pub path: String,
    /// `added`, `changed` or `removed`.
    #[schema(example = "changed")]
    pub change: String,
    /// Value before (absent when added, and for every secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub old: Option<Value>,
    /// Value after (absent when removed, and for every secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub new: Option<Value>,
    /// True for a secret field (a client secret, a private key): its values are never shown,
    /// only that it was added, changed or removed.
    pub secret: bool,
}

impl From<ConfigChange> for ConfigFieldChange {
    fn from(change: ConfigChange) -> Self {
        ConfigFieldChange {
            event: change.author.into(),
            path: change.path,
            change: match change.kind {
                ChangeKind::Added => "added",
                ChangeKind::Changed => "changed",
                ChangeKind::Removed => "removed",
            }
            .to_owned(),
            old: change.old,
            new: change.new,
            secret: change.secret,
        }
    }
}

/// What changed in a tenant's SSO configuration between two moments, and who changed it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigDiffBody {
    /// Tenant slug.
    pub tenant: String,
    /// Start (RFC 3339, UTC).
    pub from: String,
    /// End (RFC 3339, UTC).
    pub to: String,
    /// Sequence of the last event in force at `from` (0: the tenant did not exist yet).
    pub from_sequence: u64,
    /// Sequence of the last event in force at `to`.
    pub to_sequence: u64,
    /// Every field change, in the order made (by event, then by path). A field changed twice
    /// appears twice; one changed and changed back still shows both changes.
    pub changes: Vec<ConfigFieldChange>,
}

impl From<ConfigDiff> for ConfigDiffBody {
    fn from(diff: ConfigDiff) -> Self {
        ConfigDiffBody {
            tenant: diff.tenant,
            from: rfc3339(diff.from),
            to: rfc3339(diff.to),
            from_sequence: diff.from_sequence as u64,
            to_sequence: diff.to_sequence as u64,
            changes: diff
                .changes
                .into_iter()
                .map(ConfigFieldChange::from)
                .collect(),
        }
    }
}
