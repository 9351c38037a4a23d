//! Counts of a tenant's audit entries per hour or per day, by outcome, reason and connection,
//! for a dashboard. Grouped by the database (one `GROUP BY` over the `audit_log` rows the
//! filter selects, on the `(tenant, time)` index); only the groups come back.
//!
//! Buckets are aligned to UTC: an hour bucket starts at a whole hour, a day bucket at midnight
//! UTC. Times are Unix milliseconds, in which every UTC day is exactly 86,400,000 ms long
//! (Unix time has no leap seconds), so the boundaries are plain integer arithmetic that both
//! stores compute alike.

use std::collections::BTreeMap;

use sqlx::Row;

use super::audit::{bind_params, AuditFilter};
use crate::on_db;
use crate::store::{Db, StoreError};

/// Most buckets one summary may have (about 41 days by the hour, 2.7 years by the day).
pub const MAX_BUCKETS: i64 = 1000;

/// The width of one bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryBucket {
    /// One UTC hour.
    Hour,
    /// One UTC day, from midnight to midnight.
    Day,
}

impl SummaryBucket {
    /// The wire name (`hour`, `day`).
    pub fn as_str(self) -> &'static str {
        match self {
            SummaryBucket::Hour => "hour",
            SummaryBucket::Day => "day",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "hour" => Some(SummaryBucket::Hour),
            "day" => Some(SummaryBucket::Day),
            _ => None,
        }
    }

    /// Length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            SummaryBucket::Hour => 3_600_000,
            SummaryBucket::Day => 86_400_000,
        }
    }

    /// Start of the bucket holding `time_ms` (floor, also before 1970).
    pub fn start_of(self, time_ms: i64) -> i64 {
        time_ms - time_ms.rem_euclid(self.millis())
    }

    /// How many buckets cover `[from_ms, to_ms)`: from the one holding `from_ms` to the one
    /// holding the last millisecond before `to_ms`.
    pub fn count(self, from_ms: i64, to_ms: i64) -> i64 {
        if to_ms <= from_ms {
            return 0;
        }
        (self.start_of(to_ms - 1) - self.start_of(from_ms)) / self.millis() + 1
    }
}

/// Why a summary cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// The filter has no time range, or an empty one.
    #[error("a summary needs a time range with from before to")]
    NoRange,
    /// The range spans more than [`MAX_BUCKETS`] buckets.
    #[error("the range spans {buckets} buckets of one {bucket}; at most {MAX_BUCKETS} are served")]
    TooManyBuckets {
        /// Buckets the range would have.
        buckets: i64,
        /// Their width.
        bucket: &'static str,
    },
    /// The filter pages (a cursor), which a summary does not.
    #[error("a summary counts a whole range; a cursor does not apply")]
    Cursor,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counts of one bucket, or of the whole range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryCounts {
    /// Every entry counted.
    pub total: u64,
    /// By outcome (`succeeded`, `failed`); entries without an outcome are only in `total`.
    pub outcomes: BTreeMap<String, u64>,
    /// By reason code; entries without a reason are only in `total`.
    pub reasons: BTreeMap<String, u64>,
    /// By connection id; entries without a connection are only in `total`.
    pub connections: BTreeMap<String, u64>,
}

impl SummaryCounts {
    fn add(
        &mut self,
        outcome: Option<String>,
        reason: Option<String>,
        connection: Option<String>,
        n: u64,
    ) {
        self.total += n;
        for (map, key) in [
            (&mut self.outcomes, outcome),
            (&mut self.reasons, reason),
            (&mut self.connections, connection),
        ] {
            if let Some(key) = key {
                *map.entry(key).or_default() += n;
            }
        }
    }
}

/// One bucket of a summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketCounts {
    /// Start of the bucket (Unix ms, UTC-aligned); it ends one bucket width later.
    pub start_ms: i64,
    /// What the bucket holds (only entries inside the filter's range).
    pub counts: SummaryCounts,
}

/// Counts per bucket over a range, every bucket present (empty ones with zeros), oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSummary {
    /// Bucket width.
    pub bucket: SummaryBucket,
    /// The buckets covering the filter's range.
    pub buckets: Vec<BucketCounts>,
    /// The sums over the whole range.
    pub totals: SummaryCounts,
}

