//! The Ed25519 keys that sign and verify checkpoints, and the checkpoint policy.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::SecretKey;

// Keys

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not base64 of 32 bytes, or not a valid Ed25519 public key.
    #[error("{0} must be base64 of a 32-byte Ed25519 key")]
    Malformed(&'static str),
}

fn decode32(text: &str, what: &'static str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let text = text.trim();
    let bytes = Zeroizing::new(
        STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text))
            .map_err(|_| KeyError::Malformed(what))?,
    );
    let mut out = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        return Err(KeyError::Malformed(what));
    }
    out.copy_from_slice(&bytes);
    Ok(out)
}

/// Key id: the first 8 bytes of SHA-256 of the public key, in hex.
fn key_id_of(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The Ed25519 key that signs checkpoints.
pub struct CheckpointKey {
    signing: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointKey({})", self.key_id)
    }
}

impl CheckpointKey {
    fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let key_id = key_id_of(&signing.verifying_key());
        CheckpointKey { signing, key_id }
    }

    /// Parses base64 (standard or URL-safe) of the 32-byte private key (seed).
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let seed = decode32(text, "the audit signing key")?;
        Ok(Self::from_seed(&seed))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// The key used when none is configured: derived from the deployment's secret key (so every
    /// node with the same secret key signs with the same key).
    pub fn derived_from(secret: &SecretKey) -> Self {
        let hex_seed = Zeroizing::new(secret.mac_hex("audit-checkpoint-signing-key", "v1"));
        let mut seed = Zeroizing::new([0u8; 32]);
        // mac_hex is 64 lowercase hex digits.
        hex::decode_to_slice(hex_seed.as_bytes(), seed.as_mut())
            .expect("mac_hex is 32 bytes of hex");
        Self::from_seed(&seed)
    }

    /// The private key as standard base64.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.signing.to_bytes()))
    }

    /// The public key that verifies this key's signatures.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// Id of this key, recorded with each checkpoint.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub(super) fn sign(&self, message: &str) -> [u8; 64] {
        self.signing
            .sign(message.as_bytes())
            .to_bytes()
    }
}

/// An Ed25519 public key that verifies checkpoints.
#[derive(Clone, Debug)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses base64 of the 32-byte public key.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = decode32(text, "an audit verify key")?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| KeyError::Malformed("an audit verify key"))
    }

    /// The key as standard base64.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_bytes())
    }

    /// Its key id.
    pub fn key_id(&self) -> String {
        key_id_of(&self.0)
    }
}

/// The public keys checkpoints may be signed with, by key id: the current key and older ones
/// kept for rotation.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys(HashMap<String, VerifyingKey>);

impl TrustedKeys {
    /// A set of keys.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        TrustedKeys(
            keys.into_iter()
                .map(|k| (k.key_id(), k.0))
                .collect(),
        )
    }

    pub(super) fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.0.get(key_id)
    }

    /// The key ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.0.keys().cloned().collect();
        ids.sort();
        ids
    }
}

/// When to sign checkpoints, and with what.
#[derive(Debug)]
pub struct CheckpointPolicy {
    /// The signing key.
    pub key: Arc<CheckpointKey>,
    /// A checkpoint at least every this many entries of a tenant.
    pub every_entries: i64,
    /// And for a tenant whose last checkpoint is older than this (milliseconds), at its next
    /// entry or by [`checkpoint_stale`].
    pub every_ms: i64,
}

impl CheckpointPolicy {
    pub(super) fn due(
        &self,
        position: i64,
        checkpoint_position: i64,
        checkpoint_time: i64,
        now: i64,
    ) -> bool {
        position > checkpoint_position
            && (position - checkpoint_position >= self.every_entries
                || now - checkpoint_time >= self.every_ms)
    }
}

/// The process's chain configuration: how to sign, and which keys to trust when verifying.
#[derive(Debug)]
pub struct ChainConfig {
    /// Checkpoint signing.
    pub policy: CheckpointPolicy,
    /// Keys that verify (the signing key's public key and any older ones).
    pub trusted: TrustedKeys,
}
