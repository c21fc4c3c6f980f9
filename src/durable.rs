//! Durable writes in the data directory: a synced temporary file under a
//! fresh name, then the caller's atomic step (a hard link for snapshots,
//! which never replaces; a rename for the upload queue), then a synced
//! folder. One implementation for both, so a fix (or a file mode) reaches
//! every file lookout keeps.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files in one folder: `<prefix><pid>-<n>`, never reused.
#[derive(Debug)]
pub(crate) struct TempFiles {
    dir: PathBuf,
    prefix: &'static str,
    next: AtomicU64,
}

impl TempFiles {
    /// Temporary files in `dir`, named with `prefix` (which the owner's
    /// start-up scan removes: only a crash mid-write leaves one).
    pub(crate) fn new(dir: &Path, prefix: &'static str) -> TempFiles {
        TempFiles {
            dir: dir.to_path_buf(),
            prefix,
            next: AtomicU64::new(0),
        }
    }

    /// Writes `data` to a new temporary file and syncs it; returns its path.
    /// On error nothing is left behind. The file is 0600 (`create_new` never
    /// opens an existing file, nor follows a link someone placed there), and
    /// keeps that mode under its final name.
    pub(crate) fn write(&self, data: &[u8]) -> io::Result<PathBuf> {
        let (path, mut file) = self.create()?;
        let written = file.write_all(data).and_then(|()| file.sync_all());
        if let Err(err) = written {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(err);
        }
        Ok(path)
    }

    /// Removes the files with this prefix left in the folder by a crash
    /// mid-write, at the owner's start (before its first write: a file being
    /// written by this process has the same prefix). A file that cannot be
    /// removed is left alone: its name is never listed nor served. A missing
    /// folder has nothing to remove.
    pub(crate) fn remove_stale(&self) -> io::Result<()> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        for entry in entries.flatten() {
            let is_tmp = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(self.prefix));
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_tmp && is_file {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn create(&self) -> io::Result<(PathBuf, File)> {
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let path = self
                .dir
                .join(format!("{}{}-{n}", self.prefix, std::process::id()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(crate::datadir::FILE_MODE)
                .open(&path)
            {
                Ok(file) => return Ok((path, file)),
                Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
    }
}

/// Makes renames, links and removals in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn temp_files_are_fresh_private_and_whole() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = TempFiles::new(dir.path(), ".tmp-");
        let a = tmp.write(b"one").unwrap();
        let b = tmp.write(b"two").unwrap();
        assert_ne!(a, b);
        assert_eq!(fs::read(&a).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&b).unwrap().permissions().mode() & 0o777,
            0o600
        );
        sync_dir(dir.path()).unwrap();
    }

    #[test]
    fn remove_stale_takes_only_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = TempFiles::new(dir.path(), ".tmp-");
        fs::write(dir.path().join(".tmp-1-0"), b"partial").unwrap();
        fs::write(dir.path().join("kept.jpg"), b"kept").unwrap();
        fs::create_dir(dir.path().join(".tmp-dir")).unwrap();
        tmp.remove_stale().unwrap();
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".tmp-dir", "kept.jpg"]);
        TempFiles::new(&dir.path().join("missing"), ".tmp-")
            .remove_stale()
            .unwrap();
    }
}
