//! Santa's bundle hash (spec §6.4–6.6), in three steps like `SNTBundleService`:
//! find every regular, non-empty file whose first Mach-O header is `MH_EXECUTE`;
//! SHA-256 each one; sort the distinct lowercase hex digests, concatenate them and
//! SHA-256 the result. No binaries means no hash.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use rayon::prelude::*;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};
use crate::hash::{hash_file, HashFailure};
use crate::macho::{self, MachO, HEAD_SIZE};
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
    /// Phase 1: listing every entry and sniffing every regular file's header.
    pub walk_millis: f64,
    /// Phase 2: hashing the executables found.
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
    pub bytes_hashed: AtomicU64,
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
/// Two phases on one thread pool: the walk lists every file and sniffs its header, then
/// the executables found are hashed largest first, so the hashing phase keeps every core
/// busy to the end and can be timed on its own.
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
    let progress = progress.unwrap_or(&fallback);
    let counters = WalkCounters::default();
    let macho_files = AtomicU64::new(0);
    let candidates = Mutex::new(Vec::new());
    let skipped = Mutex::new(Vec::new());
    let skip = |path: PathBuf, reason: String| lock(&skipped).push(SkippedPath { path, reason });

    // Phase 1: list everything, sniff every regular file's header.
    pool.install(|| {
        let on_file = |dir: &Dir, name: OsString| {
            progress.files_examined.fetch_add(1, Relaxed);
            let path = dir.path.join(&name);
            match sniff_path(&path, dir.open_file(&name)) {
                Sniffed::NotBinary { macho } => {
                    if macho {
                        macho_files.fetch_add(1, Relaxed);
                    }
                }
                Sniffed::Executable(c) => {
                    macho_files.fetch_add(1, Relaxed);
                    progress.binaries_found.fetch_add(1, Relaxed);
                    lock(&candidates).push(c);
                }
                Sniffed::Skipped(reason) => skip(path, reason),
            }
        };
        walk(root, &counters, &on_file, &skip);
    });
    let walk_millis = started.elapsed().as_secs_f64() * 1000.0;

    // Phase 2: hash the executables, largest first.
    let hashing_started = Instant::now();
    let mut candidates = candidates.into_inner().unwrap_or_else(|e| e.into_inner());
    candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.identity.size));
    let hashed: Vec<std::result::Result<BinaryFile, SkippedPath>> = pool.install(|| {
        candidates
            .into_par_iter()
            // One file per work item: sorted largest first, whole-chunk splits would hand
            // one thread most of the bytes while the other idles.
            .with_max_len(1)
            .map(|c| hash_candidate(c, opts.blake3, progress))
            .collect()
    });
    let mut binaries = Vec::with_capacity(hashed.len());
    let mut skipped = skipped.into_inner().unwrap_or_else(|e| e.into_inner());
    for outcome in hashed {
        match outcome {
            Ok(b) => binaries.push(b),
            Err(s) => skipped.push(s),
        }
    }
    let hashing_millis = hashing_started.elapsed().as_secs_f64() * 1000.0;

    // Workers finish in any order; sort so every thread count gives the same result.
    binaries.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    let unique: BTreeSet<String> = binaries.iter().map(|b| b.sha256.clone()).collect();
    let bundle_hash = super_hash(&unique);
    let hash_millis = started.elapsed().as_secs_f64() * 1000.0;
    progress.finished.store(true, Relaxed);

    Ok(TreeHash {
        root: root.to_path_buf(),
        bundle_hash,
        binary_count: unique.len(),
        stats: TreeStats {
            directories: counters.directories.load(Relaxed),
            regular_files: counters.regular_files.load(Relaxed),
            symlinks: counters.symlinks.load(Relaxed),
            special_files: counters.special_files.load(Relaxed),
            macho_files: macho_files.load(Relaxed),
            bytes_hashed: binaries.iter().map(|b| b.size).sum(),
            walk_millis,
            hashing_millis,
        },
        binaries,
        skipped,
        hash_millis,
    })
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

/// Santa's test for one path (spec §6.4): regular, non-empty, readable, and the first
/// slice of its Mach-O headers is `MH_EXECUTE`. Reads at most the first page and the
/// slice headers; only a file that starts with a Mach-O magic costs an `fstat`.
fn sniff_path(path: &Path, opened: std::io::Result<File>) -> Sniffed {
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Sniffed::NotBinary { macho: false },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Sniffed::Skipped("vanished before it could be read".into())
        }
        Err(e) => return Sniffed::Skipped(format!("could not be opened: {e}")),
    };
    let mut head = [0u8; HEAD_SIZE];
    let got = match read_up_to(&mut file, &mut head) {
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
        path: path.to_path_buf(),
        identity: FileIdentity::of(&meta),
        macho,
    })
}

/// Fills `buf` from the start of `file` or up to end of file, whichever comes first.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// SHA-256 (and BLAKE3) of a candidate, provided it is still the file the walk sniffed.
fn hash_candidate(
    c: Candidate,
    want_blake3: bool,
    progress: &Progress,
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
