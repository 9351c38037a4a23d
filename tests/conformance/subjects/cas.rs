//! CAS 3.0 (plugins/cas, the SDK-only example) against django-cas-server (tests/cas-server).
//!
//! The back channel is `/p3/serviceValidate`. A proxied connection has its `server_url` at
//! the proxy, so the browser's visit to `/cas/login` goes through the proxy too (forwarded
//! unchanged).

use serde_json::json;

use crate::common::cas::CasServer;
use crate::common::Gatehouse;
use crate::proxy::{FaultProxy, Malformed};
use crate::subject::*;

pub struct Cas {
    server: &'static CasServer,
}

const CONNECTION: &str = "cas";
/// tests/cas-server/users.json: people of good.test.
const PEOPLE: [(&str, &str); 2] = [("alice", "alice-password"), ("bob", "bob-password")];

impl Cas {
    /// `http://127.0.0.1:PORT` and `/cas` of the server's URL.
    fn origin_and_path(&self) -> (String, String) {
        let url = url::Url::parse(&self.server.cas_url).expect("CAS URL");
        (
            url.origin().ascii_serialization(),
            url.path()
                .trim_end_matches('/')
                .to_string(),
        )
    }
}

impl Subject for Cas {
    const PROTOCOL: &'static str = "cas";
    const ANSWER_PARAM: &'static str = "ticket";
    const BACK_CHANNEL: &'static str = "ticket validation (GET /cas/p3/serviceValidate)";

    async fn shared() -> Self {
        Cas {
            server: CasServer::shared().await,
        }
    }

    async fn tenant(&self, gh: &Gatehouse, via: Option<&SubjectProxy>) -> Connection {
        let (slug, app_url) = new_tenant(gh).await;
        let (origin, path) = self.origin_and_path();
        let idp_url = match via {
            Some(proxied) => proxied.proxy.url.clone(),
            None => origin,
        };
        let config =
            json!({ "server_url": format!("{idp_url}{path}"), "allowed_domains": ["good.test"] });
        put_connection(gh, &slug, CONNECTION, Self::PROTOCOL, config).await;
        Connection {
            slug,
            app_url,
            connection_id: CONNECTION.to_string(),
            idp_url,
        }
    }

    async fn proxy(&self) -> SubjectProxy {
        let (origin, path) = self.origin_and_path();
        SubjectProxy {
            proxy: FaultProxy::start(Some(&origin)),
            back_channel_path: format!("{path}/p3/serviceValidate"),
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
        let login = match start_login(browser, gh, connection).await {
            Ok(url) => url,
            Err(page) => return Started::Refused(page),
        };
        let (username, password) = PEOPLE[person % PEOPLE.len()];
        let url = self
            .server
            .sign_in(browser, gh, &login, username, password)
            .await;
        Started::Callback(SignedIn {
            callback: Callback::Query { url },
            email: format!("{username}@good.test"),
        })
    }

    fn expect(&self, situation: Situation) -> Expect {
        match situation {
            // The ticket was issued for another service URL (another state): the CAS server
            // answers INVALID_SERVICE (CAS 3.0 section 2.5.3).
            Situation::ForeignAnswer => refused("idp_error", 400),
            // A used ticket: INVALID_TICKET.
            Situation::ReplayedAnswer => refused("idp_error", 400),
            // The plugin refuses a ticket past 256 characters itself, before calling CAS.
            Situation::OversizedAnswer => refused("callback_invalid", 400),
            Situation::SlowUpstream => refused("idp_unreachable", 502),
            Situation::Malformed(malformed) => match malformed {
                // CAS 3.0 (section 2.5.2) defines the XML of the answer, not a media type: a
                // valid answer is valid whatever its Content-Type.
                Malformed::WrongContentType => Expect::SignsIn,
                Malformed::Garbage
                | Malformed::Truncated
                | Malformed::HtmlPage
                | Malformed::InvalidXml
                | Malformed::Empty
                | Malformed::UnexpectedJson => refused("cas_response_invalid", 502),
            },
        }
    }
}
