//! Parallel walk of a directory tree (spec §6.3): every entry below the root, hidden
//! ones included, nested bundles descended into like any folder. Symbolic links are
//! counted but never followed; entry types come from the directory listing (`lstat`
//! semantics).
//!
//! Each directory is one rayon task, and so is each batch of its files. Everything is
//! opened relative to its parent's descriptor (`openat`), so the kernel never re-resolves
//! a long path per file and trees deeper than `PATH_MAX` are walked like any other. A
//! directory's descriptor lives as long as tasks for its children still need it.
//!
//! The walk runs in a rayon scope that the file callback can spawn its own tasks on (the
//! bundle hash starts hashing an executable as soon as it is found); those tasks are not
//! part of the walk, and `WalkCounters::finished` records when the walk's own tasks ended.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Files handed to one task: large enough to amortise the task, small enough that one
/// huge directory still spreads over every thread.
const FILES_PER_TASK: usize = 16;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
/// O_NONBLOCK: a FIFO swapped in after listing must not block the open.
const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

#[derive(Debug, Default)]
pub struct WalkCounters {
    pub directories: AtomicU64,
    pub regular_files: AtomicU64,
    pub symlinks: AtomicU64,
    /// FIFOs, sockets, devices: listed, never opened.
    pub special_files: AtomicU64,
    /// When the walk ended: every directory listed and `on_file` returned for every file
    /// (tasks that `on_file` spawned may still be running). Unset if the root could not
    /// be opened.
    pub finished: OnceLock<Instant>,
    /// Walk tasks spawned and not yet finished (the root's listing counts as one).
    pending: AtomicUsize,
}

/// One walk task in flight; the last one to end records `WalkCounters::finished`.
struct Task<'a>(&'a WalkCounters);

impl<'a> Task<'a> {
    fn start(counters: &'a WalkCounters) -> Self {
        counters.pending.fetch_add(1, Ordering::AcqRel);
        Task(counters)
    }
}

impl Drop for Task<'_> {
    fn drop(&mut self) {
        if self.0.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.0.finished.set(Instant::now());
        }
    }
}

/// An open directory of the walk.
pub struct Dir {
    fd: OwnedFd,
    pub path: PathBuf,
}

impl Dir {
    /// Opens `name` in this directory without following a symlink (ELOOP if it is one).
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        Ok(File::from(rustix::fs::openat(
            &self.fd,
            name,
            FILE_FLAGS,
            Mode::empty(),
        )?))
    }
}

/// Opens a file by path; a path too long for the kernel is opened one component at a time.
pub fn open_file(path: &Path) -> io::Result<File> {
    match rustix::fs::open(path, FILE_FLAGS, Mode::empty()) {
        Err(rustix::io::Errno::NAMETOOLONG) => {}
        other => return Ok(File::from(other?)),
    }
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => (parent, name),
        _ => return Err(rustix::io::Errno::NAMETOOLONG.into()),
    };
    let mut dir = rustix::fs::open("/", DIR_FLAGS, Mode::empty())?;
    for part in parent.components().skip(1) {
        // Ancestors above the walk's root may be symlinks (e.g. /tmp on macOS): follow them.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        dir = rustix::fs::openat(&dir, part.as_os_str(), flags, Mode::empty())?;
    }
    Ok(File::from(rustix::fs::openat(&dir, name, FILE_FLAGS, Mode::empty())?))
}

