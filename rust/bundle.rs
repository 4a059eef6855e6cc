//! Santa's bundle hash (spec §6.4–6.6), in three steps like `SNTBundleService`:
//! find every regular, non-empty file whose first Mach-O header is `MH_EXECUTE`;
//! SHA-256 each one; sort the distinct lowercase hex digests, concatenate them and
//! SHA-256 the result. No binaries means no hash.

use std::collections::{BTreeSet, BinaryHeap};
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};
use crate::hash::{hash_file, HashFailure};
use crate::macho::{self, MachO, HEAD_SIZE, MACH_HEADER_SIZE};
use crate::walk::{self, walk, Dir, WalkCounters};

#[derive(Debug, Clone, Copy, Default)]
pub struct HashOptions {
    /// Worker threads; `None` means one per core.
    pub threads: Option<usize>,
    /// Also compute BLAKE3 of every binary, in the same read pass.
    pub blake3: bool,
}

/// One qualifying file: an `MH_EXECUTE` Mach-O.
#[derive(Debug, Clone)]
pub struct BinaryFile {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub blake3: Option<String>,
    pub macho: MachO,
}

/// A path that could not be examined, and why. The walk goes on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPath {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct TreeStats {
    pub directories: u64,
    pub regular_files: u64,
    pub symlinks: u64,
    pub special_files: u64,
    pub macho_files: u64,
    pub bytes_hashed: u64,
    /// From the start of the call until the walk ended: every entry listed and every
    /// regular file's header sniffed. Hashing overlaps it, so it includes hashing work too.
    pub walk_millis: f64,
    /// From the moment the first executable started to be hashed until the last one was
    /// done (0 without executables). It overlaps `walk_millis`; when both together exceed
    /// `hash_millis`, the difference is how long the two ran at once.
    pub hashing_millis: f64,
}

#[derive(Debug, Clone)]
pub struct TreeHash {
    pub root: PathBuf,
    pub bundle_hash: Option<String>,
    /// Distinct SHA-256 values among `binaries`.
    pub binary_count: usize,
    /// Every qualifying file, sorted by path (duplicates included).
    pub binaries: Vec<BinaryFile>,
    pub skipped: Vec<SkippedPath>,
    pub stats: TreeStats,
    /// From the start of the call until the digest was computed.
    pub hash_millis: f64,
}

/// Live counters another thread may read while a hash runs (for progress bars).
#[derive(Debug, Default)]
pub struct Progress {
    pub files_examined: AtomicU64,
    pub binaries_found: AtomicU64,
    /// The sizes of the executables found so far: what `bytes_hashed` will reach.
    pub bytes_found: AtomicU64,
    pub bytes_hashed: AtomicU64,
    /// The walk has ended, so `binaries_found` and `bytes_found` are final (seen by the next
    /// read of a file being hashed, and at the latest when the whole hash finishes).
    pub walk_finished: AtomicBool,
    pub finished: AtomicBool,
}

/// Santa's super hash of a set of lowercase hex SHA-256 digests.
pub fn bundle_hash_from_hashes<'a>(hashes: impl IntoIterator<Item = &'a str>) -> Result<Option<String>> {
    let mut unique = BTreeSet::new();
    for h in hashes {
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CoreError::InvalidDigest(h.to_owned()));
        }
        unique.insert(h.to_ascii_lowercase());
    }
    Ok(super_hash(&unique))
}

/// `unique` iterates in byte order, which for lowercase hex is Santa's
/// `localizedCaseInsensitiveCompare` order.
fn super_hash(unique: &BTreeSet<String>) -> Option<String> {
    if unique.is_empty() {
        return None;
    }
    let mut sha = Sha256::new();
    for h in unique {
        sha.update(h.as_bytes());
    }
    Some(hex::encode(sha.finalize()))
}

