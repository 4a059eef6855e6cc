//! Where a slice's load commands say its code signature and embedded Info.plist are.

use super::MAX_INFO_PLIST_SECTION;
use crate::macho::ThinShape;

const LC_SEGMENT: u32 = 0x1;
const LC_SEGMENT_64: u32 = 0x19;
const LC_CODE_SIGNATURE: u32 = 0x1d;

#[derive(Default)]
pub(super) struct LoadCommandRanges {
    pub signatures: Vec<(u64, u64)>,
    pub info_plists: Vec<(u64, u64)>,
}

/// Candidates kept of each kind: a hostile slice may repeat commands and sections by the
/// thousand, and each kept range costs a copy of its bytes.
pub(super) const MAX_CANDIDATES: usize = 4;

/// The first `MAX_CANDIDATES` distinct `LC_CODE_SIGNATURE`s, and the first `__info_plist*`
/// section under 2 MB of each of the first `MAX_CANDIDATES` `__TEXT*` segments, relative to
/// the slice, from its header and load commands: a superset of what `identity.macho` picks
/// through LIEF (the first signature; the first `__TEXT*` segment's first such section).
pub(super) fn load_command_ranges(region: &[u8], shape: ThinShape) -> LoadCommandRanges {
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
                    if cmdsize >= 16 && out.signatures.len() < MAX_CANDIDATES && !out.signatures.contains(&(off, size))
                    {
                        out.signatures.push((off, size));
                    }
                }
            }
            LC_SEGMENT | LC_SEGMENT_64
                if command.len() >= 24
                    && command[8..24].starts_with(b"__TEXT")
                    && out.info_plists.len() < MAX_CANDIDATES =>
            {
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
                            break;
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
