//! OpenID Connect (plugins/oidc) against oidc-provider (tests/idp).
//!
//! The back channel is the token endpoint. OIDC discovery ties the discovery URL to the
//! issuer, so a proxy can only sit in front of an IdP whose issuer is the proxy's URL: a
//! proxied connection gets an oidc-provider of its own, started with `--issuer <proxy URL>`.

use serde_json::json;

use crate::common::{idp_sign_in_to, repo_root, start_node_fixture, unique, Gatehouse, Idp};
use crate::proxy::{FaultProxy, Malformed};
use crate::subject::*;

pub struct Oidc {
    idp: &'static Idp,
}

const CONNECTION: &str = "oidc";

/// The IdP as seen at `issuer` (the real one, or a proxy in front of one).
fn idp_at(issuer: &str) -> Idp {
    Idp {
        issuer: issuer.to_string(),
        port: 0,
        log: Default::default(),
    }
}

impl Subject for Oidc {
    const PROTOCOL: &'static str = "oidc";
    const ANSWER_PARAM: &'static str = "code";
    const BACK_CHANNEL: &'static str = "token endpoint (POST /token)";

    async fn shared() -> Self {
        Oidc {
            idp: Idp::shared().await,
        }
    }

    async fn tenant(&self, gh: &Gatehouse, via: Option<&SubjectProxy>) -> Connection {
        let issuer = match via {
            Some(proxied) => proxied.proxy.url.clone(),
            None => self.idp.issuer.clone(),
        };
        let idp = idp_at(&issuer);
        let (slug, app_url) = new_tenant(gh).await;
        let (client_id, client_secret) = idp
            .register_client(&[gh.callback_url(&slug, CONNECTION)], false)
            .await;
        let config = json!({
            "discovery_url": idp.discovery_url(),
            "client_id": client_id,
            "client_secret": client_secret,
            "allowed_domains": ["good.test"],
        });
        put_connection(gh, &slug, CONNECTION, Self::PROTOCOL, config).await;
        Connection {
            slug,
            app_url,
            connection_id: CONNECTION.to_string(),
            idp_url: issuer,
        }
    }

    async fn proxy(&self) -> SubjectProxy {
        let proxy = FaultProxy::start(None);
        let issuer = proxy.url.clone();
        let fixture = tokio::task::spawn_blocking(move || {
            let args: [&std::ffi::OsStr; 4] = [
                "--port".as_ref(),
                "0".as_ref(),
                "--issuer".as_ref(),
                issuer.as_ref(),
            ];
            start_node_fixture(
                &repo_root().join("tests/idp"),
                "oidc-idp.mjs",
                &args,
                "issuer",
            )
        })
        .await
        .expect("start an IdP behind the proxy");
        assert_eq!(
            fixture.ready["issuer"],
            json!(proxy.url),
            "the proxied IdP's issuer"
        );
        let port = fixture.ready["port"]
            .as_u64()
            .expect("port in the ready line");
        proxy.set_upstream(&format!("http://127.0.0.1:{port}"));
        SubjectProxy {
            proxy,
            back_channel_path: "/token".to_string(),
            keep_alive: Some(Box::new(fixture)),
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
        // Any login id signs in, as `<login>@good.test`, verified.
        let login = unique(&format!("p{person}-"));
        let url = idp_sign_in_to(
            browser,
            &gh.url,
            &idp_at(&connection.idp_url),
            &authorize,
            &login,
        )
        .await;
        Started::Callback(SignedIn {
            callback: Callback::Query { url },
            email: format!("{login}@good.test"),
        })
    }

    fn expect(&self, situation: Situation) -> Expect {
        match situation {
            // Another login's code under this login's PKCE verifier: the IdP refuses the
            // exchange (RFC 7636 section 4.6) before the nonce is ever compared.
            Situation::ForeignAnswer => refused("token_exchange_failed", 502),
            // A redeemed code: invalid_grant (RFC 6749 section 4.1.2).
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
