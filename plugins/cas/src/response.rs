//! Reading a CAS 3.0 `/p3/serviceValidate` answer (CAS protocol 3.0, section 2.5.2 and
//! appendix A) with a strict XML parser: no DTD, hence no entities, and a bounded node count.

use gatehouse_plugin_sdk::PluginError;
use roxmltree::{Document, Node, ParsingOptions};

use crate::CAS_RESPONSE_INVALID;

/// The CAS namespace.
pub const CAS_NS: &str = "http://www.yale.edu/tp/cas";

/// What the CAS server said about a ticket.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// `cas:authenticationSuccess`.
    Success {
        /// `cas:user`, trimmed.
        user: String,
        /// The children of `cas:attributes` in the CAS namespace, in document order:
        /// (local name, text). A multi-valued attribute repeats its element.
        attributes: Vec<(String, String)>,
    },
    /// `cas:authenticationFailure`; only its sanitised `code` attribute is kept (the text is
    /// free-form and may echo the ticket).
    Failure {
        /// `INVALID_TICKET`, `INVALID_SERVICE`, ...
        code: String,
    },
}

/// Parses a validation answer.
pub fn parse(body: &[u8]) -> Result<Answer, PluginError> {
    let invalid = |detail: &str| PluginError::new(CAS_RESPONSE_INVALID, detail);
    let text = std::str::from_utf8(body)
        .map_err(|_| invalid("the CAS validation answer is not UTF-8 text"))?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
    };
    let document = Document::parse_with_options(text, options).map_err(|error| {
        let detail = match error {
            roxmltree::Error::DtdDetected => {
                "the CAS validation answer contains a DTD, which is refused".to_owned()
            }
            other => format!("the CAS validation answer is not well-formed XML: {other}"),
        };
        PluginError::new(CAS_RESPONSE_INVALID, detail)
    })?;

    let root = document.root_element();
    if !is_cas(root, "serviceResponse") {
        return Err(invalid(
            "the CAS validation answer is not a cas:serviceResponse in the CAS namespace",
        )
        .with_diagnostics(shape(&document)));
    }
    let outcomes: Vec<Node> = root
        .children()
        .filter(|n| is_cas(*n, "authenticationSuccess") || is_cas(*n, "authenticationFailure"))
        .collect();
    let [outcome] = outcomes.as_slice() else {
        return Err(invalid(
            "the CAS validation answer must hold exactly one cas:authenticationSuccess or \
             cas:authenticationFailure",
        )
        .with_diagnostics(shape(&document)));
    };

    if is_cas(*outcome, "authenticationFailure") {
        let code = match outcome.attribute("code") {
            Some(code) if !code.trim().is_empty() => sanitize(code.trim(), 64),
            _ => "a failure without a code".to_owned(),
        };
        return Ok(Answer::Failure { code });
    }

    let users: Vec<Node> = outcome.children().filter(|n| is_cas(*n, "user")).collect();
    let [user] = users.as_slice() else {
        return Err(invalid("the CAS answer must hold exactly one cas:user")
            .with_diagnostics(shape(&document)));
    };
    let user = element_text(*user);
    let user = user.trim();
    if user.is_empty() {
        return Err(invalid("the CAS answer names no user (empty cas:user)"));
    }
    if user.chars().count() > MAX_USER_CHARS || user.chars().any(char::is_control) {
        return Err(invalid(
            "cas:user is longer than 255 characters or contains control characters",
        ));
    }

    let blocks: Vec<Node> = outcome.children().filter(|n| is_cas(*n, "attributes")).collect();
    let attributes = match blocks.as_slice() {
        [] => Vec::new(),
        [block] => block
            .children()
            .filter(|n| n.is_element() && n.tag_name().namespace() == Some(CAS_NS))
            .map(|n| (n.tag_name().name().to_owned(), element_text(n)))
            .collect(),
        _ => {
            return Err(invalid("the CAS answer holds more than one cas:attributes")
                .with_diagnostics(shape(&document)))
        }
    };

    Ok(Answer::Success {
        user: user.to_owned(),
        attributes,
    })
}

fn is_cas(node: Node, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(CAS_NS) && node.tag_name().name() == name
}

/// The concatenated text children of an element (not of its descendants).
fn element_text(node: Node) -> String {
    node.children()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

/// The element structure of the answer (names and namespaces, no text or attribute values),
/// for administrators fixing a CAS server; bounded in size.
fn shape(document: &Document) -> String {
    let mut out = String::new();
    for node in document.root().descendants().filter(Node::is_element) {
        let depth = node.ancestors().filter(Node::is_element).count().saturating_sub(1);
        let namespace = match node.tag_name().namespace() {
            Some(CAS_NS) => "cas:",
            Some(_) => "{other}:",
            None => "",
        };
        let line = format!(
            "{}{}{}\n",
            "  ".repeat(depth.min(16)),
            namespace,
            sanitize(node.tag_name().name(), 64)
        );
        if out.len() + line.len() > MAX_SHAPE_BYTES {
            out.push_str("...\n");
            break;
        }
        out.push_str(&line);
    }
    out
}

/// Keeps at most `max` characters of untrusted text, replacing anything outside printable
/// ASCII with `?`.
pub fn sanitize(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if text.chars().count() > max {
        out.push_str("...");
    }
    out
}

const MAX_NODES: u32 = 10_000;
const MAX_USER_CHARS: usize = 255;
const MAX_SHAPE_BYTES: usize = 4096;
