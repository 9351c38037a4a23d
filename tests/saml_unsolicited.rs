//! Unsolicited (IdP-initiated) SAML answers through the real HTTP path, black box.
//!
//! An IdP-initiated answer is made from a genuine one: the real SAML IdP (tests/saml-idp) signs a
//! Response for a fresh SP-initiated login, the test captures it instead of posting it, removes
//! its `InResponseTo` attributes (Response and bearer SubjectConfirmationData), strips the
//! signatures and signs the Response again with the IdP's own key (rsa-sha256, `xmlsec1` CLI, as
//! tests/saml_hostile.rs does). It is then posted to the ACS with no RelayState from a fresh
//! browser (no flow cookie), as an IdP's auto-post page would.
//!
//! 1. `allow_idp_initiated: true`: accepted (302 to the app URL, a session, `login.succeeded`
//!    with protocol saml);
//! 2. the same answer again, fresh browser: `assertion_replayed` (the host's one-time record of
//!    the assertion ID), no session;
//! 3. `allow_idp_initiated: true` and an answer that still names a request (`InResponseTo`) but
//!    comes without RelayState: `saml_in_response_to_unknown`;
//! 4. `allow_idp_initiated` false (default, and explicitly): `unsolicited_response`;
//! 5. PostgreSQL only: the replay of 2 delivered to a second node sharing the database:
//!    `assertion_replayed`.
//!
//! Every refusal: an HTML error page (400) with `<code id="attempt-id">`, no session, and a
//! `login.failed` audit event of that attempt with the exact reason and protocol saml.
//!
//! Each scenario runs on SQLite and on PostgreSQL (5 on PostgreSQL only), each in its own
//! Gatehouse process with its own tenant. Needs node/npm, openssl, xmlsec1 (and psql).

mod common;


use common::saml::*;
use common::saml_xml::*;
use common::*;
use serde_json::{json, Value};

