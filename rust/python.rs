//! The only PyO3 file: frozen result classes, the `_core` functions, and the one place
//! engine errors become Python exceptions. Work runs with the GIL released.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use pyo3::exceptions::{PyNotADirectoryError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::bundle::{self, HashOptions};
use crate::error::CoreError;
use crate::macho::{self, MachO};

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        let msg = err.to_string();
        match err {
            // (errno, strerror, filename) keeps OSError's subclass and its `filename`.
            CoreError::Io { path, source } => {
                let errno = source.raw_os_error().unwrap_or(0);
                PyOSError::new_err((errno, source.to_string(), path.into_os_string()))
            }
            CoreError::NotADirectory { path } => {
                PyNotADirectoryError::new_err((libc::ENOTDIR, "Not a directory", path.into_os_string()))
            }
            CoreError::InvalidDigest(_) | CoreError::InvalidArgument(_) => PyValueError::new_err(msg),
            CoreError::ThreadPool(_) => PyRuntimeError::new_err(msg),
        }
    }
}

fn os(path: PathBuf) -> OsString {
    path.into_os_string()
}

/// Python's repr of an optional string, for `__repr__`s.
fn py_opt(value: Option<&str>) -> String {
    value.map_or_else(|| "None".to_owned(), |v| format!("{v:?}"))
}

/// One valid slice of a Mach-O file.
#[pyclass(frozen, get_all, module = "santacore._core")]
#[derive(Clone)]
pub struct MachOSlice {
    arch: String,
    cputype: i32,
    cpusubtype: i32,
    filetype: u32,
    offset: u64,
    size: u64,
    is_64: bool,
    big_endian: bool,
}

#[pymethods]
impl MachOSlice {
    fn __repr__(&self) -> String {
        format!(
            "MachOSlice(arch={:?}, filetype={}, offset={}, size={})",
            self.arch, self.filetype, self.offset, self.size
        )
    }
}

/// What Santa learns from a file's Mach-O headers.
#[pyclass(frozen, get_all, module = "santacore._core")]
#[derive(Clone)]
pub struct MachOInfo {
    is_macho: bool,
    is_fat: bool,
    fat_container: bool,
    is_executable: bool,
    architectures: Vec<String>,
    filetypes: Vec<u32>,
    slices: Vec<MachOSlice>,
}

#[pymethods]
impl MachOInfo {
    fn __repr__(&self) -> String {
        format!(
            "MachOInfo(is_macho={}, is_executable={}, architectures={:?}, filetypes={:?})",
            if self.is_macho { "True" } else { "False" },
            if self.is_executable { "True" } else { "False" },
            self.architectures,
            self.filetypes
        )
    }
}

impl From<MachO> for MachOInfo {
    fn from(m: MachO) -> Self {
        MachOInfo {
            is_macho: m.is_macho(),
            is_fat: m.is_fat(),
            fat_container: m.fat_container,
            is_executable: m.is_executable(),
            architectures: m.architectures(),
            filetypes: m.slices.iter().map(|s| s.filetype).collect(),
            slices: m
                .slices
                .into_iter()
                .map(|s| MachOSlice {
                    arch: s.arch,
                    cputype: s.cputype,
                    cpusubtype: s.cpusubtype,
                    filetype: s.filetype,
                    offset: s.offset,
                    size: s.size,
                    is_64: s.is_64,
                    big_endian: s.big_endian,
                })
                .collect(),
        }
    }
}

/// An `MH_EXECUTE` file found below the root.
#[pyclass(frozen, get_all, module = "santacore._core")]
pub struct BinaryFile {
    path: OsString,
    size: u64,
    sha256: String,
    blake3: Option<String>,
    architectures: Vec<String>,
    macho: Py<MachOInfo>,
}

#[pymethods]
impl BinaryFile {
    fn __repr__(&self) -> String {
        format!(
            "BinaryFile(path={:?}, sha256={:?}, size={})",
            self.path, self.sha256, self.size
        )
    }
}

/// A path the walk could not examine, and why.
#[pyclass(frozen, get_all, module = "santacore._core")]
pub struct SkippedPath {
    path: OsString,
    reason: String,
}

#[pymethods]
impl SkippedPath {
    fn __repr__(&self) -> String {
        format!("SkippedPath(path={:?}, reason={:?})", self.path, self.reason)
    }
}

