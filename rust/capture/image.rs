//! What a finished `MemberSink` hands over.

use std::ops::Range;

use crate::digest::HashType;
use crate::macho::MachO;

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

/// Sorts pieces and merges overlapping or touching ones (their bytes agree: one stream).
pub(super) fn merge(mut pieces: Vec<(u64, Vec<u8>)>) -> Vec<(u64, Vec<u8>)> {
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
