//! Admin API authentication: `Authorization: Bearer <token>`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use gatehouse_core::ids::Actor;

use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated admin credential.
pub struct Admin {
    /// Credential id.
    pub credential_id: String,
}

impl Admin {
    /// The actor recorded on events this admin causes.
    pub fn actor(&self) -> Actor {
        Actor::admin(&self.credential_id)
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Admin, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
            })
            .filter(|t| !t.is_empty() && t.len() <= 256);
        Box::pin(async move {
            let (Some(state), Some(token)) = (state, token) else {
                return Err(ApiError::Unauthorized);
            };
            let credential = state.gatehouse.credentials().authenticate(&token).await?;
            match credential {
                Some(credential) => Ok(Admin {
                    credential_id: credential.id,
                }),
                None => {
                    tracing::warn!("admin request with an unknown token");
                    Err(ApiError::Unauthorized)
                }
            }
        })
    }
}
