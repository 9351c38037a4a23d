//! Checks of the Response and of the verified Assertion against this connection and login
//! (SAML Core §2, §3.2.2, Profiles §4.1.4.2, §4.1.4.3), and identity extraction.

use chrono::DateTime;
use gatehouse_plugin_sdk::{ExternalIdentity, PluginError, ReplayClaim};
use roxmltree::Node;

use crate::acs::Expected;
use crate::config::{Config, NAMEID_FORMAT_EMAIL};
use crate::reason;
use crate::xml::{self, NS_ASSERTION, NS_PROTOCOL};

/// Status, Issuer, Destination and InResponseTo of the Response, read from the Response as
/// received: when only the Assertion is signed they are unsigned, and still must match.
/// SAML Core §3.2.2.2: only the top-level StatusCode decides. Also run before the shape
/// checks: an IdP that refuses usually sends no assertion, and this names the real cause.
/// Acting on an unsigned status can only refuse a login, never admit one.
pub fn status(response: Node<'_, '_>) -> Result<(), PluginError> {
    let status = xml::child(response, NS_PROTOCOL, "Status")
        .and_then(|s| xml::child(s, NS_PROTOCOL, "StatusCode"))
        .and_then(|c| c.attribute("Value"));
    if status != Some(STATUS_SUCCESS) {
        return Err(PluginError::new(
            reason::STATUS_NOT_SUCCESS,
            format!("the IdP answered with status {}", status.unwrap_or("(none)")),
        ));
    }
    Ok(())
}

pub fn response(
    response: Node<'_, '_>,
    config: &Config,
    expected: &Expected<'_>,
    signed: bool,
) -> Result<(), PluginError> {
    if response.attribute("Version") != Some("2.0") {
        return Err(PluginError::new(reason::MALFORMED, "the Response is not SAML 2.0"));
    }

    status(response)?;

    // SAML Core §3.2.2: the Response Issuer is optional; when present it is the IdP.
    if let Some(issuer) = xml::child(response, NS_ASSERTION, "Issuer") {
        issuer_matches(issuer, config, "Response")?;
    }

    // Profiles §4.1.4.5 and Bindings §3.5.5.2: a signed message must carry Destination, and
    // whenever it is present it must be our ACS URL.
    match response.attribute("Destination") {
        Some(destination) if destination == expected.acs_url => {}
        Some(destination) => {
            return Err(PluginError::new(
                reason::DESTINATION_MISMATCH,
                format!("Destination was {destination}, expected {}", expected.acs_url),
            ))
        }
        None if signed => {
            return Err(PluginError::new(
                reason::DESTINATION_MISMATCH,
                "the signed Response has no Destination",
            ))
        }
        None => {}
    }

    // SAML Core §3.2.2: InResponseTo names the request this answers.
    in_response_to(response.attribute("InResponseTo"), expected, "Response")?;
    Ok(())
}

