//! Archives read in place, streaming, never extracted: zip, tar (plain, gzip, bzip2, xz,
//! zstd) and macOS flat packages (xar; their gzip / pbzx / bzip2 cpio payloads). Every
//! member goes through the same Mach-O sniff (`macho::sniff`) and SHA-256 (`hash::Hashers`)
//! as a file on disk (`member::digest_member`); the result is the archive's own tree
//! (directories, files, symlinks as stored) for the caller to find bundles in.
//!
//! Hostile input is bounded by `Caps`: a cap crossed, a name that leaves the archive, a
//! truncated member or a malformed header ends the scan of that archive with a reason.

mod cpio;
pub mod member;
mod pbzx;
mod tar_reader;
mod xar;
mod zip_reader;

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use crate::capture::MemberImage;

use crate::hash::hash_file;
use crate::macho::MachO;

/// Limits that keep one hostile archive from taking the machine.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Members (files, directories, links) in one archive, nested payloads included.
    pub max_members: u64,
    /// Sum of the sizes the archive's file members declare (absurd sizes fail early).
    pub max_declared_bytes: u64,
    /// Bytes decompressed may exceed `expansion_floor` only up to this many times the
    /// archive's own size (a zip bomb's ratio is in the thousands; real archives, < 20).
    pub max_expansion_ratio: u64,
    pub expansion_floor: u64,
    /// Bytes kept of one Info.plist (larger ones are not read, as on disk).
    pub max_plist_bytes: u64,
    /// Bytes kept of one `_CodeSignature/CodeResources` (larger ones are not read).
    pub max_code_resources_bytes: u64,
    /// Bytes kept of one Mach-O member for its identity (ranges, code-page hashes).
    pub max_member_capture: u64,
    /// Bytes kept for the whole archive: Info.plist files and Mach-O captures together.
    pub max_captured_bytes: u64,
    /// Bytes of a member name.
    pub max_name_bytes: usize,
    /// A xar table of contents, uncompressed.
    pub max_toc_bytes: u64,
}

pub const GIB: u64 = 1 << 30;
pub const MIB: u64 = 1 << 20;

impl Default for Caps {
    fn default() -> Self {
        Caps {
            max_members: 1_000_000,
            max_declared_bytes: 64 * GIB,
            max_expansion_ratio: 200,
            expansion_floor: 256 * MIB,
            max_plist_bytes: 16 * MIB,
            max_code_resources_bytes: 64 * MIB,
            max_member_capture: 16 * MIB,
            max_captured_bytes: 512 * MIB,
            max_name_bytes: 4096,
            max_toc_bytes: 64 * MIB,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Directory,
    Symlink,
    /// Devices, FIFOs, hard links to nothing: listed, never read.
    Other,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink => "symlink",
            EntryKind::Other => "other",
        }
    }
}

/// One member of the archive's tree.
#[derive(Debug, Clone)]
pub struct Entry {
    /// '/'-separated, relative, no `.` or `..` components, no trailing '/'.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    pub link_target: Option<String>,
    /// Set for Mach-O files only (any file type, MH_EXECUTE or not).
    pub sha256: Option<String>,
    pub macho: Option<MachO>,
    /// What identity needs of a Mach-O member (None when over the archive's capture cap).
    pub image: Option<Arc<MemberImage>>,
    /// Why something about this member was left out (its identity, its Info.plist bytes).
    pub note: Option<String>,
    /// Time spent reading and hashing this member, for bundle timings.
    pub hash_micros: u64,
    /// The bytes of an Info.plist or CodeResources member (up to their caps).
    pub plist: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct ArchiveScan {
    /// zip, tar, tar.gz, tar.bz2, tar.xz, tar.zst, pkg.
    pub kind: String,
    pub sha256: String,
    pub size: u64,
    pub entries: Vec<Entry>,
    /// Why the archive could not be read; `entries` is then empty.
    pub error: Option<String>,
}

/// The archive formats this module reads, by their leading bytes.
pub fn detect(head: &[u8]) -> Option<&'static str> {
    const MAGICS: [(&[u8], &str); 7] = [
        (b"PK\x03\x04", "zip"),
        (b"PK\x05\x06", "zip"),
        (b"xar!", "pkg"),
        (b"\x1f\x8b", "tar.gz"),
        (b"BZh", "tar.bz2"),
        (b"\xfd7zXZ\x00", "tar.xz"),
        (b"\x28\xb5\x2f\xfd", "tar.zst"),
    ];
    for (magic, kind) in MAGICS {
        if head.starts_with(magic) {
            return Some(kind);
        }
    }
    (head.get(257..262) == Some(b"ustar")).then_some("tar")
}

