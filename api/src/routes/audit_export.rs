//! Export of a tenant's audit log as NDJSON or CSV, streamed: entries are read in keyset
//! batches and each batch is written to the response body as soon as it is encoded, so an
//! export of any size takes the memory of one batch.

use std::borrow::Cow;

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use gatehouse_core::projections::audit_export::AuditExport;
use gatehouse_core::projections::AuditEntry;
use serde_json::Value;

use crate::auth::AuditReader;
use crate::dto::audit::AuditEvent;
use crate::dto::audit_export::ExportQuery;
use crate::error::{ApiError, Problem};
use crate::routes::audit::audit_filter;
use crate::state::AppState;

/// The CSV columns: the fields of an audit event (as `GET .../audit/events` lists it), nested
/// ones named with a dot (`actor.kind`), in the order of the JSON shape.
pub const CSV_COLUMNS: &[&str] = &[
    "schema",
    "id",
    "position",
    "cursor",
    "time",
    "tenant",
    "type",
    "actor.kind",
    "actor.id",
    "target.kind",
    "target.id",
    "outcome.result",
    "outcome.reason",
    "outcome.detail",
    "protocol",
    "connection_id",
    "email",
    "user_id",
    "client_ip",
    "user_agent",
    "attempt_id",
    "request_id",
];

/// The first characters that make a spreadsheet read a cell as a formula (or, for tab and
/// carriage return, that some spreadsheets strip before doing so).
const FORMULA_STARTS: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

/// Exports every audit event the filters select, in the listing's order (newest first unless
/// `order=oldest`), as NDJSON (one event per line, each exactly as `GET .../audit/events`
/// returns it) or CSV (a header row, then one row per event, nested fields as `actor.kind`
/// style columns; an empty cell is a missing value). The body is streamed as it is read from
/// the database, in constant memory. Takes every filter of the listing, and `cursor` to start
/// after an entry; not `limit`.
///
/// CSV cells that a spreadsheet would take for a formula, those starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return, are written with a leading `'` (OWASP's advice against
/// CSV injection); NDJSON is never altered. A failure after the first bytes were sent ends the
/// body without its final chunk, so the download reports an error instead of looking complete.
#[utoipa::path(tag = "audit", security(("bearer" = [])),
    params(("slug" = String, Path, description = "Tenant slug"), ExportQuery),
    responses(
        (status = 200, description = "The events, streamed", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"))),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/tenants/{slug}/audit/export")]
pub async fn export_events(
    state: web::Data<AppState>,
    reader: AuditReader,
    slug: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    reader.record(&state).await?;
    state.gatehouse.tenant(&slug).await?;
    let (filter, extras) = audit_filter(&slug, request.query_string(), &["format", "limit"])?;
    if extras.iter().any(|(k, _)| k == "limit") {
        return Err(ApiError::invalid(
            "/limit",
            "an export has no page size; narrow it with from and to",
        ));
    }
    let format = match extras
        .iter()
        .find(|(k, _)| k == "format")
    {
        None => return Err(ApiError::invalid("/format", "is required: ndjson or csv")),
        Some((_, value)) if value == "ndjson" => Format::Ndjson,
        Some((_, value)) if value == "csv" => Format::Csv,
        Some(_) => return Err(ApiError::invalid("/format", "must be ndjson or csv")),
    };

    // The first batch is read before answering, so an unreachable store is still a problem
    // document rather than a broken download.
    let mut export = AuditExport::new(state.gatehouse.db().clone(), filter);
    let first = export.next_batch().await?;
    let mut encoder = Encoder::new(format);
    let head = encoder.header()?;
    let rest = stream::try_unfold(
        (export, Some(first), encoder),
        |(mut export, pending, mut encoder)| async move {
            let batch = match pending {
                Some(batch) => batch,
                None => export.next_batch().await.map_err(|e| {
                    tracing::error!(error = %e, "audit export failed after it started");
                    ApiError::Unavailable(e)
                })?,
            };
            if batch.is_empty() {
                return Ok(None);
            }
            let bytes = encoder.encode(batch)?;
            Ok(Some((bytes, (export, None, encoder))))
        },
    );
    let body = stream::once(async move { Ok::<_, ApiError>(head) })
        .chain(rest)
        .try_filter(|bytes| std::future::ready(!bytes.is_empty()));

    let (content_type, extension) = match format {
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Csv => ("text/csv; charset=utf-8; header=present", "csv"),
    };
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(format!(
            "audit-{slug}.{extension}"
        ))],
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header(disposition)
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body))
}

