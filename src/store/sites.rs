//! SQL for the `sites` table.

use rusqlite::{Connection, Row, params};

use super::StoreError;

/// A site row as stored. Values are checked again when the sites module reads it.
#[derive(Debug, Clone)]
pub struct SiteRow {
    /// Internal id, `site_…`.
    pub id: String,
    /// Owning account.
    pub account_id: i64,
    /// The owning account's email.
    pub account_email: String,
    /// Display name.
    pub name: String,
    /// Public key, `cpt_pub_…`.
    pub site_key: String,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
    /// Webhook URL (a secret); empty for a site without a webhook.
    pub webhook_url: String,
    /// Newline-separated email addresses; empty for none.
    pub email_to: String,
    /// Whether forwarding is enabled.
    pub enabled: bool,
    /// Where visitors go after a successful post.
    pub redirect_url: Option<String>,
    /// Newline-separated allowed origins; empty means any.
    pub allowed_origins: String,
    /// Challenges per verification.
    pub challenge_count: i64,
    /// Difficulty in hex nibbles.
    pub challenge_difficulty: i64,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last change, epoch ms.
    pub updated_at: i64,
    /// Verifier name.
    pub verifier: String,
    /// The verifier secret, sealed.
    pub verifier_secret: Option<Vec<u8>>,
    /// The verifier URL override.
    pub verifier_url: Option<String>,
    /// hCaptcha's site key.
    pub verifier_sitekey: Option<String>,
    /// SHA-256 of the secret a rotation replaced, while it still verifies.
    pub previous_secret_hash: Option<Vec<u8>>,
    /// Until when (epoch ms) the previous secret verifies.
    pub previous_secret_until: Option<i64>,
    /// Whether the site's key is switched off (it refuses challenges, posts and siteverify).
    pub disabled: bool,
    /// The first save of its hosted verification (destinations and forwarding), epoch ms.
    pub hosted_created_at: Option<i64>,
    /// The latest save of its hosted verification, epoch ms.
    pub hosted_updated_at: Option<i64>,
    /// The webhook URL as an API client sent it.
    pub webhook_url_as_sent: Option<String>,
    /// The email addresses as an API client sent them.
    pub email_to_as_sent: Option<String>,
    /// The allowed origins as an API client sent them, a JSON array.
    pub allowed_origins_as_sent: Option<String>,
}

const COLUMNS: &str = "s.id, s.account_id, a.email, s.name, s.site_key, s.secret_hash, \
     s.webhook_url, s.enabled, s.redirect_url, s.allowed_origins, s.challenge_count, \
     s.challenge_difficulty, s.created_at, s.updated_at, s.verifier, s.verifier_secret, \
     s.verifier_url, s.verifier_sitekey, s.previous_secret_hash, s.previous_secret_until, \
     s.email_to, s.disabled, s.hosted_created_at, s.hosted_updated_at, s.webhook_url_as_sent, \
     s.email_to_as_sent, s.allowed_origins_as_sent";

fn from_row(r: &Row<'_>) -> rusqlite::Result<SiteRow> {
    Ok(SiteRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        account_email: r.get(2)?,
        name: r.get(3)?,
        site_key: r.get(4)?,
        secret_hash: r.get(5)?,
        webhook_url: r.get(6)?,
        enabled: r.get(7)?,
        redirect_url: r.get(8)?,
        allowed_origins: r.get(9)?,
        challenge_count: r.get(10)?,
        challenge_difficulty: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        verifier: r.get(14)?,
        verifier_secret: r.get(15)?,
        verifier_url: r.get(16)?,
        verifier_sitekey: r.get(17)?,
        previous_secret_hash: r.get(18)?,
        previous_secret_until: r.get(19)?,
        email_to: r.get(20)?,
        disabled: r.get(21)?,
        hosted_created_at: r.get(22)?,
        hosted_updated_at: r.get(23)?,
        webhook_url_as_sent: r.get(24)?,
        email_to_as_sent: r.get(25)?,
        allowed_origins_as_sent: r.get(26)?,
    })
}

