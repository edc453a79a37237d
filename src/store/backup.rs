//! Online backups (SPEC §9): a consistent copy of the live database, taken while servers write
//! to it, checked, and renamed into place.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Why a backup was not made. Nothing was overwritten in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The database to copy does not exist.
    #[error("the database {0} does not exist")]
    NoDatabase(PathBuf),
    /// The destination's folder does not exist.
    #[error("the folder {0} does not exist")]
    NoFolder(PathBuf),
    /// The destination exists and `--force` was not given.
    #[error("{0} already exists (give --force to replace it)")]
    Exists(PathBuf),
    /// The destination is the live database or one of its files.
    #[error("{0} is the live database itself; choose another path")]
    LiveDatabase(PathBuf),
    /// The copy failed its integrity check.
    #[error("the copy failed its integrity check: {0}")]
    Integrity(String),
    /// SQLite failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file system failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_owned();
    move |source| BackupError::Io { what, path, source }
}

/// What a finished backup wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// How many sites it holds.
    pub sites: i64,
}

/// Copies `database` to `to`: `VACUUM INTO` a new file beside `to` (one read transaction, so the
/// copy is one consistent snapshot whatever servers commit meanwhile), `PRAGMA integrity_check`
/// on the copy, `fsync`, then an atomic rename over `to`. The copy is readable by its owner only
/// (mode 0600), like the database. An existing `to` is refused unless `force`.
pub fn run(database: &Path, to: &Path, force: bool) -> Result<BackupReport, BackupError> {
    if !database.is_file() {
        return Err(BackupError::NoDatabase(database.to_owned()));
    }
    let name = to
        .file_name()
        .ok_or_else(|| BackupError::NoFolder(to.to_owned()))?
        .to_owned();
    let folder = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let folder = folder
        .canonicalize()
        .map_err(|_| BackupError::NoFolder(folder.clone()))?;
    if !folder.is_dir() {
        return Err(BackupError::NoFolder(folder));
    }
    let target = folder.join(&name);
    let live = database.canonicalize().map_err(io("resolving", database))?;
    let live_files = ["", "-wal", "-shm", "-journal"].map(|suffix| {
        let mut file = live.clone().into_os_string();
        file.push(suffix);
        PathBuf::from(file)
    });
    let target_resolved = target.canonicalize().unwrap_or_else(|_| target.clone());
    if live_files.contains(&target) || live_files.contains(&target_resolved) {
        return Err(BackupError::LiveDatabase(target));
    }
    // `symlink_metadata`: a dangling symbolic link at PATH exists too.
    if std::fs::symlink_metadata(&target).is_ok() && !force {
        return Err(BackupError::Exists(target));
    }

    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(&name);
    temp_name.push(format!(".{}.tmp", crate::ids::random_id::<6>("")));
    let temp = folder.join(temp_name);
    let written = write_copy(database, &temp);
    let report = match written.and_then(|()| check_copy(&temp, &target)) {
        Ok(report) => report,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    if let Err(e) = publish(&temp, &target, force) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    // The rename is durable once the folder is.
    File::open(&folder)
        .and_then(|dir| dir.sync_all())
        .map_err(io("syncing", &folder))?;
    Ok(report)
}

/// Puts the finished copy at `target`: renamed over it with `force`; otherwise linked there,
/// which fails if anything appeared at `target` meanwhile (nothing is ever replaced without
/// `force`), and the temporary name removed.
fn publish(temp: &Path, target: &Path, force: bool) -> Result<(), BackupError> {
    if force {
        return std::fs::rename(temp, target).map_err(io("renaming the copy to", target));
    }
    std::fs::hard_link(temp, target).map_err(|e| match e.kind() {
        ErrorKind::AlreadyExists => BackupError::Exists(target.to_owned()),
        _ => io("linking the copy to", target)(e),
    })?;
    std::fs::remove_file(temp).map_err(io("removing", temp))
}

/// `VACUUM INTO` an empty file created first with mode 0600, then `fsync`.
fn write_copy(database: &Path, temp: &Path) -> Result<(), BackupError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => BackupError::NoFolder(temp.to_owned()),
            _ => io("creating", temp)(e),
        })?;
    // Never create the database: a mistyped path must not become an empty backup.
    let source = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(Duration::from_secs(10))?;
    let temp_text = temp
        .to_str()
        .ok_or_else(|| io("naming", temp)(std::io::Error::other("path is not UTF-8")))?;
    source.execute("VACUUM INTO ?1", [temp_text])?;
    drop(source);
    File::open(temp)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", temp))?;
    Ok(())
}

/// Opens the copy read-only and checks it; the report names the final path.
fn check_copy(temp: &Path, target: &Path) -> Result<BackupReport, BackupError> {
    let copy = Connection::open_with_flags(temp, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(BackupError::Integrity(verdict));
    }
    let sites: i64 = copy.query_row("SELECT COUNT(*) FROM sites", [], |r| r.get(0))?;
    drop(copy);
    let bytes = std::fs::metadata(temp).map_err(io("reading", temp))?.len();
    Ok(BackupReport {
        path: target.to_owned(),
        bytes,
        sites,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn live_db(dir: &Path) -> PathBuf {
        let path = dir.join("live.db");
        let store = crate::store::Store::open(&path).unwrap();
        drop(store);
        path
    }

    #[test]
    fn a_backup_is_checked_private_and_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let db = live_db(dir.path());
        let to = dir.path().join("copy.db");
        let report = run(&db, &to, false).unwrap();
        assert_eq!(report.sites, 0);
        assert!(report.bytes > 0);
        let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        std::fs::write(&to, b"keep me").unwrap();
        assert!(matches!(run(&db, &to, false), Err(BackupError::Exists(_))));
        assert_eq!(std::fs::read(&to).unwrap(), b"keep me");
        let dangling = dir.path().join("dangling.db");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(matches!(
            run(&db, &dangling, false),
            Err(BackupError::Exists(_))
        ));
        assert!(
            !dir.path().join("nowhere").exists(),
            "the link was not followed"
        );
        assert!(matches!(
            run(&db, dir.path(), true),
            Err(BackupError::Io { .. } | BackupError::NoFolder(_))
        ));
        run(&db, &to, true).unwrap();
        assert_ne!(std::fs::read(&to).unwrap(), b"keep me");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "no temporary files are left behind");
    }

    #[test]
    fn a_missing_folder_the_live_database_and_a_missing_database_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = live_db(dir.path());
        let before = std::fs::read(&db).unwrap();
        assert!(matches!(
            run(&db, &dir.path().join("no/such/folder/copy.db"), true),
            Err(BackupError::NoFolder(_))
        ));
        for live in ["live.db", "live.db-wal", "./live.db"] {
            assert!(matches!(
                run(&db, &dir.path().join(live), true),
                Err(BackupError::LiveDatabase(_))
            ));
        }
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "the live database is untouched"
        );
        let missing = dir.path().join("missing.db");
        assert!(matches!(
            run(&missing, &dir.path().join("copy.db"), false),
            Err(BackupError::NoDatabase(_))
        ));
        assert!(!missing.exists(), "a mistyped database path is not created");
    }
}
