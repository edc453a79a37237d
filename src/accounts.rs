//! Accounts: who owns sites. Creation and lookup shared by the CLI, the bootstrap setting and the
//! dashboard, and the dashboard's login check and sessions. Passwords are hashed with argon2id and
//! never stored or logged in clear.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};

use crate::store::{self, Store, StoreError};

pub use crate::credentials::{
    CredentialError, Email, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, check_password,
};

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The email is not an address, or the password is too short or too long.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// An account with this email exists.
    #[error("an account with this email already exists")]
    DuplicateEmail,
    /// No account has this email.
    #[error("no account with this email")]
    UnknownAccount,
    /// The one-time setup creates only the first account, and one exists.
    #[error("an account exists already: log in instead")]
    NotFirst,
    /// Hashing failed.
    #[error("password hashing failed")]
    Hash,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::encode_b64(&crate::ids::random_bytes::<16>())
        .map_err(|_| AccountError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AccountError::Hash)
}

/// Checks a password against a PHC hash (the comparison inside argon2 is constant-time).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Runs one password verification against a fixed hash, so that a login for an unknown email
/// takes as long as one for a known email.
pub fn burn_verification(password: &str) {
    static DUMMY: std::sync::LazyLock<Option<String>> =
        std::sync::LazyLock::new(|| hash_password("not a real password at all").ok());
    if let Some(phc) = DUMMY.as_deref() {
        let _ = verify_password(password, phc);
    }
}

/// Creates an account; returns its id.
pub fn create_account(
    store: &Store,
    email: &str,
    password: &str,
    now_ms: i64,
) -> Result<i64, AccountError> {
    create(store, email, password, now_ms, false)
}

/// Creates the first account (the one-time setup link's); [`AccountError::NotFirst`] when any
/// account exists, however and by whichever process it was made.
pub fn create_first_account(
    store: &Store,
    email: &str,
    password: &str,
    now_ms: i64,
) -> Result<i64, AccountError> {
    create(store, email, password, now_ms, true)
}

/// Checks the email and password, hashes the password and records the account in one write
/// (`first`: only while no account exists).
fn create(
    store: &Store,
    email: &str,
    password: &str,
    now_ms: i64,
    first: bool,
) -> Result<i64, AccountError> {
    let email = Email::parse(email)?;
    check_password(password)?;
    let hash = hash_password(password)?;
    let accounts = store.accounts();
    if first {
        accounts
            .insert_first(email.as_str(), &hash, now_ms)?
            .ok_or(AccountError::NotFirst)
    } else {
        accounts
            .insert(email.as_str(), &hash, now_ms)?
            .ok_or(AccountError::DuplicateEmail)
    }
}

/// How many accounts exist.
pub fn count(store: &Store) -> Result<i64, StoreError> {
    store.accounts().count()
}

/// Finds an account by email.
pub fn find_account(
    store: &Store,
    email: &str,
) -> Result<store::accounts::AccountRow, AccountError> {
    let email = Email::parse(email)?;
    store
        .accounts()
        .by_email(email.as_str())?
        .ok_or(AccountError::UnknownAccount)
}

/// The account whose password this is, found by email: `Ok(None)` for a wrong password or an
/// unknown email, which take the same time (one argon2 verification each), so that timing does
/// not reveal which emails have accounts.
pub fn check_login(
    store: &Store,
    email: &str,
    password: &str,
) -> Result<Option<i64>, AccountError> {
    let found = store.accounts().password_hash(email)?;
    Ok(match found {
        Some((id, phc)) => verify_password(password, &phc).then_some(id),
        None => {
            burn_verification(password);
            None
        }
    })
}

/// The id and email of the account whose session has this id hash, while the session is live at
/// `now_ms`.
pub fn session_account(
    store: &Store,
    id_hash: &[u8; 32],
    now_ms: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    store.sessions().account_of(id_hash, now_ms)
}

/// Records a new session of `account_id` (by the hash of its id) lasting until `expires_at_ms`,
/// in one write that also ends the session it replaces (the one the browser carried, if any) and
/// drops expired ones.
pub fn create_session(
    store: &Store,
    id_hash: &[u8; 32],
    account_id: i64,
    replacing: Option<&[u8; 32]>,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<(), StoreError> {
    store.sessions().start(
        id_hash,
        account_id,
        replacing.map(|old| old.as_slice()),
        now_ms,
        expires_at_ms,
    )
}

/// Ends the session with this id hash.
pub fn end_session(store: &Store, id_hash: &[u8; 32]) -> Result<(), StoreError> {
    store.sessions().end(id_hash)
}

/// Creates the account named by the bootstrap settings unless it exists; true when created.
pub fn ensure_bootstrap_account(
    store: &Store,
    email: &str,
    password: &str,
    now_ms: i64,
) -> Result<bool, AccountError> {
    // An existing account is the common case at every start: skip the argon2 hash for it.
    match find_account(store, email) {
        Ok(_) => return Ok(false),
        Err(AccountError::UnknownAccount) => {}
        Err(e) => return Err(e),
    }
    match create_account(store, email, password, now_ms) {
        Ok(_) => Ok(true),
        Err(AccountError::DuplicateEmail) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_for_shape() {
        assert!(Email::parse(" owner@example.com ").is_ok());
        for bad in ["", "no-at", "@x", "x@", "a b@c.d", "a@b@c"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accounts_are_unique_by_email_ignoring_case_and_passwords_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        create_account(&store, "Owner@Example.com", "correct horse", 1).unwrap();
        assert!(matches!(
            create_account(&store, "owner@example.com", "another pass", 2),
            Err(AccountError::DuplicateEmail)
        ));
        assert!(matches!(
            create_account(&store, "x@example.com", "short", 2),
            Err(AccountError::Credentials(CredentialError::WeakPassword))
        ));
        // The rule counts characters: 256 four-byte characters pass, 257 do not.
        assert!(check_password(&"🔑".repeat(256)).is_ok());
        assert!(matches!(
            check_password(&"🔑".repeat(257)),
            Err(CredentialError::WeakPassword)
        ));
        assert_eq!(
            AccountError::from(CredentialError::WeakPassword).to_string(),
            "password must be 10 to 256 characters long"
        );
        let (_, phc) = store
            .accounts()
            .password_hash("owner@example.com")
            .unwrap()
            .unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horse!", &phc));
        assert!(matches!(
            find_account(&store, "nobody@example.com"),
            Err(AccountError::UnknownAccount)
        ));
        assert!(!ensure_bootstrap_account(&store, "OWNER@example.com", "x", 3).unwrap());
        assert!(ensure_bootstrap_account(&store, "boot@example.com", "bootstrap pass", 3).unwrap());
    }

    #[test]
    fn only_the_first_account_is_created_by_the_first_account_route() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.db")).unwrap();
        create_account(&store, "cli@example.com", "a long password", 1).unwrap();
        assert!(matches!(
            create_first_account(&store, "setup@example.com", "a long password", 2),
            Err(AccountError::NotFirst)
        ));
        let empty = Store::open(&dir.path().join("g.db")).unwrap();
        assert!(create_first_account(&empty, "setup@example.com", "a long password", 2).is_ok());
        assert!(matches!(
            create_first_account(&empty, "again@example.com", "a long password", 3),
            Err(AccountError::NotFirst)
        ));
    }
}
