//! SAML 2.0 (plugins/saml) against saml-idp (tests/saml-idp).
//!
//! SAML has no back channel at login except reading the IdP's metadata, so a proxied
//! connection is configured with `idp_metadata_url` at the proxy, and the faults hit that
//! fetch (made when the login starts; cached per connection, so every case uses a fresh
//! connection).

use serde_json::json;

use crate::common::saml::{SamlIdp, SamlProfile, SignInOptions};
use crate::common::{unique, Gatehouse};
use crate::proxy::{FaultProxy, Malformed};
use crate::subject::*;

pub struct Saml {
    idp: &'static SamlIdp,
}

const CONNECTION: &str = "saml";
const METADATA_PATH: &str = "/metadata";

impl Subject for Saml {
    const PROTOCOL: &'static str = "saml";
    const ANSWER_PARAM: &'static str = "SAMLResponse";
    const BACK_CHANNEL: &'static str = "IdP metadata (GET /metadata, idp_metadata_url)";

    async fn shared() -> Self {
        Saml {
            idp: SamlIdp::shared().await,
        }
    }

    async fn tenant(&self, gh: &Gatehouse, via: Option<&SubjectProxy>) -> Connection {
        let (slug, app_url) = new_tenant(gh).await;
        let (config, idp_url) = match via {
            Some(proxied) => (
                json!({
                    "idp_metadata_url": format!("{}{METADATA_PATH}", proxied.proxy.url),
                    "allowed_domains": ["good.test"],
                }),
                proxied.proxy.url.clone(),
            ),
            None => (
                json!({
                    "idp_entity_id": self.idp.entity_id(),
                    "sso_url": self.idp.sso_url(),
                    "certificates": [self.idp.certificate_pem()],
                    "allowed_domains": ["good.test"],
                }),
                self.idp.base_url.clone(),
            ),
        };
        put_connection(gh, &slug, CONNECTION, Self::PROTOCOL, config).await;
        Connection {
            slug,
            app_url,
            connection_id: CONNECTION.to_string(),
            idp_url,
        }
    }

    async fn proxy(&self) -> SubjectProxy {
        SubjectProxy {
            proxy: FaultProxy::start(Some(&self.idp.base_url)),
            back_channel_path: METADATA_PATH.to_string(),
            keep_alive: None,
        }
    }

    async fn sign_in(
        &self,
        gh: &Gatehouse,
        connection: &Connection,
        browser: &reqwest::Client,
        person: usize,
    ) -> Started {
        let sso = match start_login(browser, gh, connection).await {
            Ok(url) => url,
            Err(page) => return Started::Refused(page),
        };
        let email = format!("{}@good.test", unique(&format!("p{person}-")));
        let profile = SamlProfile::new(&email, "Pat", &format!("Person {person}"));
        let options = SignInOptions {
            acs_url_fallback: Some(gh.url(&format!(
                "/{}/sso/{}/acs",
                connection.slug, connection.connection_id
            ))),
            ..SignInOptions::default()
        };
        let post = self
            .idp
            .sign_in_with(browser, &sso, &profile, &options)
            .await;
        Started::Callback(SignedIn {
            callback: Callback::FormPost {
                url: post.acs_url.clone(),
                fields: post.fields.clone(),
            },
            email,
        })
    }

    fn expect(&self, situation: Situation) -> Expect {
        match situation {
            // The assertion answers another AuthnRequest than the one this login sent.
            Situation::ForeignAnswer => refused("saml_in_response_to_mismatch", 400),
            Situation::ReplayedAnswer => refused("saml_in_response_to_mismatch", 400),
            Situation::OversizedAnswer => refused("saml_too_large", 400),
            Situation::SlowUpstream => refused("idp_unreachable", 502),
            Situation::Malformed(malformed) => match malformed {
                // Many IdPs serve metadata as text/xml, application/xml or worse; the document
                // is what counts (it is parsed strictly, and signatures are checked later).
                Malformed::WrongContentType => Expect::SignsIn,
                Malformed::Garbage
                | Malformed::Truncated
                | Malformed::HtmlPage
                | Malformed::InvalidXml
                | Malformed::Empty
                | Malformed::UnexpectedJson => refused("saml_metadata_invalid", 400),
            },
        }
    }
}
