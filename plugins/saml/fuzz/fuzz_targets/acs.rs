//! Fuzzes the ACS check (`acs::consume`, the core of `finish_login`).
//!
//! The first byte picks a mode:
//! - raw form value: the rest, as (lossy) UTF-8, is the `SAMLResponse` field itself;
//! - raw XML: the rest is the decoded document, base64-encoded before the check;
//! - structured: the next byte picks a valid signed answer made by the test IdP (Response
//!   signed, Assertion signed, both, encrypted), and the rest is a script of edits applied to
//!   its XML (delete, insert a token or bytes, copy or move a range, swap tokens, ...) before
//!   base64, so that signature wrapping, comment injection and reference games are reached.
//!
//! Properties: the check never panics, every refusal carries a `saml_*` reason code, and an
//! answer is accepted only with exactly the identity of the unmodified valid answer. (Edits
//! that canonicalisation ignores, such as whitespace inside a tag, a comment in signed text or
//! the quote style of an attribute, may legitimately still verify; a changed identity may not.)

#![no_main]

use std::sync::OnceLock;

use gatehouse_plugin_sdk::ExternalIdentity;
use gatehouse_saml::acs::consume;
use gatehouse_saml::config::Config;
use gatehouse_saml::testing::{self, Spec};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    /// With the SP key (so encrypted answers decrypt); the second also allows SHA-1.
    configs: [Config; 2],
    bases: Vec<String>,
    identity: ExternalIdentity,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let strict = testing::config_with_sp_key();
        let mut sha1 = strict.clone();
        sha1.allow_sha1 = true;
        let bases = vec![
            testing::response(&Spec::default()),
            testing::response(&Spec {
                sign_response: false,
                sign_assertion: true,
                ..Spec::default()
            }),
            testing::response(&Spec {
                sign_assertion: true,
                ..Spec::default()
            }),
            testing::encrypted_response(false),
            testing::encrypted_response(true),
        ];
        let identity = testing::check(&strict, &bases[0]).expect("the base answer is accepted");
        for base in &bases {
            for config in [&strict, &sha1] {
                let other = testing::check(config, base).expect("every base answer is accepted");
                assert_eq!(
                    other, identity,
                    "every base answer asserts the same identity"
                );
            }
        }
        Fixture {
            configs: [strict, sha1],
            bases,
            identity,
        }
    })
}

/// Tokens worth inserting or swapping: markup of the signature-wrapping and injection classes.
const TOKENS: &[&str] = &[
    "<!---->",
    "<!--",
    "-->",
    "<![CDATA[x]]>",
    "<?pi x?>",
    "&lt;",
    "&#x3c;",
    "&amp;",
    "&quot;",
    " ",
    "\n",
    "\r",
    "'",
    "\"",
    "<",
    ">",
    "/>",
    "</",
    "=",
    "ada@example.com",
    "eve@example.com",
    "ada@example.com.evil.test",
    "_assert1",
    "_resp1",
    "_evil",
    " ID=\"_assert1\"",
    " ID=\"_resp1\"",
    " ID=\"_evil\"",
    " Id=\"_assert1\"",
    " xml:id=\"_assert1\"",
    "URI=\"#_assert1\"",
    "URI=\"#_resp1\"",
    "URI=\"\"",
    "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_evil\" Version=\"2.0\">",
    "</saml:Assertion>",
    "<samlp:Extensions>",
    "</samlp:Extensions>",
    "<ds:Object>",
    "</ds:Object>",
    "<saml:NameID>eve@example.com</saml:NameID>",
    "<saml:Attribute Name=\"mail\"><saml:AttributeValue>eve@example.com</saml:AttributeValue></saml:Attribute>",
    "<ds:KeyInfo><ds:RetrievalMethod URI=\"file:///etc/passwd\"/></ds:KeyInfo>",
    "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"/>",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#sha1",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
    "xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"",
    "xmlns:saml=\"urn:evil\"",
    "xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\"",
    "saml:",
    "samlp:",
    "ds:",
    "xenc:",
    "<!DOCTYPE r [<!ENTITY x \"y\">]>",
    "&x;",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
    "urn:oasis:names:tc:SAML:2.0:status:Requester",
    "https://evil.test/acs",
    "2000-01-01T00:00:00Z",
    "2099-01-01T00:00:00Z",
    "\u{feff}",
    "\u{0}",
];

/// A position in the document: mostly at markup boundaries, so edits stay structural.
fn position(doc: &[u8], selector: u16, fine: u8) -> usize {
    if doc.is_empty() {
        return 0;
    }
    if fine & 0x80 != 0 {
        return usize::from(selector) % (doc.len() + 1);
    }
    let anchors: Vec<usize> = doc
        .iter()
        .enumerate()
        .filter(|(_, b)| matches!(b, b'<' | b'>' | b'"' | b' ' | b'='))
        .map(|(i, _)| i)
        .collect();
    if anchors.is_empty() {
        return usize::from(selector) % (doc.len() + 1);
    }
    let anchor = anchors[usize::from(selector) % anchors.len()];
    (anchor + usize::from(fine & 0x03)).min(doc.len())
}

