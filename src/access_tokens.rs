//! Personal access tokens of the management API (SPEC §12): creating, listing and revoking them
//! (the CLI, the dashboard and the API's own token endpoints call these same functions), and
//! finding who a bearer token belongs to. A token is `cpt_pat_` and 256 random bits in hex, shown
//! once; only its SHA-256 is stored. It is never logged: [`Caller`] and the rows hold only its hash
//! and prefix.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::store::access_tokens::AccessTokenRow;
use crate::store::{Store, StoreError};

/// Prefix of personal access tokens.
pub const TOKEN_PREFIX: &str = "cpt_pat_";
/// Prefix of token ids.
pub const TOKEN_ID_PREFIX: &str = "tok_";
/// Hex digits after the prefix (32 random bytes).
const TOKEN_HEX_DIGITS: usize = 64;
/// Characters of a token shown in lists (Caputchin's `prefix`: the first 16).
pub const SHOWN_PREFIX_CHARS: usize = 16;
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest expiry, in days.
pub const MAX_EXPIRES_DAYS: u32 = 3650;
/// A token's `last_used_at` is written at most this often.
pub const TOUCH_EVERY_MS: i64 = 60_000;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Reads only: every write is refused with `insufficient-scope`.
    Read,
    /// Reads and writes within its account (or its one site).
    #[default]
    Write,
}

impl Scope {
    /// Parses `read` or `write`.
    pub fn parse(raw: &str) -> Option<Scope> {
        match raw.trim() {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            _ => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }
}

/// The token type the Caputchin API names (`troop` or `account`); stored to be echoed, it grants
/// nothing by itself (reference §9.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Caputchin's default.
    #[default]
    Troop,
    /// An account (master) token.
    Account,
}

impl Kind {
    /// Parses `troop` or `account`.
    pub fn parse(raw: &str) -> Option<Kind> {
        match raw {
            "troop" => Some(Kind::Troop),
            "account" => Some(Kind::Account),
            _ => None,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Troop => "troop",
            Kind::Account => "account",
        }
    }
}

/// Why a token could not be created or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Empty, too long, or with control characters.
    #[error("the token name must be 1 to {MAX_NAME_CHARS} characters, without control characters")]
    InvalidName,
    /// Expiry out of range.
    #[error("the expiry must be 1 to {MAX_EXPIRES_DAYS} days")]
    InvalidExpiry,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new token is for.
#[derive(Debug, Clone, Default)]
pub struct TokenInput {
    /// Its name, as given.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// The one site (internal id) it is bound to, if any; the caller checks it is the account's.
    pub site_id: Option<String>,
    /// Days until it stops working; `None` for never.
    pub expires_days: Option<u32>,
    /// The Caputchin type to echo.
    pub kind: Kind,
}

/// A token as listed: everything but the token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Internal id, `tok_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The Caputchin type it was created as.
    pub kind: Kind,
    /// What it may do.
    pub scope: Scope,
    /// The site (internal id) it is bound to.
    pub site_id: Option<String>,
    /// That site's public key.
    pub site_key: Option<String>,
    /// Its first 16 characters.
    pub prefix: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
    /// Latest use, epoch ms (recorded at most once a minute).
    pub last_used_at: Option<i64>,
}

impl TokenInfo {
    fn from_row(row: AccessTokenRow) -> Result<TokenInfo, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("token {}: bad {what}", row.id));
        Ok(TokenInfo {
            kind: Kind::parse(&row.kind).ok_or_else(|| corrupt("type"))?,
            scope: Scope::parse(&row.scope).ok_or_else(|| corrupt("scope"))?,
            id: row.id,
            name: row.name,
            site_id: row.site_id,
            site_key: row.site_key,
            prefix: row.prefix,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
        })
    }

    /// True when it has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_ms)
    }
}

/// A new token with its value, shown this once. (No `Debug`: it holds the token.)
pub struct CreatedToken {
    /// What is listed about it.
    pub info: TokenInfo,
    /// The token, in clear.
    pub value: String,
}

