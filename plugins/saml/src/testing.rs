//! A test identity provider for benches and fuzz targets (feature `testing`, never default).
//!
//! Keys are generated at run time; Response templates are written here and signed in-process
//! by xmlsec through samael (`Crypto::sign_xml`, PKCS#1 DER key), as the unit tests' test IdP
//! does (`acs/test_idp.rs`, `cfg(test)` only). This copy is the minimal part the bench
//! (`benches/saml_acs.rs`) and the fuzz crate (`plugins/saml/fuzz`) need: a valid signed
//! answer of a chosen size, the matching config and expectations, and an encrypted variant.
//! Nothing here is used by the plugin itself.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_plugin_sdk::{ExternalIdentity, PluginError};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};
use samael::crypto::{Crypto, CryptoProvider};
use serde_json::json;

use crate::acs::{consume, Expected};
use crate::config::Config;

const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";

/// The IdP entity ID the test config trusts.
pub const IDP_ENTITY: &str = "https://idp.example.test/metadata";
/// Our SP entity ID (Audience).
pub const SP_ENTITY: &str = "https://gatehouse.test/acme/sso/conn1";
/// Our ACS URL (Destination, Recipient).
pub const ACS: &str = "https://gatehouse.test/acme/sso/conn1/acs";
/// The AuthnRequest ID the login sent.
pub const REQUEST_ID: &str = "_req0123456789abcdef";
/// A fixed "now" (2030-01-01T00:00:00Z), inside the generated certificates' validity.
pub const NOW: i64 = 1_893_456_000;

/// A signing key with its self-signed certificate.
pub struct Idp {
    /// The private key.
    pub key: PKey<Private>,
    /// The same key, PKCS#1 DER, as `Crypto::sign_xml` takes it.
    pub pkcs1_der: Vec<u8>,
    /// The self-signed certificate.
    pub cert: X509,
}

impl Idp {
    /// A fresh RSA-2048 key and a ten-year self-signed certificate.
    pub fn generate(cn: &str) -> Idp {
        Self::with_key(cn, Rsa::generate(2048).expect("RSA key"))
    }

    /// A ten-year self-signed certificate for a PKCS#1 PEM key.
    pub fn from_pem(cn: &str, pkcs1_pem: &str) -> Idp {
        Self::with_key(
            cn,
            Rsa::private_key_from_pem(pkcs1_pem.as_bytes()).expect("PKCS#1 PEM key"),
        )
    }

    fn with_key(cn: &str, rsa: Rsa<Private>) -> Idp {
        let pkcs1_der = rsa
            .private_key_to_der()
            .expect("PKCS#1 DER");
        let key = PKey::from_rsa(rsa).expect("PKey");
        let mut name = X509NameBuilder::new().expect("name builder");
        name.append_entry_by_text("CN", cn)
            .expect("CN");
        let name = name.build();
        let mut builder = X509::builder().expect("X509 builder");
        builder.set_version(2).expect("version");
        let serial = BigNum::from_u32(1)
            .and_then(|n| n.to_asn1_integer())
            .expect("serial");
        builder
            .set_serial_number(&serial)
            .expect("serial");
        builder
            .set_subject_name(&name)
            .expect("subject");
        builder
            .set_issuer_name(&name)
            .expect("issuer");
        builder
            .set_pubkey(&key)
            .expect("public key");
        builder
            .set_not_before(&Asn1Time::days_from_now(0).expect("time"))
            .expect("not before");
        builder
            .set_not_after(&Asn1Time::days_from_now(3650).expect("time"))
            .expect("not after");
        builder
            .sign(&key, MessageDigest::sha256())
            .expect("self-signature");
        Idp {
            key,
            pkcs1_der,
            cert: builder.build(),
        }
    }

    /// The certificate, base64 DER.
    pub fn cert_b64(&self) -> String {
        STANDARD.encode(
            self.cert
                .to_der()
                .expect("certificate DER"),
        )
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> String {
        String::from_utf8(
            self.cert
                .to_pem()
                .expect("certificate PEM"),
        )
        .expect("PEM is ASCII")
    }

    /// The private key, PKCS#8 PEM (the config's `sp_private_key` form).
    pub fn key_pem(&self) -> String {
        String::from_utf8(
            self.key
                .private_key_to_pem_pkcs8()
                .expect("PKCS#8 PEM"),
        )
        .expect("PEM is ASCII")
    }

    /// Signs the first `ds:Signature` template in document order.
    pub fn sign(&self, xml: &str) -> String {
        let signed = Crypto::sign_xml(xml, &self.pkcs1_der).expect("xmlsec signs the template");
        strip_declaration(&signed)
    }
}

/// The IdP whose certificate [`config`] trusts. Its key is fixed ([`IDP_TEST_KEY`]) so that a
/// signed document saved by one run (a fuzz corpus entry or crash) still verifies in the next.
pub fn idp() -> &'static Idp {
    static IDP: OnceLock<Idp> = OnceLock::new();
    IDP.get_or_init(|| Idp::from_pem("idp.example.test", IDP_TEST_KEY))
}

