//! `token …`: creating, listing and revoking the management API's personal access tokens
//! (SPEC §12), through the same library functions the dashboard and the API use.

use std::fmt;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use serde::Serialize;

use crate::access_tokens::{self, Scope, TokenInfo, TokenInput};
use crate::accounts;
use crate::clock::{Clock as _, SystemClock};
use crate::config::Settings;

/// The token commands.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a personal access token for the management API; prints it once (only its hash is
    /// stored).
    Create {
        /// Email of the owning account.
        #[arg(long)]
        account: String,
        /// A name to recognise it by.
        #[arg(long)]
        name: String,
        /// read (GET only) or write.
        #[arg(long, default_value = "write", value_parser = parse_scope)]
        scope: Scope,
        /// Bind the token to this one site (its public key, cpt_pub_…).
        #[arg(long)]
        site: Option<String>,
        /// Days until the token stops working [default: never].
        #[arg(long)]
        expires_days: Option<u32>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List an account's tokens (never their values): name, scope, site, created, last used,
    /// expiry.
    List {
        /// Email of the owning account.
        #[arg(long)]
        account: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it is refused at once on every server.
    Revoke {
        /// The token's id (tok_…), as listed.
        token_id: String,
        /// Email of the owning account.
        #[arg(long)]
        account: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Parses `--scope`.
fn parse_scope(raw: &str) -> Result<Scope, String> {
    Scope::parse(raw).ok_or_else(|| format!("{raw:?}: use read or write"))
}

/// Carries out a token command and prints its report.
pub(super) fn run(settings: Settings, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            account,
            name,
            scope,
            site,
            expires_days,
            json,
        } => {
            let report = create(settings, &account, name, scope, site, expires_days)?;
            super::emit(&report, json)
        }
        TokenCommand::List { account, json } => super::emit(&list(settings, &account)?, json),
        TokenCommand::Revoke {
            token_id,
            account,
            json,
        } => super::emit(&revoke(settings, &account, &token_id)?, json),
    }
}

/// A new token with its value shown this once. (No `Debug`: it holds the token.)
#[derive(Serialize)]
pub struct TokenCreated {
    /// What is listed about it.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The token, in clear.
    pub token: String,
}

impl fmt::Display for TokenCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "token created")?;
        writeln!(f, "  id:     {}", self.info.id)?;
        writeln!(f, "  name:   {}", self.info.name)?;
        writeln!(f, "  scope:  {}", self.info.scope.as_str())?;
        if let Some(key) = &self.info.site_key {
            writeln!(f, "  site:   {key}")?;
        }
        writeln!(f, "  token:  {}  (shown once: store it now)", self.token)
    }
}

/// `token create`.
fn create(
    settings: Settings,
    account: &str,
    name: String,
    scope: Scope,
    site: Option<String>,
    expires_days: Option<u32>,
) -> anyhow::Result<TokenCreated> {
    let state = super::Records::open(settings)?;
    let owner = accounts::find_account(&state.store, account)?;
    let site_id = match site {
        Some(key) => {
            let key = key.trim();
            let found = state
                .sites
                .get(key)
                .filter(|s| s.account_id == owner.id)
                .with_context(|| format!("the account has no site with key {key}"))?;
            Some(found.id.clone())
        }
        None => None,
    };
    let input = TokenInput {
        name,
        scope,
        site_id,
        expires_days,
        ..TokenInput::default()
    };
    let created =
        access_tokens::create_token(&state.store, owner.id, &input, SystemClock.now_ms())?;
    Ok(TokenCreated {
        info: created.info,
        token: created.value,
    })
}

/// An account's tokens. Its JSON is `{"tokens": [...]}`.
#[derive(Debug, Serialize)]
pub struct TokenList {
    /// The live tokens, oldest first.
    pub tokens: Vec<TokenInfo>,
}

impl fmt::Display for TokenList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tokens.is_empty() {
            return writeln!(f, "no tokens");
        }
        let when = |ms: Option<i64>| ms.map_or_else(|| "-".to_owned(), crate::time::utc_datetime);
        for t in &self.tokens {
            writeln!(
                f,
                "{}  {}  {}  site {}  created {}  last used {}  expires {}  {}",
                t.id,
                t.prefix,
                t.scope.as_str(),
                t.site_key.as_deref().unwrap_or("all"),
                when(Some(t.created_at)),
                when(t.last_used_at),
                when(t.expires_at),
                t.name
            )?;
        }
        Ok(())
    }
}

/// `token list`.
fn list(settings: Settings, account: &str) -> anyhow::Result<TokenList> {
    let state = super::Records::open(settings)?;
    let owner = accounts::find_account(&state.store, account)?;
    Ok(TokenList {
        tokens: access_tokens::list_tokens(&state.store, owner.id)?,
    })
}

/// A revoked token.
#[derive(Debug, Serialize)]
pub struct TokenRevoked {
    /// Its id.
    pub id: String,
    /// Always true.
    pub revoked: bool,
}

impl fmt::Display for TokenRevoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "token {} revoked", self.id)
    }
}

/// `token revoke`.
fn revoke(settings: Settings, account: &str, token_id: &str) -> anyhow::Result<TokenRevoked> {
    let state = super::Records::open(settings)?;
    let owner = accounts::find_account(&state.store, account)?;
    let token_id = token_id.trim();
    if !access_tokens::revoke_token(&state.store, owner.id, token_id, SystemClock.now_ms())? {
        bail!("the account has no live token {token_id}");
    }
    Ok(TokenRevoked {
        id: token_id.to_owned(),
        revoked: true,
    })
}
