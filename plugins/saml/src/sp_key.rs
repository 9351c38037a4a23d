//! Generating the connection's own key pair: an RSA key and a self-signed certificate that
//! sign AuthnRequests (SAML Bindings §3.4.4.1), decrypt encrypted assertions (SAML Core §6) and
//! appear in the SP metadata (SAML Metadata §2.4.1.1).
//!
//! SAML Metadata trusts the certificate as a key carrier only, so it is self-signed; its
//! validity is informational, but many IdPs refuse an expired one, hence three years.

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509NameBuilder, X509};

/// A freshly generated key pair, both halves PEM.
pub struct GeneratedKeyPair {
    /// The private key, PKCS#8 PEM. A secret: it goes only into the sealed config field.
    pub private_key_pem: String,
    /// The self-signed certificate, PEM.
    pub certificate_pem: String,
}

/// Generates an RSA-2048 key and a SHA-256 self-signed certificate for it with
/// CN = "Gatehouse SP", valid from now for three years.
pub fn generate() -> Result<GeneratedKeyPair, ErrorStack> {
    let key = PKey::from_rsa(Rsa::generate(KEY_BITS)?)?;

    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", COMMON_NAME)?;
    let name = name.build();
    let mut builder = X509::builder()?;
    // X.509 v3 (the version field counts from zero).
    builder.set_version(2)?;
    let serial = random_serial()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(VALIDITY_DAYS)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    builder.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()?,
    )?;
    let subject_key_id = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(subject_key_id)?;
    builder.sign(&key, MessageDigest::sha256())?;
    let certificate = builder.build();

    Ok(GeneratedKeyPair {
        private_key_pem: pem_text(key.private_key_to_pem_pkcs8()?),
        certificate_pem: pem_text(certificate.to_pem()?),
    })
}

/// RFC 5280 §4.1.2.2: a positive serial of at most 20 octets; 159 random bits keep it
/// positive and unique enough that two generated certificates never share one.
fn random_serial() -> Result<Asn1Integer, ErrorStack> {
    let mut serial = BigNum::new()?;
    serial.rand(159, MsbOption::MAYBE_ZERO, false)?;
    serial.to_asn1_integer()
}

fn pem_text(bytes: Vec<u8>) -> String {
    // PEM is ASCII by construction; a lossy conversion never changes it.
    String::from_utf8_lossy(&bytes).into_owned()
}

const KEY_BITS: u32 = 2048;
const COMMON_NAME: &str = "Gatehouse SP";
/// Three years, one of them a leap year.
const VALIDITY_DAYS: u32 = 3 * 365 + 1;

#[cfg(test)]
mod tests {
    use openssl::nid::Nid;

    use super::*;

    #[test]
    fn a_generated_pair_is_rsa_2048_sha256_self_signed_for_three_years() {
        let pair = generate().unwrap();
        let key = PKey::private_key_from_pem(pair.private_key_pem.as_bytes()).unwrap();
        assert_eq!(key.rsa().unwrap().size() * 8, 2048);
        let cert = X509::from_pem(pair.certificate_pem.as_bytes()).unwrap();
        assert!(cert.public_key().unwrap().public_eq(&key));
        assert!(cert.verify(&key).unwrap(), "self-signed");
        assert_eq!(cert.signature_algorithm().object().nid(), Nid::SHA256WITHRSAENCRYPTION);
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap()
            .data()
            .to_string()
            .unwrap();
        assert_eq!(cn, "Gatehouse SP");
        let lifetime = cert.not_before().diff(cert.not_after()).unwrap();
        assert_eq!(lifetime.days, 1096);
        // Each call makes a new key.
        let again = generate().unwrap();
        assert_ne!(again.private_key_pem, pair.private_key_pem);
        assert_ne!(again.certificate_pem, pair.certificate_pem);
    }
}
