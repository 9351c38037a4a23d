//! Plain OAuth 2.0 (plugins/oauth2) against oauth2-mock-server (tests/oauth2-idp), with
//! Facebook's paths. The back channel is the token endpoint; the proxy fronts it alone (the
//! browser still goes straight to the provider's authorization endpoint).

use crate::common::oauth2::{facebook_mapping, oauth2_config, OAuth2Idp};
use crate::common::{unique, Gatehouse};
use crate::proxy::{FaultProxy, Malformed};
use crate::subject::*;

pub struct OAuth2 {
    idp: &'static OAuth2Idp,
}

const CONNECTION: &str = "oauth";
const TOKEN_PATH: &str = "/oauth/access_token";

impl Subject for OAuth2 {
    const PROTOCOL: &'static str = "oauth2";
    const ANSWER_PARAM: &'static str = "code";
    const BACK_CHANNEL: &'static str = "token endpoint (POST /oauth/access_token)";

    async fn shared() -> Self {
        OAuth2 {
            idp: OAuth2Idp::shared().await,
        }
    }

    async fn tenant(&self, gh: &Gatehouse, via: Option<&SubjectProxy>) -> Connection {
        let (slug, app_url) = new_tenant(gh).await;
        let mut config = oauth2_config(self.idp, &unique("client-"), facebook_mapping());
        let idp_url = match via {
            Some(proxied) => {
                config["token_url"] = format!("{}{TOKEN_PATH}", proxied.proxy.url).into();
                proxied.proxy.url.clone()
            }
            None => self.idp.base_url.clone(),
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
            back_channel_path: TOKEN_PATH.to_string(),
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
        let authorize = match start_login(browser, gh, connection).await {
            Ok(url) => url,
            Err(page) => return Started::Refused(page),
        };
        // An unknown login hint gets {"id": "<login>-id", "email": "<login>@good.test"}.
        let login = unique(&format!("p{person}-"));
        let url = self
            .idp
            .sign_in(browser, gh, &authorize, &login)
            .await;
        Started::Callback(SignedIn {
            callback: Callback::Query { url },
            email: format!("{login}@good.test"),
        })
    }

    fn expect(&self, situation: Situation) -> Expect {
        match situation {
            // The provider checks PKCE: another login's code fails with this verifier.
            Situation::ForeignAnswer => refused("token_exchange_failed", 502),
            Situation::ReplayedAnswer => refused("token_exchange_failed", 502),
            Situation::OversizedAnswer => refused("token_exchange_failed", 502),
            Situation::SlowUpstream => refused("idp_unreachable", 502),
            Situation::Malformed(malformed) => match malformed {
                Malformed::Garbage
                | Malformed::Truncated
                | Malformed::WrongContentType
                | Malformed::HtmlPage
                | Malformed::InvalidXml
                | Malformed::Empty
                | Malformed::UnexpectedJson => refused("token_exchange_failed", 502),
            },
        }
    }
}