/// Walks everything below `root` on the current rayon pool. `on_file` gets every regular
/// file as (the walk's scope, its directory, its name) and may spawn tasks of its own on
/// the scope; `on_error` gets every path that could not be listed. Returns when the walk
/// and every task spawned on its scope have finished.
pub fn walk<'s, F, E>(root: &Path, counters: &'s WalkCounters, on_file: &'s F, on_error: &'s E)
where
    F: Fn(&rayon::Scope<'s>, &Dir, OsString) + Sync,
    E: Fn(PathBuf, String) + Sync,
{
    let fd = match rustix::fs::open(root, DIR_FLAGS.difference(OFlags::NOFOLLOW), Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            return on_error(
                root.to_path_buf(),
                format!("directory could not be opened: {}", io::Error::from(e)),
            )
        }
    };
    let root = Arc::new(Dir {
        fd,
        path: root.to_path_buf(),
    });
    rayon::scope(|scope| {
        let _task = Task::start(counters);
        list_dir(scope, root, counters, on_file, on_error);
    });
}

fn visit_child<'s, F, E>(
    scope: &rayon::Scope<'s>,
    parent: Arc<Dir>,
    name: OsString,
    counters: &'s WalkCounters,
    on_file: &'s F,
    on_error: &'s E,
) where
    F: Fn(&rayon::Scope<'s>, &Dir, OsString) + Sync,
    E: Fn(PathBuf, String) + Sync,
{
    let path = parent.path.join(&name);
    match rustix::fs::openat(&parent.fd, name.as_os_str(), DIR_FLAGS, Mode::empty()) {
        Ok(fd) => {
            drop(parent); // the parent's descriptor may close once its last child is open
            list_dir(scope, Arc::new(Dir { fd, path }), counters, on_file, on_error);
        }
        Err(e) => on_error(path, format!("directory could not be opened: {}", io::Error::from(e))),
    }
}

fn list_dir<'s, F, E>(
    scope: &rayon::Scope<'s>,
    dir: Arc<Dir>,
    counters: &'s WalkCounters,
    on_file: &'s F,
    on_error: &'s E,
) where
    F: Fn(&rayon::Scope<'s>, &Dir, OsString) + Sync,
    E: Fn(PathBuf, String) + Sync,
{
    counters.directories.fetch_add(1, Relaxed);
    let mut files = Vec::new();
    let listed = for_each_entry(&dir.fd, |name, file_type| {
        if name == b"." || name == b".." {
            return;
        }
        let name = OsStr::from_bytes(name).to_os_string();
        let file_type = match file_type {
            // Some filesystems leave d_type unset: ask, still without following links.
            FileType::Unknown => match rustix::fs::statat(&dir.fd, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode),
                Err(e) => {
                    on_error(
                        dir.path.join(&name),
                        format!("could not be examined: {}", io::Error::from(e)),
                    );
                    return;
                }
            },
            known => known,
        };
        match file_type {
            FileType::Directory => {
                let parent = Arc::clone(&dir);
                let task = Task::start(counters);
                scope.spawn(move |s| {
                    let _task = task;
                    visit_child(s, parent, name, counters, on_file, on_error);
                });
            }
            FileType::RegularFile => {
                counters.regular_files.fetch_add(1, Relaxed);
                files.push(name);
                if files.len() == FILES_PER_TASK {
                    let batch = std::mem::take(&mut files);
                    let dir = Arc::clone(&dir);
                    let task = Task::start(counters);
                    scope.spawn(move |s| {
                        let _task = task;
                        batch.into_iter().for_each(|name| on_file(s, &dir, name));
                    });
                }
            }
            FileType::Symlink => {
                counters.symlinks.fetch_add(1, Relaxed);
            }
            _ => {
                counters.special_files.fetch_add(1, Relaxed);
            }
        }
    });
    if let Err(e) = listed {
        on_error(
            dir.path.clone(),
            format!("directory could not be listed: {}", io::Error::from(e)),
        );
    }
    files.into_iter().for_each(|name| on_file(scope, &dir, name));
}

/// Calls `each(name, type)` for every entry of the directory open at `fd`.
/// Linux reads with getdents straight into a buffer (no dup, no fdopendir); the fd's own
/// read position is used, which nothing else reads.
#[cfg(target_os = "linux")]
fn for_each_entry(fd: &OwnedFd, mut each: impl FnMut(&[u8], FileType)) -> rustix::io::Result<()> {
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut entries = rustix::fs::RawDir::new(fd, buf.spare_capacity_mut());
    while let Some(entry) = entries.next() {
        let entry = entry?;
        each(entry.file_name().to_bytes(), entry.file_type());
    }
    Ok(())
}

