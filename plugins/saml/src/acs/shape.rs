//! Structural checks on the parsed document, before xmlsec sees it.
//!
//! These close what samael leaves open: every signature must sign exactly its parent element
//! by ID with only the enveloped and exclusive-c14n transforms (so xmlsec never fetches a URI,
//! opens a file or runs XSLT), IDs are unique (so a reference cannot resolve to a different
//! element than the one we read), and there is exactly one assertion, where SAML Core §3.3.3
//! puts it.

use std::collections::HashSet;

use gatehouse_plugin_sdk::PluginError;
use roxmltree::{Document, Node};

use crate::reason;
use crate::xml::{self, NS_ASSERTION, NS_DSIG, NS_PROTOCOL};

/// Where the one assertion sits and what is signed.
#[derive(Debug)]
pub struct Shape {
    /// The Response `ID`.
    pub response_id: String,
    /// Whether the Response carries an enveloped signature over itself.
    pub response_signed: bool,
    /// The assertion.
    pub assertion: AssertionShape,
}

/// The single assertion of a Response.
#[derive(Debug)]
pub enum AssertionShape {
    /// A plain `saml:Assertion`.
    Plain {
        /// Its `ID`.
        id: String,
        /// Whether it carries an enveloped signature over itself.
        signed: bool,
    },
    /// A `saml:EncryptedAssertion`.
    Encrypted,
}

/// Checks IDs, signatures and the assertion's place in a `samlp:Response` document.
pub fn response_shape(document: &Document<'_>) -> Result<Shape, PluginError> {
    let root = document.root_element();
    unique_ids(document)?;
    signature_references(document)?;

    let response_id = root
        .attribute("ID")
        .ok_or_else(|| PluginError::new(reason::MALFORMED, "the Response has no ID"))?
        .to_owned();
    let response_signed = xml::child(root, NS_DSIG, "Signature").is_some();

    // SAML Core §3.3.3 and Profiles §4.1.4.2: the assertion is a child of the Response. Any
    // other assertion anywhere (in Extensions, in a ds:Object, in Advice, wrapped in another
    // Response) is the setup of a signature wrapping attack, so exactly one is allowed.
    let assertions: Vec<Node<'_, '_>> = document
        .descendants()
        .filter(|n| xml::is(*n, NS_ASSERTION, "Assertion") || xml::is(*n, NS_ASSERTION, "EncryptedAssertion"))
        .collect();
    if assertions.len() != 1 {
        return Err(PluginError::new(
            reason::ASSERTION_COUNT,
            format!("the Response holds {} assertions, expected exactly one", assertions.len()),
        ));
    }
    let assertion = assertions[0];
    if assertion.parent_element() != Some(root) {
        return Err(PluginError::new(
            reason::ASSERTION_COUNT,
            "the assertion is not a direct child of the Response",
        ));
    }
    let assertion = if assertion.tag_name().name() == "EncryptedAssertion" {
        AssertionShape::Encrypted
    } else {
        AssertionShape::Plain {
            id: assertion_id(assertion)?,
            signed: xml::child(assertion, NS_DSIG, "Signature").is_some(),
        }
    };
    Ok(Shape {
        response_id,
        response_signed,
        assertion,
    })
}

/// Checks a decrypted assertion document; returns its ID and whether it is signed.
pub fn assertion_shape(document: &Document<'_>) -> Result<(String, bool), PluginError> {
    let root = document.root_element();
    if !xml::is(root, NS_ASSERTION, "Assertion") {
        return Err(PluginError::new(
            reason::MALFORMED,
            "the decrypted content is not a saml:Assertion",
        ));
    }
    unique_ids(document)?;
    signature_references(document)?;
    let nested = document
        .descendants()
        .filter(|n| xml::is(*n, NS_ASSERTION, "Assertion") || xml::is(*n, NS_ASSERTION, "EncryptedAssertion"))
        .count();
    if nested != 1 {
        return Err(PluginError::new(
            reason::ASSERTION_COUNT,
            "the decrypted assertion contains further assertions",
        ));
    }
    Ok((assertion_id(root)?, xml::child(root, NS_DSIG, "Signature").is_some()))
}

