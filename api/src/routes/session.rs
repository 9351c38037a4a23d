//! The session of the current browser.

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::dto::session::Session;
use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "gatehouse_session";

/// The signed-in user for the `gatehouse_session` cookie.
#[utoipa::path(tag = "session",
    responses(
        (status = 200, body = Session),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
#[get("/api/v1/session")]
pub async fn get_session(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Err(ApiError::NoSession);
    };
    let session = state.gatehouse.session(cookie.value()).await?;
    match session {
        Some(info) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(Session::from(info))),
        None => Err(ApiError::NoSession),
    }
}