/// A second key: an attacker's IdP, or the SP's own key in [`config_with_sp_key`].
pub fn other() -> &'static Idp {
    static OTHER: OnceLock<Idp> = OnceLock::new();
    OTHER.get_or_init(|| Idp::from_pem("other.example.test", OTHER_TEST_KEY))
}

/// TEST ONLY, published on purpose: the test IdP's RSA-2048 key (PKCS#1 PEM).
pub const IDP_TEST_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEA5bsZjKha9dXULx81CNOQ71CAJruhd/buZzdg15UNXiQjUvju
36FWqB92ENMozk92YivgUVkBAmSmZEXSuSJLSmcCBjy9sTxKFGP/6c/K0/FAgvrO
9Rnm3A0gBXyDp1O90vQCaAwQ7sRP++jFqZuAVCnLK9cjDtr0pGuLDxP6/3DnKcAP
HZ94M9zVevBuJ8hPrNGO4T3RYKSztzZNwF+1x2huEdoU21PPRwkV5TuG60FKfy4n
pqZTsIwh7lYrwemXi/OLUKr2fhlUKyd8Rol38RXAulF6702w+noBFtMD7cnMRykU
3vm/Oe0Il+R8wVphXMEkpn1GDdY4K//XRb7+OQIDAQABAoIBAATKjRbvuqO49t5y
Bb/pgEYBEJOOOZXBwAYSnWA3QJKlL9nqBtRbhKEuWv7KldKPGg292V7k9SMOdy4G
vhIRPUJmQwa4ubv44SW+XxIQ3Mukph1qAb4FpGWUPf9zS3nsyPWXR0Orgo2YqUwW
D8vj48fz+uPPDlEZeRb2E1RB2Zi+Dexw5k0IEXhC8FOhkBgdKSy4/qpEjxWcbOlr
WLXae63QRNJT5whsibEZ/MhH4LbQR8qBpFlXTAgmOWTsMGKXo9opQpGiHYzXV+7a
6lJm8IEUVb6jYYNk/CYc8J5Ip7CLTbje/dyUyBWd15ZG2YeUwnrTlBZQN4SzikUc
nQDNB+ECgYEA9N/WRPSAnNJwL2bE9FLG4QKJGK3PeqVQjgo5eMHSk+jeUMN3W3fr
ZJ7pIyJKS8bzQjAQYA5sY1MoT1m/QxteyIM5D2qSLuU5GFosrsyz0Xm63+mob+7w
btxD0wFWY3sNPmhkwKYEx/ekZGrHWtIQqRMGsSgel5SJNOngcigaSyECgYEA8Csg
fHNcX7aWBRNyLgrq6YK3ytnzaWfymEOXHGtgNUdFVA7WJJiNwXTCHJTFqF/EdpAc
aoRGgvPErJoqJ38PcWZ1SDYTKfalgxPqKTu8EuqD/Vv3QKgjno7aadhu+4oZJTDc
Tli0aV1COJl+p/Ps77dKNjsY50SK9hwcB73gqBkCgYEAu9w1X/VL7gOruVHYa7BN
jzYIw3wknmzRHgdODAx2Zq7ST5eFrBCV8D3Rkfiuku/wk6iYB3lJQfH8DNRHXU5U
KvQxBFi4CW4lnT8g5IF6uovvB/UUGbtvjT1Cc1ClW/B9OpGQKhOzu02LOtaIVm6u
BWfpTGQBBD0Z/hQm8q09bsECgYAig3AVslZSAuEoNZUw/Kyphfl3kz6hpSh9rSjo
Ep4uyeEypTcs5ydn56mFhfOpsKmBCFCtFfk0FGftDfKE3oOPnlO4Xtz+KM28On5q
EoWCimURYcf0aLVFse29TDcWus/GQnFGaQT0J0y+6YAEDs+72zE0/eUkRvtZRszY
Z/cC8QKBgF/gU4/uyHlE50QmBD9h113BAzJhH8qZHY6SpnRD79aVaPUHJBg365fq
OiwTb4BBfQo8B3tOUDcVATbSwVYEuuvX0nM/3B24762H123a8fSYnytHQ+HGtnNI
nhsHIiZzKzu1h7yNJEtWvWFz58YqJD6HRv3hHkHPsoy6ILwAVkSh
-----END RSA PRIVATE KEY-----";

