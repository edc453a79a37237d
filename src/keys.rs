//! The server key and every key derived from it, each derived once at start ([`Keys`]): the
//! token MAC that signs challenges and verification tokens (SPEC §2), the dashboard's CSRF and
//! known-device marks, the test form's pass, the session ids of Caputchin's widget (SPEC §13),
//! and the sealing of remote verifier secrets. The raw
//! key is configured, or generated on first start and kept in the database; it is never logged,
//! and nothing outside this module derives anything from it.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::{Store, StoreError};

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
        let key = store.server_key_or_insert(&fresh, now_ms)?;
        Ok(ServerKey::from_bytes(&key))
    }
}

/// The purpose keys of one server key, derived once. Cheap to clone.
#[derive(Clone)]
pub struct Keys {
    token: ServerKey,
    csrf: Purpose,
    device: Purpose,
    test_form: Purpose,
    widget_session: Purpose,
    sealer: Arc<Sealer>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    /// Derives every purpose key of `server`.
    pub fn derive(server: ServerKey) -> Keys {
        Keys {
            csrf: Purpose::new(&server, b"dashboard-csrf\0"),
            device: Purpose::new(&server, b"known-device\0"),
            test_form: Purpose::new(&server, b"caputchin-forwarder test form\0"),
            widget_session: Purpose::new(&server, b"caputchin-widget session\0"),
            sealer: Arc::new(Sealer::new(&server)),
            token: server,
        }
    }

    /// Loads the server key ([`ServerKey::load_or_create`]) and derives its purpose keys.
    pub fn load_or_create(
        store: &Store,
        configured: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<Keys, StoreError> {
        Ok(Keys::derive(ServerKey::load_or_create(
            store, configured, now_ms,
        )?))
    }

    /// The token MAC: the server key itself, which signs challenges and verification tokens
    /// (their own domain strings keep the two apart; tokens issued before an upgrade stay valid).
    pub fn token(&self) -> &ServerKey {
        &self.token
    }

    /// The dashboard's CSRF tokens.
    pub fn csrf(&self) -> &Purpose {
        &self.csrf
    }

    /// The dashboard's known-device cookie.
    pub fn device(&self) -> &Purpose {
        &self.device
    }

    /// The test form's pass.
    pub fn test_form(&self) -> &Purpose {
        &self.test_form
    }

    /// The `platform.sessionId` of Caputchin's widget: a tag over the challenge token
    /// (SPEC §13), so a session is checked on `verify/pass` without being stored.
    pub fn widget_session(&self) -> &Purpose {
        &self.widget_session
    }

    /// The sealing of remote verifier secrets.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }
}

/// A MAC for one purpose: HMAC-SHA256 under the server key with the purpose's label absorbed
/// first, so two purposes never accept each other's tags.
#[derive(Clone)]
pub struct Purpose {
    mac: HmacSha256,
}

impl Purpose {
    fn new(key: &ServerKey, label: &[u8]) -> Purpose {
        let mut mac = key.mac();
        mac.update(label);
        Purpose { mac }
    }

    /// The tag over `parts` in order.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Checks, in constant time, that `tag` is the tag over `parts` or its first `tag.len()`
    /// bytes (at least 16).
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        check_tag(mac, tag)
    }
}

fn check_tag(mac: HmacSha256, tag: &[u8]) -> bool {
    if tag.len() == 32 {
        mac.verify_slice(tag).is_ok()
    } else if (16..32).contains(&tag.len()) {
        mac.verify_truncated_left(tag).is_ok()
    } else {
        false
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
    check_tag(mac, tag)
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
    fn new(key: &ServerKey) -> Sealer {
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
    fn a_purpose_tag_is_the_server_key_mac_over_its_label_and_parts_and_no_other_purpose_takes_it()
    {
        let server = ServerKey::from_bytes(&[5; 32]);
        let keys = Keys::derive(server.clone());
        let tag = keys.csrf().sign(&[b"session", b"\0", b"abc"]);
        assert_eq!(
            tag,
            sign(&server, &[b"dashboard-csrf\0", b"session", b"\0", b"abc"])
        );
        assert!(keys.csrf().verify(&[b"session", b"\0", b"abc"], &tag[..16]));
        assert!(
            !keys
                .test_form()
                .verify(&[b"session", b"\0", b"abc"], &tag[..16])
        );
        assert!(!keys.csrf().verify(&[b"session", b"\0", b"abd"], &tag[..16]));
        assert!(!keys.csrf().verify(&[b"session", b"\0", b"abc"], &tag[..8]));
    }

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
