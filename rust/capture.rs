//! One archive member's identity inputs, captured in a single streaming pass: the member's
//! size, SHA-256 (and SHA-1 when it is Mach-O), Santa's header sniff, and the few byte
//! ranges `santacore.identity` reads to describe a Mach-O file — the fat header, each
//! slice's mach header and load commands, its `LC_CODE_SIGNATURE` blob and its
//! `__info_plist` sections — plus the code-page hashes the signature is checked against.
//!
//! Ranges become known as bytes pass (fat table → slice headers → load commands →
//! signature and section offsets), so the stream is cut at those points and what must be
//! kept is decided there. Code pages come before the signature that says how they are
//! hashed, so every page size and hash type codesign and ld use is hashed speculatively.
//! What is kept is bounded by a capture limit; a range over it is recorded as unavailable
//! (with the reason) rather than kept, so memory stays bounded whatever the member claims.

use std::ops::Range;

use rayon::prelude::*;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::digest::{HashType, PageHasher};
use crate::macho::{self, MachO, HEAD_SIZE, MACH_HEADER_SIZE};

/// Default bound on the bytes one member may keep (captured ranges and page hashes).
pub const MAX_CAPTURE_BYTES: u64 = 64 << 20;
/// Page sizes hashed while streaming: codesign's 4 KiB and the linker's 16 KiB (arm64).
pub const CAPTURE_PAGE_SIZES: [u64; 2] = [4096, 16384];
/// Hash types hashed while streaming (SHA-256 also answers SHA-256-truncated). Every
/// CodeDirectory of a slice is checked, and signatures carry up to all four types.
pub const CAPTURE_HASH_TYPES: [HashType; 3] = [HashType::Sha1, HashType::Sha256, HashType::Sha384];
/// Chunks at least this large are hashed in parallel (see `MemberSink::hash`).
const PARALLEL_AT: usize = 256 * 1024;
/// Santa reads an embedded Info.plist only from a section smaller than this.
const MAX_INFO_PLIST_SECTION: u64 = 2_000_000;
/// `fileinfo` reads 4 bytes here from the end for a disk image's `koly` trailer.
const TAIL_PROBE: u64 = 512;
/// Distinct `LC_CODE_SIGNATURE` offsets per slice whose code pages are hashed.
const MAX_SIGNATURES_PER_SLICE: usize = 4;
/// What the Python side reads first at a slice (`_load_command_region`).
const SLICE_PROBE: u64 = 32;

const LC_SEGMENT: u32 = 0x1;
const LC_SEGMENT_64: u32 = 0x19;
const LC_CODE_SIGNATURE: u32 = 0x1d;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A slice's first bytes: once complete, its load-command size is known.
    SliceHeader,
    /// A slice's header and load commands: once complete, its signature and sections are.
    LoadCommands,
    /// Bytes kept as they are.
    Data,
}

#[derive(Debug)]
struct Want {
    start: u64,
    end: u64,
    buf: Vec<u8>,
    role: Role,
    /// Why the bytes could not be kept, if they could not.
    lost: Option<String>,
}

impl Want {
    fn filled_end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }

    fn filling(&self) -> bool {
        self.lost.is_none() && self.filled_end() < self.end
    }
}

/// Page hashes of one slice's code `[offset, end)`, one hasher per page size and type.
struct CodeHasher {
    offset: u64,
    end: u64,
    fed_to: u64,
    hashers: Vec<(u64, HashType, PageHasher)>,
}

/// Code-page hashes of `[offset, offset + length)` of the member.
#[derive(Debug, Clone)]
pub struct PageHashes {
    pub offset: u64,
    pub length: u64,
    pub page_size: u64,
    pub hash_type: HashType,
    /// The page hashes back to back, `hash_type.stored_len()` bytes each.
    pub hashes: Vec<u8>,
}

