//! Signature verification through samael/xmlsec, and assertion decryption.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use gatehouse_plugin_sdk::PluginError;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
use roxmltree::Node;
use samael::crypto::{AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode};

use crate::config::Config;
use crate::reason;
use crate::xml::{self, NS_DSIG, NS_XENC};

/// Verifies every signature in `xml` with the configured certificates only and returns the
/// verified content as xmlsec saw it (unsigned content removed).
///
/// samael skips verification when it has no certificate (it fails open), so an empty list is
/// refused here, even though config validation already guarantees one.
pub fn verified_content(xml: &str, config: &Config) -> Result<String, PluginError> {
    if config.certificates.is_empty() {
        return Err(PluginError::new(
            reason::SIGNATURE_INVALID,
            "the connection has no IdP signing certificate",
        ));
    }
    let certificates: Vec<CertificateDer> = config
        .certificates
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    // samael's list has no SHA-1 entry; with the opt-in, our own pre-check (shape.rs) is the
    // algorithm gate, and it still admits only SHA-1 and the SHA-2 family.
    let allowed: Option<&[AllowedSignatureAlgorithm]> = if config.allow_sha1 {
        None
    } else {
        Some(&STRONG_ALGORITHMS)
    };
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &certificates,
        ReduceMode::ValidateAndMarkNoAncestors,
        allowed,
    )
    .map_err(|_| {
        PluginError::new(
            reason::SIGNATURE_INVALID,
            "no configured IdP certificate verifies the signature",
        )
    })
}

/// Whether an `EncryptedAssertion` uses RSA PKCS#1 v1.5 key transport anywhere (XML
/// Encryption 1.1 §5.5.1 warns it is open to chosen-ciphertext attacks).
pub fn uses_rsa_1_5(encrypted: Node<'_, '_>) -> bool {
    encrypted
        .descendants()
        .filter(|n| xml::is(*n, NS_XENC, "EncryptionMethod"))
        .any(|n| n.attribute("Algorithm") == Some(KEY_RSA_1_5))
}

/// Decrypts an `EncryptedAssertion` (SAML Core §2.3.4, XML Encryption §3, §4.2) with the SP
/// key; the result is the assertion's XML text, still to be checked and verified.
pub fn decrypt(encrypted: Node<'_, '_>, key: &PKey<Private>) -> Result<String, PluginError> {
    let failed = |detail: &str| PluginError::new(reason::ENCRYPTED_UNSUPPORTED, detail.to_owned());
    let data = xml::child(encrypted, NS_XENC, "EncryptedData")
        .ok_or_else(|| failed("the EncryptedAssertion has no EncryptedData"))?;
    // The EncryptedKey sits in EncryptedData's KeyInfo, or beside EncryptedData.
    let encrypted_key = xml::child(data, NS_DSIG, "KeyInfo")
        .and_then(|info| xml::child(info, NS_XENC, "EncryptedKey"))
        .or_else(|| xml::child(encrypted, NS_XENC, "EncryptedKey"))
        .ok_or_else(|| failed("no EncryptedKey found"))?;

    let key_method = method(encrypted_key).ok_or_else(|| failed("the EncryptedKey names no algorithm"))?;
    if key_method == KEY_RSA_1_5 {
        return Err(PluginError::new(
            reason::KEY_TRANSPORT_FORBIDDEN,
            "RSA PKCS#1 v1.5 key transport is not accepted",
        ));
    }
    if key_method != KEY_RSA_OAEP_MGF1P && key_method != KEY_RSA_OAEP_11 {
        return Err(failed("unsupported key transport algorithm"));
    }
    // Only SHA-1 OAEP parameters, the defaults of both identifiers, are supported.
    let oaep_default = encrypted_key
        .descendants()
        .filter(|n| xml::is(*n, NS_DSIG, "DigestMethod") || n.tag_name().name() == "MGF")
        .all(|n| matches!(n.attribute("Algorithm"), Some(DIGEST_SHA1) | Some(MGF1_SHA1)));
    if !oaep_default {
        return Err(failed("unsupported RSA-OAEP parameters"));
    }
    let wrapped = cipher_value(encrypted_key).ok_or_else(|| failed("the EncryptedKey has no CipherValue"))?;
    let rsa = key.rsa().map_err(|_| failed("the SP key is not an RSA key"))?;
    let mut content_key = vec![0u8; rsa.size() as usize];
    let length = rsa
        .private_decrypt(&wrapped, &mut content_key, Padding::PKCS1_OAEP)
        .map_err(|_| failed("the content key cannot be decrypted with the SP key"))?;
    content_key.truncate(length);

    let content_method = method(data).ok_or_else(|| failed("the EncryptedData names no algorithm"))?;
    let ciphertext = cipher_value(data).ok_or_else(|| failed("the EncryptedData has no CipherValue"))?;
    let plaintext = match content_method {
        AES128_GCM => gcm(Cipher::aes_128_gcm(), &content_key, &ciphertext),
        AES192_GCM => gcm(Cipher::aes_192_gcm(), &content_key, &ciphertext),
        AES256_GCM => gcm(Cipher::aes_256_gcm(), &content_key, &ciphertext),
        AES128_CBC => cbc(Cipher::aes_128_cbc(), &content_key, &ciphertext),
        AES192_CBC => cbc(Cipher::aes_192_cbc(), &content_key, &ciphertext),
        AES256_CBC => cbc(Cipher::aes_256_cbc(), &content_key, &ciphertext),
        _ => return Err(failed("unsupported content encryption algorithm")),
    }
    .ok_or_else(|| failed("the assertion cannot be decrypted"))?;
    String::from_utf8(plaintext).map_err(|_| failed("the decrypted assertion is not UTF-8"))
}