/// Turns batches of entries into body bytes.
struct Encoder {
    format: Format,
}

impl Encoder {
    fn new(format: Format) -> Self {
        Encoder { format }
    }

    /// The bytes before the first entry: the CSV header row (nothing for NDJSON).
    fn header(&mut self) -> Result<Bytes, ApiError> {
        match self.format {
            Format::Ndjson => Ok(Bytes::new()),
            Format::Csv => {
                let mut csv = csv::Writer::from_writer(Vec::new());
                csv.write_record(CSV_COLUMNS)
                    .map_err(csv_error)?;
                finish(csv)
            }
        }
    }

    fn encode(&mut self, batch: Vec<AuditEntry>) -> Result<Bytes, ApiError> {
        match self.format {
            Format::Ndjson => {
                let mut lines = Vec::new();
                for entry in batch {
                    serde_json::to_writer(&mut lines, &AuditEvent::from(entry))
                        .map_err(|e| ApiError::Internal(format!("audit export: {e}")))?;
                    lines.push(b'\n');
                }
                Ok(Bytes::from(lines))
            }
            Format::Csv => {
                let mut csv = csv::Writer::from_writer(Vec::new());
                for entry in batch {
                    let event = AuditEvent::from(entry);
                    csv.write_record(
                        csv_record(&event)?
                            .iter()
                            .map(|c| c.as_bytes()),
                    )
                    .map_err(csv_error)?;
                }
                finish(csv)
            }
        }
    }
}

/// The bytes a CSV writer produced.
fn finish(csv: csv::Writer<Vec<u8>>) -> Result<Bytes, ApiError> {
    csv.into_inner()
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("audit export: {e}")))
}

fn csv_error(error: csv::Error) -> ApiError {
    ApiError::Internal(format!("audit export: {error}"))
}

/// The cells of one event, in [`CSV_COLUMNS`] order: text as is, numbers in JSON notation, a
/// missing value empty, each guarded against formula injection. Read field by field (a
/// per-row JSON tree costs more than the database read); the tests check the cells against the
/// event's JSON form, column by column.
fn csv_record(event: &AuditEvent) -> Result<[Cow<'_, str>; 22], ApiError> {
    fn text(value: &str) -> Cow<'_, str> {
        spreadsheet_safe(Cow::Borrowed(value))
    }
    fn optional(value: &Option<String>) -> Cow<'_, str> {
        value
            .as_deref()
            .map_or(Cow::Borrowed(""), text)
    }
    fn name<T: serde::Serialize>(kind: &T) -> Result<Cow<'static, str>, ApiError> {
        match serde_json::to_value(kind) {
            Ok(Value::String(name)) => Ok(spreadsheet_safe(Cow::Owned(name))),
            _ => Err(ApiError::Internal(
                "audit export: a kind is not a name".into(),
            )),
        }
    }
    Ok([
        text(event.schema),
        text(&event.id),
        spreadsheet_safe(Cow::Owned(event.position.to_string())),
        text(&event.cursor),
        text(&event.time),
        text(&event.tenant),
        text(&event.kind),
        name(&event.actor.kind)?,
        optional(&event.actor.id),
        name(&event.target.kind)?,
        optional(&event.target.id),
        optional(&event.outcome.result),
        optional(&event.outcome.reason),
        optional(&event.outcome.detail),
        optional(&event.protocol),
        optional(&event.connection_id),
        optional(&event.email),
        optional(&event.user_id),
        optional(&event.client_ip),
        optional(&event.user_agent),
        optional(&event.attempt_id),
        optional(&event.request_id),
    ])
}