/// Every signature's SignatureMethod and DigestMethods must be SHA-256 or stronger, or SHA-1
/// when the connection opted in (XML Signature 1.1 §6.1 lists SHA-1 as deprecated).
pub fn signature_algorithms(document: &Document<'_>, allow_sha1: bool) -> Result<(), PluginError> {
    for signature in document.descendants().filter(|n| xml::is(*n, NS_DSIG, "Signature")) {
        for method in signature
            .descendants()
            .filter(|n| xml::is(*n, NS_DSIG, "SignatureMethod"))
        {
            let algorithm = method.attribute("Algorithm").unwrap_or("");
            let allowed = STRONG_SIGNATURE_METHODS.contains(&algorithm)
                || (allow_sha1 && SHA1_SIGNATURE_METHODS.contains(&algorithm));
            if !allowed {
                return Err(PluginError::new(
                    reason::ALGORITHM_FORBIDDEN,
                    format!("signature algorithm {algorithm} is not accepted (SHA-256 or better required)"),
                ));
            }
        }
        for method in signature
            .descendants()
            .filter(|n| xml::is(*n, NS_DSIG, "DigestMethod"))
        {
            let algorithm = method.attribute("Algorithm").unwrap_or("");
            let allowed = STRONG_DIGESTS.contains(&algorithm) || (allow_sha1 && algorithm == DIGEST_SHA1);
            if !allowed {
                return Err(PluginError::new(
                    reason::ALGORITHM_FORBIDDEN,
                    format!("digest algorithm {algorithm} is not accepted (SHA-256 or better required)"),
                ));
            }
        }
    }
    Ok(())
}

fn assertion_id(assertion: Node<'_, '_>) -> Result<String, PluginError> {
    assertion
        .attribute("ID")
        .map(str::to_owned)
        .ok_or_else(|| PluginError::new(reason::MALFORMED, "the Assertion has no ID"))
}

/// No two elements may share an ID value, whatever the ID attribute's spelling: xmlsec
/// resolves `#id` through libxml2's ID table, which may know `ID`, `Id`, `id` or `xml:id`.
fn unique_ids(document: &Document<'_>) -> Result<(), PluginError> {
    let mut seen = HashSet::new();
    for node in document.descendants().filter(Node::is_element) {
        for attribute in node.attributes() {
            let name = attribute.name();
            let is_id = matches!(name, "ID" | "Id" | "id")
                && (attribute.namespace().is_none() || attribute.namespace() == Some(XML_NS));
            if is_id && !seen.insert(attribute.value()) {
                return Err(PluginError::new(
                    reason::DUPLICATE_ID,
                    "two elements carry the same ID",
                ));
            }
        }
    }
    Ok(())
}

/// XML Signature §4.4.3 and SAML Core §5.4.2: one Reference, to the parent's ID, with only the
/// enveloped-signature and exclusive canonicalization transforms; no ds:Object or Manifest;
/// no KeyInfo that would make xmlsec fetch or derive a key.
fn signature_references(document: &Document<'_>) -> Result<(), PluginError> {
    let invalid = |detail: &str| PluginError::new(reason::SIGNATURE_REFERENCE_INVALID, detail.to_owned());
    for signature in document.descendants().filter(|n| xml::is(*n, NS_DSIG, "Signature")) {
        let parent = signature
            .parent_element()
            .ok_or_else(|| invalid("a signature has no parent element"))?;
        let grand = parent.parent_element();
        let signable = (xml::is(parent, NS_PROTOCOL, "Response") && grand.is_none())
            || (xml::is(parent, NS_ASSERTION, "Assertion")
                && grand.is_none_or(|g| xml::is(g, NS_PROTOCOL, "Response") && g.parent_element().is_none()));
        if !signable {
            return Err(invalid("a signature sits outside a Response or Assertion"));
        }
        if xml::children(parent, NS_DSIG, "Signature").count() != 1 {
            return Err(invalid("an element carries more than one signature"));
        }
        let parent_id = parent
            .attribute("ID")
            .ok_or_else(|| invalid("a signed element has no ID"))?;

        let mut signed_info = None;
        for part in signature.children().filter(Node::is_element) {
            match (part.tag_name().namespace(), part.tag_name().name()) {
                (Some(NS_DSIG), "SignedInfo") if signed_info.is_none() => signed_info = Some(part),
                (Some(NS_DSIG), "SignatureValue") => {}
                (Some(NS_DSIG), "KeyInfo") => key_info(part)?,
                _ => return Err(invalid("a signature holds an element other than SignedInfo, SignatureValue or KeyInfo")),
            }
        }
        let signed_info = signed_info.ok_or_else(|| invalid("a signature has no SignedInfo"))?;
        let mut references = 0;
        for part in signed_info.children().filter(Node::is_element) {
            match (part.tag_name().namespace(), part.tag_name().name()) {
                (Some(NS_DSIG), "CanonicalizationMethod") => {
                    if part.attribute("Algorithm") != Some(EXC_C14N) {
                        return Err(invalid("SignedInfo must use exclusive canonicalization without comments"));
                    }
                }
                (Some(NS_DSIG), "SignatureMethod") => {}
                (Some(NS_DSIG), "Reference") => {
                    references += 1;
                    reference(part, parent_id)?;
                }
                _ => return Err(invalid("SignedInfo holds an unexpected element")),
            }
        }
        if references != 1 {
            return Err(invalid("a signature must have exactly one Reference"));
        }
    }
    Ok(())
}