/// SHA-256 of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// True when `raw` has the shape of a token (the prefix and 64 lowercase hex digits): anything
/// else is refused before any lookup.
pub fn looks_like_token(raw: &str) -> bool {
    raw.strip_prefix(TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == TOKEN_HEX_DIGITS && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Creates a token for an account; its value is returned once and never stored.
pub fn create_token(
    store: &Store,
    account_id: i64,
    input: &TokenInput,
    now_ms: i64,
) -> Result<CreatedToken, TokenError> {
    let name = &input.name;
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(TokenError::InvalidName);
    }
    let expires_at = match input.expires_days {
        None => None,
        Some(days) if (1..=MAX_EXPIRES_DAYS).contains(&days) => {
            Some(now_ms.saturating_add(i64::from(days) * crate::time::DAY_MS))
        }
        Some(_) => return Err(TokenError::InvalidExpiry),
    };
    let value = crate::ids::random_id::<32>(TOKEN_PREFIX);
    let row = AccessTokenRow {
        id: crate::ids::random_id::<8>(TOKEN_ID_PREFIX),
        account_id,
        name: name.clone(),
        kind: input.kind.as_str().to_owned(),
        scope: input.scope.as_str().to_owned(),
        site_id: input.site_id.clone(),
        site_key: None,
        token_hash: hash_token(&value).to_vec(),
        prefix: value.chars().take(SHOWN_PREFIX_CHARS).collect(),
        created_at: now_ms,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    store.access_tokens().insert(&row)?;
    let stored = store
        .access_tokens()
        .by_hash(&hash_token(&value))?
        .ok_or_else(|| StoreError::Corrupt("a token just stored is missing".into()))?;
    Ok(CreatedToken {
        info: TokenInfo::from_row(stored)?,
        value,
    })
}

/// An account's tokens that are not revoked (expired ones included), oldest first.
pub fn list_tokens(store: &Store, account_id: i64) -> Result<Vec<TokenInfo>, TokenError> {
    Ok(store
        .access_tokens()
        .live_of_account(account_id)?
        .into_iter()
        .map(TokenInfo::from_row)
        .collect::<Result<_, _>>()?)
}

/// Revokes one of an account's tokens at once; `Ok(false)` when it has no such live token.
pub fn revoke_token(
    store: &Store,
    account_id: i64,
    token_id: &str,
    now_ms: i64,
) -> Result<bool, TokenError> {
    Ok(store.access_tokens().revoke(account_id, token_id, now_ms)?)
}

/// Who a valid bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's id (its rate-limit bucket).
    pub token_id: String,
    /// The account it belongs to.
    pub account_id: i64,
    /// What it may do.
    pub scope: Scope,
    /// The one site it is bound to, if any.
    pub site_id: Option<String>,
}

impl Caller {
    /// True when the token may write.
    pub fn may_write(&self) -> bool {
        self.scope == Scope::Write
    }

    /// True when the token may see the site with this internal id (its account's sites are
    /// checked by the lookups themselves).
    pub fn may_see(&self, site_id: &str) -> bool {
        self.site_id.as_deref().is_none_or(|own| own == site_id)
    }

    /// True for a write token bound to no site: the only kind that may create sites and manage
    /// tokens.
    pub fn unrestricted_writer(&self) -> bool {
        self.may_write() && self.site_id.is_none()
    }
}

/// Why a bearer token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Not a token, unknown, revoked or expired (one answer for all, so nothing is revealed).
    #[error("the token is invalid, revoked or expired")]
    Invalid,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The caller a bearer token speaks for at `now_ms`: the token is found by its hash and the hash
/// is then compared in constant time; revoked and expired tokens are refused.
pub fn authenticate(store: &Store, token: &str, now_ms: i64) -> Result<Caller, AuthError> {
    if !looks_like_token(token) {
        return Err(AuthError::Invalid);
    }
    let hash = hash_token(token);
    let row = store
        .access_tokens()
        .by_hash(&hash)?
        .ok_or(AuthError::Invalid)?;
    let matches = bool::from(row.token_hash.as_slice().ct_eq(&hash));
    let live = row.revoked_at.is_none() && row.expires_at.is_none_or(|at| now_ms < at);
    if !(matches && live) {
        return Err(AuthError::Invalid);
    }
    Ok(Caller {
        token_id: row.id,
        account_id: row.account_id,
        scope: Scope::parse(&row.scope).ok_or_else(|| StoreError::Corrupt("token scope".into()))?,
        site_id: row.site_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_one_shape_and_carry_256_random_bits() {
        let a = crate::ids::random_id::<32>(TOKEN_PREFIX);
        assert!(looks_like_token(&a));
        for bad in [
            "",
            "cpt_pat_",
            &a[..a.len() - 1],
            &format!("{a}0"),
            &a.to_uppercase(),
            &a.replace("cpt_pat_", "cpt_sec_"),
        ] {
            assert!(!looks_like_token(bad), "{bad}");
        }
    }

    #[test]
    fn created_tokens_authenticate_until_revoked_or_expired_and_are_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let account =
            crate::accounts::create_account(&store, "o@example.com", "long enough pw", 1).unwrap();
        let input = TokenInput {
            name: "ci".into(),
            scope: Scope::Read,
            expires_days: Some(1),
            ..TokenInput::default()
        };
        let created = create_token(&store, account, &input, 1_000).unwrap();
        assert_eq!(created.info.prefix, &created.value[..16]);
        let caller = authenticate(&store, &created.value, 1_000).unwrap();
        assert_eq!(caller.account_id, account);
        assert_eq!(caller.scope, Scope::Read);
        let expiry = 1_000 + crate::time::DAY_MS;
        assert!(authenticate(&store, &created.value, expiry - 1).is_ok());
        assert!(matches!(
            authenticate(&store, &created.value, expiry),
            Err(AuthError::Invalid)
        ));
        let other = crate::ids::random_id::<32>(TOKEN_PREFIX);
        assert!(matches!(
            authenticate(&store, &other, 1_000),
            Err(AuthError::Invalid)
        ));
        assert_eq!(list_tokens(&store, account).unwrap().len(), 1);
        assert!(revoke_token(&store, account, &created.info.id, 2_000).unwrap());
        assert!(!revoke_token(&store, account, &created.info.id, 2_000).unwrap());
        assert!(matches!(
            authenticate(&store, &created.value, 2_000),
            Err(AuthError::Invalid)
        ));
        assert!(list_tokens(&store, account).unwrap().is_empty());
        drop(store);
        let bytes = std::fs::read(dir.path().join("t.db")).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(&created.value[16..]));
    }

    #[test]
    fn names_and_expiries_out_of_range_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("n.db")).unwrap();
        let account =
            crate::accounts::create_account(&store, "o@example.com", "long enough pw", 1).unwrap();
        for name in ["", " ", "a\nb", &"x".repeat(101)] {
            let input = TokenInput {
                name: name.into(),
                ..TokenInput::default()
            };
            assert!(matches!(
                create_token(&store, account, &input, 1),
                Err(TokenError::InvalidName)
            ));
        }
        for days in [0, MAX_EXPIRES_DAYS + 1] {
            let input = TokenInput {
                name: "n".into(),
                expires_days: Some(days),
                ..TokenInput::default()
            };
            assert!(matches!(
                create_token(&store, account, &input, 1),
                Err(TokenError::InvalidExpiry)
            ));
        }
    }
}