/// TEST ONLY, published on purpose: the second test key (PKCS#1 PEM).
pub const OTHER_TEST_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAqetALJnm2EFcqvLCeDu4CnAXjxlfecz1+haMeH7ZLXt7PIjM
7mWIPXCohRHVwdC9/3sJhCnbCzkiQWGqsoHiidAzDYr8UN992lv2Zkg2D+dXzZ9g
30C20V9YtLB25w+xVrcnP12MX1v2rxW4fhUcDl3gY6jSSmuMaYLqws4cL+33PQgv
6ElHcRzGwIMgbNL0pEkDPc1IFPLRttyNARBqhzoLTM70U12sBFfEjrtosa3aIdJM
ce3B9xUI6g2deUXLP7UehGcBrDEDeSDEJG2dRoeVSBxtZoocqLtp6K02+PVJ0rfk
RuHtkfUoBg5bC0FZZ63zT/jU+6l0za9E3d6ZxwIDAQABAoIBAAIiEJzjS2y4awyt
MFgRxGweQ9RN6M8RDcO8F9+gglCVbK4yAN9yaWva4zKwc6Cl9OgS2lWWQqPUbaPN
Ve30B79Jt/N+knQETsu4hdJWmXFtYZ4Ue7CxyJCZutE0J56JhS5BWzTq3G+LKm5S
0MQ8bZq8kPT9CSERLf41qc7LYrrqI5X7BE57ecKsHrF5dSGxD9jkjCy4vDqer2Fk
V16agO2y6c7A6bWmQ4S9iNYYLfpwP8GpOqEzo9zfb6bpgb2kIoigVrUc0i398k2H
dp4YvoKOSOO4MqKrggLOLIqV6zDaSFdApcGCvEg9eKX4bwKahHApK5RP36Md2KgC
EZP3IFECgYEA47ptmBe/G39yDnIOwYrqL5eCUKeSa6et8sXFNR0vEnza6LPIBhsg
hZKL2qt3aK0j3FS3t7kOaZvAzS30LjyBjH0XCSzSoBdTymmFI6jQ9Do5z+H7FDe/
FjAWxd64o+J/ABUcvzkUBAw4A4/bkmwbwqOtNHGmHEHj6HFk5EJNwl8CgYEAvwOM
xJm1hp/04sBLSTt28Bf9FggOM7WTMgsX6BDQ/23Fe/Ybom56k0Ma8qvfj1yHLLnn
roD04mYgdglaLQvoa1TFf1p7fGZfVN+VW6FIooJX/WhIAA2K74Z/xV0o9t1130n9
VkH4vVg1J010Zq6V3LM7ovrxV7vuyBrl6TLW8ZkCgYBQQCdU3LFtCElyS8FldQW4
BcVXlOXlaC7FiepIIGOxOSyPqqNHe5HHYHBGe/xVeAZWI8imRuGMV+XmqFYPYSUq
E/7lLdV/sxjFENBpU5lnJ4mt923anxaIxCOSUT1yC2RD7Cy4Om4SSxgGMVDoVY6m
1bU48P/fn1yoUiWCxtbOMwKBgFmHE2puVNuli0TgNik72tJLnA7Adc+cskIJWwol
H6Ao1h/0yR0HxSHSmQXWsvDhwGWhOMrcnGqkzWAloANvCl+MGwlG4ov6+4GvTbTl
0kKA7zbRsrV7o3wCwU5DDNkwEXg3mKrePvSYLEmgjwc1mv4Xb8NC9O1XI2Lc4Je9
gWs5AoGBAI3tg+76lNRJnrrY1g6xp0+R+MqQ7UwKgJy5PQIk3jisEDy5d2WjN3RY
EJKSH1ADTuOY2NlaM7mSkQuv8e91Mvsyd7N0WJYvC0qXv2jNDDSt0fI/olLFBBVK
XK0f6rSYcxdgHJ91MUQBaAPzKQH65jvMtj2Hf2K8WI1ga+FRoz/g
-----END RSA PRIVATE KEY-----";

fn strip_declaration(xml: &str) -> String {
    let xml = xml.trim();
    match xml.strip_prefix("<?xml") {
        Some(rest) => match rest.find("?>") {
            Some(end) => rest[end + 2..].trim().to_owned(),
            None => xml.to_owned(),
        },
        None => xml.to_owned(),
    }
}

