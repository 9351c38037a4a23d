//! Bodies of `GET .../audit/summary`: counts per hour or day for a dashboard.

use std::collections::BTreeMap;

use gatehouse_core::projections::audit_summary::{AuditSummary, SummaryCounts};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// Query of the summary (documentation only; read by `routes::audit_summary`): the range, the
/// bucket, and the filters of `GET .../audit/events` except `order`, `cursor` and `limit`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read from the raw query string, so no field is read here
pub struct SummaryQuery {
    /// Start (RFC 3339), required: entries at or after it.
    pub from: String,
    /// End (RFC 3339), required: entries before it; later than `from`.
    pub to: String,
    /// `hour` or `day`, required. Buckets start on whole UTC hours or at midnight UTC; at most
    /// 1000 buckets per request.
    pub bucket: String,
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
}

/// Counts of one bucket or of the whole range.
#[derive(Debug, Serialize, ToSchema)]
pub struct Counts {
    /// Every entry counted.
    pub total: u64,
    /// By outcome (`succeeded`, `failed`); entries without an outcome (configuration
    /// changes, sessions) count only in `total`.
    #[schema(example = json!({"failed": 3, "succeeded": 12}))]
    pub outcomes: BTreeMap<String, u64>,
    /// By reason code (`state_mismatch`...); entries without a reason count only in `total`.
    pub reasons: BTreeMap<String, u64>,
    /// By connection id; entries without a connection count only in `total`.
    pub connections: BTreeMap<String, u64>,
}

impl From<SummaryCounts> for Counts {
    fn from(counts: SummaryCounts) -> Self {
        Counts {
            total: counts.total,
            outcomes: counts.outcomes,
            reasons: counts.reasons,
            connections: counts.connections,
        }
    }
}

/// One bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    /// Start of the bucket (RFC 3339, UTC): a whole hour, or midnight UTC.
    pub start: String,
    /// End of the bucket (exclusive): one hour or one day after `start`.
    pub end: String,
    /// What it holds. The first and last bucket may reach outside `from`..`to`; only entries
    /// inside the range are counted.
    #[serde(flatten)]
    pub counts: Counts,
}

/// Counts of a tenant's audit entries per bucket, every bucket of the range present (empty
/// ones with zeros), oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    /// Tenant slug.
    pub tenant: String,
    /// Start of the range (RFC 3339, UTC).
    pub from: String,
    /// End of the range (RFC 3339, UTC), exclusive.
    pub to: String,
    /// `hour` or `day`.
    pub bucket: String,
    /// The sums over the whole range.
    pub totals: Counts,
    /// The buckets.
    pub buckets: Vec<Bucket>,
}

/// RFC 3339 (UTC, milliseconds) of a Unix-millisecond time.
pub fn rfc3339(time_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(time_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Summary {
    /// The body for `summary` of `tenant` over `[from_ms, to_ms)`.
    pub fn new(tenant: String, from_ms: i64, to_ms: i64, summary: AuditSummary) -> Self {
        let width = summary.bucket.millis();
        Summary {
            tenant,
            from: rfc3339(from_ms),
            to: rfc3339(to_ms),
            bucket: summary.bucket.as_str().to_owned(),
            totals: summary.totals.into(),
            buckets: summary
                .buckets
                .into_iter()
                .map(|b| Bucket {
                    start: rfc3339(b.start_ms),
                    end: rfc3339(b.start_ms + width),
                    counts: b.counts.into(),
                })
                .collect(),
        }
    }
}