impl PageHashes {
    pub fn pages(&self) -> impl Iterator<Item = &[u8]> {
        self.hashes.chunks(self.hash_type.stored_len())
    }
}

/// A byte range that was wanted but not kept, and why.
#[derive(Debug, Clone)]
pub struct Unavailable {
    pub range: Range<u64>,
    pub reason: String,
}

/// What a finished sink knows about its member.
#[derive(Debug, Clone)]
pub struct MemberImage {
    pub size: u64,
    pub sha256: [u8; 32],
    /// Only for a Mach-O member.
    pub sha1: Option<[u8; 20]>,
    pub macho: MachO,
    /// Kept bytes as (offset, bytes), sorted, not overlapping; none for a non-Mach-O member.
    pub ranges: Vec<(u64, Vec<u8>)>,
    pub page_hashes: Vec<PageHashes>,
    pub unavailable: Vec<Unavailable>,
}

impl MemberImage {
    pub fn is_macho(&self) -> bool {
        self.macho.is_macho()
    }

    /// Bytes held by ranges and page hashes.
    pub fn captured_bytes(&self) -> u64 {
        let ranges: usize = self.ranges.iter().map(|(_, b)| b.len()).sum();
        let pages: usize = self.page_hashes.iter().map(|p| p.hashes.len()).sum();
        (ranges + pages) as u64
    }
}

/// Streams one member: `update` with its bytes in order (any chunk sizes), then `finish`.
pub struct MemberSink {
    /// (page size, hash type) of each code-page hasher.
    configs: Vec<(u64, HashType)>,
    limit: u64,
    pos: u64,
    sha256: Sha256,
    sha1: Option<Sha1>,
    head: Vec<u8>,
    decided: bool,
    tail: Vec<u8>,
    wants: Vec<Want>,
    code: Vec<CodeHasher>,
    used: u64,
    unavailable: Vec<Unavailable>,
}

impl Default for MemberSink {
    fn default() -> Self {
        Self::new(MAX_CAPTURE_BYTES)
    }
}

impl MemberSink {
    /// A sink keeping at most `capture_limit` bytes of ranges and page hashes.
    pub fn new(capture_limit: u64) -> Self {
        Self::with_page_hashes(capture_limit, &CAPTURE_PAGE_SIZES, &CAPTURE_HASH_TYPES)
    }

    /// A sink hashing code pages only at `page_sizes` with `hash_types`: faster, but a
    /// CodeDirectory using another (e.g. SHA-384, or 16 KiB pages on x86_64) then cannot be
    /// checked, and `file_info_from_image` reports that as a problem of the slice.
    pub fn with_page_hashes(capture_limit: u64, page_sizes: &[u64], hash_types: &[HashType]) -> Self {
        MemberSink {
            configs: page_sizes
                .iter()
                .filter(|&&p| p > 0)
                .flat_map(|&p| hash_types.iter().map(move |&k| (p, k)))
                // Full SHA-256 hashes answer SHA-256-truncated too.
                .map(|(p, k)| {
                    (
                        p,
                        if k == HashType::Sha256Truncated {
                            HashType::Sha256
                        } else {
                            k
                        },
                    )
                })
                .fold(Vec::new(), |mut all, c| {
                    if !all.contains(&c) {
                        all.push(c);
                    }
                    all
                }),
            limit: capture_limit,
            pos: 0,
            sha256: Sha256::new(),
            // SHA-1 is wanted only for Mach-O, which is known after the first page:
            // hashing it from the start costs one page for the others.
            sha1: Some(Sha1::new()),
            head: Vec::with_capacity(HEAD_SIZE),
            decided: false,
            tail: Vec::with_capacity(2 * TAIL_PROBE as usize),
            wants: Vec::new(),
            code: Vec::new(),
            used: 0,
            unavailable: Vec::new(),
        }
    }

