//! Query of `GET .../audit/export`.

use utoipa::IntoParams;

/// Export format and filters (documentation only; read from the raw query string by
/// `routes::audit_export`). The filters are those of `GET .../audit/events`, with the same
/// rules; `limit` is refused.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read field by field from the query string, so no field is read here
pub struct ExportQuery {
    /// `ndjson` (one JSON event per line) or `csv` (a header row, then one row per event).
    pub format: String,
    /// Only events at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Only events before this time (RFC 3339); must be later than `from`.
    pub to: Option<String>,
    /// Event type, exact (`login.failed`) or a prefix ending in `.` (`login.`).
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// `succeeded` or `failed`.
    pub outcome: Option<String>,
    /// Reason code, such as `state_mismatch`.
    pub reason: Option<String>,
    /// Email, exact match, case-insensitive.
    pub email: Option<String>,
    /// Gatehouse user id (UUID).
    pub user: Option<String>,
    /// Connection id.
    pub connection: Option<String>,
    /// Protocol of the connection.
    pub protocol: Option<String>,
    /// Client IP address.
    pub client_ip: Option<String>,
    /// `newest` (default) or `oldest` first.
    pub order: Option<String>,
    /// Start after this entry: a `cursor` or `next_cursor` of the listing.
    pub cursor: Option<String>,
}