/// What a bench or fuzz seed may vary in a Response.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Response `ID`.
    pub response_id: String,
    /// Assertion `ID`.
    pub assertion_id: String,
    /// NameID text (emailAddress format).
    pub name_id: String,
    /// Sign the Response.
    pub sign_response: bool,
    /// Sign the Assertion on its own.
    pub sign_assertion: bool,
    /// Extra `saml:Attribute` elements, each about [`PADDING_ATTRIBUTE_BYTES`] long.
    pub padding_attributes: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            response_id: "_resp1".into(),
            assertion_id: "_assert1".into(),
            name_id: "ada@example.com".into(),
            sign_response: true,
            sign_assertion: false,
            padding_attributes: 0,
        }
    }
}

/// The approximate length of one padding attribute.
pub const PADDING_ATTRIBUTE_BYTES: usize = 128;

/// SAML `dateTime` of a Unix time.
pub fn time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .expect("time in range")
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An empty rsa-sha256 / sha256 enveloped signature over `#id`, for xmlsec to fill.
pub fn signature_template(id: &str) -> String {
    format!(
        concat!(
            r#"<ds:Signature xmlns:ds="{ds}"><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>"#,
            r##"<ds:Reference URI="#{id}"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
            r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"</ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#,
            r#"<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue></ds:SignatureValue></ds:Signature>"#
        ),
        ds = NS_DSIG,
        id = id,
    )
}

fn padding(count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                concat!(
                    r#"<saml:Attribute Name="urn:example:padding:{i:06}">"#,
                    "<saml:AttributeValue>{value}</saml:AttributeValue></saml:Attribute>"
                ),
                i = i,
                value = "p".repeat(48),
            )
        })
        .collect()
}

/// The assertion, unsigned, or signed on its own when `spec.sign_assertion`.
pub fn assertion(spec: &Spec, signer: &Idp) -> String {
    let signature = if spec.sign_assertion {
        signature_template(&spec.assertion_id)
    } else {
        String::new()
    };
    let xml = format!(
        concat!(
            r#"<saml:Assertion xmlns:saml="{a}" ID="{id}" Version="2.0" IssueInstant="{issued}">"#,
            "<saml:Issuer>{issuer}</saml:Issuer>{signature}",
            r#"<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">"#,
            "{name_id}</saml:NameID>",
            r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
            r#"<saml:SubjectConfirmationData InResponseTo="{request}" NotOnOrAfter="{end}" Recipient="{acs}"/>"#,
            "</saml:SubjectConfirmation></saml:Subject>",
            r#"<saml:Conditions NotBefore="{start}" NotOnOrAfter="{end}">"#,
            "<saml:AudienceRestriction><saml:Audience>{sp}</saml:Audience></saml:AudienceRestriction>",
            "</saml:Conditions>",
            r#"<saml:AuthnStatement AuthnInstant="{issued}"><saml:AuthnContext>"#,
            "<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>",
            "</saml:AuthnContext></saml:AuthnStatement>",
            r#"<saml:AttributeStatement><saml:Attribute Name="displayName">"#,
            "<saml:AttributeValue>Ada Lovelace</saml:AttributeValue></saml:Attribute>",
            r#"<saml:Attribute Name="mail"><saml:AttributeValue>ada.attr@example.com</saml:AttributeValue></saml:Attribute>"#,
            "{padding}</saml:AttributeStatement></saml:Assertion>"
        ),
        a = NS_ASSERTION,
        id = spec.assertion_id,
        issued = time(NOW - 5),
        issuer = IDP_ENTITY,
        signature = signature,
        name_id = spec.name_id,
        request = REQUEST_ID,
        end = time(NOW + 300),
        acs = ACS,
        start = time(NOW - 60),
        sp = SP_ENTITY,
        padding = padding(spec.padding_attributes),
    );
    if spec.sign_assertion {
        signer.sign(&xml)
    } else {
        xml
    }
}

/// The Response around `assertion_xml` (an assertion or an `EncryptedAssertion`), signed when
/// `spec.sign_response`.
pub fn response_with(spec: &Spec, assertion_xml: &str, signer: &Idp) -> String {
    let signature = if spec.sign_response {
        signature_template(&spec.response_id)
    } else {
        String::new()
    };
    let xml = format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="{p}" xmlns:saml="{a}" ID="{id}" Version="2.0" "#,
            r#"IssueInstant="{issued}" Destination="{acs}" InResponseTo="{request}">"#,
            "<saml:Issuer>{issuer}</saml:Issuer>{signature}",
            r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
            "{assertion}</samlp:Response>"
        ),
        p = NS_PROTOCOL,
        a = NS_ASSERTION,
        id = spec.response_id,
        issued = time(NOW - 5),
        acs = ACS,
        request = REQUEST_ID,
        issuer = IDP_ENTITY,
        signature = signature,
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