    /// Bytes streamed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.next_boundary().saturating_sub(self.pos);
            let take = usize::try_from(room).unwrap_or(usize::MAX).min(data.len()).max(1);
            self.consume(&data[..take]);
            data = &data[take..];
            self.settle(false);
        }
    }

    pub fn finish(mut self) -> MemberImage {
        self.settle(true);
        let size = self.pos;
        let macho = macho::sniff(&self.head, size, |offset, buf| {
            match self.retained(offset, offset + buf.len() as u64) {
                Some(bytes) => {
                    buf.copy_from_slice(&bytes);
                    true
                }
                None => false,
            }
        });
        let head = std::mem::take(&mut self.head);
        let is_macho = macho.is_macho();
        let tail_at = size.saturating_sub(TAIL_PROBE);
        let tail_len = 4.min(size - tail_at) as usize;
        let tail_probe = if size >= TAIL_PROBE {
            let start = self.tail.len() - TAIL_PROBE as usize;
            self.tail[start..start + tail_len].to_vec()
        } else {
            head[..tail_len].to_vec()
        };
        let mut pieces: Vec<(u64, Vec<u8>)> = Vec::new();
        let (page_hashes, unavailable) = if is_macho {
            pieces.push((tail_at, tail_probe));
            pieces.push((0, head));
            for w in std::mem::take(&mut self.wants) {
                if let Some(reason) = w.lost {
                    self.unavailable.push(Unavailable {
                        range: w.start..w.end,
                        reason,
                    });
                } else if !w.buf.is_empty() {
                    pieces.push((w.start, w.buf));
                }
            }
            let mut page_hashes = Vec::new();
            for c in std::mem::take(&mut self.code) {
                for (page_size, hash_type, hasher) in c.hashers {
                    page_hashes.push(PageHashes {
                        offset: c.offset,
                        length: c.fed_to - c.offset,
                        page_size,
                        hash_type,
                        hashes: hasher.finish_flat(),
                    });
                }
            }
            (page_hashes, std::mem::take(&mut self.unavailable))
        } else {
            (Vec::new(), Vec::new())
        };
        MemberImage {
            size,
            sha256: self.sha256.finalize().into(),
            sha1: if is_macho {
                self.sha1.map(|h| h.finalize().into())
            } else {
                None
            },
            macho,
            ranges: merge(pieces),
            page_hashes,
            unavailable,
        }
    }

    /// The next stream position at which something must be decided.
    fn next_boundary(&self) -> u64 {
        let mut next = u64::MAX;
        if !self.decided {
            next = HEAD_SIZE as u64;
        }
        for w in &self.wants {
            if w.role != Role::Data && w.filling() && w.end > self.pos {
                next = next.min(w.end);
            }
        }
        next
    }

    fn consume(&mut self, chunk: &[u8]) {
        let start = self.pos;
        let end = start + chunk.len() as u64;
        self.hash(chunk, start, end);
        if self.head.len() < HEAD_SIZE {
            let take = (HEAD_SIZE - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        // Keep at least the last TAIL_PROBE bytes, trimming in halves to copy rarely.
        let cap = 2 * TAIL_PROBE as usize;
        if chunk.len() >= TAIL_PROBE as usize {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - TAIL_PROBE as usize..]);
        } else {
            if self.tail.len() + chunk.len() > cap {
                let drop = self.tail.len() + chunk.len() - TAIL_PROBE as usize;
                self.tail.drain(..drop.min(self.tail.len()));
            }
            self.tail.extend_from_slice(chunk);
        }
        for i in 0..self.wants.len() {
            let w = &self.wants[i];
            if !w.filling() {
                continue;
            }
            let from = w.filled_end().max(start);
            let to = w.end.min(end);
            if from >= to {
                continue;
            }
            if w.filled_end() < start {
                self.lose(i, "were needed only after the stream had passed them");
                continue;
            }
            let piece = &chunk[(from - start) as usize..(to - start) as usize];
            if self.used + piece.len() as u64 > self.limit {
                let why = format!("exceed the capture limit of {} bytes per member", self.limit);
                self.lose(i, &why);
                continue;
            }
            self.used += piece.len() as u64;
            self.wants[i].buf.extend_from_slice(piece);
        }
        if self.used > self.limit {
            // Page hashes are the only growth not checked above: drop the biggest.
            if let Some(i) = (0..self.code.len()).max_by_key(|&i| self.code[i].end - self.code[i].offset) {
                let c = self.code.remove(i);
                self.used -= c
                    .hashers
                    .iter()
                    .map(|(p, k, _)| (c.fed_to - c.offset).div_ceil(*p) * k.stored_len() as u64)
                    .sum::<u64>()
                    .min(self.used);
                self.unavailable.push(Unavailable {
                    range: c.offset..c.end,
                    reason: format!(
                        "code page hashes exceed the capture limit of {} bytes per member",
                        self.limit
                    ),
                });
            }
        }
        self.pos = end;
    }

    /// The member's digests and the code-page hashers over `chunk` (stream bytes `[start, end)`):
    /// side by side on the rayon pool for a large chunk, as a signed slice is hashed up to eight
    /// times (SHA-256, SHA-1, and three types at two page sizes).
    fn hash(&mut self, chunk: &[u8], start: u64, end: u64) {
        let (sha256, sha1) = (&mut self.sha256, &mut self.sha1);
        let mut digests = move || {
            sha256.update(chunk);
            if let Some(h) = sha1 {
                h.update(chunk);
            }
        };
        let mut jobs: Vec<(&mut PageHasher, &[u8])> = Vec::new();
        for c in &mut self.code {
            let from = c.fed_to.max(start);
            let to = c.end.min(end);
            if from >= to || c.fed_to < start {
                continue;
            }
            let piece = &chunk[(from - start) as usize..(to - start) as usize];
            jobs.extend(c.hashers.iter_mut().map(|(_, _, h)| (h, piece)));
            c.fed_to = to;
        }
        let added = if chunk.len() >= PARALLEL_AT && !jobs.is_empty() {
            rayon::join(digests, || {
                jobs.into_par_iter().map(|(h, p)| h.update(p)).sum::<usize>()
            })
            .1
        } else {
            digests();
            jobs.into_iter().map(|(h, p)| h.update(p)).sum::<usize>()
        };
        self.used += added as u64;
    }

    /// Acts on what the stream has reached: the first page, completed slice headers and
    /// load commands. At the end of the stream (`finishing`), on whatever arrived.
    fn settle(&mut self, finishing: bool) {
        if !self.decided && (finishing || self.pos >= HEAD_SIZE as u64) {
            self.decided = true;
            self.decide();
        }
        loop {
            let ready = self
                .wants
                .iter()
                .position(|w| w.role != Role::Data && w.lost.is_none() && (w.filled_end() >= w.end || finishing));
            let Some(i) = ready else { break };
            match self.wants[i].role {
                Role::SliceHeader => self.on_slice_header(i),
                Role::LoadCommands => self.on_load_commands(i),
                Role::Data => unreachable!(),
            }
        }
    }

    /// The first page: a thin header, a fat table, or nothing to capture.
    fn decide(&mut self) {
        if !macho::has_macho_magic(&self.head) {
            self.sha1 = None;
            return;
        }
        if macho::thin_shape(&self.head).is_some() {
            self.want(0, SLICE_PROBE, Role::SliceHeader);
        } else if let Some(records) = macho::fat_records(&self.head) {
            // Whether a record's slice fits the member is known only at its end: capture
            // every candidate and let `sniff` choose at `finish`.
            for (offset, size) in records {
                if size >= MACH_HEADER_SIZE as u64 && !self.wants.iter().any(|w| w.start == offset) {
                    self.want(offset, offset + SLICE_PROBE, Role::SliceHeader);
                }
            }
        } else {
            self.sha1 = None;
        }
    }

    fn on_slice_header(&mut self, i: usize) {
        self.wants[i].role = Role::Data;
        let Some(shape) = macho::thin_shape(&self.wants[i].buf) else {
            return;
        };
        // The Python reader refuses these before reading the load commands.
        if u64::from(shape.ncmds) * 8 > u64::from(shape.sizeofcmds) {
            return;
        }
        let (start, filled) = (self.wants[i].start, self.wants[i].filled_end());
        let end = start + (shape.header_size + u64::from(shape.sizeofcmds)).max(SLICE_PROBE);
        // Load commands the stream has passed already (a header inside the first page).
        let behind = end.min(self.pos);
        if filled < behind {
            match self.retained(filled, behind) {
                Some(bytes) if self.used + bytes.len() as u64 <= self.limit => {
                    self.used += bytes.len() as u64;
                    self.wants[i].buf.extend_from_slice(&bytes);
                }
                _ => {
                    self.lose(
                        i,
                        "were needed only after the stream had passed them or exceed the capture limit",
                    );
                    return;
                }
            }
        }
        self.wants[i].end = end;
        self.wants[i].role = Role::LoadCommands;
    }

    fn lose(&mut self, i: usize, why: &str) {
        let w = &mut self.wants[i];
        self.used -= (w.buf.len() as u64).min(self.used);
        w.buf = Vec::new();
        w.lost = Some(format!("bytes {}..{} {why}", w.start, w.end));
    }

    fn on_load_commands(&mut self, i: usize) {
        self.wants[i].role = Role::Data;
        let slice = self.wants[i].start;
        let Some(shape) = macho::thin_shape(&self.wants[i].buf) else {
            return;
        };
        let found = load_command_ranges(&self.wants[i].buf, shape);
        let mut signatures: Vec<u64> = Vec::new();
        for (offset, size) in found.signatures {
            self.want(slice + offset, slice + offset + size, Role::Data);
            if !signatures.contains(&offset) && signatures.len() < MAX_SIGNATURES_PER_SLICE {
                signatures.push(offset);
            }
        }
        for (offset, size) in found.info_plists {
            self.want(slice + offset, slice + offset + size, Role::Data);
        }
        for offset in signatures {
            self.hash_code(slice, slice + offset);
        }
    }

    /// Keeps `[start, end)`: from what was kept already for the part behind the stream.
    fn want(&mut self, start: u64, end: u64, role: Role) {
        if end <= start
            || self
                .wants
                .iter()
                .any(|w| w.start == start && w.end >= end && w.lost.is_none())
        {
            return;
        }
        let mut w = Want {
            start,
            end,
            buf: Vec::new(),
            role,
            lost: None,
        };
        let behind = end.min(self.pos);
        if start < behind {
            match self.retained(start, behind) {
                Some(bytes) if self.used + bytes.len() as u64 <= self.limit => {
                    self.used += bytes.len() as u64;
                    w.buf = bytes;
                }
                Some(_) => {
                    w.lost = Some(format!(
                        "bytes {start}..{end} exceed the capture limit of {} bytes per member",
                        self.limit
                    ))
                }
                None => {
                    w.lost = Some(format!(
                        "bytes {start}..{end} were needed only after the stream had passed them"
                    ))
                }
            }
        }
        self.wants.push(w);
    }

    /// Hashes the code pages `[slice, end)`: what streamed already comes from kept bytes.
    fn hash_code(&mut self, slice: u64, end: u64) {
        let mut c = CodeHasher {
            offset: slice,
            end,
            fed_to: slice,
            hashers: self
                .configs
                .iter()
                .map(|&(p, k)| (p, k, PageHasher::new(p, k)))
                .collect(),
        };
        let behind = end.min(self.pos);
        if slice < behind {
            let Some(bytes) = self.retained(slice, behind) else {
                self.unavailable.push(Unavailable {
                    range: slice..end,
                    reason: "code pages were needed only after the stream had passed them".into(),
                });
                return;
            };
            for (_, _, h) in &mut c.hashers {
                self.used += h.update(&bytes) as u64;
            }
            c.fed_to = behind;
        }
        self.code.push(c);
    }

    /// `[start, end)` from the first page and the kept ranges, if they hold all of it.
    fn retained(&self, start: u64, end: u64) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity((end - start) as usize);
        let mut at = start;
        while at < end {
            let source = std::iter::once((0u64, self.head.as_slice()))
                .chain(self.wants.iter().map(|w| (w.start, w.buf.as_slice())))
                .find(|(s, b)| *s <= at && at < s + b.len() as u64)?;
            let (s, b) = source;
            let to = end.min(s + b.len() as u64);
            out.extend_from_slice(&b[(at - s) as usize..(to - s) as usize]);
            at = to;
        }
        Some(out)
    }
}