/// Counts of what the walk saw.
#[pyclass(frozen, get_all, module = "santacore._core")]
pub struct TreeStats {
    directories: u64,
    regular_files: u64,
    symlinks: u64,
    special_files: u64,
    macho_files: u64,
    bytes_hashed: u64,
    walk_millis: f64,
    hashing_millis: f64,
}

/// The bundle hash of a directory tree and everything that went into it.
#[pyclass(frozen, get_all, module = "santacore._core")]
pub struct TreeHash {
    root: OsString,
    bundle_hash: Option<String>,
    binary_count: usize,
    binaries: Vec<Py<BinaryFile>>,
    skipped: Vec<Py<SkippedPath>>,
    stats: Py<TreeStats>,
    hash_millis: f64,
}

#[pymethods]
impl TreeHash {
    fn __repr__(&self) -> String {
        format!(
            "TreeHash(root={:?}, bundle_hash={}, binary_count={}, hash_millis={:.1})",
            self.root,
            py_opt(self.bundle_hash.as_deref()),
            self.binary_count,
            self.hash_millis
        )
    }
}

/// Live counters of a running `hash_tree`, readable from another thread.
#[pyclass(frozen, module = "santacore._core")]
pub struct Progress(Arc<bundle::Progress>);

#[pymethods]
impl Progress {
    #[new]
    fn new() -> Self {
        Progress(Arc::default())
    }
    #[getter]
    fn files_examined(&self) -> u64 {
        self.0.files_examined.load(Relaxed)
    }
    #[getter]
    fn binaries_found(&self) -> u64 {
        self.0.binaries_found.load(Relaxed)
    }
    #[getter]
    fn bytes_found(&self) -> u64 {
        self.0.bytes_found.load(Relaxed)
    }
    #[getter]
    fn bytes_hashed(&self) -> u64 {
        self.0.bytes_hashed.load(Relaxed)
    }
    #[getter]
    fn walk_finished(&self) -> bool {
        self.0.walk_finished.load(Relaxed)
    }
    #[getter]
    fn finished(&self) -> bool {
        self.0.finished.load(Relaxed)
    }
}

/// Walk `path` in parallel and compute Santa's bundle hash of every `MH_EXECUTE` below it.
#[pyfunction]
#[pyo3(signature = (path, /, *, threads = None, blake3 = false, progress = None))]
pub fn hash_tree(
    py: Python<'_>,
    path: PathBuf,
    threads: Option<usize>,
    blake3: bool,
    progress: Option<&Bound<'_, Progress>>,
) -> PyResult<TreeHash> {
    if threads == Some(0) {
        return Err(PyValueError::new_err("threads must be at least 1"));
    }
    let counters = progress.map(|p| Arc::clone(&p.get().0));
    let opts = HashOptions { threads, blake3 };
    let tree = py.detach(|| bundle::hash_tree(&path, opts, counters.as_deref()))?;
    let binaries = tree
        .binaries
        .into_iter()
        .map(|b| {
            let macho = Py::new(py, MachOInfo::from(b.macho))?;
            let architectures = macho.get().architectures.clone();
            Py::new(
                py,
                BinaryFile {
                    path: os(b.path),
                    size: b.size,
                    sha256: b.sha256,
                    blake3: b.blake3,
                    architectures,
                    macho,
                },
            )
        })
        .collect::<PyResult<_>>()?;
    let skipped = tree
        .skipped
        .into_iter()
        .map(|s| {
            Py::new(
                py,
                SkippedPath {
                    path: os(s.path),
                    reason: s.reason,
                },
            )
        })
        .collect::<PyResult<_>>()?;
    let s = tree.stats;
    let stats = Py::new(
        py,
        TreeStats {
            directories: s.directories,
            regular_files: s.regular_files,
            symlinks: s.symlinks,
            special_files: s.special_files,
            macho_files: s.macho_files,
            bytes_hashed: s.bytes_hashed,
            walk_millis: s.walk_millis,
            hashing_millis: s.hashing_millis,
        },
    )?;
    Ok(TreeHash {
        root: os(tree.root),
        bundle_hash: tree.bundle_hash,
        binary_count: tree.binary_count,
        binaries,
        skipped,
        stats,
        hash_millis: tree.hash_millis,
    })
}