/// A valid signed Response whose decoded XML is at least `bytes` long (within one padding
/// attribute), padded with attributes inside the signed assertion.
pub fn response_of_size(bytes: usize, sign_response: bool) -> String {
    let base = Spec {
        sign_response,
        sign_assertion: !sign_response,
        ..Spec::default()
    };
    let empty = response(&base).len();
    let one = response(&Spec {
        padding_attributes: 1,
        ..base.clone()
    })
    .len();
    let per = (one - empty).max(1);
    let count = bytes
        .saturating_sub(empty)
        .div_ceil(per);
    response(&Spec {
        padding_attributes: count,
        ..base
    })
}

/// The Response signed over an assertion encrypted for [`other`]'s key (AES-128-GCM,
/// RSA-OAEP), to be checked with [`config_with_sp_key`]. With `sign_assertion`, the assertion
/// is signed before encryption and the Response is left unsigned.
pub fn encrypted_response(sign_assertion: bool) -> String {
    let spec = Spec {
        sign_response: !sign_assertion,
        sign_assertion,
        ..Spec::default()
    };
    let body = encrypt_for_sp(&assertion(&spec, idp()));
    response_with(&spec, &body, idp())
}

fn encrypt_for_sp(assertion_xml: &str) -> String {
    use openssl::rand::rand_bytes;
    use openssl::rsa::Padding;
    use openssl::symm::{encrypt_aead, Cipher};
    let mut key = [0u8; 16];
    let mut iv = [0u8; 12];
    rand_bytes(&mut key).expect("random key");
    rand_bytes(&mut iv).expect("random IV");
    let mut tag = [0u8; 16];
    let ciphertext = encrypt_aead(
        Cipher::aes_128_gcm(),
        &key,
        Some(&iv),
        &[],
        assertion_xml.as_bytes(),
        &mut tag,
    )
    .expect("AES-GCM");
    let content = [iv.as_slice(), &ciphertext, &tag].concat();
    let rsa = other()
        .cert
        .public_key()
        .and_then(|k| k.rsa())
        .expect("RSA public key");
    let mut wrapped = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&key, &mut wrapped, Padding::PKCS1_OAEP)
        .expect("RSA-OAEP");
    wrapped.truncate(n);
    format!(
        concat!(
            r#"<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" "#,
            r#"Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#,
            "<xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData>",
            "</xenc:EncryptedKey></ds:KeyInfo>",
            "<xenc:CipherData><xenc:CipherValue>{content}</xenc:CipherValue></xenc:CipherData>",
            "</xenc:EncryptedData></saml:EncryptedAssertion>"
        ),
        key = STANDARD.encode(&wrapped),
        content = STANDARD.encode(&content),
    )
}

/// The connection config trusting [`idp`].
pub fn config() -> Config {
    Config::parse(&config_json()).expect("test config is valid")
}

/// [`config`] with [`other`]'s key as the SP key, so [`encrypted_response`] decrypts.
pub fn config_with_sp_key() -> Config {
    let mut value = config_json();
    value["sp_private_key"] = other().key_pem().into();
    value["sp_certificate"] = other().cert_pem().into();
    Config::parse(&value).expect("test config with SP key is valid")
}

fn config_json() -> serde_json::Value {
    json!({
        "idp_entity_id": IDP_ENTITY,
        "sso_url": "https://idp.example.test/sso",
        "certificates": [idp().cert_b64()],
        "allowed_domains": ["example.com"],
    })
}

/// What the login that sent [`REQUEST_ID`] expects, at [`NOW`].
pub fn expected() -> Expected<'static> {
    Expected {
        acs_url: ACS,
        sp_entity_id: SP_ENTITY,
        request_id: Some(REQUEST_ID),
        now: NOW,
    }
}

/// Base64 of the XML, as the HTTP-POST binding carries it.
pub fn encode(xml: &str) -> String {
    STANDARD.encode(xml)
}

/// Base64 of arbitrary bytes (a fuzzer's document need not be UTF-8).
pub fn encode_bytes(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The ACS form with `value` as `SAMLResponse`.
pub fn params(value: String) -> Vec<(String, String)> {
    vec![
        ("SAMLResponse".to_owned(), value),
        ("RelayState".to_owned(), "opaque".to_owned()),
    ]
}

/// The full ACS check ([`consume`]) of an XML document, base64-encoded first.
pub fn check(config: &Config, xml: &str) -> Result<ExternalIdentity, PluginError> {
    consume(config, &params(encode(xml)), &expected())
}
