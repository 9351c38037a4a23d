//! Secrets at rest and random tokens. Built on RustCrypto's AES-GCM and SHA-2; nothing here
//! implements a primitive.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// The deployment's key for secrets stored in events (AES-256-GCM).
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

/// Why a sealed secret could not be opened or a key parsed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key text is not base64 of exactly 32 bytes.
    #[error("secret key must be base64 of exactly 32 bytes")]
    BadKey,
    /// Ciphertext or nonce is malformed, or authentication failed (wrong key or tampering).
    #[error("sealed secret cannot be opened with the configured key")]
    Open,
}

/// A secret encrypted under the [`SecretKey`], as stored in events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Algorithm tag, `A256GCM`.
    pub alg: String,
    /// Base64 96-bit nonce.
    pub nonce: String,
    /// Base64 ciphertext with tag.
    pub ciphertext: String,
}

impl SecretKey {
    /// Parses base64 (standard or URL-safe) of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let mut bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| CryptoError::BadKey)?;
        if bytes.len() != 32 {
            bytes.zeroize();
            return Err(CryptoError::BadKey);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&bytes);
        bytes.zeroize();
        Ok(SecretKey(key))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(key.as_mut());
        SecretKey(key)
    }

    /// The key as standard base64, for writing a generated key to its file once.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    /// Encrypts `plaintext`, bound to `context` (for example `tenant/connection/field`), so a
    /// sealed value copied to another place does not open.
    pub fn seal(&self, plaintext: &str, context: &str) -> SealedSecret {
        let cipher = Aes256Gcm::new(self.0.as_ref().into());
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        // AES-GCM encryption fails only for messages beyond ~64 GiB; config secrets are tiny.
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encryption of a short message cannot fail");
        SealedSecret {
            alg: "A256GCM".to_owned(),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(ciphertext),
        }
    }

    /// Decrypts a value sealed for the same `context`.
    pub fn open(&self, sealed: &SealedSecret, context: &str) -> Result<Zeroizing<String>, CryptoError> {
        if sealed.alg != "A256GCM" {
            return Err(CryptoError::Open);
        }
        let nonce = STANDARD.decode(&sealed.nonce).map_err(|_| CryptoError::Open)?;
        let ciphertext = STANDARD
            .decode(&sealed.ciphertext)
            .map_err(|_| CryptoError::Open)?;
        if nonce.len() != 12 {
            return Err(CryptoError::Open);
        }
        let cipher = Aes256Gcm::new(self.0.as_ref().into());
        let payload = Payload {
            msg: &ciphertext,
            aad: context.as_bytes(),
        };
        let plain = cipher
            .decrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| CryptoError::Open)?;
        String::from_utf8(plain)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }
}

impl SecretKey {
    /// A keyed hash (HMAC-SHA-256) of `data`, as lowercase hex, for one `purpose` such as
    /// `email-code`. The HMAC key is itself an HMAC of the purpose under the deployment key, so
    /// the AES key is never used directly as a MAC key and each purpose has its own key. Every
    /// node with the same key computes the same value.
    pub fn mac_hex(&self, purpose: &str, data: &str) -> String {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .expect("HMAC takes a key of any length");
        derive.update(b"gatehouse mac v1:");
        derive.update(purpose.as_bytes());
        let mut subkey = Zeroizing::new([0u8; 32]);
        subkey.copy_from_slice(&derive.finalize().into_bytes());
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(subkey.as_ref())
            .expect("HMAC takes a key of any length");
        mac.update(data.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

/// A random URL-safe token carrying `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    let token = URL_SAFE_NO_PAD.encode(&buf);
    buf.zeroize();
    token
}

/// Lowercase hex SHA-256, used to key secrets (tokens, `state`) without storing them.
pub fn sha256_hex(data: &str) -> String {
    hex(&Sha256::digest(data.as_bytes()))
}

/// A uniformly random string of `digits` decimal digits (a one-time code).
pub fn random_digits(digits: u32) -> Zeroizing<String> {
    let bound = 10u32.pow(digits);
    let value = rand::Rng::gen_range(&mut rand::rngs::OsRng, 0..bound);
    Zeroizing::new(format!("{value:0width$}", width = digits as usize))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Constant-time equality for secret material.
pub fn secret_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_in_their_context() {
        let key = SecretKey::generate();
        let sealed = key.seal("s3cret", "acme/okta/client_secret");
        assert!(!sealed.ciphertext.contains("s3cret"));
        assert_eq!(key.open(&sealed, "acme/okta/client_secret").unwrap().as_str(), "s3cret");
        assert!(key.open(&sealed, "other/okta/client_secret").is_err());
        assert!(SecretKey::generate().open(&sealed, "acme/okta/client_secret").is_err());
    }

    #[test]
    fn tampered_ciphertext_is_refused() {
        let key = SecretKey::generate();
        let mut sealed = key.seal("s3cret", "ctx");
        let mut raw = STANDARD.decode(&sealed.ciphertext).unwrap();
        raw[0] ^= 1;
        sealed.ciphertext = STANDARD.encode(raw);
        assert!(key.open(&sealed, "ctx").is_err());
    }

    #[test]
    fn macs_depend_on_key_purpose_and_data() {
        let key = SecretKey::generate();
        let mac = key.mac_hex("email-code", "row:123456");
        assert_eq!(mac.len(), 64);
        assert_eq!(mac, key.mac_hex("email-code", "row:123456"));
        assert_ne!(mac, key.mac_hex("email-code", "row:123457"));
        assert_ne!(mac, key.mac_hex("rate-limit", "row:123456"));
        assert_ne!(mac, SecretKey::generate().mac_hex("email-code", "row:123456"));
    }

    #[test]
    fn random_digits_are_digits_of_the_asked_length() {
        for _ in 0..200 {
            let code = random_digits(6);
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn keys_parse_only_at_32_bytes() {
        assert!(SecretKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(SecretKey::from_base64(&STANDARD.encode([7u8; 16])).is_err());
        assert!(SecretKey::from_base64("not base64!").is_err());
    }
}
