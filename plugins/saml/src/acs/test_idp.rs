//! A test identity provider: keys made at test time, Response templates written here, signed
//! in-process by xmlsec through samael (`Crypto::sign_xml`, PKCS#1 DER key).

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use samael::crypto::{Crypto, CryptoProvider};

use crate::xml::{NS_ASSERTION, NS_DSIG, NS_PROTOCOL};

pub const IDP_ENTITY: &str = "https://idp.example.test/metadata";
pub const SP_ENTITY: &str = "https://gatehouse.test/acme/sso/conn1";
pub const ACS: &str = "https://gatehouse.test/acme/sso/conn1/acs";
pub const REQUEST_ID: &str = "_req0123456789abcdef";
/// A fixed "now" for every test (2030-01-01T00:00:00Z), inside the test certificates' validity.
pub const NOW: i64 = 1_893_456_000;

/// A signing key with its self-signed certificate.
pub struct Idp {
    pub key: PKey<Private>,
    pub pkcs1_der: Vec<u8>,
    pub cert: X509,
}

impl Idp {
    pub fn generate(cn: &str) -> Idp {
        let rsa = Rsa::generate(2048).unwrap();
        let pkcs1_der = rsa.private_key_to_der().unwrap();
        let key = PKey::from_rsa(rsa).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut builder = X509::builder().unwrap();
        builder.set_version(2).unwrap();
        builder
            .set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(&key).unwrap();
        builder.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        // Long enough to cover NOW in 2030.
        builder.set_not_after(&Asn1Time::days_from_now(3650).unwrap()).unwrap();
        builder.sign(&key, MessageDigest::sha256()).unwrap();
        Idp {
            key,
            pkcs1_der,
            cert: builder.build(),
        }
    }

    pub fn cert_b64(&self) -> String {
        STANDARD.encode(self.cert.to_der().unwrap())
    }

    pub fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }

    /// Signs the first `ds:Signature` template in document order.
    pub fn sign(&self, xml: &str) -> String {
        let signed = Crypto::sign_xml(xml, &self.pkcs1_der).expect("xmlsec signs the template");
        strip_declaration(&signed)
    }
}

/// The IdP whose certificate the connection trusts.
pub fn idp() -> &'static Idp {
    static IDP: OnceLock<Idp> = OnceLock::new();
    IDP.get_or_init(|| Idp::generate("idp.example.test"))
}

/// A second IdP key (rollover target, or an attacker).
pub fn other() -> &'static Idp {
    static OTHER: OnceLock<Idp> = OnceLock::new();
    OTHER.get_or_init(|| Idp::generate("other.example.test"))
}

fn strip_declaration(xml: &str) -> String {
    let xml = xml.trim();
    match xml.strip_prefix("<?xml") {
        Some(rest) => rest[rest.find("?>").unwrap() + 2..].trim().to_owned(),
        None => xml.to_owned(),
    }
}

/// Everything a test may vary in a Response.
#[derive(Clone)]
pub struct Spec {
    pub response_id: String,
    pub assertion_id: String,
    pub destination: Option<String>,
    pub in_response_to: Option<String>,
    pub scd_in_response_to: Option<String>,
    pub recipient: String,
    pub audience: Option<String>,
    pub response_issuer: Option<String>,
    pub assertion_issuer: String,
    pub name_id: String,
    pub name_id_format: String,
    pub issue_instant: i64,
    pub not_before: i64,
    pub not_on_or_after: i64,
    pub scd_not_on_or_after: i64,
    pub status: String,
    pub sign_response: bool,
    pub sign_assertion: bool,
    pub sha1: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            response_id: "_resp1".into(),
            assertion_id: "_assert1".into(),
            destination: Some(ACS.into()),
            in_response_to: Some(REQUEST_ID.into()),
            scd_in_response_to: Some(REQUEST_ID.into()),
            recipient: ACS.into(),
            audience: Some(SP_ENTITY.into()),
            response_issuer: Some(IDP_ENTITY.into()),
            assertion_issuer: IDP_ENTITY.into(),
            name_id: "ada@example.com".into(),
            name_id_format: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into(),
            issue_instant: NOW - 5,
            not_before: NOW - 60,
            not_on_or_after: NOW + 300,
            scd_not_on_or_after: NOW + 300,
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".into(),
            sign_response: true,
            sign_assertion: false,
            sha1: false,
        }
    }
}