macro_rules! scenarios {
    (both: [$($both:ident),* $(,)?], postgres_only: [$($pg:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $both() {
                    super::$both(super::Store::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $both() {
                    super::$both(super::Store::Postgres).await
                }
            )*
            $(
                #[tokio::test]
                async fn $pg() {
                    super::$pg(super::Store::Postgres).await
                }
            )*
        }
    };
}

scenarios!(
    both: [
        s1_s2_idp_initiated_login_is_accepted_once_then_replay_is_refused,
        s3_in_response_to_without_relay_state_is_unknown,
        s4_unsolicited_refused_unless_allowed,
    ],
    postgres_only: [s5_replay_at_a_second_node_is_refused],
);

// ---------------------------------------------------------------------------------------------
// reason codes (the host's, core/src/service/login.rs `reasons`; the plugin's, reason.rs)

const UNSOLICITED_RESPONSE: &str = "unsolicited_response";
const ASSERTION_REPLAYED: &str = "assertion_replayed";
const IN_RESPONSE_TO_UNKNOWN: &str = "saml_in_response_to_unknown";

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

// ---------------------------------------------------------------------------------------------
// tenant, logins, posting

const CONNECTION: &str = "idp-init-saml";


/// The config that trusts the shared IdP's certificate, for `good.test`; `allow_idp_initiated`
/// set only when given (None: the default).
fn trust(idp: &SamlIdp, allow_idp_initiated: Option<bool>) -> Value {
    let mut config = json!({
        "idp_entity_id": idp.entity_id(),
        "sso_url": idp.sso_url(),
        "certificates": [idp.certificate_pem()],
        "allowed_domains": ["good.test"],
    });
    if let Some(allow) = allow_idp_initiated {
        config["allow_idp_initiated"] = json!(allow);
    }
    config
}

async fn put_connection(gh: &Gatehouse, slug: &str, config: Value) -> Page {
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{slug}/connections/{CONNECTION}"),
            &json!({ "protocol": "saml", "label": "IdP-initiated SAML", "config": config }),
        )
        .await;
    page.assert_status(200);
    page
}

/// A tenant with a unique slug and one SAML connection with this config.
async fn saml_tenant_with(gh: &Gatehouse, config: Value) -> SamlTenant {
    let slug = unique("u-");
    let app_url = format!("https://app.{slug}.test/home");
    gh.create_tenant(&slug, &format!("Tenant {slug}"), &app_url)
        .await;
    let page = put_connection(gh, &slug, config).await;
    let setup = page.json()["setup"].clone();
    let acs_url = gh.url(&format!("/{slug}/sso/{CONNECTION}/acs"));
    let sp_entity_id = gh.url(&format!("/{slug}/sso/{CONNECTION}/metadata"));
    assert_eq!(setup["acs_url"], json!(acs_url), "{}", page.describe());
    assert_eq!(setup["sp_entity_id"], json!(sp_entity_id), "{}", page.describe());
    SamlTenant {
        slug,
        app_url,
        connection_id: CONNECTION.to_string(),
        acs_url,
        sp_entity_id,
    }
}

fn good_profile() -> SamlProfile {
    SamlProfile::new(
        &format!("{}@good.test", unique("user-")),
        "Ida",
        "Initiated",
    )
}

/// A fresh SP-initiated login in a fresh browser and the IdP's genuine, signed answer to it
/// (captured, not posted).
struct Login {
    browser: reqwest::Client,
    post: SamlPost,
    relay_state: String,
    /// The genuine SAMLResponse, decoded.
    xml: String,
}

impl Login {
    async fn genuine(gh: &Gatehouse, idp: &SamlIdp, tenant: &SamlTenant, profile: &SamlProfile) -> Login {
        let browser = browser();
        let sso = start_saml_login(&browser, gh, &tenant.slug, idp).await;
        let relay_state = query_param(&sso, "RelayState").expect("RelayState in the redirect");
        let options = SignInOptions {
            acs_url_fallback: Some(tenant.acs_url.clone()),
            ..SignInOptions::default()
        };
        let post = idp
            .sign_in_with(&browser, &sso, profile, &options)
            .await;
        assert_eq!(
            post.request.issuer.as_deref(),
            Some(tenant.sp_entity_id.as_str()),
            "the AuthnRequest's Issuer should be the SP entity id: {:?}",
            post.request
        );
        assert_eq!(
            post.acs_url,
            tenant.acs_url,
            "the IdP should post to the connection's ACS: {}",
            post.page.describe()
        );
        assert_eq!(
            post.relay_state(),
            Some(relay_state.as_str()),
            "the IdP should echo the RelayState: {}",
            post.page.describe()
        );
        let xml = post.response_xml();
        let request_id = post
            .request
            .id
            .clone()
            .expect("the AuthnRequest ID");
        assert_eq!(
            xml_attribute(&xml, "Response", "InResponseTo").as_deref(),
            Some(request_id.as_str()),
            "{xml}"
        );
        assert_eq!(
            xml_attribute(&xml, "SubjectConfirmationData", "InResponseTo").as_deref(),
            Some(request_id.as_str()),
            "{xml}"
        );
        assert!(count_elements(&xml, "Signature") >= 1, "the IdP signed nothing? {xml}");
        Login {
            browser,
            post,
            relay_state,
            xml,
        }
    }
}

/// POSTs only this SAMLResponse (base64), no RelayState, as an IdP-initiated auto-post would,
/// and follows the 303 to the follow-up. The ACS itself judges nothing: it always answers 303.
async fn post_unsolicited(browser: &reqwest::Client, acs_url: &str, saml_response: &str) -> AcsOutcome {
    let outcome = post_to_acs(browser, acs_url, &[("SAMLResponse", saml_response)]).await;
    assert_eq!(
        outcome.post.status.as_u16(),
        303,
        "the ACS should answer 303 to its follow-up: {}",
        outcome.describe()
    );
    let next = outcome
        .post
        .location()
        .unwrap_or_default();
    assert!(
        next.starts_with(&format!("{acs_url}/continue?handle=")),
        "the ACS should redirect to {acs_url}/continue?handle=...: {}",
        outcome.describe()
    );
    assert!(outcome.continued.is_some(), "{}", outcome.describe());
    outcome
}

/// Asserts the ACS exchange signed the browser in: 303 to the follow-up, which answered 302 to
/// the app URL with the session cookie; returns the session.
async fn assert_signed_in(
    gh: &Gatehouse,
    tenant: &SamlTenant,
    browser: &reqwest::Client,
    outcome: &AcsOutcome,
    profile: &SamlProfile,
    case: &str,
) -> Value {
    let page = outcome
        .continued
        .as_ref()
        .unwrap_or_else(|| panic!("[{case}] no follow-up: {}", outcome.describe()));
    assert_eq!(
        page.status.as_u16(),
        302,
        "[{case}] the follow-up should sign in: {}",
        outcome.describe()
    );
    assert_eq!(
        page.location().as_deref(),
        Some(tenant.app_url.as_str()),
        "[{case}] the follow-up should go to the app: {}",
        outcome.describe()
    );
    let cookie = page
        .set_cookie("gatehouse_session")
        .unwrap_or_else(|| panic!("[{case}] no gatehouse_session cookie: {}", outcome.describe()));
    let attrs: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for wanted in ["httponly", "samesite=lax", "path=/"] {
        assert!(
            attrs.iter().any(|a| a == wanted),
            "[{case}] session cookie without {wanted}: {cookie}\n{}",
            outcome.describe()
        );
    }
    let session = gh.assert_session(browser).await;
    assert_eq!(session["tenant"], json!(tenant.slug), "[{case}] {session:#}");
    assert_eq!(
        session["connection_id"],
        json!(tenant.connection_id),
        "[{case}] {session:#}"
    );
    assert_eq!(session["email"], json!(profile.email), "[{case}] {session:#}");
    assert_eq!(session["name"], json!(profile.name()), "[{case}] {session:#}");
    session
}



fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == json!(kind))
        .collect()
}