/// Sniff one file's Mach-O headers as Santa does (only header bytes are read).
#[pyfunction]
#[pyo3(signature = (path, /))]
pub fn sniff_macho(py: Python<'_>, path: PathBuf) -> PyResult<MachOInfo> {
    let m = py
        .detach(|| macho::sniff_file(&path))
        .map_err(|source| CoreError::Io { path, source })?;
    Ok(m.into())
}

/// Sniff a whole file held in memory.
#[pyfunction]
#[pyo3(signature = (data, /))]
pub fn sniff_macho_bytes(data: &[u8]) -> MachOInfo {
    macho::sniff_bytes(data).into()
}

/// Santa's super hash of SHA-256 hex digests (deduplicated, sorted); None when empty.
#[pyfunction]
#[pyo3(signature = (hashes, /))]
pub fn bundle_hash_from_hashes(hashes: Vec<String>) -> PyResult<Option<String>> {
    Ok(bundle::bundle_hash_from_hashes(hashes.iter().map(String::as_str))?)
}

/// The architecture name Santa prints for a CPU type / subtype pair.
#[pyfunction]
#[pyo3(signature = (cputype, cpusubtype, /))]
pub fn arch_name(cputype: i32, cpusubtype: i32) -> String {
    macho::arch_name(cputype, cpusubtype)
}

/// SHA-256 and SHA-1 of a whole file, read once (spec §7.1).
#[pyclass(frozen, get_all, module = "santacore._core")]
pub struct FileDigests {
    size: u64,
    sha256: String,
    sha1: String,
}

#[pymethods]
impl FileDigests {
    fn __repr__(&self) -> String {
        format!(
            "FileDigests(size={}, sha256={:?}, sha1={:?})",
            self.size, self.sha256, self.sha1
        )
    }
}

/// SHA-256 and SHA-1 of every byte of the file at `path`, in one read pass.
#[pyfunction]
#[pyo3(signature = (path, /))]
pub fn file_digests(py: Python<'_>, path: PathBuf) -> PyResult<FileDigests> {
    let d = py.detach(|| crate::digest::file_digests(&path))?;
    Ok(FileDigests {
        size: d.size,
        sha256: d.sha256,
        sha1: d.sha1,
    })
}

/// A code-signature hash (`hash_type` as in a CodeDirectory: 1 SHA-1, 2 SHA-256,
/// 3 SHA-256 truncated to 20 bytes, 4 SHA-384) of `data`.
#[pyfunction]
#[pyo3(signature = (hash_type, data, /))]
pub fn digest<'py>(py: Python<'py>, hash_type: u32, data: &[u8]) -> PyResult<Bound<'py, pyo3::types::PyBytes>> {
    let kind = crate::digest::HashType::from_code(hash_type)?;
    Ok(pyo3::types::PyBytes::new(py, &kind.digest(data)))
}

/// The hash of each `page_size` chunk of the file range `[offset, offset + length)`.
#[pyfunction]
#[pyo3(signature = (path, /, offset, length, page_size, hash_type))]
pub fn code_page_hashes<'py>(
    py: Python<'py>,
    path: PathBuf,
    offset: u64,
    length: u64,
    page_size: u64,
    hash_type: u32,
) -> PyResult<Vec<Bound<'py, pyo3::types::PyBytes>>> {
    let kind = crate::digest::HashType::from_code(hash_type)?;
    let pages = py.detach(|| crate::digest::code_page_hashes(&path, offset, length, page_size, kind))?;
    Ok(pages.iter().map(|p| pyo3::types::PyBytes::new(py, p)).collect())
}

/// One member of an archive's tree (`scan_archive`).
#[pyclass(frozen, module = "santacore._core")]
pub struct ArchiveEntry {
    #[pyo3(get)]
    path: String,
    #[pyo3(get)]
    kind: &'static str,
    #[pyo3(get)]
    size: u64,
    #[pyo3(get)]
    link_target: Option<String>,
    #[pyo3(get)]
    sha256: Option<String>,
    #[pyo3(get)]
    macho: Option<Py<MachOInfo>>,
    #[pyo3(get)]
    hash_micros: u64,
    #[pyo3(get)]
    note: Option<String>,
    plist: Option<Vec<u8>>,
    image: Option<Arc<crate::capture::MemberImage>>,
}

