//! The command line (SPEC §7): the clap definitions of every command, the dispatch from a parsed
//! command to the function that carries it out, and what the commands share (building the state,
//! reading a line from standard input, printing a report). Each command family has its own file
//! and each command returns a report that is both its text and its `--json` output.

pub mod account;
pub mod backup;
pub mod logging;
mod serve;
pub mod site;
pub mod token;

use std::fmt::Display;
use std::io::{BufRead as _, Write as _};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::clock::{Clock as _, SystemClock};
use crate::config::{Settings, SettingsArgs};
use crate::keys::Keys;
use crate::services::{Dependencies, Services};
use crate::sites::SiteDirectory;
use crate::store::Store;

/// A self-hostable, Caputchin-compatible hosted form forwarder.
///
/// Every setting is read from its environment variable (also from a `.env` file in the working
/// directory) or from the flag of the same name; flags win. Logs go to standard error, filtered by
/// RUST_LOG (default `info`; e.g. `RUST_LOG=caputchin_forwarder=debug,actix_web=warn`), written
/// as CAPUTCHIN_LOG_FORMAT says.
#[derive(Parser)]
#[command(name = "caputchin-forwarder", version, about, long_about)]
pub struct Cli {
    /// The settings' flags, each also read from its environment variable.
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// The command; none means `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands. Their doc comments are the `--help` text.
#[derive(Subcommand)]
pub enum Command {
    /// Serve the forwarder, the Cap endpoints, siteverify and the dashboard (the default).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Manage sites.
    #[command(subcommand)]
    Site(site::SiteCommand),
    /// Manage the management API's personal access tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Apply database migrations and exit.
    Migrate,
    /// Copy the database while servers use it: a consistent snapshot, checked with
    /// `PRAGMA integrity_check`, written beside PATH and renamed into place (mode 0600).
    Backup {
        /// Where the copy goes; its folder must exist.
        #[arg(long)]
        to: std::path::PathBuf,
        /// Replace PATH when it exists.
        #[arg(long)]
        force: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Carries out `command` with `settings`, printing its report on standard output. An error is
/// for the caller to report; a report already printed stays printed (a failed `site test`).
pub fn run(settings: Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve::serve(settings),
        Command::Account(command) => account::run(settings, command),
        Command::Site(command) => site::run(settings, command),
        Command::Token(command) => token::run(settings, command),
        Command::Migrate => emit(&backup::migrate(&settings)?, false),
        Command::Backup { to, force, json } => emit(&backup::backup(&settings, &to, force)?, json),
    }
}

/// What most account and site commands need: the settings, the store (opened and migrated) and
/// the sites in it. Nothing else is built and nothing else is written.
struct Records {
    settings: Settings,
    store: Store,
    sites: SiteDirectory,
}

impl Records {
    fn open(settings: Settings) -> anyhow::Result<Records> {
        let store = Store::open(&settings.database)?;
        let sites = SiteDirectory::default();
        sites.reload(&store).context("loading sites")?;
        Ok(Records {
            settings,
            store,
            sites,
        })
    }

    /// The purpose keys, for a command that seals a verifier secret (a first start generates the
    /// server key here).
    fn keys(&self) -> anyhow::Result<Keys> {
        Keys::load_or_create(
            &self.store,
            self.settings.server_key.as_deref(),
            SystemClock.now_ms(),
        )
        .context("loading the server key")
    }
}

/// Everything a server has, for a command that delivers (`site test`).
fn services(settings: Settings) -> anyhow::Result<Services> {
    Services::open(settings, Dependencies::default())
}

/// Prints a command's report on standard output: with `json`, one JSON object on one line (so
/// scripts can parse standard output whatever is logged), otherwise its text.
fn emit<R: Serialize + Display>(report: &R, json: bool) -> anyhow::Result<()> {
    if json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, report)?;
        writeln!(out)?;
    } else {
        // A report's text is whole lines, each ending in a newline.
        print!("{report}");
    }
    Ok(())
}

/// The first line of standard input without its line ending; `what` names what is read, for the
/// error.
fn read_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading {what}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