/// Inserts a site row (its `account_email` is ignored).
pub(super) fn insert(conn: &Connection, row: &SiteRow) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sites (id, account_id, name, site_key, secret_hash, webhook_url, enabled,
                            redirect_url, allowed_origins, challenge_count, challenge_difficulty,
                            created_at, updated_at, verifier, verifier_secret, verifier_url,
                            verifier_sitekey, email_to, disabled, hosted_created_at,
                            hosted_updated_at, webhook_url_as_sent, email_to_as_sent,
                            allowed_origins_as_sent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19, ?20, ?21, ?22, ?23, ?24)",
        params![
            row.id,
            row.account_id,
            row.name,
            row.site_key,
            row.secret_hash,
            row.webhook_url,
            row.enabled,
            row.redirect_url,
            row.allowed_origins,
            row.challenge_count,
            row.challenge_difficulty,
            row.created_at,
            row.updated_at,
            row.verifier,
            row.verifier_secret,
            row.verifier_url,
            row.verifier_sitekey,
            row.email_to,
            row.disabled,
            row.hosted_created_at,
            row.hosted_updated_at,
            row.webhook_url_as_sent,
            row.email_to_as_sent,
            row.allowed_origins_as_sent
        ],
    )?;
    Ok(())
}

/// Every site, oldest first.
pub(super) fn all(conn: &Connection) -> Result<Vec<SiteRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sites s JOIN accounts a ON a.id = s.account_id
         ORDER BY s.created_at, s.id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The sites of one account, oldest first.
pub(super) fn by_account(conn: &Connection, account_id: i64) -> Result<Vec<SiteRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sites s JOIN accounts a ON a.id = s.account_id
         WHERE s.account_id = ?1 ORDER BY s.created_at, s.id"
    ))?;
    let rows = stmt.query_map(params![account_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One site of one account; `None` for another account's site or an unknown id.
pub(super) fn by_id_for_account(
    conn: &Connection,
    account_id: i64,
    site_id: &str,
) -> Result<Option<SiteRow>, StoreError> {
    use rusqlite::OptionalExtension as _;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sites s JOIN accounts a ON a.id = s.account_id
         WHERE s.account_id = ?1 AND s.id = ?2"
    ))?;
    Ok(stmt
        .query_row(params![account_id, site_id], from_row)
        .optional()?)
}

/// Updates a site's settings (not its keys); false when the account has no such site. The
/// hosted-verification time and the as-sent spellings are set only when given (`Some`); the
/// first hosted-verification time is kept once set.
pub(super) fn update_settings(
    conn: &Connection,
    account_id: i64,
    row: &SiteRow,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE sites SET name = ?3, webhook_url = ?4, enabled = ?5, redirect_url = ?6,
                          allowed_origins = ?7, challenge_count = ?8, challenge_difficulty = ?9,
                          updated_at = ?10, verifier = ?11,
                          verifier_secret = COALESCE(?12, verifier_secret),
                          verifier_url = ?13, verifier_sitekey = ?14, email_to = ?15,
                          disabled = ?16,
                          hosted_created_at = COALESCE(hosted_created_at, ?17),
                          hosted_updated_at = COALESCE(?17, hosted_updated_at),
                          webhook_url_as_sent = COALESCE(?18, webhook_url_as_sent),
                          email_to_as_sent = COALESCE(?19, email_to_as_sent),
                          allowed_origins_as_sent = COALESCE(?20, allowed_origins_as_sent)
         WHERE account_id = ?1 AND id = ?2",
        params![
            account_id,
            row.id,
            row.name,
            row.webhook_url,
            row.enabled,
            row.redirect_url,
            row.allowed_origins,
            row.challenge_count,
            row.challenge_difficulty,
            row.updated_at,
            row.verifier,
            row.verifier_secret,
            row.verifier_url,
            row.verifier_sitekey,
            row.email_to,
            row.disabled,
            row.hosted_updated_at,
            row.webhook_url_as_sent,
            row.email_to_as_sent,
            row.allowed_origins_as_sent
        ],
    )?;
    Ok(changed == 1)
}