/// Walks `root` in parallel and computes Santa's bundle hash of everything below it.
/// Only an unusable root is an error; unreadable entries land in `skipped`.
///
/// One pass on one thread pool: the walk lists every file and sniffs its header, and each
/// executable it finds is queued and a hashing task spawned at once, so hashing overlaps
/// the rest of the walk. A hashing task takes the *largest* executable queued at that
/// moment, so whatever is left when the walk ends is hashed largest first and every core
/// stays busy to the end. The result does not depend on the order: binaries and skipped
/// paths are sorted by path, and the bundle hash is over the sorted distinct digests.
pub fn hash_tree(root: &Path, opts: HashOptions, progress: Option<&Progress>) -> Result<TreeHash> {
    let started = Instant::now();
    let root = &standardized(root).map_err(|source| CoreError::Io {
        path: root.to_path_buf(),
        source,
    })?;
    let io_err = |source| CoreError::Io {
        path: root.to_path_buf(),
        source,
    };
    if !std::fs::metadata(root).map_err(io_err)?.is_dir() {
        return Err(CoreError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    std::fs::read_dir(root).map_err(io_err)?;

    let threads = opts
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("santacore-hash-{i}"))
        .build()
        .map_err(|e| CoreError::ThreadPool(e.to_string()))?;

    let fallback = Progress::default();
    let run = Run {
        blake3: opts.blake3,
        progress: progress.unwrap_or(&fallback),
        counters: WalkCounters::default(),
        macho_files: AtomicU64::new(0),
        queue: Mutex::new(BinaryHeap::new()),
        hashed: Mutex::new(Vec::new()),
        skipped: Mutex::new(Vec::new()),
        first_hash_started: OnceLock::new(),
        last_hash_ended: Mutex::new(None),
    };
    pool.install(|| {
        walk(
            root,
            &run.counters,
            &|scope, dir, name| run.visit_file(scope, dir, name),
            &|path, reason| run.skip(path, reason),
        )
    });
    let walk_ended = run.counters.finished.get().copied();

    let mut binaries = Vec::new();
    let mut skipped = run.skipped.into_inner().unwrap_or_else(|e| e.into_inner());
    for outcome in run.hashed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match outcome {
            Ok(b) => binaries.push(b),
            Err(s) => skipped.push(s),
        }
    }
    // Workers finish in any order; sort so every thread count gives the same result.
    binaries.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    let unique: BTreeSet<String> = binaries.iter().map(|b| b.sha256.clone()).collect();
    let bundle_hash = super_hash(&unique);
    let finished = Instant::now();
    let hash_millis = millis(started, finished);
    run.progress.walk_finished.store(true, Relaxed);
    run.progress.finished.store(true, Relaxed);

    let hashing_millis = match (
        run.first_hash_started.get(),
        run.last_hash_ended.into_inner().unwrap_or_else(|e| e.into_inner()),
    ) {
        (Some(&first), Some(last)) => millis(first, last),
        _ => 0.0,
    };
    let counters = &run.counters;
    Ok(TreeHash {
        root: root.to_path_buf(),
        bundle_hash,
        binary_count: unique.len(),
        stats: TreeStats {
            directories: counters.directories.load(Relaxed),
            regular_files: counters.regular_files.load(Relaxed),
            symlinks: counters.symlinks.load(Relaxed),
            special_files: counters.special_files.load(Relaxed),
            macho_files: run.macho_files.load(Relaxed),
            bytes_hashed: binaries.iter().map(|b| b.size).sum(),
            walk_millis: millis(started, walk_ended.unwrap_or(finished)),
            hashing_millis,
        },
        binaries,
        skipped,
        hash_millis,
    })
}

fn millis(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// The state one `hash_tree` call shares between its walking and hashing tasks.
struct Run<'a> {
    blake3: bool,
    progress: &'a Progress,
    counters: WalkCounters,
    macho_files: AtomicU64,
    /// Executables found and not yet taken by a hashing task, largest on top.
    queue: Mutex<BinaryHeap<Queued>>,
    hashed: Mutex<Vec<std::result::Result<BinaryFile, SkippedPath>>>,
    skipped: Mutex<Vec<SkippedPath>>,
    first_hash_started: OnceLock<Instant>,
    last_hash_ended: Mutex<Option<Instant>>,
}