/// The verified Assertion: Issuer, bearer confirmation, Audience, validity window,
/// InResponseTo and Subject.
pub fn assertion(
    assertion: Node<'_, '_>,
    config: &Config,
    expected: &Expected<'_>,
) -> Result<(), PluginError> {
    if assertion.attribute("Version") != Some("2.0") {
        return Err(PluginError::new(reason::MALFORMED, "the Assertion is not SAML 2.0"));
    }
    let skew = config.clock_skew_secs;

    // SAML Core §2.3.3: the Assertion Issuer is required.
    let issuer = xml::child(assertion, NS_ASSERTION, "Issuer")
        .ok_or_else(|| PluginError::new(reason::ISSUER_MISMATCH, "the Assertion has no Issuer"))?;
    issuer_matches(issuer, config, "Assertion")?;

    // Profiles §4.1.4.2: the bearer SubjectConfirmationData carries Recipient, NotOnOrAfter
    // and (for a solicited answer) InResponseTo.
    let subject = xml::child(assertion, NS_ASSERTION, "Subject")
        .ok_or_else(|| PluginError::new(reason::SUBJECT_MISSING, "the Assertion has no Subject"))?;
    let confirmations: Vec<Node<'_, '_>> = xml::children(subject, NS_ASSERTION, "SubjectConfirmation")
        .filter(|c| c.attribute("Method") == Some(METHOD_BEARER))
        .collect();
    if confirmations.is_empty() {
        return Err(PluginError::new(
            reason::SUBJECT_MISSING,
            "the Subject has no bearer SubjectConfirmation",
        ));
    }
    let data: Vec<Node<'_, '_>> = confirmations
        .iter()
        .map(|c| {
            xml::child(*c, NS_ASSERTION, "SubjectConfirmationData").ok_or_else(|| {
                PluginError::new(reason::RECIPIENT_MISMATCH, "a bearer confirmation has no SubjectConfirmationData")
            })
        })
        .collect::<Result<_, _>>()?;
    for d in &data {
        match d.attribute("Recipient") {
            Some(recipient) if recipient == expected.acs_url => {}
            Some(recipient) => {
                return Err(PluginError::new(
                    reason::RECIPIENT_MISMATCH,
                    format!("Recipient was {recipient}, expected {}", expected.acs_url),
                ))
            }
            None => {
                return Err(PluginError::new(
                    reason::RECIPIENT_MISMATCH,
                    "the bearer SubjectConfirmationData has no Recipient",
                ))
            }
        }
    }

    // SAML Core §2.5.1.4: every AudienceRestriction must name us; we require at least one so
    // an assertion made for another service provider cannot be used here.
    let conditions = xml::child(assertion, NS_ASSERTION, "Conditions");
    let restrictions: Vec<Node<'_, '_>> = conditions
        .into_iter()
        .flat_map(|c| xml::children(c, NS_ASSERTION, "AudienceRestriction"))
        .collect();
    if restrictions.is_empty() {
        return Err(PluginError::new(
            reason::AUDIENCE_MISMATCH,
            "the Assertion has no AudienceRestriction",
        ));
    }
    for restriction in &restrictions {
        let audiences: Vec<String> = xml::children(*restriction, NS_ASSERTION, "Audience")
            .filter_map(xml::full_text)
            .map(|a| a.trim().to_owned())
            .collect();
        if !audiences.iter().any(|a| a == expected.sp_entity_id) {
            return Err(PluginError::new(
                reason::AUDIENCE_MISMATCH,
                format!("the Audience was {}, expected {}", audiences.join(", "), expected.sp_entity_id),
            ));
        }
    }

    // SAML Core §2.5.1.2 (Conditions), §2.4.1.2 (SubjectConfirmationData), with the skew.
    if let Some(conditions) = conditions {
        if let Some(not_before) = time(conditions, "NotBefore")? {
            if expected.now + skew < not_before {
                return Err(PluginError::new(reason::NOT_YET_VALID, "Conditions NotBefore is in the future"));
            }
        }
        if let Some(not_on_or_after) = time(conditions, "NotOnOrAfter")? {
            if expected.now - skew >= not_on_or_after {
                return Err(PluginError::new(reason::EXPIRED, "Conditions NotOnOrAfter has passed"));
            }
        }
    }
    if let Some(issued) = time(assertion, "IssueInstant")? {
        if expected.now + skew < issued {
            return Err(PluginError::new(reason::NOT_YET_VALID, "the Assertion was issued in the future"));
        }
    }
    for d in &data {
        let not_on_or_after = time(*d, "NotOnOrAfter")?.ok_or_else(|| {
            PluginError::new(reason::EXPIRED, "the bearer SubjectConfirmationData has no NotOnOrAfter")
        })?;
        if expected.now - skew >= not_on_or_after {
            return Err(PluginError::new(reason::EXPIRED, "SubjectConfirmationData NotOnOrAfter has passed"));
        }
        if let Some(not_before) = time(*d, "NotBefore")? {
            if expected.now + skew < not_before {
                return Err(PluginError::new(reason::NOT_YET_VALID, "SubjectConfirmationData NotBefore is in the future"));
            }
        }
    }

    // Profiles §4.1.4.2/§4.1.4.3: the signed InResponseTo binds the assertion to our request.
    for d in &data {
        let value = d.attribute("InResponseTo");
        if value.is_none() && expected.request_id.is_some() {
            return Err(PluginError::new(
                reason::UNSOLICITED,
                "the assertion does not name the request this login sent (no InResponseTo)",
            ));
        }
        in_response_to(value, expected, "SubjectConfirmationData")?;
    }

    // SAML Core §2.2.3, §2.4.1: a NameID with a value.
    let name_id = xml::child(subject, NS_ASSERTION, "NameID")
        .ok_or_else(|| PluginError::new(reason::SUBJECT_MISSING, "the Subject has no NameID"))?;
    match xml::full_text(name_id) {
        Some(text) if !text.trim().is_empty() => Ok(()),
        _ => Err(PluginError::new(reason::SUBJECT_MISSING, "the NameID is empty or not plain text")),
    }
}

