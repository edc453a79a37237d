//! `migrate` and `backup`: the commands that work on the database file itself, without building
//! the application's state.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Settings;
use crate::store::{self, backup::BackupReport};

/// A database brought up to date by `migrate`.
#[derive(Debug, Serialize)]
pub struct Migrated {
    /// The database file.
    pub database: PathBuf,
}

impl fmt::Display for Migrated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "database {} is up to date", self.database.display())
    }
}

/// `migrate`: opening the store applies the migrations it lacks.
pub(super) fn migrate(settings: &Settings) -> anyhow::Result<Migrated> {
    let db = store::Store::open(&settings.database)?;
    Ok(Migrated {
        database: db.path().to_owned(),
    })
}

/// A backup written by `backup`; its JSON is the library's [`BackupReport`] as it is.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct BackupWritten(pub BackupReport);

impl fmt::Display for BackupWritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let BackupReport { path, bytes, sites } = &self.0;
        writeln!(
            f,
            "backup written: {} ({bytes} bytes, {sites} sites, integrity ok)",
            path.display()
        )
    }
}

/// `backup`: an online, checked copy of the database at `to`.
pub(super) fn backup(settings: &Settings, to: &Path, force: bool) -> anyhow::Result<BackupWritten> {
    Ok(BackupWritten(store::backup::run(
        &settings.database,
        to,
        force,
    )?))
}
