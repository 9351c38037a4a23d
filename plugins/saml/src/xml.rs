//! Small helpers over `roxmltree`, the strict parser every input goes through first.

use roxmltree::{Document, Node, ParsingOptions};

/// SAML 2.0 protocol namespace (SAML Core §2.2.1... §3).
pub const NS_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 assertion namespace (SAML Core §2).
pub const NS_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// SAML 2.0 metadata namespace (SAML Metadata §2).
pub const NS_METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// XML Signature namespace.
pub const NS_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML Encryption namespace.
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";

/// Why a document was refused before any other check.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A DOCTYPE or ENTITY declaration.
    Dtd,
    /// Anything else: not well-formed, another encoding, too many nodes.
    Malformed(String),
}

/// Parses with DTDs refused and a node limit; refuses DOCTYPE and ENTITY declarations on the
/// raw text first (roxmltree accepts an empty DTD), and any declared encoding but UTF-8, so
/// that libxml2 later reads the same characters roxmltree read.
pub fn parse_strict(text: &str) -> Result<Document<'_>, ParseError> {
    if has_dtd_markup(text.as_bytes()) {
        return Err(ParseError::Dtd);
    }
    check_declared_encoding(text)?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    Document::parse_with_options(text, options).map_err(|error| match error {
        roxmltree::Error::DtdDetected | roxmltree::Error::EntityReferenceLoop(_) => ParseError::Dtd,
        roxmltree::Error::UnknownEntityReference(..) => ParseError::Dtd,
        other => ParseError::Malformed(other.to_string()),
    })
}

/// Any `<!DOCTYPE` or `<!ENTITY`, in any letter case, anywhere in the raw bytes.
pub fn has_dtd_markup(bytes: &[u8]) -> bool {
    bytes.windows(7).any(|w| {
        w[0] == b'<'
            && w[1] == b'!'
            && (w[2..].eq_ignore_ascii_case(b"DOCTY") || w[2..].eq_ignore_ascii_case(b"ENTIT"))
    })
}

fn check_declared_encoding(text: &str) -> Result<(), ParseError> {
    let trimmed = text.trim_start_matches('\u{feff}');
    let Some(rest) = trimmed.strip_prefix("<?xml") else {
        return Ok(());
    };
    let Some(end) = rest.find("?>") else {
        return Err(ParseError::Malformed("unterminated XML declaration".into()));
    };
    let declaration = &rest[..end];
    let Some(at) = declaration.find("encoding") else {
        return Ok(());
    };
    let value = declaration[at + "encoding".len()..]
        .trim_start()
        .trim_start_matches('=')
        .trim_start();
    let value = value.trim_start_matches(['"', '\'']);
    let name: String = value
        .chars()
        .take_while(|c| !matches!(c, '"' | '\''))
        .collect();
    if name.eq_ignore_ascii_case("utf-8") || name.eq_ignore_ascii_case("utf8") {
        Ok(())
    } else {
        Err(ParseError::Malformed("only UTF-8 documents are accepted".into()))
    }
}

/// Whether `node` is the element `{ns}name`.
pub fn is(node: Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

/// Element children named `{ns}name`.
pub fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |child| is(*child, ns, name))
}

/// The first element child named `{ns}name`.
pub fn child<'a, 'input>(node: Node<'a, 'input>, ns: &str, name: &str) -> Option<Node<'a, 'input>> {
    node.children().find(|child| is(*child, ns, name))
}

/// The complete character content of an element: every descendant text node joined, so a
/// comment or a CDATA section cannot cut a value short (the NameID comment-injection class).
/// `None` when the element has element children (not a simple value).
pub fn full_text(node: Node<'_, '_>) -> Option<String> {
    if node.children().any(|child| child.is_element()) {
        return None;
    }
    let mut text = String::new();
    for child in node.children() {
        if let Some(part) = child.text().filter(|_| child.is_text()) {
            text.push_str(part);
        }
    }
    Some(text)
}

/// Most nodes a document may have (a 192 KiB response has a few thousand).
const MAX_NODES: u32 = 50_000;

/// Escapes text for an XML attribute value or character content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}