/// Waits until the tenant's audit shows exactly `n` `login.succeeded` events (and as many
/// `session.started`), and returns every event of the tenant (newest first).
async fn events_with_successes(gh: &Gatehouse, tenant: &SamlTenant, n: usize) -> Vec<Value> {
    let events = gh
        .audit_until(
            &tenant.slug,
            &[],
            &format!("{n} login.succeeded and session.started"),
            |ev| of_type(ev, "login.succeeded").len() >= n && of_type(ev, "session.started").len() >= n,
        )
        .await;
    assert_eq!(
        of_type(&events, "login.succeeded").len(),
        n,
        "exactly {n} login.succeeded: {events:#?}"
    );
    events
}

/// The one `login.succeeded` (protocol saml, this connection, this user and email), which must
/// follow a `login.started` of the same attempt that is not the captured SP-initiated login's.
fn assert_success_audited(events: &[Value], tenant: &SamlTenant, session: &Value, profile: &SamlProfile) -> Value {
    let succeeded = of_type(events, "login.succeeded");
    assert_eq!(succeeded.len(), 1, "{events:#?}");
    let event = succeeded[0].clone();
    assert_eq!(event["protocol"], json!("saml"), "{event:#}");
    assert_eq!(event["outcome"]["result"], json!("succeeded"), "{event:#}");
    assert_eq!(event["tenant"], json!(tenant.slug), "{event:#}");
    assert_eq!(event["connection_id"], json!(tenant.connection_id), "{event:#}");
    assert_eq!(event["user_id"], session["user_id"], "{event:#}");
    assert_eq!(event["email"], json!(profile.email), "{event:#}");
    assert!(event["attempt_id"].is_string(), "{event:#}");
    let started: Vec<&Value> = of_type(events, "login.started")
        .into_iter()
        .filter(|s| s["attempt_id"] == event["attempt_id"])
        .collect();
    assert_eq!(
        started.len(),
        1,
        "the unsolicited login should have a login.started of its own attempt: {events:#?}"
    );
    assert_eq!(started[0]["protocol"], json!("saml"), "{:#}", started[0]);
    assert_eq!(
        started[0]["connection_id"],
        json!(tenant.connection_id),
        "{:#}",
        started[0]
    );
    event
}