impl Run<'_> {
    fn skip(&self, path: PathBuf, reason: String) {
        lock(&self.skipped).push(SkippedPath { path, reason });
    }

    /// The walk's file callback: sniff the header; queue an executable and spawn, on the
    /// walk's scope, the task that will hash it.
    fn visit_file<'s>(&'s self, scope: &rayon::Scope<'s>, dir: &Dir, name: OsString) {
        self.progress.files_examined.fetch_add(1, Relaxed);
        let path = || dir.path.join(&name);
        match sniff_path(dir.open_file(&name), path) {
            Sniffed::NotBinary { macho } => {
                if macho {
                    self.macho_files.fetch_add(1, Relaxed);
                }
            }
            Sniffed::Executable(c) => {
                self.macho_files.fetch_add(1, Relaxed);
                self.progress.binaries_found.fetch_add(1, Relaxed);
                self.progress.bytes_found.fetch_add(c.identity.size, Relaxed);
                lock(&self.queue).push(Queued(c));
                scope.spawn(move |_| self.hash_largest_queued());
            }
            Sniffed::Skipped(reason) => self.skip(path(), reason),
        }
    }

    /// One hashing task: the largest executable queued now (each task was spawned for one
    /// queued executable, so every executable is taken exactly once).
    fn hash_largest_queued(&self) {
        let Some(Queued(candidate)) = lock(&self.queue).pop() else {
            return;
        };
        let _ = self.first_hash_started.get_or_init(Instant::now);
        let outcome = hash_candidate(candidate, self.blake3, self.progress, &self.counters.finished);
        lock(&self.hashed).push(outcome);
        let ended = Instant::now();
        let mut last = lock(&self.last_hash_ended);
        if last.is_none_or(|t| t < ended) {
            *last = Some(ended);
        }
    }
}

/// A queued candidate, ordered by size alone (for the max-heap).
struct Queued(Candidate);

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.0.identity.size == other.0.identity.size
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.identity.size.cmp(&other.0.identity.size)
    }
}

/// Absolute, with `.` and `..` removed lexically, as Santa standardises candidate paths
/// (spec §6.3). Symlinks are left alone: resolving them is the caller's choice.
fn standardized(path: &Path) -> std::io::Result<PathBuf> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in std::path::absolute(path)?.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What identifies one version of a file: if any of it differs between two looks, the
/// file changed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl FileIdentity {
    fn of(m: &std::fs::Metadata) -> Self {
        FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }
}

/// An `MH_EXECUTE` found by the walk, waiting to be hashed.
struct Candidate {
    path: PathBuf,
    identity: FileIdentity,
    macho: MachO,
}

enum Sniffed {
    NotBinary { macho: bool },
    Executable(Candidate),
    Skipped(String),
}

/// `opened` if it is still a regular, non-empty file. Checked on the descriptor, so a
/// file swapped for a symlink or FIFO after listing is never followed and never blocks.
fn open_regular(opened: std::io::Result<File>) -> std::result::Result<Option<(File, std::fs::Metadata)>, String> {
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("vanished before it could be read".into()),
        Err(e) => return Err(format!("could not be opened: {e}")),
    };
    match file.metadata() {
        Ok(m) if m.is_file() && m.len() > 0 => Ok(Some((file, m))),
        Ok(_) => Ok(None),
        Err(e) => Err(format!("could not be examined: {e}")),
    }
}

/// Santa's test for one file (spec §6.4): regular, non-empty, readable, and the first
/// slice of its Mach-O headers is `MH_EXECUTE`. Reads at most the first page and the
/// slice headers; only a file that starts with a Mach-O magic costs an `fstat`, and most
/// files cost one `read`. `path` names the file, asked for only if it is a candidate.
fn sniff_path(opened: std::io::Result<File>, path: impl FnOnce() -> PathBuf) -> Sniffed {
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Sniffed::NotBinary { macho: false },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Sniffed::Skipped("vanished before it could be read".into())
        }
        Err(e) => return Sniffed::Skipped(format!("could not be opened: {e}")),
    };
    let mut head = [0u8; HEAD_SIZE];
    let got = match read_head(&mut file, &mut head) {
        Ok(n) => n,
        Err(e) => return Sniffed::Skipped(format!("header could not be read: {e}")),
    };
    if !macho::has_macho_magic(&head[..got]) {
        return Sniffed::NotBinary { macho: false };
    }
    // The listing said "regular file"; the descriptor must agree before we trust its size.
    let meta = match file.metadata() {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Sniffed::NotBinary { macho: false },
        Err(e) => return Sniffed::Skipped(format!("could not be examined: {e}")),
    };
    let size = meta.len();
    if got as u64 != size.min(HEAD_SIZE as u64) {
        return Sniffed::Skipped(format!(
            "changed size while its header was read ({got} bytes read, {size} now)"
        ));
    }
    let macho = macho::sniff(&head[..got], size, |offset, buf| {
        file.read_exact_at(buf, offset).is_ok()
    });
    if !macho.is_executable() {
        return Sniffed::NotBinary {
            macho: macho.is_macho(),
        };
    }
    Sniffed::Executable(Candidate {
        path: path(),
        identity: FileIdentity::of(&meta),
        macho,
    })
}