fn method<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    xml::child(node, NS_XENC, "EncryptionMethod").and_then(|m| m.attribute("Algorithm"))
}

fn cipher_value(node: Node<'_, '_>) -> Option<Vec<u8>> {
    let value = xml::child(node, NS_XENC, "CipherData").and_then(|d| xml::child(d, NS_XENC, "CipherValue"))?;
    let text: String = xml::full_text(value)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD.decode(text).ok()
}

/// XML Encryption 1.1 §5.2.4: IV (12 bytes) || ciphertext || tag (16 bytes).
fn gcm(cipher: Cipher, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    if key.len() != cipher.key_len() || data.len() < 12 + 16 {
        return None;
    }
    let (iv, rest) = data.split_at(12);
    let (body, tag) = rest.split_at(rest.len() - 16);
    let mut crypter = Crypter::new(cipher, Mode::Decrypt, key, Some(iv)).ok()?;
    let mut out = vec![0u8; body.len() + cipher.block_size()];
    let mut count = crypter.update(body, &mut out).ok()?;
    crypter.set_tag(tag).ok()?;
    count += crypter.finalize(&mut out[count..]).ok()?;
    out.truncate(count);
    Some(out)
}

/// XML Encryption 1.1 §5.2.1: IV || ciphertext, padded as in ISO 10126 (only the last byte,
/// the pad length, is meaningful).
fn cbc(cipher: Cipher, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let block = cipher.block_size();
    if key.len() != cipher.key_len() || data.len() < 2 * block || !data.len().is_multiple_of(block) {
        return None;
    }
    let (iv, body) = data.split_at(block);
    let mut crypter = Crypter::new(cipher, Mode::Decrypt, key, Some(iv)).ok()?;
    crypter.pad(false);
    let mut out = vec![0u8; body.len() + block];
    let mut count = crypter.update(body, &mut out).ok()?;
    count += crypter.finalize(&mut out[count..]).ok()?;
    out.truncate(count);
    let pad = usize::from(*out.last()?);
    if pad == 0 || pad > block || pad > out.len() {
        return None;
    }
    out.truncate(out.len() - pad);
    Some(out)
}

const STRONG_ALGORITHMS: [AllowedSignatureAlgorithm; 6] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];
const KEY_RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
const KEY_RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const KEY_RSA_OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const MGF1_SHA1: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha1";
const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
const AES192_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes192-gcm";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
const AES192_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes192-cbc";
const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