/// `text` with a leading `'` when a spreadsheet would read it as a formula.
pub fn spreadsheet_safe(text: Cow<'_, str>) -> Cow<'_, str> {
    if text.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{text}"))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> AuditEntry {
        AuditEntry {
            id: 1,
            position: 7,
            event_key: "login_attempt:a:2".into(),
            time_ms: 0,
            tenant: "acme".into(),
            kind: "login.failed".into(),
            attempt_id: Some("a".into()),
            connection_id: Some("okta".into()),
            protocol: Some("oidc".into()),
            outcome: Some("failed".into()),
            reason: Some("state_mismatch".into()),
            detail: Some("=HYPERLINK(\"http://x\")".into()),
            email: Some("-2+3@example.com".into()),
            user_id: None,
            actor: Some("attempt:a".into()),
            client_ip: Some("192.0.2.1".into()),
            user_agent: Some("@evil\tagent".into()),
            request_id: None,
        }
    }

    /// Every leaf of the JSON shape is a column, in order, and nothing else.
    #[test]
    fn the_columns_are_the_leaves_of_the_event_shape() {
        fn leaves(value: &Value, prefix: &str, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (key, child) in map {
                        let name = if prefix.is_empty() {
                            key.clone()
                        } else {
                            format!("{prefix}.{key}")
                        };
                        leaves(child, &name, out);
                    }
                }
                _ => out.push(prefix.to_owned()),
            }
        }
        let value = serde_json::to_value(AuditEvent::from(entry())).unwrap();
        let mut found = Vec::new();
        leaves(&value, "", &mut found);
        let mut expected: Vec<String> = CSV_COLUMNS
            .iter()
            .map(|c| c.to_string())
            .collect();
        found.sort();
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn formula_starts_get_a_quote() {
        for (text, shown) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("a=1", "a=1"),
            ("", ""),
            ("'quoted", "'quoted"),
            ("é=1", "é=1"),
        ] {
            assert_eq!(spreadsheet_safe(Cow::Borrowed(text)), shown, "{text:?}");
        }
    }

    /// Each cell is the event's JSON value under the column's name (nested names dotted).
    #[test]
    fn each_cell_is_its_column_of_the_json_form() {
        let mut sparse = entry();
        sparse.email = None;
        sparse.actor = Some("admin:root".into());
        for entry in [entry(), sparse] {
            let event = AuditEvent::from(entry);
            let value = serde_json::to_value(&event).unwrap();
            let cells = csv_record(&event).unwrap();
            for (column, cell) in CSV_COLUMNS.iter().zip(cells.iter()) {
                let pointer = format!("/{}", column.replace('.', "/"));
                let expected = match value.pointer(&pointer) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                };
                assert_eq!(
                    cell.as_ref(),
                    spreadsheet_safe(Cow::Owned(expected)),
                    "{column}"
                );
            }
        }
    }

    #[test]
    fn csv_rows_parse_back_with_every_cell() {
        let mut encoder = Encoder::new(Format::Csv);
        let mut bytes = encoder.header().unwrap().to_vec();
        bytes.extend_from_slice(
            &encoder
                .encode(vec![entry(), entry()])
                .unwrap(),
        );
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, CSV_COLUMNS);
        let rows: Vec<csv::StringRecord> = reader
            .records()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 2);
        let cell = |name: &str| {
            let index = CSV_COLUMNS
                .iter()
                .position(|c| *c == name)
                .unwrap();
            rows[0][index].to_owned()
        };
        assert_eq!(cell("outcome.detail"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(cell("email"), "'-2+3@example.com");
        assert_eq!(cell("user_agent"), "'@evil\tagent");
        assert_eq!(cell("position"), "7");
        assert_eq!(cell("user_id"), "");
        assert_eq!(cell("actor.kind"), "person");
    }

    #[test]
    fn ndjson_lines_are_the_listing_shape() {
        let mut encoder = Encoder::new(Format::Ndjson);
        assert!(encoder.header().unwrap().is_empty());
        let bytes = encoder.encode(vec![entry()]).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.ends_with('\n') && text.matches('\n').count() == 1);
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(
            line,
            serde_json::to_value(AuditEvent::from(entry())).unwrap()
        );
    }
}
