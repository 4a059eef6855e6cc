//! Parallel walk of a directory tree (spec §6.3): every entry below the root, hidden
//! ones included, nested bundles descended into like any folder. Symbolic links are
//! counted but never followed; `DirEntry::file_type` has `lstat` semantics.
//!
//! Each directory is one rayon task; its regular files are handed to `on_file` in small
//! batches on the same pool, so listing and hashing overlap and neither waits on the other.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Files handed to one task: large enough to amortise the task, small enough that one
/// huge directory still spreads over every thread.
const FILES_PER_TASK: usize = 16;

#[derive(Debug, Default)]
pub struct WalkCounters {
    pub directories: AtomicU64,
    pub regular_files: AtomicU64,
    pub symlinks: AtomicU64,
    /// FIFOs, sockets, devices: listed, never opened.
    pub special_files: AtomicU64,
}

/// Walks everything below `root` on the current rayon pool. `on_file` gets every regular
/// file; `on_error` every path that could not be listed, with the reason.
pub fn walk<F, E>(root: &Path, counters: &WalkCounters, on_file: &F, on_error: &E)
where
    F: Fn(PathBuf) + Sync,
    E: Fn(PathBuf, String) + Sync,
{
    rayon::scope(|scope| visit_dir(scope, root.to_path_buf(), counters, on_file, on_error));
}

fn visit_dir<'s, F, E>(
    scope: &rayon::Scope<'s>,
    dir: PathBuf,
    counters: &'s WalkCounters,
    on_file: &'s F,
    on_error: &'s E,
) where
    F: Fn(PathBuf) + Sync,
    E: Fn(PathBuf, String) + Sync,
{
    counters.directories.fetch_add(1, Relaxed);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => return on_error(dir, format!("directory could not be listed: {e}")),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                on_error(dir.clone(), format!("directory listing failed part-way: {e}"));
                break;
            }
        };
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                scope.spawn(move |s| visit_dir(s, path, counters, on_file, on_error));
            }
            Ok(t) if t.is_file() => {
                counters.regular_files.fetch_add(1, Relaxed);
                files.push(path);
                if files.len() == FILES_PER_TASK {
                    let batch = std::mem::take(&mut files);
                    scope.spawn(move |_| batch.into_iter().for_each(on_file));
                }
            }
            Ok(t) if t.is_symlink() => {
                counters.symlinks.fetch_add(1, Relaxed);
            }
            Ok(_) => {
                counters.special_files.fetch_add(1, Relaxed);
            }
            Err(e) => on_error(path, format!("could not be examined: {e}")),
        }
    }
    files.into_iter().for_each(on_file);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn lists_hidden_and_nested_files_but_not_symlink_targets() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join(".hidden/Inner.app/Contents")).unwrap();
        std::fs::write(root.join(".hidden/Inner.app/Contents/x"), b"x").unwrap();
        std::fs::write(root.join("a"), b"a").unwrap();
        std::os::unix::fs::symlink(root.join(".hidden"), root.join("link")).unwrap();
        let seen = Mutex::new(Vec::new());
        let counters = WalkCounters::default();
        walk(root, &counters, &|p| seen.lock().unwrap().push(p), &|p, r| {
            panic!("{p:?}: {r}")
        });
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, vec![root.join(".hidden/Inner.app/Contents/x"), root.join("a")]);
        assert_eq!(counters.symlinks.load(Relaxed), 1);
        assert_eq!(counters.directories.load(Relaxed), 4);
    }
}
