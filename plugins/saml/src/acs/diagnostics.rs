//! What a tenant administrator sees of a refused answer: the check that failed, what this
//! connection expected, and the decoded Response with secrets and personal data masked.
//!
//! The host keeps this sealed for administrators only and never logs it, but it is still
//! redacted here, before it leaves the plugin: signature and digest values, certificates and
//! ciphertexts become `[redacted]`; NameID and attribute values keep only a first character
//! and, for email-looking values, the domain. The posted base64 is never included, and a
//! document that cannot be parsed (so cannot be redacted) is not shown at all.

use chrono::DateTime;
use gatehouse_plugin_sdk::PluginError;
use roxmltree::{Document, Node, NodeType};

use crate::acs::Expected;
use crate::config::Config;
use crate::xml::{self, escape};

/// `error` with the diagnostics for the decoded answer `decoded` attached.
pub fn attach(error: PluginError, decoded: &[u8], config: &Config, expected: &Expected<'_>) -> PluginError {
    let text = render(&error, decoded, config, expected);
    error.with_diagnostics(text)
}

fn render(error: &PluginError, decoded: &[u8], config: &Config, expected: &Expected<'_>) -> String {
    let mut out = String::new();
    out.push_str(&format!("SAML Response refused ({})\n", error.code));
    out.push_str(&format!("Failed check: {}\n", error.detail));

    out.push_str("\nThis connection expected:\n");
    out.push_str(&format!("  Destination and Recipient: {}\n", expected.acs_url));
    out.push_str(&format!("  Audience: {}\n", expected.sp_entity_id));
    let issuer = if config.idp_entity_id.is_empty() {
        "(the IdP metadata was not read)"
    } else {
        config.idp_entity_id.as_str()
    };
    out.push_str(&format!("  Issuer: {issuer}\n"));
    match expected.request_id {
        Some(id) => out.push_str(&format!("  InResponseTo: {id}\n")),
        None => out.push_str("  InResponseTo: none (an unsolicited answer)\n"),
    }
    let now = DateTime::from_timestamp(expected.now, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    out.push_str(&format!(
        "  Time: {now}, with {} s of clock skew\n  Signed by: {} configured IdP certificate(s){}\n",
        config.clock_skew_secs,
        config.certificates.len(),
        if config.allow_sha1 { ", SHA-1 allowed" } else { "" },
    ));

    out.push_str("\nWhat the IdP sent (decoded; signatures, certificates, ciphertexts and personal values masked):\n");
    match std::str::from_utf8(decoded).ok().map(xml::parse_strict) {
        Some(Ok(document)) => pretty(&document, &mut out),
        Some(Err(xml::ParseError::Dtd)) => {
            out.push_str("(not shown: it contains a DOCTYPE or ENTITY declaration)\n")
        }
        Some(Err(xml::ParseError::Malformed(_))) | None => out.push_str(&format!(
            "(not shown: {} bytes that are not well-formed UTF-8 XML cannot be redacted)\n",
            decoded.len()
        )),
    }
    bound(out)
}

/// Pretty-prints the document, one element per line, masking as described in the module doc.
fn pretty(document: &Document<'_>, out: &mut String) {
    element(document.root_element(), 0, out);
}

fn element(node: Node<'_, '_>, depth: usize, out: &mut String) {
    if out.len() > MAX_BYTES {
        return;
    }
    let indent = "  ".repeat(depth);
    let name = qualified_name(node);
    out.push_str(&indent);
    out.push('<');
    out.push_str(&name);
    let inherited: Vec<(Option<&str>, &str)> = node
        .parent_element()
        .map(|p| p.namespaces().map(|ns| (ns.name(), ns.uri())).collect())
        .unwrap_or_default();
    for ns in node.namespaces() {
        if !inherited.contains(&(ns.name(), ns.uri())) {
            match ns.name() {
                Some(prefix) => out.push_str(&format!(" xmlns:{prefix}=\"{}\"", escape(ns.uri()))),
                None => out.push_str(&format!(" xmlns=\"{}\"", escape(ns.uri()))),
            }
        }
    }
    for attribute in node.attributes() {
        let prefix = attribute
            .namespace()
            .and_then(|uri| node.lookup_prefix(uri))
            .map(|p| format!("{p}:"))
            .unwrap_or_default();
        // Only structural attributes are shown as sent; any other value may be personal.
        let value = if SHOWN_ATTRIBUTES.contains(&attribute.name()) {
            escape(attribute.value())
        } else {
            escape(&mask(attribute.value()))
        };
        out.push_str(&format!(" {prefix}{}=\"{value}\"", attribute.name()));
    }

    let local = node.tag_name().name();
    if REDACTED_ELEMENTS.contains(&local) {
        out.push_str(&format!(">{REDACTED}</{name}>\n"));
        return;
    }
    if MASKED_ELEMENTS.contains(&local) {
        let shown = match xml::full_text(node) {
            Some(text) => escape(&mask(text.trim())),
            None => "[masked]".to_owned(),
        };
        let comments = node.children().filter(|c| c.node_type() == NodeType::Comment).count();
        let note = if comments > 0 {
            format!("<!-- the value contained {comments} comment(s) -->")
        } else {
            String::new()
        };
        out.push_str(&format!(">{shown}{note}</{name}>\n"));
        return;
    }
    let children: Vec<Node<'_, '_>> = node
        .children()
        .filter(|c| !(c.is_text() && c.text().is_some_and(|t| t.trim().is_empty())))
        .collect();
    let text_of = |text: &str| -> String {
        let text = text.trim();
        if SHOWN_TEXT_ELEMENTS.contains(&local) {
            escape(text)
        } else if SCRUBBED_TEXT_ELEMENTS.contains(&local) {
            escape(&scrub(text))
        } else {
            escape(&mask(text))
        }
    };
    match children.as_slice() {
        [] => out.push_str("/>\n"),
        [only] if only.is_text() => {
            out.push_str(&format!(">{}</{name}>\n", text_of(only.text().unwrap_or(""))))
        }
        _ => {
            out.push_str(">\n");
            for child in children {
                match child.node_type() {
                    NodeType::Element => element(child, depth + 1, out),
                    NodeType::Text => out.push_str(&format!(
                        "{indent}  {}\n",
                        text_of(child.text().unwrap_or(""))
                    )),
                    NodeType::Comment => out.push_str(&format!("{indent}  <!-- comment -->\n")),
                    NodeType::PI | NodeType::Root => {}
                }
            }
            out.push_str(&format!("{indent}</{name}>\n"));
        }
    }
}

fn qualified_name(node: Node<'_, '_>) -> String {
    let local = node.tag_name().name();
    match node.tag_name().namespace().and_then(|uri| node.lookup_prefix(uri)) {
        Some(prefix) => format!("{prefix}:{local}"),
        None => local.to_owned(),
    }
}

/// Keeps the first character, and the domain of a value that looks like an email address:
/// enough to tell which account and which IdP domain, not enough to learn the address.
pub fn mask(value: &str) -> String {
    let Some(first) = value.chars().next() else {
        return String::new();
    };
    let domain = match value.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !value.chars().any(char::is_whitespace) =>
        {
            Some(domain)
        }
        _ => None,
    };
    match domain {
        Some(domain) => format!("{first}***@{domain}"),
        None => format!("{first}***"),
    }
}

