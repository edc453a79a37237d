//! The database's files on disk: the folder is created `0700` and the database `0600` whatever the
//! umask, since the file holds the server key and webhook URLs (secrets, SPEC §6). SQLite gives
//! the `-wal` and `-shm` files the database file's own mode. Files that already exist are not
//! changed; [`readable_by_others`] names the ones a start should warn about.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Mode of a folder created for the database.
pub const FOLDER_MODE: u32 = 0o700;
/// Mode of a database file created here.
pub const FILE_MODE: u32 = 0o600;

/// The database file and the two SQLite keeps beside it in WAL mode.
pub fn database_files(database: &Path) -> [PathBuf; 3] {
    let with_suffix = |suffix: &str| {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [
        database.to_owned(),
        with_suffix("-wal"),
        with_suffix("-shm"),
    ]
}

/// Creates the database's folder (mode 0700, with any missing parents) and an empty database
/// file (mode 0600) when they are missing; existing ones are left as they are.
pub fn prepare(database: &Path) -> anyhow::Result<()> {
    if let Some(parent) = database.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(FOLDER_MODE)
            .create(parent)
            .with_context(|| format!("creating database folder {}", parent.display()))?;
        // The umask can only narrow the mode asked for; set it exactly anyway.
        std::fs::set_permissions(parent, Permissions::from_mode(FOLDER_MODE))
            .with_context(|| format!("restricting database folder {}", parent.display()))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(database)
    {
        Ok(file) => file
            .set_permissions(Permissions::from_mode(FILE_MODE))
            .with_context(|| format!("restricting database {}", database.display())),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating database {}", database.display())),
    }
}

/// The database files that exist and that users other than the owner may read or write, with
/// their modes.
pub fn readable_by_others(database: &Path) -> Vec<(PathBuf, u32)> {
    database_files(database)
        .into_iter()
        .filter_map(|path| {
            let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some((path, mode))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_folder_and_database_are_private_and_existing_ones_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("a/b/forwarder.db");
        prepare(&database).unwrap();
        assert_eq!(mode(&dir.path().join("a/b")), FOLDER_MODE);
        assert_eq!(mode(&database), FILE_MODE);
        assert!(readable_by_others(&database).is_empty());

        std::fs::set_permissions(&database, Permissions::from_mode(0o644)).unwrap();
        prepare(&database).unwrap();
        assert_eq!(mode(&database), 0o644);
        assert_eq!(
            readable_by_others(&database),
            vec![(database.clone(), 0o644)]
        );
    }
}
