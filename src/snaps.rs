//! Snapshot files on disk, one folder per camera: `<data-dir>/snaps/<camera>/`.
//!
//! Each snapshot is one JPEG named `<trigger>-<unix ms>.jpg`, e.g.
//! `manual-1764033000123.jpg`, where the trigger is `manual` or `motion`.
//!
//! # Never overwrite
//! The first version named snapshots by the second they were taken, so a
//! second snapshot in the same second silently replaced the first one and
//! users lost pictures. Here a name is never reused: names carry
//! milliseconds, a clash gets a suffix (`manual-<ms>-1.jpg`, `-2`, ...), and
//! the final step is [`std::fs::hard_link`], which fails instead of replacing
//! a file that appeared in the meantime (for example one copied in by hand).
//!
//! # Ordered when the clock goes back
//! A name never sorts before the newest one already given in the folder: when
//! the wall clock goes back (NTP correcting a Raspberry Pi's clock after
//! boot), the next snapshot takes the newest name's time with the next suffix,
//! so the listing stays in the order the snapshots were taken.
//!
//! # Atomic
//! A snapshot is written to a `.tmp-*` file in the same folder, synced, and
//! only then linked under its real name, so a crash or a full disk never
//! leaves a truncated JPEG under a snapshot name; at worst a `.tmp-*` file
//! stays behind, which is never listed and is removed by [`Snaps::open`].
//!
//! # Names from outside
//! Every function taking a name checks it with [`valid_name`] first, so a
//! percent-decoded name from a URL can never reach outside the folder.
//!
//! # Thumbnails
//! Every saved snapshot also gets a 320 px thumbnail in `.thumbs/` (see
//! [`crate::thumbs`]), written after the snapshot; one that fails is only
//! logged, and made on first request instead. Deleting a snapshot, by hand
//! or by retention, deletes its thumbnail.
//!
//! # Listing and retention
//! The folder is a [`shelf`], as the clips' folders are: the order, the
//! paging cursor and retention are the shelf's, shared with clips.
//!
//! All functions block (std::fs, and the thumbnail's decode); async callers
//! run them with `spawn_blocking`.

// The shelf serves clips too; it is declared here because the crate root is
// being restructured meanwhile, and belongs in `lib.rs` as `mod shelf`.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::durable::TempFiles;
pub use crate::shelf::Retention;
use crate::shelf::{unix_ms, Item, Naming, Shelf, ShelfError, Stamp};
use crate::thumbs::{ThumbError, Thumbs};

/// Longest accepted snapshot name, in bytes.
const MAX_NAME_LEN: usize = 128;

/// Prefix of temporary files; it starts with `.`, so [`valid_name`] rejects
/// it and temporary files are never listed or served.
const TMP_PREFIX: &str = ".tmp-";

/// Snapshots listed in one page at most.
pub const MAX_PAGE: usize = 1000;

/// How many suffixes one save tries before giving up; only reachable on a
/// file system that keeps claiming every name exists.
const MAX_SUFFIX: u64 = 100_000;

/// What caused a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Asked for by a user.
    Manual,
    /// Taken when motion started.
    Motion,
    /// Taken when the person check first saw a person in an episode.
    Person,
    /// A file in the folder that lookout did not name (e.g. copied by hand).
    Other,
}

impl Trigger {
    /// The lowercase word used in file names and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Motion => "motion",
            Trigger::Person => "person",
            Trigger::Other => "other",
        }
    }

    /// The trigger named by the first part of a file name (or a query);
    /// `other` is not a name lookout writes, so it does not parse.
    pub fn from_name_part(part: &str) -> Option<Trigger> {
        match part {
            "manual" => Some(Trigger::Manual),
            "motion" => Some(Trigger::Motion),
            "person" => Some(Trigger::Person),
            _ => None,
        }
    }
}

/// One snapshot as shown to clients.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SnapInfo {
    /// File name, e.g. `manual-1764033000123.jpg`.
    pub name: String,
    /// Where the HTTP layer serves it: `/snaps/<name>`.
    pub url: String,
    /// Where its thumbnail is served: `/snaps/<name>/thumb`.
    pub thumb: String,
    /// Size of the file.
    pub bytes: u64,
    /// When it was taken, in unix seconds with milliseconds; for files lookout
    /// did not name, their modification time.
    pub ts: f64,
    /// What caused it.
    pub trigger: Trigger,
}

/// Why a snapshot operation failed, in words meant for the user.
#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    /// The name is not a snapshot name (and might point outside the folder).
    #[error("invalid snapshot name {0:?}")]
    InvalidName(String),
    /// No snapshot has this name.
    #[error("snapshot {0} not found")]
    NotFound(String),
    /// The snapshot exists, but no thumbnail can be made of it (e.g. a file
    /// copied in by hand that is not a JPEG).
    #[error("no thumbnail for snapshot {name}: {err}")]
    Thumb {
        /// The snapshot.
        name: String,
        /// Why.
        #[source]
        err: ThumbError,
    },
    /// The file system refused.
    #[error("{what}: {err}")]
    Io {
        /// What was being done, e.g. `cannot write snapshot manual-123.jpg`.
        what: String,
        /// Why it failed.
        #[source]
        err: io::Error,
    },
}

