//! `account …`: creating an account from the command line.

use std::fmt;

use anyhow::bail;
use clap::Subcommand;
use serde::Serialize;

use crate::accounts;
use crate::clock::{Clock as _, SystemClock};
use crate::config::Settings;

/// The account commands.
#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account.
    Create {
        /// Login email.
        #[arg(long)]
        email: String,
        /// Password (prefer --password-stdin: arguments are visible to other users).
        #[arg(
            long,
            conflicts_with = "password_stdin",
            required_unless_present = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Carries out an account command and prints its report.
pub(super) fn run(settings: Settings, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create {
            email,
            password,
            password_stdin,
            json,
        } => super::emit(&create(settings, &email, password, password_stdin)?, json),
    }
}

/// A new account.
#[derive(Debug, Serialize)]
pub struct AccountCreated {
    /// The account's id.
    pub account_id: i64,
    /// Its login email, as given (trimmed).
    pub email: String,
}

impl fmt::Display for AccountCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "account created: {}", self.email)
    }
}

/// `account create`: the password comes from the flag or from the first line of standard input.
fn create(
    settings: Settings,
    email: &str,
    password: Option<String>,
    password_stdin: bool,
) -> anyhow::Result<AccountCreated> {
    // The password is read before the state is built, so a failed read leaves no trace.
    let password = match password {
        Some(p) => p,
        None if password_stdin => super::read_line("the password from standard input")?,
        None => bail!("give --password or --password-stdin"),
    };
    let state = super::Records::open(settings)?;
    let account_id =
        accounts::create_account(&state.store, email, &password, SystemClock.now_ms())?;
    Ok(AccountCreated {
        account_id,
        email: email.trim().to_owned(),
    })
}
