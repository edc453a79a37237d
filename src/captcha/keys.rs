//! The server key: the HMAC-SHA256 key that signs challenge tokens and verification tokens
//! (SPEC §2). Configured, or generated on first start and kept in the database. Never logged.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::{self, Store, StoreError};

/// HMAC-SHA256.
pub type HmacSha256 = Hmac<Sha256>;

/// Length of a generated server key in bytes.
pub const GENERATED_KEY_BYTES: usize = 32;

/// The server key, held as a pre-keyed HMAC state (cloned per use, so the key schedule runs once).
#[derive(Clone)]
pub struct ServerKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(<redacted>)")
    }
}

impl ServerKey {
    /// A key from raw bytes.
    pub fn from_bytes(key: &[u8]) -> ServerKey {
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = <HmacSha256 as hmac::digest::KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()));
        ServerKey { mac }
    }

    /// A fresh HMAC state keyed with the server key.
    pub fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }

    /// Uses the configured key, or the one kept in the database, generating and storing one on
    /// first start.
    pub fn load_or_create(
        store: &Store,
        configured: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<ServerKey, StoreError> {
        if let Some(key) = configured {
            return Ok(ServerKey::from_bytes(key));
        }
        let fresh = crate::ids::random_bytes::<GENERATED_KEY_BYTES>();
        let key = store.write(|c| store::server_key::get_or_insert(c, &fresh, now_ms))?;
        Ok(ServerKey::from_bytes(&key))
    }
}

/// Computes an HMAC over `parts` in order.
pub fn sign(key: &ServerKey, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = key.mac();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Checks, in constant time, that `tag` is the HMAC over `parts` (or its first `tag.len()` bytes,
/// at least 16).
pub fn verify(key: &ServerKey, parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut mac = key.mac();
    for part in parts {
        mac.update(part);
    }
    if tag.len() == 32 {
        mac.verify_slice(tag).is_ok()
    } else if (16..32).contains(&tag.len()) {
        mac.verify_truncated_left(tag).is_ok()
    } else {
        false
    }
}

/// Encrypts values that must be read back (a remote verifier's secret) under a key derived from
/// the server key: ChaCha20-Poly1305 with a random nonce. If the server key changes, sealed
/// values no longer open and the site fails closed until its secret is entered again.
pub struct Sealer {
    cipher: chacha20poly1305::ChaCha20Poly1305,
}

const NONCE_BYTES: usize = 12;

impl Sealer {
    /// The sealer of a server key.
    pub fn new(key: &ServerKey) -> Sealer {
        use chacha20poly1305::KeyInit as _;
        let derived = sign(key, &[b"caputchin-sealed-secret-v1"]);
        Sealer {
            cipher: chacha20poly1305::ChaCha20Poly1305::new(&derived.into()),
        }
    }

    /// Encrypts `plain`: nonce followed by ciphertext and tag.
    pub fn seal(&self, plain: &str) -> Vec<u8> {
        use chacha20poly1305::aead::Aead as _;
        let nonce = crate::ids::random_bytes::<NONCE_BYTES>();
        let mut out = nonce.to_vec();
        // Encryption with a fresh nonce and an in-memory buffer cannot fail.
        if let Ok(sealed) = self.cipher.encrypt(&nonce.into(), plain.as_bytes()) {
            out.extend(sealed);
        }
        out
    }

    /// Decrypts a sealed value; `None` if it was not sealed under this key or was altered.
    pub fn open(&self, sealed: &[u8]) -> Option<String> {
        use chacha20poly1305::aead::Aead as _;
        if sealed.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
        let plain = self.cipher.decrypt(&nonce.into(), body).ok()?;
        String::from_utf8(plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_the_same_key_and_unaltered() {
        let sealer = Sealer::new(&ServerKey::from_bytes(&[3; 32]));
        let sealed = sealer.seal("0x4AAAAAAA-secret");
        assert_eq!(sealer.open(&sealed).as_deref(), Some("0x4AAAAAAA-secret"));
        assert!(!String::from_utf8_lossy(&sealed).contains("secret"));
        let other = Sealer::new(&ServerKey::from_bytes(&[4; 32]));
        assert_eq!(other.open(&sealed), None);
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(sealer.open(&altered), None);
        assert_eq!(sealer.open(&[1, 2, 3]), None);
    }
}
