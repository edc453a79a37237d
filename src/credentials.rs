//! What an account's login must look like: a plausible email address and a password of the
//! allowed length. The settings check the bootstrap account's with these rules at start; the
//! accounts apply them to every account they create.

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password, in characters (at most 1 KiB of UTF-8, which bounds argon2's work).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A syntactically plausible email address, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Accepts `local@domain` with no spaces, at most 254 bytes.
    pub fn parse(raw: &str) -> Result<Email, CredentialError> {
        let email = raw.trim();
        let plausible = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(email.split_once('@'), Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@'));
        if plausible {
            Ok(Email(email.to_owned()))
        } else {
            Err(CredentialError::InvalidEmail)
        }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why an email or a password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The email is not an address.
    #[error("invalid email address")]
    InvalidEmail,
    /// The password is too short or too long.
    #[error("password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long")]
    WeakPassword,
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), CredentialError> {
    let chars = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(CredentialError::WeakPassword);
    }
    Ok(())
}