fn reference(reference: Node<'_, '_>, parent_id: &str) -> Result<(), PluginError> {
    let invalid = |detail: &str| PluginError::new(reason::SIGNATURE_REFERENCE_INVALID, detail.to_owned());
    let expected = format!("#{parent_id}");
    if reference.attribute("URI") != Some(expected.as_str()) {
        return Err(invalid("a Reference does not point at its signature's parent element"));
    }
    if reference.attribute("Type").is_some_and(|t| t.ends_with("#Manifest")) {
        return Err(invalid("Manifest references are not accepted"));
    }
    for part in reference.children().filter(Node::is_element) {
        match (part.tag_name().namespace(), part.tag_name().name()) {
            (Some(NS_DSIG), "Transforms") => {
                for transform in part.children().filter(Node::is_element) {
                    if !xml::is(transform, NS_DSIG, "Transform") {
                        return Err(invalid("Transforms holds an unexpected element"));
                    }
                    let algorithm = transform.attribute("Algorithm").unwrap_or("");
                    if algorithm != ENVELOPED && algorithm != EXC_C14N {
                        return Err(invalid("only the enveloped-signature and exclusive c14n transforms are accepted"));
                    }
                    // Only an InclusiveNamespaces prefix list may parameterise exc-c14n; no XPath.
                    let only_prefix_list = transform
                        .children()
                        .filter(Node::is_element)
                        .all(|p| p.tag_name().namespace() == Some(EXC_C14N) && p.tag_name().name() == "InclusiveNamespaces");
                    if !only_prefix_list {
                        return Err(invalid("a Transform carries unexpected parameters"));
                    }
                }
            }
            (Some(NS_DSIG), "DigestMethod" | "DigestValue") => {}
            _ => return Err(invalid("a Reference holds an unexpected element")),
        }
    }
    Ok(())
}

/// The key always comes from the configured certificates; KeyInfo may only describe it.
fn key_info(key_info: Node<'_, '_>) -> Result<(), PluginError> {
    let allowed = key_info.children().filter(Node::is_element).all(|part| {
        part.tag_name().namespace() == Some(NS_DSIG)
            && matches!(part.tag_name().name(), "X509Data" | "KeyName" | "KeyValue")
    });
    if allowed {
        Ok(())
    } else {
        Err(PluginError::new(
            reason::SIGNATURE_REFERENCE_INVALID,
            "KeyInfo may only hold X509Data, KeyName or KeyValue (no RetrievalMethod or encrypted keys)",
        ))
    }
}

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const STRONG_SIGNATURE_METHODS: [&str; 6] = [
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
];
const SHA1_SIGNATURE_METHODS: [&str; 1] = ["http://www.w3.org/2000/09/xmldsig#rsa-sha1"];
const STRONG_DIGESTS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];
const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