/// Scans the archive at `path`. Only an unreadable file is an `Err`; an archive that is
/// malformed, hostile or over a cap is an `Ok` with `error` set.
pub fn scan_archive(path: &Path, caps: Caps) -> io::Result<ArchiveScan> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let sha256 = match hash_file(&file, size, false, |_| {}) {
        Ok(d) => hex::encode(d.sha256),
        Err(crate::hash::HashFailure::Io(e)) => return Err(e),
        Err(crate::hash::HashFailure::Truncated { .. }) => {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "changed size while being read",
            ))
        }
    };
    let mut head = [0u8; 512];
    let got = read_up_to(&mut &file, &mut head)?;
    (&file).seek(io::SeekFrom::Start(0))?;
    let kind = detect(&head[..got]).unwrap_or("unknown");
    let mut out = ArchiveScan {
        kind: kind.to_owned(),
        sha256,
        size,
        entries: Vec::new(),
        error: None,
    };
    let mut sink = Sink::new(caps, size);
    let outcome = match kind {
        "zip" => zip_reader::read(file, &mut sink),
        "pkg" => xar::read(file, &mut sink),
        "unknown" => Err(Failure::Malformed("not an archive this engine reads".into())),
        compressed => tar_reader::read(file, compressed, &mut sink),
    };
    match outcome {
        Ok(()) => out.entries = sink.finish(),
        Err(f) => out.error = Some(f.to_string()),
    }
    Ok(out)
}

fn read_up_to<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Why reading an archive stopped.
#[derive(Debug)]
pub enum Failure {
    /// Not well-formed: a bad header, a truncated member, garbage where a table should be.
    Malformed(String),
    /// A cap of `Caps` crossed, or a name that would leave the archive.
    Hostile(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Malformed(m) | Failure::Hostile(m) => f.write_str(m),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        // A cap crossed inside a decompressor comes back as an io::Error carrying our text.
        if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<CapCrossed>()) {
            return Failure::Hostile(inner.0.clone());
        }
        match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                Failure::Malformed("truncated: the archive ends inside a member or header".into())
            }
            _ => Failure::Malformed(format!("unreadable: {e}")),
        }
    }
}

#[derive(Debug)]
struct CapCrossed(String);

impl std::fmt::Display for CapCrossed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CapCrossed {}

pub type Outcome = std::result::Result<(), Failure>;

/// Counts bytes coming out of a decompressor and stops a bomb: past the floor, output may
/// not exceed `ratio` times the archive's size. Shared by every decompressor of one archive.
#[derive(Clone)]
pub struct Expansion {
    used: Rc<Cell<u64>>,
    limit: u64,
    floor: u64,
    ratio: u64,
}

impl Expansion {
    fn new(caps: &Caps, archive_size: u64) -> Self {
        Expansion {
            used: Rc::new(Cell::new(0)),
            limit: archive_size.max(1).saturating_mul(caps.max_expansion_ratio),
            floor: caps.expansion_floor,
            ratio: caps.max_expansion_ratio,
        }
    }

    /// `inner` with its output counted against this archive's budget.
    pub fn wrap<R: Read>(&self, inner: R) -> Counted<R> {
        Counted {
            inner,
            expansion: self.clone(),
        }
    }
}

pub struct Counted<R> {
    inner: R,
    expansion: Expansion,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let e = &self.expansion;
        let used = e.used.get() + n as u64;
        e.used.set(used);
        if used > e.floor && used > e.limit {
            return Err(io::Error::other(CapCrossed(format!(
                "expands more than {}x its size ({} bytes out of {}): a decompression bomb?",
                e.ratio,
                used,
                e.limit / e.ratio.max(1)
            ))));
        }
        Ok(n)
    }
}

/// Collects the tree while the format readers stream members into it, enforcing the caps.
pub struct Sink {
    caps: Caps,
    entries: Vec<Entry>,
    declared: u64,
    captured: u64,
    pub expansion: Expansion,
}

impl Sink {
    fn new(caps: Caps, archive_size: u64) -> Self {
        Sink {
            expansion: Expansion::new(&caps, archive_size),
            caps,
            entries: Vec::new(),
            declared: 0,
            captured: 0,
        }
    }

    fn finish(self) -> Vec<Entry> {
        self.entries
    }

    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// A member that is not a regular file (or whose bytes are not read here).
    pub fn add(&mut self, raw_name: &[u8], kind: EntryKind, size: u64, link: Option<&[u8]>) -> Outcome {
        let path = self.member_path(raw_name)?;
        let Some(path) = path else { return Ok(()) };
        self.push(Entry {
            path,
            kind,
            size,
            link_target: link.map(|l| String::from_utf8_lossy(l).into_owned()),
            sha256: None,
            macho: None,
            image: None,
            note: None,
            hash_micros: 0,
            plist: None,
        })
    }