/// Elsewhere through `fdopendir` on a duplicate, leaving `fd` as the base for `openat`.
#[cfg(not(target_os = "linux"))]
fn for_each_entry(fd: &OwnedFd, mut each: impl FnMut(&[u8], FileType)) -> rustix::io::Result<()> {
    let mut entries = rustix::fs::Dir::new(rustix::io::dup(fd)?)?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        each(entry.file_name().to_bytes(), entry.file_type());
    }
    Ok(())
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
        let on_file = |_: &rayon::Scope<'_>, dir: &Dir, name: OsString| seen.lock().unwrap().push(dir.path.join(name));
        walk(root, &counters, &on_file, &|p, r| panic!("{p:?}: {r}"));
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, vec![root.join(".hidden/Inner.app/Contents/x"), root.join("a")]);
        assert_eq!(counters.symlinks.load(Relaxed), 1);
        assert_eq!(counters.directories.load(Relaxed), 4);
        assert!(counters.finished.get().is_some());
    }

    #[test]
    fn file_callback_tasks_run_on_the_walk_scope_and_are_not_the_walk() {
        // One thread: a task spawned by the callback runs before folders queued earlier,
        // and the walk's end is recorded when its own tasks are done, not the callback's.
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("first"), b"1").unwrap();
        for d in 0..5 {
            std::fs::create_dir(root.join(format!("d{d}"))).unwrap();
            std::fs::write(root.join(format!("d{d}/f")), b"f").unwrap();
        }
        let events = Mutex::new(Vec::new());
        let spawned_done = OnceLock::new();
        let counters = WalkCounters::default();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        pool.install(|| {
            walk(
                root,
                &counters,
                &|scope, dir, name| {
                    events.lock().unwrap().push(dir.path.join(&name));
                    if name == "first" {
                        scope.spawn(|_| {
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            events.lock().unwrap().push(PathBuf::from("spawned"));
                            let _ = spawned_done.set(Instant::now());
                        });
                    }
                },
                &|p, r| panic!("{p:?}: {r}"),
            )
        });
        let events = events.into_inner().unwrap();
        assert_eq!(events.len(), 7);
        assert_eq!(events[0], root.join("first"));
        assert_eq!(events[1], PathBuf::from("spawned"));
        assert!(counters.finished.get().unwrap() > spawned_done.get().unwrap());
    }

    #[test]
    fn deeper_than_path_max() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = File::open(tmp.path()).map(OwnedFd::from).unwrap();
        let name = "d".repeat(200);
        for _ in 0..40 {
            rustix::fs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755)).unwrap();
            dir = rustix::fs::openat(&dir, name.as_str(), DIR_FLAGS, Mode::empty()).unwrap();
        }
        let f = rustix::fs::openat(
            &dir,
            "bottom",
            OFlags::CREATE | OFlags::WRONLY,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        rustix::io::write(&f, b"hello").unwrap();
        let seen = Mutex::new(Vec::new());
        let on_file = |_: &rayon::Scope<'_>, dir: &Dir, name: OsString| {
            let opened = dir.open_file(&name).is_ok();
            seen.lock().unwrap().push((dir.path.join(name), opened));
        };
        walk(tmp.path(), &WalkCounters::default(), &on_file, &|p, r| {
            panic!("{p:?}: {r}")
        });
        let seen = seen.into_inner().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].0.as_os_str().len() > 8000 && seen[0].1);
        // Opening by the over-long path still works, one component at a time.
        assert!(open_file(&seen[0].0).is_ok());
        std::process::Command::new("rm")
            .arg("-rf")
            .arg(tmp.path())
            .status()
            .unwrap();
    }
}