/// Reads the start of `file` into `buf`: all of `buf` or up to end of file if the bytes
/// start with a Mach-O magic, else just enough to see that they do not. So a file that
/// is not Mach-O costs one `read`, not a second one to find its end.
fn read_head(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if got >= MACH_HEADER_SIZE && !macho::has_macho_magic(&buf[..got]) {
            break;
        }
    }
    Ok(got)
}

/// SHA-256 (and BLAKE3) of a candidate, provided it is still the file the walk sniffed.
fn hash_candidate(
    c: Candidate,
    want_blake3: bool,
    progress: &Progress,
    walk_ended: &OnceLock<Instant>,
) -> std::result::Result<BinaryFile, SkippedPath> {
    let skipped = |reason: String| SkippedPath {
        path: c.path.clone(),
        reason,
    };
    let (file, before) = match open_regular(walk::open_file(&c.path)) {
        Ok(Some(opened)) => opened,
        Ok(None) => {
            return Err(skipped(
                "changed between listing and hashing: no longer a regular file".into(),
            ))
        }
        Err(reason) => return Err(skipped(reason)),
    };
    if FileIdentity::of(&before) != c.identity {
        return Err(skipped("changed between listing and hashing".into()));
    }
    let size = c.identity.size;
    let digests = match hash_file(&file, size, want_blake3, |n| {
        progress.bytes_hashed.fetch_add(n, Relaxed);
        if walk_ended.get().is_some() {
            progress.walk_finished.store(true, Relaxed);
        }
    }) {
        Ok(d) => d,
        Err(HashFailure::Truncated { expected }) => {
            return Err(skipped(format!(
                "changed size while being hashed: shorter than the {expected} bytes it had when opened"
            )))
        }
        Err(HashFailure::Io(e)) => return Err(skipped(format!("read failed while hashing: {e}"))),
    };
    if let Some(reason) = changed_since(&file, &before) {
        return Err(skipped(reason));
    }
    Ok(BinaryFile {
        path: c.path,
        size,
        sha256: hex::encode(digests.sha256),
        blake3: digests.blake3.map(hex::encode),
        macho: c.macho,
    })
}

