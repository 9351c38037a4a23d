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
    if raw_depth(text.as_bytes()) > MAX_DEPTH {
        return Err(ParseError::Malformed(format!(
            "elements are nested more than {MAX_DEPTH} levels deep"
        )));
    }
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    let document = Document::parse_with_options(text, options).map_err(|error| match error {
        roxmltree::Error::DtdDetected | roxmltree::Error::EntityReferenceLoop(_) => ParseError::Dtd,
        roxmltree::Error::UnknownEntityReference(..) => ParseError::Dtd,
        other => ParseError::Malformed(other.to_string()),
    })?;
    check_depth(&document)?;
    Ok(document)
}

/// Refuses documents nested deeper than [`MAX_DEPTH`]. The parser and later stages (samael's
/// serde deserialisation, its signed-content matching, our pretty-printer) recurse per level;
/// a few hundred levels of attacker nesting would overflow a thread's stack and abort the
/// whole process. [`raw_depth`] bounds depth before roxmltree runs; this re-checks the tree
/// roxmltree built, iteratively.
fn check_depth(document: &Document<'_>) -> Result<(), ParseError> {
    let mut stack = vec![(document.root(), 0usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(ParseError::Malformed(format!(
                "elements are nested more than {MAX_DEPTH} levels deep"
            )));
        }
        for child in node.children().filter(|c| c.is_element()) {
            stack.push((child, depth + 1));
        }
    }
    Ok(())
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

/// The deepest element nesting in raw XML, measured without recursion before any parser runs.
/// Markup is recognised the way XML defines it: in character data `<` always starts markup;
/// comments, CDATA sections and processing instructions are skipped whole; quoted attribute
/// values are skipped inside tags; `<x/>` opens nothing. Unterminated markup ends the scan
/// (the parser then refuses the document).
pub fn raw_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    let skip_to = |from: usize, end: &[u8]| {
        bytes[from..]
            .windows(end.len())
            .position(|w| w == end)
            .map(|at| from + at + end.len())
    };
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &bytes[i..];
        let next = if rest.starts_with(b"<!--") {
            skip_to(i + 4, b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(i + 9, b"]]>")
        } else if rest.starts_with(b"<?") || rest.starts_with(b"<!") {
            skip_to(i + 2, b">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            skip_to(i + 2, b">")
        } else {
            // A start tag: find its end outside quoted attribute values.
            let mut j = i + 1;
            let mut quote = None;
            let mut end = None;
            while j < bytes.len() {
                match (quote, bytes[j]) {
                    (None, q @ (b'"' | b'\'')) => quote = Some(q),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => {
                        end = Some(j);
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            match end {
                Some(end) => {
                    if bytes[end - 1] != b'/' {
                        depth += 1;
                        deepest = deepest.max(depth);
                    }
                    Some(end + 1)
                }
                None => None,
            }
        };
        match next {
            Some(next) => i = next,
            None => break,
        }
    }
    deepest
}

/// Most nodes a document may have (a 192 KiB response has a few thousand).
const MAX_NODES: u32 = 50_000;

/// Deepest element nesting accepted. Real responses and metadata stay under 15 levels.
const MAX_DEPTH: usize = 48;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth))
    }

    #[test]
    fn raw_depth_follows_xml_markup() {
        assert_eq!(raw_depth(b"<a><b/><c x='/>' y=\"<\"><!-- <d> --><![CDATA[<e>]]><?pi <f>?></c></a>"), 2);
        assert_eq!(raw_depth(b"<a><b><c/></b><b/></a>"), 2);
        assert_eq!(raw_depth(nested(300).as_bytes()), 300);
    }

    #[test]
    fn deep_nesting_is_refused_before_anything_walks_it() {
        assert!(parse_strict(&nested(40)).is_ok());
        assert!(matches!(parse_strict(&nested(49)), Err(ParseError::Malformed(_))));
        // Far deeper than any recursive walker could survive: refused, not crashed.
        assert!(matches!(parse_strict(&nested(20_000)), Err(ParseError::Malformed(_))));
    }
}