#[derive(Default)]
struct LoadCommandRanges {
    signatures: Vec<(u64, u64)>,
    info_plists: Vec<(u64, u64)>,
}

/// Every `LC_CODE_SIGNATURE` and every `__info_plist*` section (any segment: a superset of
/// what LIEF picks), relative to the slice, from a slice's header and load commands.
fn load_command_ranges(region: &[u8], shape: macho::ThinShape) -> LoadCommandRanges {
    let rd32 = |at: usize| -> Option<u64> {
        let b: [u8; 4] = region.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(if shape.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }))
    };
    let rd64 = |at: usize| -> Option<u64> {
        let b: [u8; 8] = region.get(at..at + 8)?.try_into().ok()?;
        Some(if shape.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    };
    let mut out = LoadCommandRanges::default();
    let mut at = shape.header_size as usize;
    for _ in 0..shape.ncmds {
        let (Some(cmd), Some(cmdsize)) = (rd32(at), rd32(at + 4)) else {
            break;
        };
        let cmdsize = cmdsize as usize;
        if cmdsize < 8 || at + cmdsize > region.len() {
            break;
        }
        let command = &region[at..at + cmdsize];
        match cmd as u32 {
            LC_CODE_SIGNATURE => {
                if let (Some(off), Some(size)) = (rd32(at + 8), rd32(at + 12)) {
                    if cmdsize >= 16 {
                        out.signatures.push((off, size));
                    }
                }
            }
            LC_SEGMENT | LC_SEGMENT_64 => {
                let is64 = cmd as u32 == LC_SEGMENT_64;
                let (header, section, nsects_at) = if is64 { (72, 80, 64) } else { (56, 68, 48) };
                let nsects = rd32(at + nsects_at).unwrap_or(0) as usize;
                for s in 0..nsects {
                    let sec = header + s * section;
                    if sec + section > command.len() {
                        break;
                    }
                    if !command[sec..sec + 16].starts_with(b"__info_plist") {
                        continue;
                    }
                    let base = at + sec;
                    let (size, offset) = if is64 {
                        (rd64(base + 40), rd32(base + 48))
                    } else {
                        (rd32(base + 36), rd32(base + 40))
                    };
                    if let (Some(size), Some(offset)) = (size, offset) {
                        if size < MAX_INFO_PLIST_SECTION {
                            out.info_plists.push((offset, size));
                        }
                    }
                }
            }
            _ => {}
        }
        at += cmdsize;
    }
    out
}