#[pymethods]
impl ArchiveEntry {
    /// The bytes of an Info.plist member (None for other members or one over the cap).
    #[getter]
    fn plist<'py>(&self, py: Python<'py>) -> Option<Bound<'py, pyo3::types::PyBytes>> {
        self.plist.as_deref().map(|b| pyo3::types::PyBytes::new(py, b))
    }

    /// What identity needs of a Mach-O member (`file_info_from_image`); None otherwise.
    #[getter]
    fn image(&self) -> Option<MemberImage> {
        self.image.clone().map(MemberImage)
    }

    fn __repr__(&self) -> String {
        format!(
            "ArchiveEntry(path={:?}, kind={:?}, size={})",
            self.path, self.kind, self.size
        )
    }
}

/// An archive read in place: its identity, its tree, or why it could not be read.
#[pyclass(frozen, get_all, module = "santacore._core")]
pub struct ArchiveScan {
    kind: String,
    sha256: String,
    size: u64,
    entries: Vec<Py<ArchiveEntry>>,
    error: Option<String>,
}

#[pymethods]
impl ArchiveScan {
    fn __repr__(&self) -> String {
        format!(
            "ArchiveScan(kind={:?}, size={}, entries={}, error={})",
            self.kind,
            self.size,
            self.entries.len(),
            py_opt(self.error.as_deref())
        )
    }
}

/// Read the archive at `path` in place (zip, tar[.gz|.bz2|.xz|.zst], xar .pkg), sniffing and
/// hashing every member as a file on disk is. Caps of 0 keep the engine's defaults.
#[pyfunction]
#[pyo3(signature = (path, /, *, max_members = 0, max_declared_bytes = 0, max_expansion_ratio = 0, expansion_floor = 0))]
pub fn scan_archive(
    py: Python<'_>,
    path: PathBuf,
    max_members: u64,
    max_declared_bytes: u64,
    max_expansion_ratio: u64,
    expansion_floor: u64,
) -> PyResult<ArchiveScan> {
    let mut caps = crate::archive::Caps::default();
    let pick = |v: u64, d: u64| if v == 0 { d } else { v };
    caps.max_members = pick(max_members, caps.max_members);
    caps.max_declared_bytes = pick(max_declared_bytes, caps.max_declared_bytes);
    caps.max_expansion_ratio = pick(max_expansion_ratio, caps.max_expansion_ratio);
    caps.expansion_floor = pick(expansion_floor, caps.expansion_floor);
    let scan = py
        .detach(|| crate::archive::scan_archive(&path, caps))
        .map_err(|source| CoreError::Io { path, source })?;
    let entries = scan
        .entries
        .into_iter()
        .map(|e| {
            let macho = e.macho.map(|m| Py::new(py, MachOInfo::from(m))).transpose()?;
            Py::new(
                py,
                ArchiveEntry {
                    path: e.path,
                    kind: e.kind.name(),
                    size: e.size,
                    link_target: e.link_target,
                    sha256: e.sha256,
                    macho,
                    hash_micros: e.hash_micros,
                    note: e.note,
                    plist: e.plist,
                    image: e.image,
                },
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(ArchiveScan {
        kind: scan.kind,
        sha256: scan.sha256,
        size: scan.size,
        entries,
        error: scan.error,
    })
}

/// The archive kind of a file starting with `head` (None if the engine does not read it).
#[pyfunction]
pub fn archive_kind(head: &[u8]) -> Option<&'static str> {
    crate::archive::detect(head)
}

/// Bytes at and above which `MemberSink.update` releases the GIL while it hashes.
const DETACH_AT: usize = 64 * 1024;

/// Streams one member (an archive entry) for its identity: `update` with its bytes in
/// order, then `finish` for a `MemberImage`.
#[pyclass(module = "santacore._core")]
pub struct MemberSink(Option<crate::capture::MemberSink>);

#[pymethods]
impl MemberSink {
    /// `page_sizes` and `hash_types` (CodeDirectory hash type codes) choose the code-page
    /// hashers; the default, every page size and type Apple's tools use, is exact.
    #[new]
    #[pyo3(signature = (*, capture_limit = crate::capture::MAX_CAPTURE_BYTES, page_sizes = None, hash_types = None))]
    fn new(capture_limit: u64, page_sizes: Option<Vec<u64>>, hash_types: Option<Vec<u32>>) -> PyResult<Self> {
        use crate::capture::{CAPTURE_HASH_TYPES, CAPTURE_PAGE_SIZES};
        let sizes = page_sizes.unwrap_or_else(|| CAPTURE_PAGE_SIZES.to_vec());
        if sizes.contains(&0) {
            return Err(PyValueError::new_err("page sizes must be positive"));
        }
        let kinds = match hash_types {
            None => CAPTURE_HASH_TYPES.to_vec(),
            Some(codes) => codes
                .into_iter()
                .map(crate::digest::HashType::from_code)
                .collect::<crate::error::Result<Vec<_>>>()?,
        };
        Ok(MemberSink(Some(crate::capture::MemberSink::with_page_hashes(
            capture_limit,
            &sizes,
            &kinds,
        ))))
    }

    /// Bytes streamed so far.
    #[getter]
    fn position(&self) -> PyResult<u64> {
        Ok(self.sink()?.position())
    }

    #[pyo3(signature = (data, /))]
    fn update(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let sink = self.sink_mut()?;
        if data.len() >= DETACH_AT {
            py.detach(|| sink.update(data));
        } else {
            sink.update(data);
        }
        Ok(())
    }

    fn finish(&mut self, py: Python<'_>) -> PyResult<MemberImage> {
        let sink = self
            .0
            .take()
            .ok_or_else(|| PyValueError::new_err("MemberSink.finish() was called already"))?;
        Ok(py.detach(|| sink.finish()).into())
    }
}

impl MemberSink {
    fn sink(&self) -> PyResult<&crate::capture::MemberSink> {
        self.0
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("this MemberSink is finished"))
    }

    fn sink_mut(&mut self) -> PyResult<&mut crate::capture::MemberSink> {
        self.0
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("this MemberSink is finished"))
    }
}