/// A file written to while we read it has no single hash: report it rather than
/// silently upload a digest of bytes that never existed together.
fn changed_since(file: &File, before: &std::fs::Metadata) -> Option<String> {
    match file.metadata() {
        Ok(after) if after.len() != before.len() => Some(format!(
            "changed size while being hashed: {} bytes when opened, {} after reading",
            before.len(),
            after.len()
        )),
        Ok(after) if (after.mtime(), after.mtime_nsec()) != (before.mtime(), before.mtime_nsec()) => {
            Some("modified while being hashed".into())
        }
        // Deleted under us: the bytes were real, but the path no longer names them.
        Ok(after) if after.nlink() == 0 => Some("vanished (deleted) while being hashed".into()),
        Ok(_) => None,
        Err(e) => Some(format!("could not be re-examined after hashing: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_worked_example() {
        let hashes = [
            "f2c82decdd7181cf98945929a62598db7e6b477e11f6e0eb0ae97020eff151ad",
            "b6a98d9ce9a2d9149288fa3df42d377c3e42737afdcdaf714e33c0a100b51060",
            "b6a98d9ce9a2d9149288fa3df42d377c3e42737afdcdaf714e33c0a100b51060",
            "673953e0ad7fc53247f4feadc2c2d4506396840d1f8796526f48d47333ac7652",
        ];
        assert_eq!(
            bundle_hash_from_hashes(hashes).unwrap().as_deref(),
            Some("b951801a9c10e74995ac45ed1c840fa68d533fa01cf656bb5083742f2fc65cfa")
        );
        assert_eq!(bundle_hash_from_hashes([]).unwrap(), None);
        assert!(bundle_hash_from_hashes(["xyz"]).is_err());
    }

    fn thin_exec(extra: u8) -> Vec<u8> {
        let mut v = vec![0u8; 4200];
        v[..4].copy_from_slice(&0xfeed_facfu32.to_le_bytes());
        v[4..8].copy_from_slice(&0x0100_000cu32.to_le_bytes());
        v[12..16].copy_from_slice(&2u32.to_le_bytes());
        v.push(extra);
        v
    }

    #[test]
    fn duplicates_collapse_and_thread_counts_agree() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("Contents/MacOS")).unwrap();
        std::fs::write(root.join("Contents/MacOS/a"), thin_exec(1)).unwrap();
        std::fs::write(root.join("Contents/MacOS/b"), thin_exec(1)).unwrap();
        std::fs::write(root.join("c"), thin_exec(2)).unwrap();
        std::fs::write(root.join("empty"), b"").unwrap();
        let one = hash_tree(
            root,
            HashOptions {
                threads: Some(1),
                blake3: false,
            },
            None,
        )
        .unwrap();
        let two = hash_tree(
            root,
            HashOptions {
                threads: Some(2),
                blake3: true,
            },
            None,
        )
        .unwrap();
        assert_eq!(one.binaries.len(), 3);
        assert_eq!(one.binary_count, 2);
        assert_eq!(one.bundle_hash, two.bundle_hash);
        let expected = bundle_hash_from_hashes(one.binaries.iter().map(|b| b.sha256.as_str())).unwrap();
        assert_eq!(one.bundle_hash, expected);
        assert!(two.binaries.iter().all(|b| b.blake3.is_some()));
    }

    #[test]
    fn hashing_overlaps_the_walk() {
        // One thread, so the order is fixed: the root's listing queues its 40 folders, then
        // sniffs `big` and queues its hashing task, which runs next (a worker takes its
        // newest task first); the folders are walked after it.
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut big = thin_exec(9);
        big.resize(48 << 20, 0);
        std::fs::write(root.join("big"), &big).unwrap();
        for d in 0..40 {
            let dir = root.join(format!("d{d:02}"));
            std::fs::create_dir(&dir).unwrap();
            for f in 0..25 {
                std::fs::write(dir.join(format!("f{f:02}")), [b'x'; 64]).unwrap();
            }
        }
        std::fs::write(root.join("d39/exe"), thin_exec(4)).unwrap();
        let opts = HashOptions {
            threads: Some(1),
            blake3: false,
        };
        let tree = hash_tree(root, opts, None).unwrap();
        assert_eq!(tree.binary_count, 2);
        assert_eq!(tree.stats.regular_files, 1 + 40 * 25 + 1);
        let s = &tree.stats;
        assert!(s.hashing_millis > 0.0 && s.walk_millis > 0.0);
        assert!(s.walk_millis <= tree.hash_millis && s.hashing_millis <= tree.hash_millis);
        // Two intervals inside [0, hash_millis] whose lengths add up to more than it overlap.
        assert!(
            s.walk_millis + s.hashing_millis > tree.hash_millis,
            "walk {} + hashing {} <= whole {}: the phases did not overlap",
            s.walk_millis,
            s.hashing_millis,
            tree.hash_millis
        );
    }

    #[test]
    fn no_binaries_no_hashing_time() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("text"), b"not mach-o").unwrap();
        let tree = hash_tree(tmp.path(), HashOptions::default(), None).unwrap();
        assert_eq!(tree.bundle_hash, None);
        assert_eq!(tree.stats.hashing_millis, 0.0);
        assert!(tree.stats.walk_millis > 0.0 && tree.stats.walk_millis <= tree.hash_millis);
    }

    #[test]
    fn progress_counts_everything_and_finishes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("a"), thin_exec(5)).unwrap();
        std::fs::write(root.join("b"), thin_exec(6)).unwrap();
        std::fs::write(root.join("c"), b"text").unwrap();
        let progress = Progress::default();
        let tree = hash_tree(root, HashOptions::default(), Some(&progress)).unwrap();
        assert_eq!(progress.files_examined.load(Relaxed), 3);
        assert_eq!(progress.binaries_found.load(Relaxed), 2);
        assert_eq!(progress.bytes_hashed.load(Relaxed), tree.stats.bytes_hashed);
        assert_eq!(progress.bytes_found.load(Relaxed), tree.stats.bytes_hashed);
        assert!(progress.walk_finished.load(Relaxed) && progress.finished.load(Relaxed));
    }

    #[test]
    fn root_is_standardized() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        std::fs::write(tmp.path().join("a/x"), thin_exec(3)).unwrap();
        let messy = tmp.path().join("a/./b/..");
        let tree = hash_tree(&messy, HashOptions::default(), None).unwrap();
        assert_eq!(tree.root, tmp.path().join("a"));
        assert_eq!(tree.binaries[0].path, tmp.path().join("a/x"));
    }

    #[test]
    fn unusable_root_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(hash_tree(&tmp.path().join("missing"), HashOptions::default(), None).is_err());
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        assert!(matches!(
            hash_tree(&tmp.path().join("f"), HashOptions::default(), None),
            Err(CoreError::NotADirectory { .. })
        ));
    }
}