/// Counts the entries `filter` selects per `bucket`, by outcome, reason and connection. The
/// filter must have a time range of at most [`MAX_BUCKETS`] buckets and no cursor; its order
/// and limit are ignored.
pub async fn summarize(
    db: &Db,
    filter: &AuditFilter,
    bucket: SummaryBucket,
) -> Result<AuditSummary, SummaryError> {
    let (Some(from_ms), Some(to_ms)) = (filter.from_ms, filter.to_ms) else {
        return Err(SummaryError::NoRange);
    };
    if to_ms <= from_ms {
        return Err(SummaryError::NoRange);
    }
    let buckets = bucket.count(from_ms, to_ms);
    if buckets > MAX_BUCKETS {
        return Err(SummaryError::TooManyBuckets {
            buckets,
            bucket: bucket.as_str(),
        });
    }
    if filter.cursor.is_some() {
        return Err(SummaryError::Cursor);
    }

    let width = bucket.millis();
    let (condition, params) = filter.where_clause(1);
    // The width is one of two constants, never client text. `%` keeps the sign of `time` on
    // both stores, hence the double modulo for the floor.
    let sql = format!(
        "SELECT time - (((time % {width}) + {width}) % {width}) AS bucket, outcome, reason, \
             connection_id, COUNT(*) AS n FROM audit_log{condition} GROUP BY 1, 2, 3, 4"
    );
    let groups: Vec<(i64, Option<String>, Option<String>, Option<String>, i64)> =
        on_db!(db, |pool| {
            let rows = bind_params(sqlx::query(&sql), &params)
                .fetch_all(pool)
                .await
                .map_err(StoreError::from)?;
            let mut groups = Vec::with_capacity(rows.len());
            for row in rows {
                groups.push((
                    row.try_get("bucket")
                        .map_err(StoreError::from)?,
                    row.try_get("outcome")
                        .map_err(StoreError::from)?,
                    row.try_get("reason")
                        .map_err(StoreError::from)?,
                    row.try_get("connection_id")
                        .map_err(StoreError::from)?,
                    row.try_get("n")
                        .map_err(StoreError::from)?,
                ));
            }
            groups
        });

    let first = bucket.start_of(from_ms);
    let mut summary = AuditSummary {
        bucket,
        buckets: (0..buckets)
            .map(|i| BucketCounts {
                start_ms: first + i * width,
                counts: SummaryCounts::default(),
            })
            .collect(),
        totals: SummaryCounts::default(),
    };
    for (start, outcome, reason, connection, n) in groups {
        let index = (start - first) / width;
        let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| summary.buckets.get_mut(i))
        else {
            return Err(StoreError::Corrupt(format!(
                "a summary group at {start} lies outside the range asked for"
            ))
            .into());
        };
        let n = u64::try_from(n).unwrap_or(0);
        slot.counts
            .add(outcome.clone(), reason.clone(), connection.clone(), n);
        summary
            .totals
            .add(outcome, reason, connection, n);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    fn buckets_start_on_utc_boundaries() {
        // 2026-12-04T23:59:59.999Z and the next millisecond, midnight.
        let before_midnight = 1_796_428_799_999;
        let midnight = before_midnight + 1;
        assert_eq!(midnight % DAY, 0);
        assert_eq!(SummaryBucket::Day.start_of(before_midnight), midnight - DAY);
        assert_eq!(SummaryBucket::Day.start_of(midnight), midnight);
        assert_eq!(
            SummaryBucket::Hour.start_of(before_midnight),
            midnight - HOUR
        );
        assert_eq!(SummaryBucket::Hour.start_of(-1), -HOUR);
    }

    #[test]
    fn counts_cover_partial_buckets_at_both_ends() {
        let day = SummaryBucket::Day;
        assert_eq!(day.count(0, DAY), 1);
        assert_eq!(day.count(0, DAY + 1), 2);
        assert_eq!(day.count(DAY - 1, DAY + 1), 2);
        assert_eq!(day.count(5, 6), 1);
        assert_eq!(day.count(6, 6), 0);
        assert_eq!(SummaryBucket::Hour.count(0, 1000 * HOUR), 1000);
        assert_eq!(SummaryBucket::Hour.count(1, 1000 * HOUR + 1), 1001);
    }

    #[test]
    fn bucket_names_round_trip() {
        for bucket in [SummaryBucket::Hour, SummaryBucket::Day] {
            assert_eq!(SummaryBucket::parse(bucket.as_str()), Some(bucket));
        }
        assert_eq!(SummaryBucket::parse("week"), None);
        assert_eq!(SummaryBucket::parse("HOUR"), None);
    }

    #[test]
    fn entries_without_a_value_count_only_in_the_total() {
        let mut counts = SummaryCounts::default();
        counts.add(
            Some("failed".into()),
            Some("state_mismatch".into()),
            Some("okta".into()),
            2,
        );
        counts.add(None, None, None, 3);
        assert_eq!(counts.total, 5);
        assert_eq!(counts.outcomes, BTreeMap::from([("failed".to_owned(), 2)]));
        assert_eq!(counts.reasons.values().sum::<u64>(), 2);
        assert_eq!(counts.connections.len(), 1);
    }
}
