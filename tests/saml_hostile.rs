//! Hostile SAML answers through the real HTTP path, black box: a real SAML IdP (tests/saml-idp,
//! saml-idp on Node) signs a genuine Response for a fresh SP-initiated login; the test captures
//! its auto-post form instead of posting it, mutates the decoded XML (or re-signs it with the
//! `xmlsec1` CLI), and posts it to the ACS with the genuine RelayState from the same browser,
//! so the flow cookie, RelayState and InResponseTo are all valid and only the SAML checks can
//! refuse it.
//!
//! Every refusal must be: an HTML error page (400, or 403 for a policy refusal) with
//! `<code id="attempt-id">`, no session (no cookie, `GET /api/v1/session` 401), and a
//! `login.failed` audit event with that attempt id, `protocol: "saml"` and the exact reason
//! code of plugins/saml/src/reason.rs.
//!
//! Each case runs on SQLite and on PostgreSQL (`sqlite::NAME`, `postgres::NAME`), each in its
//! own Gatehouse process with its own tenant. Needs node/npm, openssl and xmlsec1.

#[macro_use]
mod common;


use common::saml::*;
use common::saml_xml::*;
use common::*;
use serde_json::{json, Value};

on_both_stores!(
    c01_signatures_stripped,
    c02_tampered_name_id,
    c03_comment_injected_name_id,
    c04_xsw_assertion_copy_before_signed_one,
    c05_xsw_signed_assertion_moved_into_extensions,
    c06_doctype_with_internal_entities,
    c07_garbage_base64_and_non_xml,
    c07_deep_nesting_is_refused_and_the_service_survives,
    c08_oversized_response,
    c08_body_over_acs_limit_is_413,
    c09_issuer_mismatch,
    c10_audience_of_another_sp,
    c11_in_response_to_of_another_login,
    c12_signed_by_unknown_key_in_key_info,
    c13_sha1_signature_by_the_idp_key,
    c14_unsigned_response_fields_when_only_the_assertion_is_signed,
    control_resigned_by_the_idp_key_with_sha256_is_accepted,
);

// ---------------------------------------------------------------------------------------------
// reason codes (plugins/saml/src/reason.rs; the host's own codes from the README)

const SIGNATURE_MISSING: &str = "saml_signature_missing";
const SIGNATURE_INVALID: &str = "saml_signature_invalid";
const SIGNATURE_REFERENCE_INVALID: &str = "saml_signature_reference_invalid";
const ASSERTION_COUNT: &str = "saml_assertion_count";
const DUPLICATE_ID: &str = "saml_duplicate_id";
const DTD_FORBIDDEN: &str = "saml_dtd_forbidden";
const MALFORMED: &str = "saml_malformed";
const TOO_LARGE: &str = "saml_too_large";
const ISSUER_MISMATCH: &str = "saml_issuer_mismatch";
const AUDIENCE_MISMATCH: &str = "saml_audience_mismatch";
const IN_RESPONSE_TO_MISMATCH: &str = "saml_in_response_to_mismatch";
const ALGORITHM_FORBIDDEN: &str = "saml_algorithm_forbidden";
const DESTINATION_MISMATCH: &str = "saml_destination_mismatch";
const STATUS_NOT_SUCCESS: &str = "saml_status_not_success";

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

/// The ACS's body limit (api/src/routes/browser.rs) and the plugin's encoded-size limit.
const ACS_BODY_LIMIT: usize = 320 * 1024;
const MAX_ENCODED: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// tenant, logins, posting

const CONNECTION: &str = "hostile-saml";


/// The config that trusts the shared IdP's certificate, for `good.test`.
fn trust(idp: &SamlIdp) -> Value {
    json!({
        "idp_entity_id": idp.entity_id(),
        "sso_url": idp.sso_url(),
        "certificates": [idp.certificate_pem()],
        "allowed_domains": ["good.test"],
    })
}