/// Replaces a site's secret hash; the replaced one keeps verifying until `previous_until`
/// (`None`: it stops at once). False when the account has no such site.
pub(super) fn set_secret_hash(
    conn: &Connection,
    account_id: i64,
    site_id: &str,
    secret_hash: &[u8],
    previous_until: Option<i64>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    // The right-hand sides read the row as it was: the old `secret_hash` becomes the previous one.
    let changed = conn.execute(
        "UPDATE sites SET previous_secret_hash = CASE WHEN ?4 IS NULL THEN NULL ELSE secret_hash END,
                          previous_secret_until = ?4, secret_hash = ?3, updated_at = ?5
         WHERE account_id = ?1 AND id = ?2",
        params![account_id, site_id, secret_hash, previous_until, now_ms],
    )?;
    Ok(changed == 1)
}

/// Deletes a site (its delivery records go with it); false when the account has no such site.
pub(super) fn delete(
    conn: &Connection,
    account_id: i64,
    site_id: &str,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "DELETE FROM sites WHERE account_id = ?1 AND id = ?2",
        params![account_id, site_id],
    )?;
    Ok(changed == 1)
}

/// The counter bumped by every change to `sites`.
pub(super) fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT version FROM sites_version WHERE id = 1", [], |r| {
            r.get(0)
        })?,
    )
}

/// The site records, as the rest of the crate reaches them: each call one transaction
/// ([`super::Store::sites`]).
#[derive(Clone, Copy)]
pub struct Sites<'a>(pub(super) &'a super::Store);

impl Sites<'_> {
    /// Records a new site.
    pub fn insert(&self, row: &SiteRow) -> Result<(), StoreError> {
        self.0.write(|c| insert(c, row))
    }

    /// Every site, with the counter its snapshot was read at (one read).
    pub fn snapshot(&self) -> Result<(i64, Vec<SiteRow>), StoreError> {
        self.0.read(|c| Ok((version(c)?, all(c)?)))
    }

    /// Every site.
    pub fn all(&self) -> Result<Vec<SiteRow>, StoreError> {
        self.0.read(all)
    }

    /// One account's sites, oldest first.
    pub fn of_account(&self, account_id: i64) -> Result<Vec<SiteRow>, StoreError> {
        self.0.read(|c| by_account(c, account_id))
    }

    /// One of an account's sites by its internal id.
    pub fn of_account_by_id(
        &self,
        account_id: i64,
        site_id: &str,
    ) -> Result<Option<SiteRow>, StoreError> {
        self.0.read(|c| by_id_for_account(c, account_id, site_id))
    }

    /// Replaces an account's site's settings when `allow` accepts the stored row, in one write
    /// transaction (so the row `allow` judged is the one replaced); `Ok(false)` when the account
    /// has no such site.
    pub fn update<E: From<StoreError>>(
        &self,
        account_id: i64,
        row: &SiteRow,
        allow: impl FnOnce(&SiteRow) -> Result<(), E>,
    ) -> Result<bool, E> {
        self.0.write(|c| {
            let Some(current) = by_id_for_account(c, account_id, &row.id)? else {
                return Ok(false);
            };
            allow(&current)?;
            Ok(update_settings(c, account_id, row)?)
        })
    }

    /// Replaces a site's secret hash, keeping the old one until `previous_until` when given.
    pub fn set_secret(
        &self,
        account_id: i64,
        site_id: &str,
        secret_hash: &[u8],
        previous_until: Option<i64>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.0
            .write(|c| set_secret_hash(c, account_id, site_id, secret_hash, previous_until, now_ms))
    }

    /// Deletes an account's site and its records.
    pub fn delete(&self, account_id: i64, site_id: &str) -> Result<bool, StoreError> {
        self.0.write(|c| delete(c, account_id, site_id))
    }

    /// The counter bumped by every change to a site.
    pub fn version(&self) -> Result<i64, StoreError> {
        self.0.read(version)
    }
}