/// What a finished `MemberSink` kept: size, digests, Santa's header sniff, the byte ranges
/// identity reads and the code-page hashes of each signed slice.
#[pyclass(frozen, module = "santacore._core")]
pub struct MemberImage(Arc<crate::capture::MemberImage>);

/// For engine code (an archive reader) that streamed a member itself.
impl From<crate::capture::MemberImage> for MemberImage {
    fn from(image: crate::capture::MemberImage) -> Self {
        MemberImage(Arc::new(image))
    }
}

#[pymethods]
impl MemberImage {
    #[getter]
    fn size(&self) -> u64 {
        self.0.size
    }

    #[getter]
    fn is_macho(&self) -> bool {
        self.0.is_macho()
    }

    #[getter]
    fn sha256(&self) -> String {
        hex::encode(self.0.sha256)
    }

    /// None unless the member is Mach-O.
    #[getter]
    fn sha1(&self) -> Option<String> {
        self.0.sha1.map(hex::encode)
    }

    #[getter]
    fn macho(&self) -> MachOInfo {
        self.0.macho.clone().into()
    }

    /// Bytes held by ranges and page hashes.
    #[getter]
    fn captured_bytes(&self) -> u64 {
        self.0.captured_bytes()
    }

    /// Kept bytes as sorted, disjoint (offset, bytes) pairs.
    #[getter]
    fn ranges<'py>(&self, py: Python<'py>) -> Vec<(u64, Bound<'py, pyo3::types::PyBytes>)> {
        self.0
            .ranges
            .iter()
            .map(|(at, b)| (*at, pyo3::types::PyBytes::new(py, b)))
            .collect()
    }

    /// (offset, length, page_size, hash_type, page hashes) for each hashed code range.
    #[getter]
    #[allow(clippy::type_complexity)]
    fn page_hashes<'py>(&self, py: Python<'py>) -> Vec<(u64, u64, u64, u32, Vec<Bound<'py, pyo3::types::PyBytes>>)> {
        self.0
            .page_hashes
            .iter()
            .map(|p| {
                let pages = p.pages().map(|h| pyo3::types::PyBytes::new(py, h)).collect();
                (p.offset, p.length, p.page_size, p.hash_type as u32, pages)
            })
            .collect()
    }

    /// (start, end, reason) of each range that was wanted but not kept.
    #[getter]
    fn unavailable(&self) -> Vec<(u64, u64, String)> {
        self.0
            .unavailable
            .iter()
            .map(|u| (u.range.start, u.range.end, u.reason.clone()))
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "MemberImage(size={}, is_macho={}, captured_bytes={})",
            self.0.size,
            if self.0.is_macho() { "True" } else { "False" },
            self.0.captured_bytes()
        )
    }
}