    /// A regular file: its bytes come from `data`, exactly `size` of them.
    pub fn add_file(&mut self, raw_name: &[u8], size: u64, data: &mut dyn Read) -> Outcome {
        let Some(path) = self.member_path(raw_name)? else {
            return Ok(());
        };
        self.declared = self.declared.saturating_add(size);
        if self.declared > self.caps.max_declared_bytes {
            return Err(Failure::Hostile(format!(
                "members declare more than {} bytes in all (at {path}, {size} bytes)",
                self.caps.max_declared_bytes
            )));
        }
        let mut entry = Entry {
            path,
            kind: EntryKind::File,
            size,
            link_target: None,
            sha256: None,
            macho: None,
            image: None,
            note: None,
            hash_micros: 0,
            plist: None,
        };
        // Kept whole, as identity reads them on disk: Info.plist files (bundle metadata, the
        // main executable's special slot -1) and CodeResources (slot -3).
        let keep_limit = if entry.path.rsplit('/').next() == Some("Info.plist") {
            self.caps.max_plist_bytes
        } else if entry.path.ends_with("/_CodeSignature/CodeResources") {
            self.caps.max_code_resources_bytes
        } else {
            0
        };
        if keep_limit > 0 && size <= keep_limit {
            if self.captured + size > self.caps.max_captured_bytes {
                return Err(Failure::Hostile(format!(
                    "Info.plist and CodeResources files hold more than {} bytes in all",
                    self.caps.max_captured_bytes
                )));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            data.take(size + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 != size {
                return Err(short(&entry.path, size, bytes.len() as u64));
            }
            self.captured += size;
            entry.plist = Some(bytes);
        } else {
            let started = std::time::Instant::now();
            let image = member::digest_member(data, size, self.caps.max_member_capture).map_err(|e| match e {
                member::MemberError::Io(e) => Failure::from(e),
                member::MemberError::Length { got } => short(&entry.path, size, got),
            })?;
            if let Some(image) = image {
                entry.sha256 = Some(hex::encode(image.sha256));
                entry.macho = Some(image.macho.clone());
                entry.hash_micros = started.elapsed().as_micros() as u64;
                let kept = image.captured_bytes();
                if self.captured + kept > self.caps.max_captured_bytes {
                    entry.note = Some(format!(
                        "identity not kept: the archive's members already hold {} bytes of captures (cap {})",
                        self.captured, self.caps.max_captured_bytes
                    ));
                } else {
                    self.captured += kept;
                    entry.image = Some(image);
                }
            }
        }
        self.push(entry)
    }

    /// A hard link: the same bytes as an earlier member.
    pub fn add_hard_link(&mut self, raw_name: &[u8], target: &[u8]) -> Outcome {
        let Some(path) = self.member_path(raw_name)? else {
            return Ok(());
        };
        let target = String::from_utf8_lossy(target);
        let target = target.trim_start_matches("./").trim_end_matches('/');
        let original = self
            .entries
            .iter()
            .rev()
            .find(|e| e.path == target && e.kind == EntryKind::File);
        let entry = match original {
            Some(o) => Entry { path, ..o.clone() },
            None => Entry {
                path,
                kind: EntryKind::Other,
                size: 0,
                link_target: Some(target.to_owned()),
                sha256: None,
                macho: None,
                image: None,
                note: None,
                hash_micros: 0,
                plist: None,
            },
        };
        self.push(entry)
    }

    fn push(&mut self, entry: Entry) -> Outcome {
        if self.entries.len() as u64 >= self.caps.max_members {
            return Err(Failure::Hostile(format!("more than {} members", self.caps.max_members)));
        }
        self.entries.push(entry);
        Ok(())
    }

    /// The member's path in the tree, or None for the archive's own root ("." or "./").
    /// A name that is absolute or climbs out with `..` is refused: extracted, it would
    /// write outside the destination.
    fn member_path(&self, raw: &[u8]) -> std::result::Result<Option<String>, Failure> {
        if raw.len() > self.caps.max_name_bytes {
            return Err(Failure::Hostile(format!(
                "a member name is longer than {} bytes",
                self.caps.max_name_bytes
            )));
        }
        let name = String::from_utf8_lossy(raw);
        if name.starts_with('/') {
            return Err(Failure::Hostile(format!("absolute member name: {name}")));
        }
        if name.contains('\0') {
            return Err(Failure::Hostile(format!("member name with a NUL byte: {name:?}")));
        }
        let mut parts: Vec<&str> = Vec::new();
        for part in name.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(Failure::Hostile(format!("member name leaves the archive: {name}"))),
                p => parts.push(p),
            }
        }
        Ok((!parts.is_empty()).then(|| parts.join("/")))
    }
}

fn short(path: &str, declared: u64, got: u64) -> Failure {
    if got > declared {
        Failure::Malformed(format!("{path}: longer than the {declared} bytes it declares"))
    } else {
        Failure::Malformed(format!("{path}: truncated: {got} of the {declared} bytes it declares"))
    }
}

/// Prefixes nested member names (a pkg's payload below its component's folder).
pub fn nested_name(prefix: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 1 + raw.len());
    out.extend_from_slice(prefix.as_bytes());
    out.push(b'/');
    out.extend_from_slice(raw);
    out
}