/// Free text (a StatusMessage) with every email-looking word masked, so an IdP's "user
/// 'carol@example.com' is not assigned" stays readable without the address.
pub fn scrub(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | ',' | ';' | '(' | ')'))
        .map(|word| {
            let end = word
                .char_indices()
                .last()
                .filter(|(_, c)| c.is_whitespace() || matches!(c, '\'' | '"' | '<' | '>' | ',' | ';' | '(' | ')'))
                .map(|(i, _)| i)
                .unwrap_or(word.len());
            let (core, tail) = word.split_at(end);
            if core.contains('@') {
                format!("{}{tail}", mask(core))
            } else {
                word.to_owned()
            }
        })
        .collect()
}

/// At most [`MAX_BYTES`], cut at a character boundary.
fn bound(mut text: String) -> String {
    if text.len() <= MAX_BYTES {
        return text;
    }
    let mut end = MAX_BYTES - TRUNCATED.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(TRUNCATED);
    text
}

/// The diagnostics limit.
pub const MAX_BYTES: usize = 32 * 1024;
const TRUNCATED: &str = "\n[truncated]\n";
const REDACTED: &str = "[redacted]";
/// Signature and digest values, certificates and ciphertexts (XML Signature §4.3, §4.4.3.3,
/// §4.5.4; XML Encryption §3.3.1), matched by local name whatever the namespace.
const REDACTED_ELEMENTS: [&str; 4] = ["SignatureValue", "DigestValue", "X509Certificate", "CipherValue"];
/// The subject and its attributes (SAML Core §2.2.3, §2.7.3.1.1).
const MASKED_ELEMENTS: [&str; 2] = ["NameID", "AttributeValue"];
/// Attributes that describe the protocol, not a person (SAML Core §2, §3; XML Signature).
/// Every other attribute value (Address, SessionIndex, SPNameQualifier, Consent, unknown
/// extensions) is masked.
const SHOWN_ATTRIBUTES: [&str; 22] = [
    "ID", "Version", "IssueInstant", "Destination", "InResponseTo", "NotBefore", "NotOnOrAfter",
    "Recipient", "Format", "Name", "NameFormat", "FriendlyName", "Algorithm", "URI", "Value",
    "Method", "AuthnInstant", "SessionNotOnOrAfter", "ProtocolBinding", "PrefixList", "Id",
    "AssertionConsumerServiceURL",
];
/// Elements whose text identifies systems, not people: shown as sent.
const SHOWN_TEXT_ELEMENTS: [&str; 5] = [
    "Issuer", "Audience", "AuthnContextClassRef", "AuthenticatingAuthority", "KeyName",
];
/// Free-text elements kept readable with email addresses masked.
const SCRUBBED_TEXT_ELEMENTS: [&str; 1] = ["StatusMessage"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_a_first_character_and_an_email_domain() {
        assert_eq!(mask("ada@good.test"), "a***@good.test");
        assert_eq!(mask("opaque-4711"), "o***");
        assert_eq!(mask("a@b@c.test"), "a***");
        assert_eq!(mask("not an@email.test"), "n***");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn free_text_keeps_its_words_but_not_addresses() {
        assert_eq!(
            scrub("AADSTS50105: The signed in user 'carol.secret@good.test' is not assigned"),
            "AADSTS50105: The signed in user 'c***@good.test' is not assigned"
        );
        assert_eq!(scrub("no address here"), "no address here");
    }

    #[test]
    fn unknown_text_and_attributes_are_masked() {
        let xml = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Consent="carol@good.test"><saml:Issuer>https://idp.test</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Requester"/><samlp:StatusMessage>user carol.secret@good.test denied</samlp:StatusMessage><samlp:StatusDetail><Cause xmlns="urn:x">carol.secret@good.test 555-0100</Cause></samlp:StatusDetail></samlp:Status><saml:Advice>bob@good.test</saml:Advice></samlp:Response>"#;
        let document = xml::parse_strict(xml).unwrap();
        let mut out = String::new();
        pretty(&document, &mut out);
        assert!(!out.contains("carol.secret"), "{out}");
        assert!(!out.contains("carol@"), "{out}");
        assert!(!out.contains("bob@"), "{out}");
        assert!(!out.contains("555-0100"), "{out}");
        assert!(out.contains("https://idp.test"), "{out}");
        assert!(out.contains("urn:oasis:names:tc:SAML:2.0:status:Requester"), "{out}");
        assert!(out.contains("user c***@good.test denied"), "{out}");
    }

    #[test]
    fn diagnostics_are_bounded() {
        let long = "é".repeat(MAX_BYTES);
        let bounded = bound(long);
        assert!(bounded.len() <= MAX_BYTES);
        assert!(bounded.ends_with("[truncated]\n"));
    }
}