// ---------------------------------------------------------------------------------------------
// XML surgery on the IdP's (known, regular) output: no XML library, just careful string work
// (copied from tests/saml_hostile.rs)





/// Removes the first `limit` occurrences (in document order) of attribute `name="..."` from
/// start tags, with the whitespace before it. Panics if there are fewer.
fn without_attribute(xml: &str, name: &str, limit: usize) -> String {
    let mut out = xml.to_string();
    let needle = format!("{name}=\"");
    for n in 0..limit {
        let mut from = 0;
        let at = loop {
            let at = out[from..]
                .find(&needle)
                .map(|p| p + from)
                .unwrap_or_else(|| panic!("only {n} {name} attributes in {xml}"));
            if out.as_bytes()[at - 1].is_ascii_whitespace() {
                break at;
            }
            from = at + 1;
        };
        let value_start = at + needle.len();
        let value_end = out[value_start..]
            .find('"')
            .map(|p| p + value_start)
            .expect("closing quote");
        let space_start = out[..at].trim_end().len();
        out.replace_range(space_start..value_end + 1, "");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Re-signing with the xmlsec1 CLI (copied from tests/saml_hostile.rs)





/// The genuine answer made unsolicited: both `InResponseTo` removed (Response and bearer
/// SubjectConfirmationData), re-signed by the IdP's own key with rsa-sha256. Returned base64.
fn unsolicited_from(idp: &SamlIdp, genuine_xml: &str) -> String {
    let irts = genuine_xml
        .matches("InResponseTo=\"")
        .count();
    assert_eq!(irts, 2, "Response and SubjectConfirmationData InResponseTo: {genuine_xml}");
    let without = without_attribute(genuine_xml, "InResponseTo", 2);
    assert!(!without.contains("InResponseTo"), "{without}");
    let (key, cert) = idp_key_files(idp);
    let signed = resign_response(&without, &key, &cert, RSA_SHA256, SHA256);
    assert!(xml_attribute(&signed, "Response", "InResponseTo").is_none(), "{signed}");
    assert!(
        xml_attribute(&signed, "SubjectConfirmationData", "InResponseTo").is_none(),
        "{signed}"
    );
    encode_saml_response(&signed)
}

// ---------------------------------------------------------------------------------------------
// scenarios

/// 1 and 2. `allow_idp_initiated: true`: the unsolicited answer, posted without RelayState from
/// a fresh browser, signs in (302 to the app, session, `login.succeeded` with protocol saml);
/// the same answer again from another fresh browser is refused as `assertion_replayed`.
async fn s1_s2_idp_initiated_login_is_accepted_once_then_replay_is_refused(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = saml_tenant_with(&gh, trust(idp, Some(true))).await;
    let profile = good_profile();
    // The genuine answer comes from an SP-initiated login whose browser never posts it.
    let login = Login::genuine(&gh, idp, &tenant, &profile).await;
    let unsolicited = unsolicited_from(idp, &login.xml);

    // 1. Accepted.
    let first = browser();
    let outcome = post_unsolicited(&first, &tenant.acs_url, &unsolicited).await;
    let session = assert_signed_in(&gh, &tenant, &first, &outcome, &profile, "IdP-initiated login").await;
    let events = events_with_successes(&gh, &tenant, 1).await;
    let succeeded = assert_success_audited(&events, &tenant, &session, &profile);
    assert!(
        of_type(&events, "login.failed").is_empty(),
        "no login.failed: {events:#?}"
    );
    // Two attempts started: the captured SP-initiated one (never finished) and the unsolicited one.
    let started = of_type(&events, "login.started");
    assert_eq!(started.len(), 2, "{events:#?}");
    assert_eq!(
        of_type(&events, "user.provisioned").len(),
        1,
        "{events:#?}"
    );

    // 2. The same answer again, from another fresh browser.
    let second = browser();
    let outcome = post_unsolicited(&second, &tenant.acs_url, &unsolicited).await;
    let event = assert_refused(
        &gh,
        &tenant,
        &second,
        &outcome,
        ASSERTION_REPLAYED,
        400,
        "unsolicited answer replayed",
    )
    .await;
    assert_ne!(event["attempt_id"], succeeded["attempt_id"], "{event:#}");
    // The first session survives the replay, and nobody else signed in.
    let still = gh.assert_session(&first).await;
    assert_eq!(still["user_id"], session["user_id"], "{still:#}");
    let events = events_with_successes(&gh, &tenant, 1).await;
    assert_eq!(
        of_type(&events, "session.started").len(),
        1,
        "{events:#?}"
    );
}

/// 3. `allow_idp_initiated: true`, and an answer that names a request (the genuine, solicited
/// one; and one re-signed with only the SubjectConfirmationData's InResponseTo left) posted
/// without RelayState: `saml_in_response_to_unknown`. Control: the genuine answer with its
/// RelayState, from its own browser, still signs in (the refusals consumed nothing).
async fn s3_in_response_to_without_relay_state_is_unknown(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = saml_tenant_with(&gh, trust(idp, Some(true))).await;
    let profile = good_profile();
    let login = Login::genuine(&gh, idp, &tenant, &profile).await;

    // (a) the genuine solicited answer, untouched, from a fresh browser.
    let stranger = browser();
    let outcome = post_unsolicited(&stranger, &tenant.acs_url, login.post.saml_response()).await;
    assert_refused(
        &gh,
        &tenant,
        &stranger,
        &outcome,
        IN_RESPONSE_TO_UNKNOWN,
        400,
        "genuine solicited answer without RelayState",
    )
    .await;

    // (a') the same from the browser that started the login (it has the flow cookie, but no
    // RelayState names the flow).
    let outcome = post_unsolicited(&login.browser, &tenant.acs_url, login.post.saml_response()).await;
    assert_refused(
        &gh,
        &tenant,
        &login.browser,
        &outcome,
        IN_RESPONSE_TO_UNKNOWN,
        400,
        "genuine solicited answer without RelayState, from the login's own browser",
    )
    .await;

    // (b) only the Response's InResponseTo removed, re-signed by the IdP's key: the assertion's
    // bearer confirmation still names the request.
    let only_scd = without_attribute(&login.xml, "InResponseTo", 1);
    assert!(xml_attribute(&only_scd, "Response", "InResponseTo").is_none(), "{only_scd}");
    assert!(
        xml_attribute(&only_scd, "SubjectConfirmationData", "InResponseTo").is_some(),
        "{only_scd}"
    );
    let (key, cert) = idp_key_files(idp);
    let signed = resign_response(&only_scd, &key, &cert, RSA_SHA256, SHA256);
    let stranger = browser();
    let outcome = post_unsolicited(&stranger, &tenant.acs_url, &encode_saml_response(&signed)).await;
    assert_refused(
        &gh,
        &tenant,
        &stranger,
        &outcome,
        IN_RESPONSE_TO_UNKNOWN,
        400,
        "SubjectConfirmationData InResponseTo without RelayState",
    )
    .await;

    let none = gh
        .audit(&tenant.slug, &[("type", "login.succeeded")])
        .await;
    assert!(none.is_empty(), "{none:#?}");

    // Control: the genuine answer with its RelayState from its own browser still works.
    let outcome = post_to_acs(
        &login.browser,
        &login.post.acs_url,
        &[
            ("SAMLResponse", login.post.saml_response()),
            ("RelayState", login.relay_state.as_str()),
        ],
    )
    .await;
    let session = assert_signed_in(
        &gh,
        &tenant,
        &login.browser,
        &outcome,
        &profile,
        "control: the solicited answer with its RelayState",
    )
    .await;
    let events = events_with_successes(&gh, &tenant, 1).await;
    assert_success_audited(&events, &tenant, &session, &profile);
}

/// 4. `allow_idp_initiated` false (left out, and explicitly false): the re-signed unsolicited
/// answer is refused as `unsolicited_response`. Control: once the connection allows
/// IdP-initiated logins, the very same answer signs in (so the refusal was the setting's, and
/// it did not spend the assertion ID).
async fn s4_unsolicited_refused_unless_allowed(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    for (case, allow) in [
        ("allow_idp_initiated left out", None),
        ("allow_idp_initiated: false", Some(false)),
    ] {
        let tenant = saml_tenant_with(&gh, trust(idp, allow)).await;
        let profile = good_profile();
        let login = Login::genuine(&gh, idp, &tenant, &profile).await;
        let unsolicited = unsolicited_from(idp, &login.xml);

        let stranger = browser();
        let outcome = post_unsolicited(&stranger, &tenant.acs_url, &unsolicited).await;
        let event = assert_refused(&gh, &tenant, &stranger, &outcome, UNSOLICITED_RESPONSE, 400, case).await;
        assert!(event["email"].is_null(), "[{case}] {event:#}");

        // The same from the browser that started the captured login.
        let outcome = post_unsolicited(&login.browser, &tenant.acs_url, &unsolicited).await;
        assert_refused(
            &gh,
            &tenant,
            &login.browser,
            &outcome,
            UNSOLICITED_RESPONSE,
            400,
            &format!("{case}, from the login's own browser"),
        )
        .await;
        let none = gh
            .audit(&tenant.slug, &[("type", "login.succeeded")])
            .await;
        assert!(none.is_empty(), "[{case}] {none:#?}");

        // Control: allowed now, the same answer is accepted.
        put_connection(&gh, &tenant.slug, trust(idp, Some(true))).await;
        let fresh = browser();
        let outcome = post_unsolicited(&fresh, &tenant.acs_url, &unsolicited).await;
        let control = format!("{case}; then allowed");
        let session = assert_signed_in(&gh, &tenant, &fresh, &outcome, &profile, &control).await;
        let events = events_with_successes(&gh, &tenant, 1).await;
        assert_success_audited(&events, &tenant, &session, &profile);
    }
}

/// 5 (PostgreSQL). The unsolicited answer accepted at node A, then replayed at node B (same
/// database, its own process and port, never saw the answer): `assertion_replayed`.
async fn s5_replay_at_a_second_node_is_refused(store: Store) {
    assert_eq!(store, Store::Postgres);
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = saml_tenant_with(&gh, trust(idp, Some(true))).await;
    let profile = good_profile();
    let login = Login::genuine(&gh, idp, &tenant, &profile).await;
    let unsolicited = unsolicited_from(idp, &login.xml);

    let first = browser();
    let outcome = post_unsolicited(&first, &tenant.acs_url, &unsolicited).await;
    let session = assert_signed_in(&gh, &tenant, &first, &outcome, &profile, "IdP-initiated login at node A").await;

    let node_b = gh.another_node(&[]).await;
    let acs_b = tenant.acs_url.replace(
        &format!("127.0.0.1:{}", gh.port),
        &format!("127.0.0.1:{}", node_b.port),
    );
    assert_ne!(acs_b, tenant.acs_url, "the replay must go to node B");
    let second = browser();
    let outcome = post_unsolicited(&second, &acs_b, &unsolicited).await;
    let page = outcome.last();
    assert!(
        page.url.starts_with(&node_b.url),
        "node B must finish the replay: {}",
        outcome.describe()
    );
    // The refusal's attempt is in the shared database, so node A's audit shows it.
    assert_refused(
        &gh,
        &tenant,
        &second,
        &outcome,
        ASSERTION_REPLAYED,
        400,
        "unsolicited answer replayed at node B",
    )
    .await;
    node_b.assert_no_session(&second).await;
    let events = events_with_successes(&gh, &tenant, 1).await;
    assert_success_audited(&events, &tenant, &session, &profile);
}