pub fn time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn signature_template(id: &str, sha1: bool) -> String {
    let (method, digest) = if sha1 {
        ("http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#sha1")
    } else {
        ("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmlenc#sha256")
    };
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="{ds}"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="{method}"/>"#,
            r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"</ds:Transforms><ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue>"#,
            r#"</ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>"#
        ),
        ds = NS_DSIG,
        method = method,
        id = id,
        digest = digest,
    )
}

/// The assertion, unsigned, or signed on its own when `spec.sign_assertion`.
pub fn assertion(spec: &Spec, signer: &Idp) -> String {
    let in_response_to = spec
        .scd_in_response_to
        .as_ref()
        .map(|id| format!(r#" InResponseTo="{id}""#))
        .unwrap_or_default();
    let audience = spec
        .audience
        .as_ref()
        .map(|a| format!("<saml:AudienceRestriction><saml:Audience>{a}</saml:Audience></saml:AudienceRestriction>"))
        .unwrap_or_default();
    let signature = if spec.sign_assertion {
        signature_template(&spec.assertion_id, spec.sha1)
    } else {
        String::new()
    };
    let xml = format!(
        concat!(
            r#"<saml:Assertion xmlns:saml="{a}" ID="{id}" Version="2.0" IssueInstant="{issued}">"#,
            "<saml:Issuer>{issuer}</saml:Issuer>{signature}",
            r#"<saml:Subject><saml:NameID Format="{format}">{name_id}</saml:NameID>"#,
            r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
            r#"<saml:SubjectConfirmationData{irt} NotOnOrAfter="{scd_end}" Recipient="{recipient}"/>"#,
            "</saml:SubjectConfirmation></saml:Subject>",
            r#"<saml:Conditions NotBefore="{start}" NotOnOrAfter="{end}">{audience}</saml:Conditions>"#,
            r#"<saml:AuthnStatement AuthnInstant="{issued}"><saml:AuthnContext>"#,
            "<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>",
            "</saml:AuthnContext></saml:AuthnStatement>",
            r#"<saml:AttributeStatement><saml:Attribute Name="displayName">"#,
            "<saml:AttributeValue>Ada Lovelace</saml:AttributeValue></saml:Attribute>",
            r#"<saml:Attribute Name="mail"><saml:AttributeValue>ada.attr@example.com</saml:AttributeValue></saml:Attribute>"#,
            "</saml:AttributeStatement></saml:Assertion>"
        ),
        a = NS_ASSERTION,
        id = spec.assertion_id,
        issued = time(spec.issue_instant),
        issuer = spec.assertion_issuer,
        signature = signature,
        format = spec.name_id_format,
        name_id = spec.name_id,
        irt = in_response_to,
        scd_end = time(spec.scd_not_on_or_after),
        recipient = spec.recipient,
        start = time(spec.not_before),
        end = time(spec.not_on_or_after),
        audience = audience,
    );
    if spec.sign_assertion {
        signer.sign(&xml)
    } else {
        xml
    }
}

/// The Response around `assertion_xml`, signed when `spec.sign_response`.
pub fn response_with(spec: &Spec, assertion_xml: &str, signer: &Idp) -> String {
    let destination = spec
        .destination
        .as_ref()
        .map(|d| format!(r#" Destination="{d}""#))
        .unwrap_or_default();
    let in_response_to = spec
        .in_response_to
        .as_ref()
        .map(|id| format!(r#" InResponseTo="{id}""#))
        .unwrap_or_default();
    let issuer = spec
        .response_issuer
        .as_ref()
        .map(|i| format!("<saml:Issuer>{i}</saml:Issuer>"))
        .unwrap_or_default();
    let signature = if spec.sign_response {
        signature_template(&spec.response_id, spec.sha1)
    } else {
        String::new()
    };
    let xml = format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="{p}" xmlns:saml="{a}" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{issued}"{destination}{irt}>{issuer}{signature}"#,
            r#"<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>"#,
            "{assertion}</samlp:Response>"
        ),
        p = NS_PROTOCOL,
        a = NS_ASSERTION,
        id = spec.response_id,
        issued = time(spec.issue_instant),
        destination = destination,
        irt = in_response_to,
        issuer = issuer,
        signature = signature,
        status = spec.status,
        assertion = assertion_xml,
    );
    if spec.sign_response {
        signer.sign(&xml)
    } else {
        xml
    }
}

/// A complete Response signed by the trusted IdP.
pub fn response(spec: &Spec) -> String {
    response_with(spec, &assertion(spec, idp()), idp())
}

pub fn encode(xml: &str) -> String {
    STANDARD.encode(xml)
}