/// The identity, from the verified assertion only (checked by [`assertion`]).
pub fn identity(assertion: Node<'_, '_>, config: &Config, expected: &Expected<'_>) -> ExternalIdentity {
    let name_id = xml::child(assertion, NS_ASSERTION, "Subject")
        .and_then(|s| xml::child(s, NS_ASSERTION, "NameID"));
    let subject = name_id
        .and_then(xml::full_text)
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    let attributes = Attributes::of(assertion);

    let email = if name_id.and_then(|n| n.attribute("Format")) == Some(NAMEID_FORMAT_EMAIL) {
        Some(subject.clone())
    } else if let Some(name) = &config.email_attribute {
        attributes.first(name)
    } else {
        EMAIL_ATTRIBUTES.iter().find_map(|name| attributes.first(name))
    };
    let name = match &config.name_attribute {
        Some(name) => attributes.first(name),
        None => NAME_ATTRIBUTES
            .iter()
            .find_map(|name| attributes.first(name))
            .or_else(|| match (attributes.first("givenName"), attributes.first("sn")) {
                (Some(given), Some(family)) => Some(format!("{given} {family}")),
                _ => None,
            }),
    };

    // The host remembers the assertion ID for as long as `assertion` would accept it: until
    // the earliest NotOnOrAfter (Conditions or bearer confirmation) plus the skew.
    let conditions_end = xml::child(assertion, NS_ASSERTION, "Conditions")
        .and_then(|c| time(c, "NotOnOrAfter").ok().flatten());
    let confirmation_ends = xml::child(assertion, NS_ASSERTION, "Subject")
        .into_iter()
        .flat_map(|s| xml::children(s, NS_ASSERTION, "SubjectConfirmation"))
        .filter_map(|c| xml::child(c, NS_ASSERTION, "SubjectConfirmationData"))
        .filter_map(|d| time(d, "NotOnOrAfter").ok().flatten());
    let expires_at = conditions_end
        .into_iter()
        .chain(confirmation_ends)
        .min()
        .map(|end| end + config.clock_skew_secs)
        .unwrap_or(expected.now + config.clock_skew_secs + 300);
    ExternalIdentity {
        issuer: config.idp_entity_id.clone(),
        subject,
        email,
        // SAML asserts no verification of the email; the host's config decides.
        email_verified: false,
        name,
        replay: Some(ReplayClaim {
            id: assertion.attribute("ID").unwrap_or_default().to_owned(),
            expires_at,
        }),
    }
}

/// `saml:AttributeStatement` values by attribute Name (SAML Core §2.7.3).
struct Attributes<'a, 'input> {
    statements: Vec<Node<'a, 'input>>,
}

impl<'a, 'input> Attributes<'a, 'input> {
    fn of(assertion: Node<'a, 'input>) -> Self {
        Attributes {
            statements: xml::children(assertion, NS_ASSERTION, "AttributeStatement").collect(),
        }
    }

    fn first(&self, name: &str) -> Option<String> {
        self.statements
            .iter()
            .flat_map(|s| xml::children(*s, NS_ASSERTION, "Attribute"))
            .filter(|a| a.attribute("Name") == Some(name))
            .flat_map(|a| xml::children(a, NS_ASSERTION, "AttributeValue"))
            .filter_map(xml::full_text)
            .map(|v| v.trim().to_owned())
            .find(|v| !v.is_empty())
    }
}

fn issuer_matches(issuer: Node<'_, '_>, config: &Config, what: &str) -> Result<(), PluginError> {
    // SAML Core §2.2.5: an entity Issuer has no Format or the entity format.
    let format_ok = matches!(issuer.attribute("Format"), None | Some(NAMEID_FORMAT_ENTITY));
    let value = xml::full_text(issuer).map(|t| t.trim().to_owned());
    match value {
        Some(value) if format_ok && value == config.idp_entity_id => Ok(()),
        Some(value) if format_ok => Err(PluginError::new(
            reason::ISSUER_MISMATCH,
            format!("the {what} Issuer was {value}, expected {}", config.idp_entity_id),
        )),
        _ => Err(PluginError::new(
            reason::ISSUER_MISMATCH,
            format!("the {what} Issuer is not an entity identifier"),
        )),
    }
}

fn in_response_to(value: Option<&str>, expected: &Expected<'_>, what: &str) -> Result<(), PluginError> {
    match (value, expected.request_id) {
        (None, _) => Ok(()),
        (Some(found), Some(request_id)) if found == request_id => Ok(()),
        (Some(found), Some(request_id)) => Err(PluginError::new(
            reason::IN_RESPONSE_TO_MISMATCH,
            format!("{what} InResponseTo was {found}, expected {request_id}"),
        )),
        (Some(_), None) => Err(PluginError::new(
            reason::IN_RESPONSE_TO_UNKNOWN,
            format!("{what} answers a request this login did not send"),
        )),
    }
}

/// An `xs:dateTime` attribute (SAML Core §1.3.3) as Unix seconds; a malformed value refuses.
fn time(node: Node<'_, '_>, name: &str) -> Result<Option<i64>, PluginError> {
    match node.attribute(name) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.timestamp()))
            .map_err(|_| PluginError::new(reason::MALFORMED, format!("{name} is not a valid time"))),
    }
}

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const METHOD_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const NAMEID_FORMAT_ENTITY: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";
const EMAIL_ATTRIBUTES: [&str; 5] = [
    "mail",
    "email",
    "emailAddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
];
const NAME_ATTRIBUTES: [&str; 4] = [
    "displayName",
    "cn",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
];
