//! Reason codes of this plugin, recorded on every refused login attempt.
//!
//! Each ACS check has its own code so that an administrator can tell which rule refused an
//! answer. The codes are stable: the host and the audit log store them.

/// No `SAMLResponse` form field, or more than one (SAML Bindings §3.5.4).
pub const RESPONSE_MISSING: &str = "saml_response_missing";
/// The encoded or decoded message exceeds the size limit.
pub const TOO_LARGE: &str = "saml_too_large";
/// Not base64, not UTF-8, not well-formed XML, or not a `samlp:Response`.
pub const MALFORMED: &str = "saml_malformed";
/// A document type declaration or entity declaration (XXE, billion laughs).
pub const DTD_FORBIDDEN: &str = "saml_dtd_forbidden";
/// A `ds:Signature` does not sign exactly its parent element by ID with the allowed transforms.
pub const SIGNATURE_REFERENCE_INVALID: &str = "saml_signature_reference_invalid";
/// Two elements carry the same ID (a signature wrapping precondition).
pub const DUPLICATE_ID: &str = "saml_duplicate_id";
/// Not exactly one assertion, or the assertion is not a child of the Response.
pub const ASSERTION_COUNT: &str = "saml_assertion_count";
/// An encrypted assertion reached a connection without an SP private key, or it could not be
/// decrypted with it.
pub const ENCRYPTED_UNSUPPORTED: &str = "saml_encrypted_unsupported";
/// RSA PKCS#1 v1.5 key transport, open to padding oracle attacks.
pub const KEY_TRANSPORT_FORBIDDEN: &str = "saml_key_transport_forbidden";
/// Neither the Response nor the Assertion is signed.
pub const SIGNATURE_MISSING: &str = "saml_signature_missing";
/// A signature or digest algorithm weaker than SHA-256 (or unknown) without the opt-in.
pub const ALGORITHM_FORBIDDEN: &str = "saml_algorithm_forbidden";
/// No configured certificate verifies a signature.
pub const SIGNATURE_INVALID: &str = "saml_signature_invalid";
/// The top-level status code is not `Success`.
pub const STATUS_NOT_SUCCESS: &str = "saml_status_not_success";
/// The Response or Assertion Issuer is not the configured IdP entity ID.
pub const ISSUER_MISMATCH: &str = "saml_issuer_mismatch";
/// Response `Destination` is not our ACS URL (or missing on a signed Response).
pub const DESTINATION_MISMATCH: &str = "saml_destination_mismatch";
/// Bearer `SubjectConfirmationData/@Recipient` is not our ACS URL.
pub const RECIPIENT_MISMATCH: &str = "saml_recipient_mismatch";
/// No `AudienceRestriction`, or one that does not name our SP entity ID.
pub const AUDIENCE_MISMATCH: &str = "saml_audience_mismatch";
/// Past `NotOnOrAfter` (Conditions or bearer confirmation), beyond the allowed skew.
pub const EXPIRED: &str = "saml_expired";
/// Before `NotBefore` or issued in the future, beyond the allowed skew.
pub const NOT_YET_VALID: &str = "saml_not_yet_valid";
/// `InResponseTo` names another request than the one this login started.
pub const IN_RESPONSE_TO_MISMATCH: &str = "saml_in_response_to_mismatch";
/// An `InResponseTo` in an answer accepted as unsolicited: no pending request is known.
pub const IN_RESPONSE_TO_UNKNOWN: &str = "saml_in_response_to_unknown";
/// A login started by us came back without `InResponseTo`.
pub const UNSOLICITED: &str = "saml_unsolicited";
/// No Subject, NameID or bearer subject confirmation.
pub const SUBJECT_MISSING: &str = "saml_subject_missing";
/// The IdP metadata read from the connection's metadata URL is malformed or unusable.
pub const METADATA_INVALID: &str = "saml_metadata_invalid";