/// The end of the element starting at `start` (a `<`), found by counting tags; or `None`.
fn element_end(doc: &[u8], start: usize) -> Option<usize> {
    if doc.get(start) != Some(&b'<') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = start;
    while i < doc.len() {
        if doc[i] == b'<' {
            let close = doc[i..]
                .iter()
                .position(|&b| b == b'>')?
                + i;
            let tag = &doc[i..=close];
            if tag.starts_with(b"</") {
                depth = depth.checked_sub(1)?;
            } else if !tag.ends_with(b"/>") && !tag.starts_with(b"<?") && !tag.starts_with(b"<!") {
                depth += 1;
            }
            i = close + 1;
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
    None
}

struct Script<'a> {
    bytes: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(first)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }
}

/// Applies the edit script to `doc`; at most 16 edits, the document kept under 64 KiB.
fn mutate(mut doc: Vec<u8>, script: &[u8]) -> Vec<u8> {
    let mut script = Script { bytes: script };
    for _ in 0..16 {
        let Some(op) = script.byte() else { break };
        let Some(selector) = script.u16() else { break };
        let Some(fine) = script.byte() else { break };
        let at = position(&doc, selector, fine);
        match op % 9 {
            // Delete a short range.
            0 => {
                let len = usize::from(script.byte().unwrap_or(1)) % 64 + 1;
                let end = (at + len).min(doc.len());
                doc.drain(at..end);
            }
            // Insert a token.
            1 => {
                let token = TOKENS[usize::from(script.byte().unwrap_or(0)) % TOKENS.len()];
                doc.splice(at..at, token.bytes());
            }
            // Insert raw bytes from the script.
            2 => {
                let len = usize::from(script.byte().unwrap_or(0)) % 16;
                let take = len.min(script.bytes.len());
                let (raw, rest) = script.bytes.split_at(take);
                doc.splice(at..at, raw.iter().copied());
                script.bytes = rest;
            }
            // Copy a whole element elsewhere (signature wrapping).
            3 | 4 => {
                let Some(to_selector) = script.u16() else {
                    break;
                };
                let start = doc[..at.min(doc.len())]
                    .iter()
                    .rposition(|&b| b == b'<');
                let Some(start) = start else { continue };
                let Some(end) = element_end(&doc, start) else {
                    continue;
                };
                let element: Vec<u8> = doc[start..end].to_vec();
                if op % 9 == 4 {
                    // Move: cut it first.
                    doc.drain(start..end);
                }
                let to = position(&doc, to_selector, 0);
                doc.splice(to..to, element);
            }
            // Replace one byte.
            5 => {
                if at < doc.len() {
                    doc[at] = script.byte().unwrap_or(0);
                }
            }
            // Swap every occurrence of one token for another.
            6 => {
                let from = TOKENS[usize::from(selector) % TOKENS.len()];
                let to = TOKENS[usize::from(fine) % TOKENS.len()];
                let text = String::from_utf8_lossy(&doc).replace(from, to);
                doc = text.into_bytes();
            }
            // Delete a whole element.
            7 => {
                let start = doc[..at.min(doc.len())]
                    .iter()
                    .rposition(|&b| b == b'<');
                if let Some(start) = start {
                    if let Some(end) = element_end(&doc, start) {
                        doc.drain(start..end);
                    }
                }
            }
            // Duplicate a whole element in place (two assertions, two signatures...).
            _ => {
                let start = doc[..at.min(doc.len())]
                    .iter()
                    .rposition(|&b| b == b'<');
                if let Some(start) = start {
                    if let Some(end) = element_end(&doc, start) {
                        let element: Vec<u8> = doc[start..end].to_vec();
                        doc.splice(end..end, element);
                    }
                }
            }
        }
        if doc.len() > 64 * 1024 {
            doc.truncate(64 * 1024);
        }
    }
    doc
}

fn check(fixture: &Fixture, config: &Config, value: String) {
    let params = testing::params(value);
    match consume(config, &params, &testing::expected()) {
        Ok(identity) => assert_eq!(
            identity, fixture.identity,
            "an answer was accepted with another identity than the valid one"
        ),
        Err(error) => assert!(
            error.code.starts_with("saml_"),
            "unexpected reason code {:?}",
            error.code
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let config = &fixture.configs[usize::from(mode >> 7)];
    match mode % 4 {
        0 => check(fixture, config, String::from_utf8_lossy(rest).into_owned()),
        1 => check(fixture, config, testing::encode_bytes(rest)),
        _ => {
            let Some((&base, script)) = rest.split_first() else {
                return;
            };
            let base = &fixture.bases[usize::from(base) % fixture.bases.len()];
            let doc = mutate(base.as_bytes().to_vec(), script);
            check(fixture, config, testing::encode_bytes(&doc));
        }
    }
});
