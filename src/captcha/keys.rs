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
