//! Errors of the admin and session API, answered as RFC 7807 problem documents. Each variant
//! has one status and a fixed public title; causes go to the log, never into the body.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use gatehouse_core::service::AdminError;
use gatehouse_core::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 7807 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Problem type URI (`urn:gatehouse:problem:<kind>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// JSON pointer of the request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every field at fault, when a request breaks several rules at once (a connection config
    /// checked against its plugin's schema); `field` and `detail` repeat the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
}

/// One field at fault.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    /// JSON pointer of the field.
    pub field: String,
    /// What is wrong with it.
    pub detail: String,
}

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown bearer token.
    #[error("authentication required")]
    Unauthorized,
    /// No session cookie or an ended one.
    #[error("no session")]
    NoSession,
    /// The credential's role does not allow this request.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// The resource does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// A field is invalid.
    #[error("{field}: {detail}")]
    Invalid {
        /// JSON pointer.
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// Several fields are invalid: (JSON pointer, what is wrong), at least one.
    #[error("{} invalid fields", .0.len())]
    InvalidFields(Vec<(String, String)>),
    /// The request cannot be parsed.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the route accepts.
    #[error("{0}")]
    TooLarge(String),
    /// The store is unreachable or failed.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    /// A protocol plugin could not answer (panic, time-out, malformed output, busy).
    #[error("plugin unavailable")]
    PluginUnavailable(String),
    /// Our fault.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// An invalid-field error.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }

    fn kind_title(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::Unauthorized => ("unauthorized", "Authentication required"),
            ApiError::NoSession => ("no-session", "Not signed in"),
            ApiError::Forbidden(_) => ("forbidden", "Forbidden"),
            ApiError::NotFound(_) => ("not-found", "Not found"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::Invalid { .. } | ApiError::InvalidFields(_) => {
                ("invalid-field", "Invalid request field")
            }
            ApiError::BadRequest(_) => ("bad-request", "Malformed request"),
            ApiError::TooLarge(_) => ("too-large", "Request body too large"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::PluginUnavailable(_) => ("plugin-unavailable", "Protocol plugin unavailable"),
            ApiError::Internal(_) => ("internal", "Internal error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Unauthorized => "send a valid admin token as `Authorization: Bearer ...`".into(),
            ApiError::NoSession => "no live session for this browser".into(),
            ApiError::Forbidden(why) => format!("this credential's role does not allow it: {why}"),
            ApiError::NotFound(what) => format!("no such {what}"),
            ApiError::Conflict(detail) | ApiError::BadRequest(detail) | ApiError::TooLarge(detail) => {
                detail.clone()
            }
            ApiError::Invalid { detail, .. } => detail.clone(),
            ApiError::InvalidFields(fields) => match fields.as_slice() {
                [(_, detail)] => detail.clone(),
                [(_, detail), rest @ ..] => {
                    format!("{detail} (and {} more, listed in errors)", rest.len())
                }
                [] => "invalid request".into(),
            },
            ApiError::Unavailable(_) => "the store is not reachable; retry later".into(),
            ApiError::PluginUnavailable(_) => {
                "the protocol plugin could not answer; nothing was recorded, retry later".into()
            }
            ApiError::Internal(_) => "the service failed; the request id is in the logs".into(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::NoSession => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid { .. } | ApiError::InvalidFields(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::PluginUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Unavailable(source) => tracing::error!(error = %source, "store failure"),
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::PluginUnavailable(cause) => tracing::warn!(%cause, "plugin unavailable"),
            _ => {}
        }
        let (kind, title) = self.kind_title();
        let status = self.status_code();
        let problem = Problem {
            kind: format!("urn:gatehouse:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            field: match self {
                ApiError::Invalid { field, .. } => Some(field.clone()),
                ApiError::InvalidFields(fields) => fields.first().map(|(field, _)| field.clone()),
                _ => None,
            },
            errors: match self {
                ApiError::InvalidFields(fields) => Some(
                    fields
                        .iter()
                        .map(|(field, detail)| FieldProblem {
                            field: field.clone(),
                            detail: detail.clone(),
                        })
                        .collect(),
                ),
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        if matches!(self, ApiError::Unauthorized) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        response.json(problem)
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::Invalid { field, detail } => ApiError::Invalid { field, detail },
            AdminError::Schema(fields) => ApiError::InvalidFields(fields),
            AdminError::NotFound(what) => ApiError::NotFound(what),
            AdminError::Conflict(detail) => ApiError::Conflict(detail),
            AdminError::Store(StoreError::Conflict) => ApiError::Conflict(
                "the tenant was changed concurrently by another request; retry".into(),
            ),
            AdminError::Store(store) => ApiError::Unavailable(store),
            AdminError::Internal(cause) => ApiError::Internal(cause),
            AdminError::PluginUnavailable(cause) => ApiError::PluginUnavailable(cause),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Unavailable(error)
    }
}
