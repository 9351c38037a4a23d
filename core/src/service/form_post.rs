//! Answers that identity providers post (SAML HTTP-POST binding), and the metadata those
//! protocols publish.
//!
//! A cross-site form POST carries no SameSite=Lax cookie, so the browser binding of the login
//! cannot be checked at the ACS itself. The posted fields are sealed and kept for a minute
//! under a one-time handle; the ACS answers with a redirect to a same-site GET, which does
//! carry the binding cookie, and the login is finished there.

use gatehouse_plugin_sdk::{CallbackBinding, Method, MetadataRequest, MetadataResponse};

use super::login::{reasons, ClientInfo, LoginFailure, LoginSuccess, RefusalClass};
use super::{AdminError, Gatehouse};
use crate::ids::{ConnectionId, TenantSlug};
use crate::plugins::CallContext;

/// Fields an ACS keeps; everything else an IdP posts is dropped.
const KEPT_FIELDS: &[&str] = &["SAMLResponse", "RelayState"];

impl Gatehouse {
    /// Keeps a posted answer for the follow-up GET and returns its one-time handle.
    pub async fn accept_form_post(
        &self,
        slug: &TenantSlug,
        connection_id: &ConnectionId,
        params: Vec<(String, String)>,
    ) -> Result<String, LoginFailure> {
        // Only a connection that receives posted answers keeps anything: nothing is stored for
        // unknown connections or other protocols.
        let tenant = self.tenant_for_login(slug).await?;
        let posts = tenant
            .connections
            .get(connection_id)
            .is_some_and(|c| self.binding_of(&c.protocol) == CallbackBinding::FormPost);
        if !posts {
            return Err(LoginFailure {
                attempt_id: None,
                reason: "connection_not_found".to_owned(),
                detail: "no connection here receives posted answers".to_owned(),
                class: RefusalClass::BadRequest,
                sso: None,
            });
        }
        let kept: Vec<(String, String)> = params
            .into_iter()
            .filter(|(name, _)| KEPT_FIELDS.contains(&name.as_str()))
            .collect();
        let context = handoff_context(slug, connection_id);
        let payload = serde_json::to_string(&kept)
            .ok()
            .map(|json| self.key.seal(&json, &context))
            .and_then(|sealed| serde_json::to_string(&sealed).ok());
        let stored = match payload {
            Some(payload) => {
                self.handoffs
                    .put(slug.as_str(), connection_id.as_str(), &payload)
                    .await
            }
            None => return Err(internal("the posted answer could not be sealed")),
        };
        stored.map_err(|error| {
            tracing::error!(%error, "cannot store a posted answer");
            internal("the posted answer could not be stored")
        })
    }

    /// Finishes the login whose answer was posted under `handle`.
    pub async fn finish_form_post(
        &self,
        slug: &TenantSlug,
        connection_id: &ConnectionId,
        handle: &str,
        binding: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, LoginFailure> {
        let taken = if handle.is_empty() || handle.len() > 128 {
            Ok(None)
        } else {
            self.handoffs
                .take(slug.as_str(), connection_id.as_str(), handle)
                .await
        };
        let payload = match taken {
            Ok(Some(payload)) => payload,
            Ok(None) => {
                // Expired, used, or never issued: nothing to check, and nothing to record but
                // the refusal itself.
                self.tenant_for_login(slug).await?;
                let detail = "the posted answer expired or was already used";
                return Err(self.refuse_unknown(slug, connection_id, reasons::EXPIRED, detail, client).await);
            }
            Err(error) => {
                tracing::error!(%error, "cannot read a posted answer");
                return Err(internal("the posted answer could not be read"));
            }
        };
        let params = serde_json::from_str(&payload)
            .ok()
            .and_then(|sealed| {
                self.key
                    .open(&sealed, &handoff_context(slug, connection_id))
                    .ok()
            })
            .and_then(|json| serde_json::from_str::<Vec<(String, String)>>(&json).ok())
            .ok_or_else(|| internal("the posted answer could not be opened"))?;
        self.finish_login(slug, connection_id, params, binding, client)
            .await
    }

    /// The service provider metadata of a connection, for protocols that publish one.
    pub async fn sp_metadata(&self, slug: &str, connection_id: &str) -> Result<MetadataResponse, AdminError> {
        let tenant = self.load_tenant(slug).await?;
        let id = ConnectionId::parse(connection_id).map_err(|_| AdminError::NotFound("connection"))?;
        let connection = tenant
            .connections
            .get(&id)
            .ok_or(AdminError::NotFound("connection"))?;
        if !self
            .plugins
            .has_capability(&connection.protocol, gatehouse_plugin_sdk::capability::METADATA)
        {
            return Err(AdminError::NotFound("metadata"));
        }
        let slug_id = TenantSlug::parse(slug).map_err(|_| AdminError::NotFound("tenant"))?;
        let config = self
            .open_config(&slug_id, &id, connection)
            .map_err(AdminError::Internal)?;
        let callback = self.binding_of(&connection.protocol);
        let request = MetadataRequest {
            tenant: slug.to_owned(),
            connection_id: connection_id.to_owned(),
            config,
            sp_entity_id: self.sp_entity_id(slug, connection_id),
            acs_url: self.callback_uri(slug, connection_id, callback),
        };
        let context = CallContext {
            tenant: slug.to_owned(),
            connection_id: connection_id.to_owned(),
        };
        let document: MetadataResponse = self
            .plugins
            .call(&connection.protocol, Method::Metadata, &request, &context)
            .await
            .map_err(|error| match error.code.as_str() {
                gatehouse_plugin_sdk::reason::UNSUPPORTED => AdminError::NotFound("metadata"),
                _ => AdminError::PluginUnavailable(format!("metadata: {error}")),
            })?;
        // Served on Gatehouse's own origin: only metadata types, never HTML or a value that
        // could split the header.
        let essence = document
            .content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let printable = document.content_type.chars().all(|c| (' '..='~').contains(&c));
        if !printable || !METADATA_TYPES.contains(&essence.as_str()) {
            return Err(AdminError::PluginUnavailable(
                "metadata refused: the plugin gave a content type that is not XML metadata".into(),
            ));
        }
        Ok(document)
    }
}

/// Content types the host serves SP metadata with.
const METADATA_TYPES: [&str; 3] = ["application/samlmetadata+xml", "application/xml", "text/xml"];

fn handoff_context(slug: &TenantSlug, connection_id: &ConnectionId) -> String {
    format!("acs-handoff/{slug}/{connection_id}")
}

fn internal(detail: &str) -> LoginFailure {
    LoginFailure {
        attempt_id: None,
        reason: reasons::INTERNAL_ERROR.to_owned(),
        detail: detail.to_owned(),
        class: RefusalClass::Internal,
        sso: None,
    }
}