impl SnapError {
    /// Wraps an I/O error with a description of what was being done.
    fn io(what: impl Into<String>, err: io::Error) -> SnapError {
        SnapError::Io {
            what: what.into(),
            err,
        }
    }
}

impl From<ShelfError> for SnapError {
    fn from(err: ShelfError) -> SnapError {
        match err {
            ShelfError::InvalidName(name) => SnapError::InvalidName(name),
            ShelfError::NotFound(name) => SnapError::NotFound(name),
            ShelfError::Io { what, err } => SnapError::Io { what, err },
        }
    }
}

/// How the shelf reads snapshot names.
const NAMING: Naming = Naming {
    noun: "snapshot",
    valid: valid_name,
    stamp: stamp_of,
};

/// Whether `name` may be used as a snapshot name: `^[A-Za-z0-9._-]+\.jpg$`,
/// not starting with `.`, without `..`, at most 128 bytes.
///
/// This is what keeps names from URLs inside the folder: no separators, no
/// parent references, no absolute paths, no NUL, no hidden or temporary files.
pub fn valid_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".jpg") else {
        return false;
    };
    !stem.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && !name.contains("..")
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The parts of a name lookout wrote: `<trigger>-<ms>[-<n>].jpg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ParsedName {
    trigger: Trigger,
    ms: u64,
    n: u64,
}

/// Parses a run of ASCII digits; `str::parse` alone would accept a `+`.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `<trigger>-<ms>[-<n>].jpg`; `None` for any other name.
fn parse_name(name: &str) -> Option<ParsedName> {
    let stem = name.strip_suffix(".jpg")?;
    let (trigger, rest) = stem.split_once('-')?;
    let trigger = Trigger::from_name_part(trigger)?;
    let (ms, n) = match rest.split_once('-') {
        Some((ms, n)) => (parse_digits(ms)?, parse_digits(n)?),
        None => (parse_digits(rest)?, 0),
    };
    Some(ParsedName { trigger, ms, n })
}

/// The stamp of a name lookout wrote.
fn stamp_of(name: &str) -> Option<Stamp> {
    parse_name(name).map(|p| Stamp { ms: p.ms, n: p.n })
}

/// What caused the snapshot `name`: from its name, `Other` for a file
/// lookout did not name.
fn trigger_of(name: &str) -> Trigger {
    parse_name(name).map_or(Trigger::Other, |p| p.trigger)
}

/// The name for the `n`th snapshot taken at `ms`: no suffix for the first.
fn snap_name(trigger: Trigger, ms: u64, n: u64) -> String {
    if n == 0 {
        format!("{}-{ms}.jpg", trigger.as_str())
    } else {
        format!("{}-{ms}-{n}.jpg", trigger.as_str())
    }
}

/// How a temporary file got its final name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    /// Hard-linked: the temporary file still exists and must be removed.
    Linked,
    /// Renamed: the temporary file is gone.
    Renamed,
}

/// Gives `tmp` the name `dest` without replacing an existing file: fails with
/// `AlreadyExists` if `dest` exists.
///
/// `hard_link` is atomic and never overwrites. File systems without hard links
/// (some FAT mounts say `Unsupported` or `PermissionDenied`) fall back to a
/// check then rename, which is safe against this process because callers hold
/// the `Snaps` mutex.
fn place(tmp: &Path, dest: &Path) -> io::Result<Placed> {
    match fs::hard_link(tmp, dest) {
        Ok(()) => Ok(Placed::Linked),
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::Unsupported | ErrorKind::PermissionDenied
            ) =>
        {
            place_by_rename(tmp, dest)
        }
        Err(err) => Err(err),
    }
}

/// The fallback of [`place`]: rename unless `dest` already exists.
fn place_by_rename(tmp: &Path, dest: &Path) -> io::Result<Placed> {
    if dest.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            ErrorKind::AlreadyExists,
            "a file with this name already exists",
        ));
    }
    fs::rename(tmp, dest)?;
    Ok(Placed::Renamed)
}

/// The snapshot folder of one server.
///
/// Saving is serialised by a mutex, so one `Snaps` per data directory (one
/// server) allocates names without races; the final `hard_link` also guards
/// against files that appear from elsewhere.
#[derive(Debug)]
pub struct Snaps {
    /// The folder, and how it is listed.
    shelf: Shelf,
    /// Held while allocating names and while enforcing retention, so a save
    /// and a cleanup never pick the same files.
    lock: Mutex<()>,
    /// Synced temporary files, linked to their final names.
    tmp: TempFiles,
    /// Where the files are served (`/snaps`, or `/cams/NAME/snaps`).
    url_prefix: String,
    /// Their thumbnails, in `.thumbs/`.
    thumbs: Thumbs,
    /// Time and suffix of the newest name in the folder (found at open, then
    /// the last one given): no later save gets an earlier name.
    newest: Mutex<Stamp>,
}

impl Snaps {
    /// Opens `<data_dir>/snaps`, creating it when missing, and removes
    /// temporary files left by a crash during a save.
    pub fn open(data_dir: &Path) -> Result<Snaps, SnapError> {
        Snaps::open_in(data_dir.join("snaps"), "/snaps".into())
    }

    /// Opens the folder `dir` (one camera's), whose files are served under
    /// `url_prefix`.
    pub fn open_in(dir: PathBuf, url_prefix: String) -> Result<Snaps, SnapError> {
        crate::datadir::create_dir(&dir).map_err(|err| {
            SnapError::io(
                format!("cannot create snapshot folder {}", dir.display()),
                err,
            )
        })?;
        let snaps = Snaps {
            tmp: TempFiles::new(&dir, TMP_PREFIX),
            thumbs: Thumbs::new(&dir),
            shelf: Shelf::new(dir, NAMING),
            lock: Mutex::new(()),
            url_prefix,
            newest: Mutex::new(Stamp { ms: 0, n: 0 }),
        };
        snaps.remove_stale_tmp()?;
        if let Some(item) = snaps.shelf.scan()?.iter().find(|i| i.named) {
            *crate::sync::lock(&snaps.newest) = item.stamp;
        }
        Ok(snaps)
    }

    /// The snapshot folder.
    pub fn dir(&self) -> &Path {
        self.shelf.dir()
    }

    /// Removes `.tmp-*` files. A file that cannot be removed is left alone:
    /// it is never listed, so it does no harm beyond its size.
    fn remove_stale_tmp(&self) -> Result<(), SnapError> {
        self.tmp.remove_stale().map_err(|err| {
            let what = format!("cannot list snapshots in {}", self.dir().display());
            SnapError::io(what, err)
        })
    }

    /// Saves `jpeg` as a new snapshot taken at `at`, never replacing another
    /// file, then enforces `retention` (never deleting this snapshot).
    ///
    /// Only [`Trigger::Manual`], [`Trigger::Motion`] and [`Trigger::Person`]
    /// can be saved; [`Trigger::Other`] gives `InvalidName`. A failed
    /// retention pass does not fail the save: the snapshot is safely stored,
    /// and the next save or [`Snaps::enforce`] tries again. Nor does a failed thumbnail (logged):
    /// [`Snaps::thumb`] makes it when first asked.
    pub fn save(
        &self,
        jpeg: &[u8],
        trigger: Trigger,
        at: SystemTime,
        retention: Retention,
    ) -> Result<SnapInfo, SnapError> {
        if trigger == Trigger::Other {
            return Err(SnapError::InvalidName(snap_name(trigger, unix_ms(at), 0)));
        }
        // Made before taking the lock (it is CPU work), written after the
        // snapshot so that a thumbnail never exists without its snapshot.
        let thumb = crate::thumbs::make(jpeg);
        let _guard = crate::sync::lock(&self.lock);
        let newest = *crate::sync::lock(&self.newest);
        let (ms, from) = if unix_ms(at) > newest.ms {
            (unix_ms(at), 0)
        } else {
            (newest.ms, newest.n + 1)
        };
        let first = snap_name(trigger, ms, from);
        let write_error = |err| SnapError::io(format!("cannot write snapshot {first}"), err);
        self.ensure_dir().map_err(write_error)?;
        let tmp = self.tmp.write(jpeg).map_err(write_error)?;
        let (name, n) = match self.link_new_name(&tmp, trigger, ms, from) {
            Ok(named) => named,
            Err(err) => {
                let _ = fs::remove_file(&tmp);
                return Err(write_error(err));
            }
        };
        *crate::sync::lock(&self.newest) = Stamp { ms, n };
        self.shelf.sync();
        let stored = thumb.map_err(|e| e.to_string()).and_then(|thumb| {
            self.thumbs
                .save(&name, &thumb)
                .map_err(|e| format!("cannot write it: {e}"))
        });
        if let Err(e) = stored {
            tracing::warn!("no thumbnail for snapshot {name} yet (made when asked for): {e}");
        }
        let _ = self
            .shelf
            .enforce(retention, Some(&name), |gone| self.remove_thumb(gone));
        Ok(self.info(Item {
            name,
            stamp: Stamp { ms, n },
            bytes: jpeg.len() as u64,
            named: true,
        }))
    }

    /// How `item` is shown to clients.
    fn info(&self, item: Item) -> SnapInfo {
        SnapInfo {
            url: format!("{}/{}", self.url_prefix, item.name),
            thumb: format!("{}/{}/thumb", self.url_prefix, item.name),
            ts: item.stamp.ms as f64 / 1000.0,
            trigger: trigger_of(&item.name),
            bytes: item.bytes,
            name: item.name,
        }
    }

    /// Recreates the folder if it was deleted. If something else is in its
    /// place (a regular file), the following write reports the clearer
    /// "Not a directory".
    fn ensure_dir(&self) -> io::Result<()> {
        match crate::datadir::create_dir(self.dir()) {
            Err(_) if self.dir().symlink_metadata().is_ok() => Ok(()),
            other => other,
        }
    }

    /// Gives the temporary file the first free name for `trigger` and `ms`
    /// with a suffix from `from` on, and removes the temporary name. Returns
    /// the final name and its suffix.
    fn link_new_name(
        &self,
        tmp: &Path,
        trigger: Trigger,
        ms: u64,
        from: u64,
    ) -> io::Result<(String, u64)> {
        for n in from..from.saturating_add(MAX_SUFFIX) {
            let name = snap_name(trigger, ms, n);
            match place(tmp, &self.dir().join(&name)) {
                Ok(Placed::Linked) => {
                    // The snapshot is safe under its name; a temporary file
                    // that cannot be removed goes at the next open.
                    let _ = fs::remove_file(tmp);
                    return Ok((name, n));
                }
                Ok(Placed::Renamed) => return Ok((name, n)),
                Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::new(
            ErrorKind::AlreadyExists,
            "too many snapshots with the same time",
        ))
    }

    /// Lists up to `limit` snapshots, newest first. With `before`, lists only
    /// those after that name in this order (older ones), for paging.
    ///
    /// `before` may name a snapshot deleted since: lookout's names carry their
    /// time. A file name lookout did not write gives `NotFound` when the file
    /// is gone, since its place in the order came from the file.
    pub fn list(&self, limit: usize, before: Option<&str>) -> Result<Vec<SnapInfo>, SnapError> {
        self.list_of(limit, before, None)
    }

    /// [`Snaps::list`] of the snapshots with `trigger` only (all when
    /// `None`), e.g. the person snapshots for "people only".
    pub fn list_of(
        &self,
        limit: usize,
        before: Option<&str>,
        trigger: Option<Trigger>,
    ) -> Result<Vec<SnapInfo>, SnapError> {
        Ok(self
            .shelf
            .after(before)?
            .filter(|i| trigger.is_none_or(|t| trigger_of(&i.name) == t))
            .take(limit)
            .map(|i| self.info(i))
            .collect())
    }

    /// Reads a snapshot's bytes.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, SnapError> {
        self.shelf.check(name)?;
        fs::read(self.dir().join(name)).map_err(|err| match err.kind() {
            ErrorKind::NotFound => SnapError::NotFound(name.to_string()),
            _ => SnapError::io(format!("cannot read snapshot {name}"), err),
        })
    }

    /// The thumbnail of a snapshot, made and stored now if it has none yet
    /// (snapshots from before thumbnails, or whose thumbnail failed).
    pub fn thumb(&self, name: &str) -> Result<Vec<u8>, SnapError> {
        self.shelf.check(name)?;
        // A thumbnail left behind by a crash between the two removals (or a
        // removal that failed) is not served for a deleted snapshot.
        let path = self.dir().join(name);
        let is_file = fs::metadata(&path).is_ok_and(|m| m.is_file());
        if !is_file {
            return Err(SnapError::NotFound(name.to_string()));
        }
        self.thumbs
            .get_or_make(name, &path)
            .map_err(|err| match err {
                ThumbError::NotFound(_) => SnapError::NotFound(name.to_string()),
                ThumbError::InvalidName(_) => SnapError::InvalidName(name.to_string()),
                ThumbError::Io { what, err } => SnapError::Io { what, err },
                err => SnapError::Thumb {
                    name: name.to_string(),
                    err,
                },
            })
    }

    /// The thumbnails of this folder's snapshots.
    pub fn thumbs(&self) -> &Thumbs {
        &self.thumbs
    }

    /// Deletes one snapshot, and its thumbnail.
    pub fn delete(&self, name: &str) -> Result<(), SnapError> {
        self.shelf.delete(name)?;
        self.remove_thumb(name);
        Ok(())
    }

    /// Removes the thumbnail of a deleted snapshot. A failure is only logged:
    /// the snapshot is gone, and a leftover thumbnail is never listed.
    fn remove_thumb(&self, name: &str) {
        if let Err(e) = self.thumbs.remove(name) {
            tracing::warn!("cannot delete the thumbnail of snapshot {name}: {e}");
        }
    }

    /// Deletes the oldest snapshots until both limits of `retention` hold,
    /// e.g. after the settings changed. The newest snapshot is always kept.
    /// Files lookout did not name count and go by their modification time,
    /// since they take the same disk. Returns the names deleted.
    pub fn enforce(&self, retention: Retention) -> Result<Vec<String>, SnapError> {
        let _guard = crate::sync::lock(&self.lock);
        Ok(self
            .shelf
            .enforce(retention, None, |gone| self.remove_thumb(gone))?)
    }

    /// How many snapshots there are and their total size.
    pub fn usage(&self) -> Result<(usize, u64), SnapError> {
        Ok(self.shelf.usage()?)
    }
}

/// Moves the snapshots of a single-camera data directory (files right in
/// `root`, the old `snaps/`) into `into` (the first camera's folder), so
/// nothing is lost when a server gains camera names. Returns how many moved.
/// Blocking.
pub fn migrate_legacy(root: &Path, into: &Path) -> Result<usize, SnapError> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(0),
        Err(err) => {
            return Err(SnapError::io(
                format!("cannot list {}", root.display()),
                err,
            ));
        }
    };
    let mut moved = 0;
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_file()) || parse_name(&name).is_none() {
            continue;
        }
        crate::datadir::create_dir(into)
            .map_err(|err| SnapError::io(format!("cannot create {}", into.display()), err))?;
        fs::rename(entry.path(), into.join(&name))
            .map_err(|err| SnapError::io(format!("cannot move snapshot {name}"), err))?;
        moved += 1;
    }
    if moved > 0 {
        // As for every rename: errors are ignored, the files are synced.
        let _ = crate::durable::sync_dir(into);
        let _ = crate::durable::sync_dir(root);
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn at_ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn open() -> (tempfile::TempDir, Snaps) {
        let tmp = tempfile::tempdir().unwrap();
        let snaps = Snaps::open(tmp.path()).unwrap();
        (tmp, snaps)
    }

    fn save(snaps: &Snaps, bytes: &[u8], ms: u64) -> SnapInfo {
        snaps
            .save(bytes, Trigger::Manual, at_ms(ms), Retention::default())
            .unwrap()
    }

    fn names(infos: &[SnapInfo]) -> Vec<&str> {
        infos.iter().map(|i| i.name.as_str()).collect()
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn same_millisecond_gives_two_files() {
        let (_tmp, snaps) = open();
        let a = save(&snaps, b"first", 1_764_033_000_123);
        let b = save(&snaps, b"second", 1_764_033_000_123);
        assert_eq!(a.name, "manual-1764033000123.jpg");
        assert_eq!(b.name, "manual-1764033000123-1.jpg");
        assert_eq!(a.url, "/snaps/manual-1764033000123.jpg");
        assert_eq!(a.bytes, 5);
        assert!((a.ts - 1_764_033_000.123).abs() < 1e-6);
        assert_eq!(snaps.read(&a.name).unwrap(), b"first");
        assert_eq!(snaps.read(&b.name).unwrap(), b"second");
        let c = save(&snaps, b"third", 1_764_033_000_123);
        assert_eq!(c.name, "manual-1764033000123-2.jpg");
    }

    #[test]
    fn clock_going_back_keeps_names_unique_and_ordered() {
        let (tmp, snaps) = open();
        let hour = 3_600_000;
        let t = 1_764_033_000_123;
        let a = save(&snaps, b"a", t);
        let b = snaps
            .save(b"b", Trigger::Motion, at_ms(t - hour), Retention::default())
            .unwrap();
        let c = save(&snaps, b"c", t - hour + 5);
        assert_eq!(a.name, format!("manual-{t}.jpg"));
        assert_eq!(b.name, format!("motion-{t}-1.jpg"));
        assert_eq!(c.name, format!("manual-{t}-2.jpg"));
        let listed = snaps.list(10, None).unwrap();
        assert_eq!(names(&listed), [&c.name, &b.name, &a.name]);
        // After a restart the folder's newest name still bounds the next.
        drop(snaps);
        let snaps = Snaps::open(tmp.path()).unwrap();
        let d = save(&snaps, b"d", t - 2 * hour);
        assert_eq!(d.name, format!("manual-{t}-3.jpg"));
        assert_eq!(snaps.list(1, None).unwrap()[0].name, d.name);
        // Once the clock passes the newest name again, names follow it.
        let e = save(&snaps, b"e", t + 1);
        assert_eq!(e.name, format!("manual-{}.jpg", t + 1));
        assert_eq!(snaps.read(&b.name).unwrap(), b"b");
    }

    #[test]
    fn never_overwrites_a_foreign_file() {
        let (_tmp, snaps) = open();
        fs::write(snaps.dir().join("motion-5.jpg"), b"mine").unwrap();
        let info = snaps
            .save(b"new", Trigger::Motion, at_ms(5), Retention::default())
            .unwrap();
        assert_eq!(info.name, "motion-5-1.jpg");
        assert_eq!(snaps.read("motion-5.jpg").unwrap(), b"mine");
        assert_eq!(snaps.read("motion-5-1.jpg").unwrap(), b"new");
    }

    #[test]
    fn concurrent_saves_get_distinct_names() {
        let (_tmp, snaps) = open();
        let snaps = Arc::new(snaps);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let snaps = Arc::clone(&snaps);
                std::thread::spawn(move || {
                    (0..50)
                        .filter(|i| i % 8 == t)
                        .map(|i| {
                            let body = format!("snap {i}").into_bytes();
                            let info = save(&snaps, &body, 1000);
                            (info.name, body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let saved: Vec<(String, Vec<u8>)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(saved.len(), 50);
        let mut unique: Vec<&String> = saved.iter().map(|(n, _)| n).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 50);
        for (name, body) in &saved {
            assert_eq!(&snaps.read(name).unwrap(), body);
        }
        let files = files_in(snaps.dir());
        assert_eq!(files.len(), 50);
        assert!(files.iter().all(|f| !f.starts_with(TMP_PREFIX)));
        assert_eq!(snaps.usage().unwrap().0, 50);
    }

    #[test]
    fn no_temp_file_left_behind() {
        let (_tmp, snaps) = open();
        save(&snaps, b"x", 1);
        save(&snaps, b"y", 1);
        assert_eq!(files_in(snaps.dir()), ["manual-1-1.jpg", "manual-1.jpg"]);
    }

    #[test]
    fn open_removes_stale_temp_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("snaps");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(".tmp-123-0"), b"partial").unwrap();
        fs::write(dir.join("manual-1.jpg"), b"kept").unwrap();
        let snaps = Snaps::open(tmp.path()).unwrap();
        assert_eq!(snaps.dir(), dir);
        assert_eq!(files_in(&dir), ["manual-1.jpg"]);
    }

    #[test]
    fn temp_files_are_not_listed() {
        let (_tmp, snaps) = open();
        fs::write(snaps.dir().join(".tmp-1-1"), b"partial").unwrap();
        fs::write(snaps.dir().join(".tmp-x.jpg"), b"partial").unwrap();
        save(&snaps, b"x", 1);
        assert_eq!(names(&snaps.list(10, None).unwrap()), ["manual-1.jpg"]);
    }

    #[test]
    fn lists_newest_first_and_pages() {
        let (_tmp, snaps) = open();
        // Written out of time order (saving would keep names ordered).
        for name in [
            "manual-100.jpg",
            "manual-300.jpg",
            "manual-200.jpg",
            "manual-300-1.jpg",
            "motion-250.jpg",
        ] {
            fs::write(snaps.dir().join(name), name).unwrap();
        }
        let all = snaps.list(100, None).unwrap();
        assert_eq!(
            names(&all),
            [
                "manual-300-1.jpg",
                "manual-300.jpg",
                "motion-250.jpg",
                "manual-200.jpg",
                "manual-100.jpg"
            ]
        );
        assert_eq!(all[2].trigger, Trigger::Motion);
        assert_eq!(all[0].trigger, Trigger::Manual);

        let page1 = snaps.list(2, None).unwrap();
        assert_eq!(names(&page1), ["manual-300-1.jpg", "manual-300.jpg"]);
        let page2 = snaps.list(2, Some(&page1[1].name)).unwrap();
        assert_eq!(names(&page2), ["motion-250.jpg", "manual-200.jpg"]);
        let page3 = snaps.list(2, Some(&page2[1].name)).unwrap();
        assert_eq!(names(&page3), ["manual-100.jpg"]);
        assert!(snaps.list(2, Some("manual-100.jpg")).unwrap().is_empty());

        // A cursor deleted in the meantime still pages by its time.
        snaps.delete("motion-250.jpg").unwrap();
        let after = snaps.list(10, Some("motion-250.jpg")).unwrap();
        assert_eq!(names(&after), ["manual-200.jpg", "manual-100.jpg"]);
    }

    #[test]
    fn list_rejects_bad_cursor() {
        let (_tmp, snaps) = open();
        save(&snaps, b"a", 1);
        assert!(matches!(
            snaps.list(10, Some("../x.jpg")),
            Err(SnapError::InvalidName(_))
        ));
        assert!(matches!(
            snaps.list(10, Some("gone.jpg")),
            Err(SnapError::NotFound(_))
        ));
    }

    #[test]
    fn foreign_files_listed_as_other() {
        let (_tmp, snaps) = open();
        save(&snaps, b"a", 1000);
        let foreign = snaps.dir().join("foo.jpg");
        fs::write(&foreign, b"hello").unwrap();
        fs::File::options()
            .write(true)
            .open(&foreign)
            .unwrap()
            .set_modified(at_ms(500))
            .unwrap();
        fs::write(snaps.dir().join("notes.txt"), b"ignored").unwrap();
        fs::create_dir(snaps.dir().join("dir.jpg")).unwrap();
        let all = snaps.list(10, None).unwrap();
        assert_eq!(names(&all), ["manual-1000.jpg", "foo.jpg"]);
        assert_eq!(all[1].trigger, Trigger::Other);
        assert_eq!(all[1].bytes, 5);
        assert!((all[1].ts - 0.5).abs() < 1e-6);
        assert!(snaps.list(10, Some("foo.jpg")).unwrap().is_empty());
        assert_eq!(
            names(&snaps.list(10, Some("manual-1000.jpg")).unwrap()),
            ["foo.jpg"]
        );
    }

    #[test]
    fn valid_name_accepts_and_rejects() {
        for good in [
            "manual-1764033000123.jpg",
            "motion-1-2.jpg",
            "foo.jpg",
            "a_b.c-d.jpg",
        ] {
            assert!(valid_name(good), "{good}");
        }
        let long = format!("{}.jpg", "a".repeat(196));
        assert_eq!(long.len(), 200);
        for bad in [
            "",
            ".jpg",
            "..",
            "../x.jpg",
            "a/b.jpg",
            "a\\b.jpg",
            "/etc/passwd",
            "/x.jpg",
            "x.jpg\0",
            "x\0.jpg",
            ".hidden.jpg",
            ".tmp-1.jpg",
            "x.png",
            "x.JPG",
            "a..b.jpg",
            "é.jpg",
            "a b.jpg",
            long.as_str(),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name(&format!("{}.jpg", "a".repeat(124))));
        assert!(!valid_name(&format!("{}.jpg", "a".repeat(125))));
    }

    #[test]
    fn read_and_delete_check_names() {
        let (_tmp, snaps) = open();
        fs::write(snaps.dir().parent().unwrap().join("secret.jpg"), b"s").unwrap();
        for bad in ["../secret.jpg", "", "a/b.jpg", "/etc/passwd", "x.jpg\0"] {
            assert!(
                matches!(snaps.read(bad), Err(SnapError::InvalidName(_))),
                "{bad:?}"
            );
            assert!(
                matches!(snaps.delete(bad), Err(SnapError::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            snaps.read("manual-9.jpg"),
            Err(SnapError::NotFound(n)) if n == "manual-9.jpg"
        ));
        assert!(matches!(
            snaps.delete("manual-9.jpg"),
            Err(SnapError::NotFound(_))
        ));
        let info = save(&snaps, b"x", 9);
        snaps.delete(&info.name).unwrap();
        assert!(matches!(
            snaps.read(&info.name),
            Err(SnapError::NotFound(_))
        ));
    }

    #[test]
    fn retention_by_count_deletes_oldest() {
        let (_tmp, snaps) = open();
        let keep3 = Retention::by_count_and_bytes(3, u64::MAX);
        for ms in 1..=3 {
            snaps.save(b"x", Trigger::Manual, at_ms(ms), keep3).unwrap();
        }
        snaps.save(b"x", Trigger::Motion, at_ms(4), keep3).unwrap();
        assert_eq!(
            names(&snaps.list(10, None).unwrap()),
            ["motion-4.jpg", "manual-3.jpg", "manual-2.jpg"]
        );
        let keep1 = Retention::by_count_and_bytes(1, u64::MAX);
        assert_eq!(
            snaps.enforce(keep1).unwrap(),
            ["manual-2.jpg", "manual-3.jpg"]
        );
        assert_eq!(names(&snaps.list(10, None).unwrap()), ["motion-4.jpg"]);
        let keep0 = Retention::by_count_and_bytes(0, 0);
        assert!(snaps.enforce(keep0).unwrap().is_empty());
        assert_eq!(snaps.usage().unwrap(), (1, 1));
    }

    #[test]
    fn retention_by_bytes_deletes_oldest_never_newest() {
        let (_tmp, snaps) = open();
        let small = Retention::by_count_and_bytes(100, 25);
        for ms in 1..=3 {
            snaps
                .save(&[0; 10], Trigger::Manual, at_ms(ms), small)
                .unwrap();
        }
        assert_eq!(
            names(&snaps.list(10, None).unwrap()),
            ["manual-3.jpg", "manual-2.jpg"]
        );
        assert_eq!(snaps.usage().unwrap(), (2, 20));
        let tiny = Retention::by_count_and_bytes(100, 5);
        let big = snaps
            .save(&[0; 50], Trigger::Manual, at_ms(4), tiny)
            .unwrap();
        assert_eq!(names(&snaps.list(10, None).unwrap()), [big.name.as_str()]);
    }

    #[test]
    fn retention_keeps_just_saved_even_if_older() {
        let (_tmp, snaps) = open();
        save(&snaps, b"new", 1000);
        let one = Retention::by_count_and_bytes(1, u64::MAX);
        let old = snaps.save(b"old", Trigger::Manual, at_ms(5), one).unwrap();
        assert_eq!(names(&snaps.list(10, None).unwrap()), [old.name.as_str()]);
    }

    #[test]
    fn save_fails_when_folder_is_a_file_then_recovers() {
        let (_tmp, snaps) = open();
        save(&snaps, b"a", 1);
        fs::remove_dir_all(snaps.dir()).unwrap();
        fs::write(snaps.dir(), b"not a folder").unwrap();
        let err = snaps
            .save(b"b", Trigger::Manual, at_ms(2), Retention::default())
            .unwrap_err();
        assert!(matches!(err, SnapError::Io { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("manual-2.jpg"), "{msg}");
        assert!(
            msg.starts_with("cannot write snapshot manual-2.jpg: "),
            "{msg}"
        );
        fs::remove_file(snaps.dir()).unwrap();
        fs::create_dir(snaps.dir()).unwrap();
        let info = save(&snaps, b"c", 3);
        assert_eq!(snaps.read(&info.name).unwrap(), b"c");
    }

    #[test]
    fn save_recreates_deleted_folder() {
        let (_tmp, snaps) = open();
        save(&snaps, b"a", 1);
        fs::remove_dir_all(snaps.dir()).unwrap();
        assert!(snaps.list(10, None).unwrap().is_empty());
        let info = save(&snaps, b"b", 2);
        assert_eq!(snaps.read(&info.name).unwrap(), b"b");
    }

    #[test]
    fn save_rejects_other_trigger() {
        let (_tmp, snaps) = open();
        let err = snaps
            .save(b"x", Trigger::Other, at_ms(1), Retention::default())
            .unwrap_err();
        assert!(matches!(err, SnapError::InvalidName(_)));
        assert!(files_in(snaps.dir()).is_empty());
    }

    #[test]
    fn rename_fallback_never_overwrites() {
        let (_tmp, snaps) = open();
        let tmp = snaps.dir().join(".tmp-test");
        let dest = snaps.dir().join("manual-1.jpg");
        fs::write(&dest, b"old").unwrap();
        fs::write(&tmp, b"new").unwrap();
        let err = place_by_rename(&tmp, &dest).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        let dest2 = snaps.dir().join("manual-1-1.jpg");
        assert_eq!(place_by_rename(&tmp, &dest2).unwrap(), Placed::Renamed);
        assert_eq!(fs::read(&dest2).unwrap(), b"new");
        assert!(!tmp.exists());
    }

    #[test]
    fn parses_names() {
        assert_eq!(
            parse_name("motion-12-3.jpg"),
            Some(ParsedName {
                trigger: Trigger::Motion,
                ms: 12,
                n: 3
            })
        );
        assert_eq!(parse_name("manual-12.jpg").map(|p| p.n), Some(0));
        for other in [
            "foo.jpg",
            "manual-.jpg",
            "manual-+1.jpg",
            "other-1.jpg",
            "manual-1-2-3.jpg",
        ] {
            assert_eq!(parse_name(other), None, "{other}");
        }
    }

    #[test]
    fn error_messages_read_well() {
        let err = SnapError::io(
            "cannot write snapshot manual-123.jpg",
            io::Error::from_raw_os_error(28),
        );
        assert!(err
            .to_string()
            .starts_with("cannot write snapshot manual-123.jpg: No space left on device"));
        assert_eq!(
            SnapError::NotFound("a.jpg".into()).to_string(),
            "snapshot a.jpg not found"
        );
    }

    /// A small real JPEG (a thumbnail is made of it).
    fn jpeg(w: u16, h: u16) -> Vec<u8> {
        let rgb: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
            .map(|i| (i % 199) as u8)
            .collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    fn thumb_size(jpeg: &[u8]) -> (usize, usize) {
        let mut dec = zune_jpeg::JpegDecoder::new(jpeg);
        dec.decode().unwrap();
        dec.dimensions().unwrap()
    }

    #[test]
    fn save_writes_a_thumbnail_and_delete_removes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("yard");
        let snaps = Snaps::open_in(dir.clone(), "/cams/yard/snaps".into()).unwrap();
        let info = snaps
            .save(
                &jpeg(640, 480),
                Trigger::Motion,
                at_ms(7),
                Retention::default(),
            )
            .unwrap();
        assert_eq!(info.url, "/cams/yard/snaps/motion-7.jpg");
        assert_eq!(info.thumb, "/cams/yard/snaps/motion-7.jpg/thumb");
        let path = dir.join(".thumbs/motion-7.jpg");
        let stored = fs::read(&path).unwrap();
        assert_eq!(thumb_size(&stored), (320, 240));
        assert_eq!(snaps.thumb(&info.name).unwrap(), stored);
        // The thumbnail folder is never a snapshot.
        assert_eq!(names(&snaps.list(10, None).unwrap()), ["motion-7.jpg"]);
        assert_eq!(snaps.usage().unwrap().0, 1);
        assert_eq!(snaps.list(10, None).unwrap()[0].thumb, info.thumb);

        snaps.delete(&info.name).unwrap();
        assert!(!path.exists());
        assert!(matches!(
            snaps.thumb(&info.name),
            Err(SnapError::NotFound(_))
        ));
        assert!(!path.exists(), "no thumbnail made for a deleted snapshot");
        // An orphaned thumbnail (a crash between the removals) is not served.
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"orphan").unwrap();
        assert!(matches!(
            snaps.thumb(&info.name),
            Err(SnapError::NotFound(_))
        ));
    }

    #[test]
    fn thumbnail_made_lazily_and_bad_names_refused() {
        let (_tmp, snaps) = open();
        // A snapshot from before thumbnails.
        fs::write(snaps.dir().join("manual-5.jpg"), jpeg(200, 100)).unwrap();
        let thumb = snaps.thumb("manual-5.jpg").unwrap();
        assert_eq!(thumb_size(&thumb), (200, 100));
        assert!(snaps.dir().join(".thumbs/manual-5.jpg").exists());
        // Not a JPEG: no thumbnail, and a clear error.
        fs::write(snaps.dir().join("foo.jpg"), b"hello").unwrap();
        assert!(matches!(
            snaps.thumb("foo.jpg"),
            Err(SnapError::Thumb { .. })
        ));
        for bad in [
            "../secret.jpg",
            ".thumbs",
            ".thumbs/manual-5.jpg",
            "a/b.jpg",
            "",
        ] {
            assert!(
                matches!(snaps.thumb(bad), Err(SnapError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn failed_thumbnail_does_not_fail_the_save() {
        let (_tmp, snaps) = open();
        let info = save(&snaps, b"not a jpeg", 1);
        assert_eq!(snaps.read(&info.name).unwrap(), b"not a jpeg");
        assert!(!snaps.dir().join(".thumbs/manual-1.jpg").exists());
        // The thumbnail folder in the way of a write: the snapshot is saved.
        fs::write(snaps.dir().join(".thumbs"), b"a file").unwrap();
        let info = snaps
            .save(
                &jpeg(64, 48),
                Trigger::Manual,
                at_ms(2),
                Retention::default(),
            )
            .unwrap();
        assert_eq!(snaps.read(&info.name).unwrap(), jpeg(64, 48));
    }

    #[test]
    fn retention_removes_thumbnails() {
        let (_tmp, snaps) = open();
        let keep1 = Retention::by_count_and_bytes(1, u64::MAX);
        let old = snaps
            .save(
                &jpeg(64, 48),
                Trigger::Manual,
                at_ms(1),
                Retention::default(),
            )
            .unwrap();
        let thumbs = snaps.dir().join(".thumbs");
        assert!(thumbs.join("manual-1.jpg").exists());
        snaps
            .save(&jpeg(64, 48), Trigger::Manual, at_ms(2), keep1)
            .unwrap();
        assert_eq!(names(&snaps.list(10, None).unwrap()), ["manual-2.jpg"]);
        assert!(!thumbs.join(&old.name).exists());
        assert_eq!(files_in(&thumbs), ["manual-2.jpg"]);
        snaps
            .save(
                &jpeg(64, 48),
                Trigger::Manual,
                at_ms(3),
                Retention::default(),
            )
            .unwrap();
        assert_eq!(snaps.enforce(keep1).unwrap(), ["manual-2.jpg"]);
        assert_eq!(files_in(&thumbs), ["manual-3.jpg"]);
    }
}