/// A tenant with a unique slug and one SAML connection with this config.
async fn saml_tenant_with(gh: &Gatehouse, config: Value) -> SamlTenant {
    let slug = unique("h-");
    gh.create_tenant(&slug, &format!("Tenant {slug}"), &format!("https://app.{slug}.test/home"))
        .await;
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{slug}/connections/{CONNECTION}"),
            &json!({ "protocol": "saml", "label": "Hostile SAML", "config": config }),
        )
        .await;
    page.assert_status(200);
    let setup = page.json()["setup"].clone();
    let acs_url = gh.url(&format!("/{slug}/sso/{CONNECTION}/acs"));
    let sp_entity_id = gh.url(&format!("/{slug}/sso/{CONNECTION}/metadata"));
    assert_eq!(setup["acs_url"], json!(acs_url), "{}", page.describe());
    assert_eq!(setup["sp_entity_id"], json!(sp_entity_id), "{}", page.describe());
    SamlTenant {
        app_url: format!("https://app.{slug}.test/home"),
        slug,
        connection_id: CONNECTION.to_string(),
        acs_url,
        sp_entity_id,
    }
}

async fn start(store: Store) -> (&'static SamlIdp, Gatehouse, SamlTenant) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let tenant = saml_tenant_with(&gh, trust(idp)).await;
    (idp, gh, tenant)
}

fn profile_for(email: &str) -> SamlProfile {
    SamlProfile::new(email, "Mallory", "Example")
}