/// Sorts pieces and merges overlapping or touching ones (their bytes agree: one stream).
fn merge(mut pieces: Vec<(u64, Vec<u8>)>) -> Vec<(u64, Vec<u8>)> {
    pieces.retain(|(_, b)| !b.is_empty());
    pieces.sort_by_key(|(s, b)| (*s, std::cmp::Reverse(b.len())));
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    for (start, bytes) in pieces {
        if let Some((ls, lb)) = out.last_mut() {
            let last_end = *ls + lb.len() as u64;
            if start <= last_end {
                let end = start + bytes.len() as u64;
                if end > last_end {
                    lb.extend_from_slice(&bytes[(last_end - start) as usize..]);
                }
                continue;
            }
        }
        out.push((start, bytes));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(data: &[u8], chunk: usize) -> MemberImage {
        let mut sink = MemberSink::default();
        for c in data.chunks(chunk.max(1)) {
            sink.update(c);
        }
        sink.finish()
    }

    /// A thin x86_64 executable: header, one LC_CODE_SIGNATURE, signature at `sig_at`.
    fn thin_signed(total: usize, sig_at: u32, sig_len: u32) -> Vec<u8> {
        let mut v = vec![0u8; total];
        v[..4].copy_from_slice(&0xfeed_facfu32.to_le_bytes());
        v[4..8].copy_from_slice(&0x0100_0007u32.to_le_bytes());
        v[8..12].copy_from_slice(&3u32.to_le_bytes());
        v[12..16].copy_from_slice(&2u32.to_le_bytes());
        v[16..20].copy_from_slice(&1u32.to_le_bytes());
        v[20..24].copy_from_slice(&16u32.to_le_bytes());
        for (i, x) in [LC_CODE_SIGNATURE, 16, sig_at, sig_len].iter().enumerate() {
            v[32 + 4 * i..36 + 4 * i].copy_from_slice(&x.to_le_bytes());
        }
        for (i, b) in v.iter_mut().enumerate().skip(48) {
            *b = (i % 251) as u8;
        }
        v
    }

    #[test]
    fn any_chunking_gives_the_same_image() {
        let data = thin_signed(50_000, 40_000, 1000);
        let whole = stream(&data, data.len());
        assert!(whole.is_macho());
        assert_eq!(whole.sha256.as_slice(), Sha256::digest(&data).as_slice());
        assert_eq!(whole.sha1.unwrap().as_slice(), Sha1::digest(&data).as_slice());
        assert!(whole
            .ranges
            .iter()
            .any(|(s, b)| *s <= 40_000 && s + b.len() as u64 >= 41_000));
        let p = whole
            .page_hashes
            .iter()
            .find(|p| p.page_size == 4096 && p.hash_type == HashType::Sha256)
            .unwrap();
        assert_eq!(p.length, 40_000);
        assert_eq!(p.pages().nth(1).unwrap(), Sha256::digest(&data[4096..8192]).as_slice());
        for chunk in [1, 7, 4095, 4096, 4097, 65_536] {
            let img = stream(&data, chunk);
            assert_eq!(img.ranges, whole.ranges, "chunk {chunk}");
            assert_eq!(img.page_hashes.len(), whole.page_hashes.len());
            for (a, b) in img.page_hashes.iter().zip(&whole.page_hashes) {
                assert_eq!(a.hashes, b.hashes);
            }
        }
    }

    #[test]
    fn non_macho_keeps_only_probes() {
        let data = vec![7u8; 10_000];
        let img = stream(&data, 333);
        assert!(!img.is_macho() && img.sha1.is_none());
        assert_eq!(img.captured_bytes(), 0);
        assert!(img.page_hashes.is_empty());
    }

    #[test]
    fn captures_are_bounded() {
        let data = thin_signed(300_000, 1000, 250_000);
        let mut sink = MemberSink::new(100_000);
        for c in data.chunks(10_000) {
            sink.update(c);
        }
        let img = sink.finish();
        assert!(img.captured_bytes() <= 100_000 + HEAD_SIZE as u64 + 8);
        assert!(!img.unavailable.is_empty());
    }

    #[test]
    fn signature_beyond_the_end_is_simply_not_kept() {
        let data = thin_signed(10_000, 4_000_000_000, 4_000_000);
        let img = stream(&data, 1000);
        assert!(img.is_macho());
        assert!(img.captured_bytes() < 20_000 + 2 * 10_000);
    }
}
