//! The data directory is private to the user lookout runs as: folders 0700,
//! files 0600. It holds pictures of someone's home (snapshots, the upload
//! queue), the event history, password and session hashes, and the TLS key;
//! none of it is for other accounts on the machine.
//!
//! Modes are given where things are created ([`create_dir`],
//! [`create_file`], `.mode(0o600)` on new files) rather than by changing the
//! process umask, which would also apply to whatever else the process or its
//! children (an `exec:` source) create. At start [`tighten`] fixes folders
//! and files left readable by older versions.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of folders in the data directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of files in the data directory.
pub const FILE_MODE: u32 = 0o600;

/// How deep [`tighten`] looks: the layout is at most three levels
/// (`uploads/pending/<file>`); deeper is not lookout's.
const MAX_DEPTH: usize = 3;

/// Creates `path` and any missing parents with mode 0700. An existing folder
/// is left as it is (see [`tighten`]).
pub fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates `path` as an empty 0600 file unless it exists (then it is left
/// alone). Used before SQLite opens a database: SQLite would create it
/// 0644, and gives its `-wal` and `-shm` files the database file's mode.
pub fn create_file(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
        .map(drop)
}

/// Name of the file [`check_writable`] creates and removes.
const WRITE_PROBE: &str = ".lookout-write-test";

/// Checks that lookout can create, sync and remove a file in `dir`: a
/// read-only mount, or a folder owned by another user, is found at start
/// rather than by the first snapshot or database write.
pub fn check_writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(WRITE_PROBE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&probe)?;
    let synced = file.sync_all();
    drop(file);
    fs::remove_file(&probe)?;
    synced
}

/// Removes group and other access from `root` and what lookout keeps in it
/// (folders 0700, files 0600), without following symbolic links. Returns how
/// many entries were changed.
pub fn tighten(root: &Path) -> io::Result<usize> {
    tighten_at(root, 0)
}

fn tighten_at(path: &Path, depth: usize) -> io::Result<usize> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() && !meta.is_file() {
        return Ok(0);
    }
    let mode = meta.permissions().mode() & 0o7777;
    let mut changed = 0;
    if mode & 0o077 != 0 {
        // The owner keeps what it had (0755 -> 0700, 0644 -> 0600).
        fs::set_permissions(path, Permissions::from_mode(mode & 0o700))?;
        changed += 1;
    }
    if meta.is_dir() && depth < MAX_DEPTH {
        for entry in fs::read_dir(path)? {
            changed += tighten_at(&entry?.path(), depth + 1)?;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writable_folder_passes_and_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        check_writable(tmp.path()).unwrap();
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        assert!(check_writable(&file.join("sub")).is_err());
    }

    #[test]
    fn created_private_and_old_files_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        create_dir(&root.join("snaps")).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("snaps")), 0o700);
        create_file(&root.join("db")).unwrap();
        assert_eq!(mode(&root.join("db")), 0o600);

        let old = root.join("snaps/old.jpg");
        fs::write(&old, b"x").unwrap();
        fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&root, Permissions::from_mode(0o755)).unwrap();
        let outside = tmp.path().join("outside");
        fs::write(&outside, b"y").unwrap();
        fs::set_permissions(&outside, Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();

        assert_eq!(tighten(&root).unwrap(), 2);
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&old), 0o600);
        assert_eq!(mode(&outside), 0o644, "symbolic links are not followed");
        assert_eq!(tighten(&root).unwrap(), 0);
    }
}