fn good_profile() -> SamlProfile {
    profile_for(&format!("{}@good.test", unique("user-")))
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
    async fn genuine(
        gh: &Gatehouse,
        idp: &SamlIdp,
        tenant: &SamlTenant,
        profile: &SamlProfile,
        options: SignInOptions,
    ) -> Login {
        let browser = browser();
        let sso = start_saml_login(&browser, gh, &tenant.slug, idp).await;
        let relay_state = query_param(&sso, "RelayState").expect("RelayState in the redirect");
        let options = SignInOptions {
            acs_url_fallback: Some(tenant.acs_url.clone()),
            ..options
        };
        let post = idp
            .sign_in_with(&browser, &sso, profile, &options)
            .await;
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
        assert_eq!(
            xml_attribute(&xml, "Response", "InResponseTo"),
            post.request.id,
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

    /// Posts this SAMLResponse value (already base64) with the genuine RelayState, from this
    /// login's browser.
    async fn post_encoded(&self, saml_response: &str) -> AcsOutcome {
        post_to_acs(
            &self.browser,
            &self.post.acs_url,
            &[
                ("SAMLResponse", saml_response),
                ("RelayState", self.relay_state.as_str()),
            ],
        )
        .await
    }

    async fn post_xml(&self, xml: &str) -> AcsOutcome {
        self.post_encoded(&encode_saml_response(xml))
            .await
    }
}

/// Only `?login=sso` in a fresh browser (for inputs that need no IdP answer).
struct BareLogin {
    browser: reqwest::Client,
    relay_state: String,
}

impl BareLogin {
    async fn start(gh: &Gatehouse, idp: &SamlIdp, tenant: &SamlTenant) -> BareLogin {
        let browser = browser();
        let sso = start_saml_login(&browser, gh, &tenant.slug, idp).await;
        let relay_state = query_param(&sso, "RelayState").expect("RelayState in the redirect");
        BareLogin {
            browser,
            relay_state,
        }
    }

    async fn post_encoded(&self, tenant: &SamlTenant, saml_response: &str) -> AcsOutcome {
        post_to_acs(
            &self.browser,
            &tenant.acs_url,
            &[
                ("SAMLResponse", saml_response),
                ("RelayState", self.relay_state.as_str()),
            ],
        )
        .await
    }
}



/// Nobody signed in at this tenant and nobody was provisioned.
async fn assert_nobody_signed_in(gh: &Gatehouse, tenant: &SamlTenant) {
    for kind in ["login.succeeded", "user.provisioned", "session.started"] {
        let events = gh
            .audit(&tenant.slug, &[("type", kind)])
            .await;
        assert!(events.is_empty(), "unexpected {kind}: {events:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// XML surgery on the IdP's (known, regular) output: no XML library, just careful string work






/// Replaces the text of the first `NameID` (no nested elements).
fn with_name_id(xml: &str, text: &str) -> String {
    let (start, end) = xml_text_range(xml, "NameID").unwrap_or_else(|| panic!("no NameID in {xml}"));
    format!("{}{text}{}", &xml[..start], &xml[end..])
}

/// Replaces the `ID` attribute value of the element's start tag (the fragment starts with it).
fn with_id(fragment: &str, id: &str) -> String {
    let old = xml_attribute(fragment, "Assertion", "ID").expect("Assertion ID");
    fragment.replacen(&format!("ID=\"{old}\""), &format!("ID=\"{id}\""), 1)
}

/// An attacker's assertion made from the genuine one: signature removed, this ID, NameID and
/// email attribute set to `victim`.
fn evil_assertion(genuine_assertion: &str, id: &str, victim: &str, genuine_email: &str) -> String {
    let unsigned = strip_signatures(genuine_assertion);
    let renamed = with_id(&unsigned, id);
    let evil = with_name_id(&renamed, victim).replace(
        &format!(">{genuine_email}</saml:AttributeValue>"),
        &format!(">{victim}</saml:AttributeValue>"),
    );
    assert!(evil.contains(victim), "{evil}");
    assert!(!evil.contains(genuine_email), "{evil}");
    evil
}

fn evil_id() -> String {
    format!("_evil{}", uuid::Uuid::new_v4().simple())
}

// ---------------------------------------------------------------------------------------------
// Re-signing with the xmlsec1 CLI






// ---------------------------------------------------------------------------------------------
// cases

/// 1. Every ds:Signature removed (Response and Assertion), in both signing modes.
async fn c01_signatures_stripped(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    for assertion_only in [false, true] {
        let case = format!("signatures stripped (assertion_only={assertion_only})");
        let options = SignInOptions {
            assertion_only,
            ..SignInOptions::default()
        };
        let login = Login::genuine(&gh, idp, &tenant, &good_profile(), options).await;
        let expected_signatures = if assertion_only { 1 } else { 2 };
        assert_eq!(count_elements(&login.xml, "Signature"), expected_signatures, "{}", login.xml);
        let outcome = login
            .post_xml(&strip_signatures(&login.xml))
            .await;
        assert_refused(&gh, &tenant, &login.browser, &outcome, SIGNATURE_MISSING, 400, &case).await;
    }
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 2. The NameID and the email attribute changed to another user of the allowed domain.
async fn c02_tampered_name_id(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let profile = good_profile();
    let login = Login::genuine(&gh, idp, &tenant, &profile, SignInOptions::default()).await;
    let victim = format!("{}@good.test", unique("ceo-"));
    let tampered = login.xml.replace(&profile.email, &victim);
    assert_eq!(xml_text(&tampered, "NameID").as_deref(), Some(victim.as_str()));
    // The verifier used as evidence in case 3 tells the two apart.
    assert!(xmlsec_verifies(&login.xml, idp.certificate_pem()), "{}", login.xml);
    assert!(!xmlsec_verifies(&tampered, idp.certificate_pem()), "{tampered}");
    let outcome = login.post_xml(&tampered).await;
    assert_refused(&gh, &tenant, &login.browser, &outcome, SIGNATURE_INVALID, 400, "tampered NameID")
        .await;
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 3. Comment injection into the NameID.
///
/// (a) A comment plus text appended to a genuine `user@good.test` (`user@good.test<!---->.evil.test`):
///     the signed text changes, so the signature fails: `saml_signature_invalid`.
/// (b) The classic attack (CVE-2017-11427 class): the IdP genuinely signs
///     `user@good.test.evil.test` (an account the attacker controls at an IdP the tenant
///     trusts); the attacker inserts `<!---->` after `user@good.test`. Comments are not part of
///     the exclusive-c14n (without comments) digest, so the signature still verifies (checked
///     here with `xmlsec1 --verify`); an SP that reads only the first text node would sign in
///     `user@good.test`. Observed: `saml_signature_invalid`, because samael's reduce step
///     (`reduce_xml_to_signed`, mode ValidateAndMarkNoAncestors) maps the verified, comment-free
///     pre-digest fragment back onto the original tree node by node, and the comment-split text
///     nodes do not match, so samael fails closed. The refusal is safe; the reason (and the
///     detail "no configured IdP certificate verifies the signature") is imprecise, since the
///     signature itself is valid. Had it got past samael, the plugin reads the NameID with
///     `full_text` (all text nodes), so the domain check would refuse `good.test.evil.test`.
async fn c03_comment_injected_name_id(store: Store) {
    let (idp, gh, tenant) = start(store).await;

    // (a)
    let profile = good_profile();
    let login = Login::genuine(&gh, idp, &tenant, &profile, SignInOptions::default()).await;
    let injected = with_name_id(&login.xml, &format!("{}<!---->.evil.test", profile.email));
    let outcome = login.post_xml(&injected).await;
    assert_refused(
        &gh,
        &tenant,
        &login.browser,
        &outcome,
        SIGNATURE_INVALID,
        400,
        "comment + text appended to the NameID",
    )
    .await;

    // (b)
    let victim = format!("{}@good.test", unique("ceo-"));
    let signed_value = format!("{victim}.evil.test");
    let login = Login::genuine(&gh, idp, &tenant, &profile_for(&signed_value), SignInOptions::default()).await;
    assert_eq!(xml_text(&login.xml, "NameID").as_deref(), Some(signed_value.as_str()));
    let injected = login.xml.replace(
        &format!(">{signed_value}<"),
        &format!(">{victim}<!---->.evil.test<"),
    );
    assert_eq!(
        injected
            .matches("<!---->")
            .count(),
        2,
        "the comment goes into the NameID and the email attribute: {injected}"
    );
    assert!(
        xmlsec_verifies(&injected, idp.certificate_pem()),
        "the comment must leave the IdP's signature valid: {injected}"
    );
    let outcome = login.post_xml(&injected).await;
    let event = assert_refused(
        &gh,
        &tenant,
        &login.browser,
        &outcome,
        SIGNATURE_INVALID,
        400,
        "comment injected into a signed NameID",
    )
    .await;
    assert!(event["email"].is_null(), "no identity may come out of it: {event:#}");
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 4. XML signature wrapping: an unsigned copy of the assertion naming the attacker's victim,
/// inserted before the signed one; with a new ID and with the signed one's ID.
async fn c04_xsw_assertion_copy_before_signed_one(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    for assertion_only in [false, true] {
        for same_id in [false, true] {
            let case = format!("XSW copy before the signed assertion (same_id={same_id}, assertion_only={assertion_only})");
            let profile = good_profile();
            let options = SignInOptions {
                assertion_only,
                ..SignInOptions::default()
            };
            let login = Login::genuine(&gh, idp, &tenant, &profile, options).await;
            let genuine = element(&login.xml, "Assertion");
            let genuine_id = xml_attribute(genuine, "Assertion", "ID").expect("Assertion ID");
            let id = if same_id { genuine_id } else { evil_id() };
            let victim = format!("{}@good.test", unique("ceo-"));
            let evil = evil_assertion(genuine, &id, &victim, &profile.email);
            let wrapped = login
                .xml
                .replacen(genuine, &format!("{evil}{genuine}"), 1);
            assert_eq!(count_elements(&wrapped, "Assertion"), 2, "{wrapped}");
            let outcome = login.post_xml(&wrapped).await;
            let reason = if same_id { DUPLICATE_ID } else { ASSERTION_COUNT };
            assert_refused(&gh, &tenant, &login.browser, &outcome, reason, 400, &case).await;
        }
    }
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 5. XML signature wrapping: the signed assertion moved into `samlp:Extensions` (where SAML
/// Core allows arbitrary content), an unsigned evil assertion in its place.
///
/// Observed reason: `saml_signature_reference_invalid`. The shape checks run in the order
/// unique IDs, signature references, assertion count; the evil assertion has its own ID, so
/// the first check that trips is the reference check: the moved assertion's ds:Signature now
/// sits on an Assertion whose parent is Extensions, not the Response ("a signature sits outside
/// a Response or Assertion"), before the assertion count (2) is even looked at.
async fn c05_xsw_signed_assertion_moved_into_extensions(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    for assertion_only in [false, true] {
        let case = format!("XSW signed assertion in Extensions (assertion_only={assertion_only})");
        let profile = good_profile();
        let options = SignInOptions {
            assertion_only,
            ..SignInOptions::default()
        };
        let login = Login::genuine(&gh, idp, &tenant, &profile, options).await;
        let genuine = element(&login.xml, "Assertion").to_string();
        let victim = format!("{}@good.test", unique("ceo-"));
        let evil = evil_assertion(&genuine, &evil_id(), &victim, &profile.email);
        // The genuine assertion's place gets the evil one; the genuine one goes into
        // Extensions, which the schema puts before Status.
        let swapped = login.xml.replacen(&genuine, &evil, 1);
        let (status_start, _) = element_range(&swapped, "Status", 0).expect("Status");
        let wrapped = format!(
            "{}<samlp:Extensions>{genuine}</samlp:Extensions>{}",
            &swapped[..status_start],
            &swapped[status_start..]
        );
        assert_eq!(count_elements(&wrapped, "Assertion"), 2, "{wrapped}");
        let outcome = login.post_xml(&wrapped).await;
        assert_refused(
            &gh,
            &tenant,
            &login.browser,
            &outcome,
            SIGNATURE_REFERENCE_INVALID,
            400,
            &case,
        )
        .await;
    }
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 6. A DOCTYPE with internal entities (billion laughs) before the genuine Response, the
/// entity used in the NameID.
async fn c06_doctype_with_internal_entities(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let profile = good_profile();
    let login = Login::genuine(&gh, idp, &tenant, &profile, SignInOptions::default()).await;
    let mut doctype = String::from("<!DOCTYPE samlp:Response [\n<!ENTITY lol \"lol\">\n");
    for level in 1..=9 {
        let previous = if level == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", level - 1)
        };
        doctype.push_str(&format!(
            "<!ENTITY lol{level} \"{}\">\n",
            format!("&{previous};").repeat(10)
        ));
    }
    doctype.push_str("]>\n");
    let hostile = format!(
        "{doctype}{}",
        with_name_id(&login.xml, &format!("{}&lol9;", profile.email))
    );
    let outcome = login.post_xml(&hostile).await;
    assert_refused(&gh, &tenant, &login.browser, &outcome, DTD_FORBIDDEN, 400, "billion laughs DOCTYPE")
        .await;
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 7. Not base64; base64 of text that is not XML; base64 of XML that is not a samlp:Response.
async fn c07_garbage_base64_and_non_xml(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let not_xml = encode_saml_response("this is not XML at all <<< & >>>");
    let not_response = encode_saml_response(r#"<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>"#);
    for (case, value) in [
        ("garbage base64", "!!! not base64 *** %%% ~~~"),
        ("base64 of non-XML", not_xml.as_str()),
        ("base64 of XML that is not a Response", not_response.as_str()),
    ] {
        let login = BareLogin::start(&gh, idp, &tenant).await;
        let outcome = login.post_encoded(&tenant, value).await;
        assert_refused(&gh, &tenant, &login.browser, &outcome, MALFORMED, 400, case).await;
    }
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 7b. Elements nested thousands deep (a stack-exhaustion attempt) in the ACS input and in
/// pasted IdP metadata: refused as malformed, and the service keeps answering.
async fn c07_deep_nesting_is_refused_and_the_service_survives(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    for depth in [500usize, 20_000] {
        let deep = format!(
            "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"_x\">{}{}</samlp:Response>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        let login = BareLogin::start(&gh, idp, &tenant).await;
        let outcome = login.post_encoded(&tenant, &encode_saml_response(&deep)).await;
        assert_refused(&gh, &tenant, &login.browser, &outcome, MALFORMED, 400, "deep nesting").await;
    }
    let deep_metadata = format!(
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"x\">{}{}</md:EntityDescriptor>",
        "<a>".repeat(7_000),
        "</a>".repeat(7_000)
    );
    let page = gh
        .admin_put(
            &format!("/api/v1/tenants/{}/connections/deep", tenant.slug),
            &json!({"protocol": "saml", "label": "Deep", "config": {
                "idp_metadata_xml": deep_metadata, "allowed_domains": ["good.test"]}}),
        )
        .await;
    page.assert_problem(422, Some("/config/idp_metadata_xml"));
    let ready = get(&client(), &gh.url("/readyz")).await;
    assert_eq!(ready.status.as_u16(), 200, "the service must survive: {}", ready.describe());
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 8. The genuine response padded (inside a comment) to more than 256 KiB of base64, while the
/// whole form stays under the ACS's 320 KiB body limit: the plugin's size check refuses it.
async fn c08_oversized_response(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let login = Login::genuine(&gh, idp, &tenant, &good_profile(), SignInOptions::default()).await;
    // Base64 of "AAA" is "QUFB": the padding costs nothing extra in the form encoding.
    let target_encoded = 270 * 1024;
    let padding = "A".repeat(target_encoded * 3 / 4 - login.xml.len());
    let close = "</samlp:Response>";
    assert!(login.xml.ends_with(close), "{}", login.xml);
    let padded = format!(
        "{}<!--{padding}-->{close}",
        &login.xml[..login.xml.len() - close.len()]
    );
    let encoded = encode_saml_response(&padded);
    let body_len = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLResponse", &encoded)
        .append_pair("RelayState", &login.relay_state)
        .finish()
        .len();
    assert!(encoded.len() > MAX_ENCODED, "{} bytes", encoded.len());
    assert!(body_len < ACS_BODY_LIMIT, "the form is {body_len} bytes");
    let outcome = login.post_encoded(&encoded).await;
    assert_refused(&gh, &tenant, &login.browser, &outcome, TOO_LARGE, 400, "oversized SAMLResponse")
        .await;
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 8b. A form over the ACS's 320 KiB body limit: 413 and a plain page, before any attempt.
async fn c08_body_over_acs_limit_is_413(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let login = BareLogin::start(&gh, idp, &tenant).await;
    let huge = "A".repeat(ACS_BODY_LIMIT + 64 * 1024);
    let response = login
        .browser
        .post(&tenant.acs_url)
        .form(&[
            ("SAMLResponse", huge.as_str()),
            ("RelayState", login.relay_state.as_str()),
        ])
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {} with a {} byte form: {e}", tenant.acs_url, huge.len()));
    let page = Page::read(&tenant.acs_url, response).await;
    page.assert_status(413);
    assert!(
        page.content_type()
            .starts_with("text/html"),
        "{}",
        page.describe()
    );
    assert!(page.location().is_none(), "{}", page.describe());
    assert!(page.attempt_id().is_none(), "no attempt for an unread form: {}", page.describe());
    page.assert_no_session_cookie();
    gh.assert_no_session(&login.browser).await;
    let failed = gh
        .audit(&tenant.slug, &[("type", "login.failed")])
        .await;
    assert!(failed.is_empty(), "no login.failed for an unread form: {failed:#?}");
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 9. The connection trusts the IdP's certificate but names another IdP entity ID: the
/// genuine, validly signed response carries the real IdP's Issuer.
async fn c09_issuer_mismatch(store: Store) {
    let idp = SamlIdp::shared().await;
    let gh = Gatehouse::start(store).await;
    let mut config = trust(idp);
    config["idp_entity_id"] = json!("urn:gatehouse:test:some-other-idp");
    let tenant = saml_tenant_with(&gh, config).await;
    let login = Login::genuine(&gh, idp, &tenant, &good_profile(), SignInOptions::default()).await;
    assert_eq!(xml_text(&login.xml, "Issuer").as_deref(), Some(idp.entity_id()));
    let outcome = login
        .post_encoded(login.post.saml_response())
        .await;
    assert_refused(&gh, &tenant, &login.browser, &outcome, ISSUER_MISMATCH, 400, "Issuer mismatch").await;
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 10. The real IdP signs a response for another SP's audience (saml-idp's audience setting).
async fn c10_audience_of_another_sp(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let other = "https://other-sp.example/saml/metadata";
    let options = SignInOptions {
        audience: Some(other.to_string()),
        ..SignInOptions::default()
    };
    let login = Login::genuine(&gh, idp, &tenant, &good_profile(), options).await;
    assert_eq!(xml_text(&login.xml, "Audience").as_deref(), Some(other), "{}", login.xml);
    assert_ne!(other, tenant.sp_entity_id);
    let outcome = login
        .post_encoded(login.post.saml_response())
        .await;
    assert_refused(&gh, &tenant, &login.browser, &outcome, AUDIENCE_MISMATCH, 400, "wrong Audience").await;
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 11. The IdP's genuine answer to login 1 (browser 1), posted with login 2's RelayState from
/// browser 2: flow cookie and RelayState are valid for login 2, InResponseTo names login 1.
async fn c11_in_response_to_of_another_login(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let first = Login::genuine(&gh, idp, &tenant, &good_profile(), SignInOptions::default()).await;
    let second = BareLogin::start(&gh, idp, &tenant).await;
    assert_ne!(first.relay_state, second.relay_state);
    let outcome = second
        .post_encoded(&tenant, first.post.saml_response())
        .await;
    assert_refused(
        &gh,
        &tenant,
        &second.browser,
        &outcome,
        IN_RESPONSE_TO_MISMATCH,
        400,
        "InResponseTo of another login",
    )
    .await;
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 12. Signatures stripped, the Response re-signed (validly, rsa-sha256) by a fresh key whose
/// certificate travels in KeyInfo: keys inside the message are never used.
async fn c12_signed_by_unknown_key_in_key_info(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let profile = good_profile();
    let login = Login::genuine(&gh, idp, &tenant, &profile, SignInOptions::default()).await;
    let keys = tempfile::Builder::new()
        .prefix("gatehouse-test-saml-hostile-keys-")
        .tempdir()
        .expect("temporary dir");
    let (attacker, cert, key) = generate_certificate_in(keys.path(), "attacker", "Attacker IdP");
    let signed = resign_response(&login.xml, &key, &cert, RSA_SHA256, SHA256);
    let embedded: String = attacker
        .cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let carried: String = xml_text(&signed, "X509Certificate")
        .expect("X509Certificate")
        .split_whitespace()
        .collect();
    assert_eq!(carried, embedded, "the attacker's certificate must be in KeyInfo");
    let outcome = login.post_xml(&signed).await;
    assert_refused(
        &gh,
        &tenant,
        &login.browser,
        &outcome,
        SIGNATURE_INVALID,
        400,
        "signed by an unknown key in KeyInfo",
    )
    .await;
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 13. Signatures stripped, the Response re-signed by the IdP's own key with rsa-sha1/sha1:
/// a valid signature by the trusted key, refused only for its algorithm.
async fn c13_sha1_signature_by_the_idp_key(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let (key, cert) = idp_key_files(idp);
    let login = Login::genuine(&gh, idp, &tenant, &good_profile(), SignInOptions::default()).await;
    let signed = resign_response(&login.xml, &key, &cert, RSA_SHA1, SHA1);
    let outcome = login.post_xml(&signed).await;
    assert_refused(&gh, &tenant, &login.browser, &outcome, ALGORITHM_FORBIDDEN, 400, "SHA-1 signature")
        .await;
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// 14 (beyond the list). Only the Assertion signed (saml-idp `signResponse=false`), and the
/// unsigned Response's Destination, Issuer or Status changed: samael drops unsigned content,
/// so these must be checked on the Response itself (issue 3, "checked even when only the
/// Assertion is signed").
async fn c14_unsigned_response_fields_when_only_the_assertion_is_signed(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let success = "urn:oasis:names:tc:SAML:2.0:status:Success";
    let responder = "urn:oasis:names:tc:SAML:2.0:status:Responder";
    type Mutation = Box<dyn Fn(&str, &SamlTenant, &SamlIdp) -> String>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "unsigned Response Destination changed",
            Box::new(|xml, tenant, _| {
                let attacker = tenant.acs_url.replace("/acs", "/elsewhere");
                xml.replacen(
                    &format!("Destination=\"{}\"", tenant.acs_url),
                    &format!("Destination=\"{attacker}\""),
                    1,
                )
            }),
            DESTINATION_MISMATCH,
        ),
        (
            "unsigned Response Issuer changed",
            Box::new(|xml, _, idp| {
                xml.replacen(
                    &format!(">{}</saml:Issuer>", idp.entity_id()),
                    ">urn:gatehouse:test:some-other-idp</saml:Issuer>",
                    1,
                )
            }),
            ISSUER_MISMATCH,
        ),
        (
            "unsigned Response Status changed",
            Box::new(move |xml, _, _| xml.replacen(success, responder, 1)),
            STATUS_NOT_SUCCESS,
        ),
    ];
    for (case, mutate, reason) in cases {
        let options = SignInOptions {
            assertion_only: true,
            ..SignInOptions::default()
        };
        let login = Login::genuine(&gh, idp, &tenant, &good_profile(), options).await;
        let (assertion_start, _) = element_range(&login.xml, "Assertion", 0).expect("Assertion");
        assert!(
            element_range(&login.xml[..assertion_start], "Signature", 0).is_none(),
            "the Response itself must be unsigned: {}",
            login.xml
        );
        let mutated = mutate(&login.xml, &tenant, idp);
        assert_ne!(mutated, login.xml, "[{case}] nothing changed");
        let outcome = login.post_xml(&mutated).await;
        assert_refused(&gh, &tenant, &login.browser, &outcome, reason, 400, case).await;
    }
    assert_nobody_signed_in(&gh, &tenant).await;
}

/// Control for 12 and 13: the same re-signing with the IdP's own key and rsa-sha256 is
/// accepted, so those refusals are about the key and the algorithm, not the re-signing.
async fn control_resigned_by_the_idp_key_with_sha256_is_accepted(store: Store) {
    let (idp, gh, tenant) = start(store).await;
    let (key, cert) = idp_key_files(idp);
    let profile = good_profile();
    let login = Login::genuine(&gh, idp, &tenant, &profile, SignInOptions::default()).await;
    let signed = resign_response(&login.xml, &key, &cert, RSA_SHA256, SHA256);
    let outcome = login.post_xml(&signed).await;
    let page = outcome
        .continued
        .as_ref()
        .unwrap_or_else(|| panic!("no follow-up: {}", outcome.describe()));
    assert_eq!(page.status.as_u16(), 302, "{}", outcome.describe());
    assert!(
        page.set_cookie("gatehouse_session")
            .is_some(),
        "{}",
        outcome.describe()
    );
    let session = gh.assert_session(&login.browser).await;
    assert_eq!(session["email"], json!(profile.email), "{session:#}");
    assert_eq!(session["tenant"], json!(tenant.slug), "{session:#}");
}
