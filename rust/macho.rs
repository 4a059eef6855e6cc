//! Mach-O header sniffing exactly as Santa's `SNTFileInfo machHeaders` does it
//! (spec §6.4): thin 32/64-bit in both byte orders, universal ("fat") files with
//! Santa's bounds, and nothing more. Only header bytes are read.

/// `sizeof(struct mach_header)`: anything shorter is not Mach-O.
pub const MACH_HEADER_SIZE: usize = 28;
/// Santa identifies a file from at most its first page.
pub const HEAD_SIZE: usize = 4096;
/// northpolesec/santa's `kMaxFatArchCount`: a bigger `nfat_arch` means no slices.
pub const MAX_FAT_ARCH_COUNT: u32 = 64;
const FAT_HEADER_SIZE: usize = 8;
const FAT_ARCH_SIZE: usize = 20;

pub const MH_EXECUTE: u32 = 2;

const MH_MAGIC: u32 = 0xfeed_face;
const MH_MAGIC_64: u32 = 0xfeed_facf;
const MH_CIGAM: u32 = 0xcefa_edfe;
const MH_CIGAM_64: u32 = 0xcffa_edfe;
const FAT_MAGIC: u32 = 0xcafe_babe;
const FAT_CIGAM: u32 = 0xbeba_feca;

/// One recognised slice: the name and CPU pair come from the fat_arch record (or the
/// thin header), the file type from the slice's own header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub arch: String,
    pub cputype: i32,
    pub cpusubtype: i32,
    pub filetype: u32,
    pub offset: u64,
    pub size: u64,
    pub is_64: bool,
    pub big_endian: bool,
}

/// What Santa learns from a file's headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MachO {
    /// The file starts with a fat magic (whether or not any slice is valid).
    pub fat_container: bool,
    /// Valid slices keyed by architecture name, in fat-table order. A duplicate name
    /// replaces the earlier value but keeps its position, like Santa's dictionary.
    pub slices: Vec<Slice>,
}

impl MachO {
    pub fn is_macho(&self) -> bool {
        !self.slices.is_empty()
    }

    /// Santa's `isFat`: more than one recognised slice.
    pub fn is_fat(&self) -> bool {
        self.slices.len() > 1
    }

    /// Santa's `isExecutable`: the first slice's header says `MH_EXECUTE`. Santa takes the
    /// first value of an unordered dictionary; we take fat-table order (spec §6.4).
    pub fn is_executable(&self) -> bool {
        self.slices.first().is_some_and(|s| s.filetype == MH_EXECUTE)
    }

    pub fn architectures(&self) -> Vec<String> {
        self.slices.iter().map(|s| s.arch.clone()).collect()
    }

    fn insert(&mut self, slice: Slice) {
        match self.slices.iter_mut().find(|s| s.arch == slice.arch) {
            Some(existing) => *existing = slice,
            None => self.slices.push(slice),
        }
    }
}

struct ThinHeader {
    cputype: i32,
    cpusubtype: i32,
    filetype: u32,
    is_64: bool,
    big_endian: bool,
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u32_be(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Santa's `parseSingleMachHeader`: the magic is read in host (little-endian) order; the
/// byte-swapped magics mean a big-endian header whose fields are swapped.
fn parse_thin(b: &[u8]) -> Option<ThinHeader> {
    if b.len() < MACH_HEADER_SIZE {
        return None;
    }
    let magic = u32_le(b, 0);
    let (big_endian, is_64) = match magic {
        MH_MAGIC => (false, false),
        MH_MAGIC_64 => (false, true),
        MH_CIGAM => (true, false),
        MH_CIGAM_64 => (true, true),
        _ => return None,
    };
    let field = |at| {
        if big_endian {
            u32_be(b, at)
        } else {
            u32_le(b, at)
        }
    };
    Some(ThinHeader {
        cputype: field(4) as i32,
        cpusubtype: field(8) as i32,
        filetype: field(12),
        is_64,
        big_endian,
    })
}

/// A thin Mach-O header's shape, for readers that go on to the load commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinShape {
    pub is_64: bool,
    pub big_endian: bool,
    /// 28 or 32: where the load commands start.
    pub header_size: u64,
    pub ncmds: u32,
    pub sizeofcmds: u32,
}

/// The shape of the thin header at the start of `b` (Santa's magic rules), if it is one.
pub fn thin_shape(b: &[u8]) -> Option<ThinShape> {
    let h = parse_thin(b)?;
    let field = |at| if h.big_endian { u32_be(b, at) } else { u32_le(b, at) };
    Some(ThinShape {
        is_64: h.is_64,
        big_endian: h.big_endian,
        header_size: if h.is_64 { 32 } else { MACH_HEADER_SIZE as u64 },
        ncmds: field(16),
        sizeofcmds: field(20),
    })
}

/// The (offset, size) records of a fat header held in `head`, when `sniff` would read
/// them: a fat magic, at most `MAX_FAT_ARCH_COUNT` records, the table inside `head`.
pub fn fat_records(head: &[u8]) -> Option<Vec<(u64, u64)>> {
    if head.len() < MACH_HEADER_SIZE || !matches!(u32_le(head, 0), FAT_MAGIC | FAT_CIGAM) {
        return None;
    }
    let nfat = u32_be(head, 4);
    let table_end = FAT_HEADER_SIZE + FAT_ARCH_SIZE * nfat as usize;
    if nfat > MAX_FAT_ARCH_COUNT || table_end > head.len() {
        return None;
    }
    Some(
        (0..nfat as usize)
            .map(|i| {
                let rec = &head[FAT_HEADER_SIZE + i * FAT_ARCH_SIZE..];
                (u64::from(u32_be(rec, 8)), u64::from(u32_be(rec, 12)))
            })
            .collect(),
    )
}

/// Whether `head` starts with a magic that `sniff` could accept (thin or fat, either
/// byte order): a cheap first look before anything else is read or stat'ed.
pub fn has_macho_magic(head: &[u8]) -> bool {
    head.len() >= MACH_HEADER_SIZE
        && matches!(
            u32_le(head, 0),
            MH_MAGIC | MH_MAGIC_64 | MH_CIGAM | MH_CIGAM_64 | FAT_MAGIC | FAT_CIGAM
        )
}

/// Sniff a file given its first `min(size, 4096)` bytes, its size, and a way to read
/// `buf.len()` bytes at an offset (used only for slice headers beyond the first page).
/// `read_at` returns false when the bytes cannot be read; that slice is then invalid.
pub fn sniff(head: &[u8], file_size: u64, mut read_at: impl FnMut(u64, &mut [u8]) -> bool) -> MachO {
    let mut out = MachO::default();
    if file_size < MACH_HEADER_SIZE as u64 || head.len() < MACH_HEADER_SIZE {
        return out;
    }
    if let Some(h) = parse_thin(head) {
        out.insert(Slice {
            arch: arch_name(h.cputype, h.cpusubtype),
            cputype: h.cputype,
            cpusubtype: h.cpusubtype,
            filetype: h.filetype,
            offset: 0,
            size: file_size,
            is_64: h.is_64,
            big_endian: h.big_endian,
        });
        return out;
    }
    let magic = u32_le(head, 0);
    if magic != FAT_MAGIC && magic != FAT_CIGAM {
        return out;
    }
    out.fat_container = true;
    // nfat_arch is always big-endian on disk, whatever the magic's order.
    let nfat = u32_be(head, 4);
    if nfat > MAX_FAT_ARCH_COUNT {
        return out;
    }
    let table_end = FAT_HEADER_SIZE + FAT_ARCH_SIZE * nfat as usize;
    // At most 1,288 bytes: inside `head` whenever it is inside the file.
    if table_end as u64 > file_size || table_end > head.len() {
        return out;
    }
    let mut header = [0u8; MACH_HEADER_SIZE];
    for i in 0..nfat as usize {
        let rec = &head[FAT_HEADER_SIZE + i * FAT_ARCH_SIZE..];
        let cputype = u32_be(rec, 0) as i32;
        let cpusubtype = u32_be(rec, 4) as i32;
        let offset = u64::from(u32_be(rec, 8));
        let size = u64::from(u32_be(rec, 12));
        // The whole slice must lie within the file and hold at least a mach_header.
        if offset + size > file_size || size < MACH_HEADER_SIZE as u64 {
            continue;
        }
        let start = offset as usize;
        let bytes: &[u8] = if start + MACH_HEADER_SIZE <= head.len() {
            &head[start..start + MACH_HEADER_SIZE]
        } else if read_at(offset, &mut header) {
            &header
        } else {
            continue;
        };
        if let Some(h) = parse_thin(bytes) {
            out.insert(Slice {
                arch: arch_name(cputype, cpusubtype),
                cputype,
                cpusubtype,
                filetype: h.filetype,
                offset,
                size,
                is_64: h.is_64,
                big_endian: h.big_endian,
            });
        }
    }
    out
}

/// Sniff a complete file held in memory.
pub fn sniff_bytes(data: &[u8]) -> MachO {
    let head = &data[..data.len().min(HEAD_SIZE)];
    sniff(head, data.len() as u64, |offset, buf| {
        let start = offset as usize;
        match data.get(start..start + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    })
}

/// Sniff the file at `path` the way Santa does, reading only header bytes. Anything that
/// is not a regular, non-empty file is simply not Mach-O; only an unopenable path errors.
pub fn sniff_file(path: &std::path::Path) -> std::io::Result<MachO> {
    use std::io::Read;
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(MachO::default());
    }
    let mut head = [0u8; HEAD_SIZE];
    let want = (meta.len() as usize).min(HEAD_SIZE);
    let mut got = 0;
    while got < want {
        match file.read(&mut head[got..want]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sniff(&head[..got], meta.len(), |offset, buf| {
        file.read_exact_at(buf, offset).is_ok()
    }))
}

/// Architecture names as macOS's `macho_arch_name_for_cpu_type` gives them (capability
/// bits of the subtype ignored); pairs it does not know print as `"%i:%i"` of the raw
/// values. It knows `ppc` but not `ppc7400` or `ppc64` (see the corpus's py2app stubs).
pub fn arch_name(cputype: i32, cpusubtype: i32) -> String {
    const CPU_SUBTYPE_MASK: u32 = 0xff00_0000;
    let sub = (cpusubtype as u32) & !CPU_SUBTYPE_MASK;
    let name = match (cputype as u32, sub) {
        (7, 3) => "i386",
        (0x0100_0007, 3) => "x86_64",
        (0x0100_0007, 8) => "x86_64h",
        (0x0100_000c, 0) => "arm64",
        (0x0100_000c, 2) => "arm64e",
        (0x0200_000c, 1) => "arm64_32",
        (12, 9) => "armv7",
        (12, 11) => "armv7s",
        (12, 12) => "armv7k",
        (18, 0) => "ppc",
        _ => return format!("{cputype}:{cpusubtype}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn thin(magic: u32, cputype: u32, sub: u32, filetype: u32, big_endian: bool) -> Vec<u8> {
        let mut v = vec![0u8; 64];
        v[..4].copy_from_slice(&magic.to_le_bytes());
        for (at, val) in [(4, cputype), (8, sub), (12, filetype)] {
            let bytes = if big_endian {
                val.to_be_bytes()
            } else {
                val.to_le_bytes()
            };
            v[at..at + 4].copy_from_slice(&bytes);
        }
        v
    }

    fn fat(records: &[(u32, u32, u32, u32)], total: usize) -> Vec<u8> {
        let mut v = vec![0u8; total];
        v[..4].copy_from_slice(&FAT_MAGIC.to_be_bytes());
        v[4..8].copy_from_slice(&(records.len() as u32).to_be_bytes());
        for (i, (ct, st, off, size)) in records.iter().enumerate() {
            let at = 8 + i * 20;
            for (j, val) in [ct, st, off, size].iter().enumerate() {
                v[at + j * 4..at + j * 4 + 4].copy_from_slice(&val.to_be_bytes());
            }
        }
        v
    }

    #[test]
    fn thin_little_and_big_endian() {
        let m = sniff_bytes(&thin(MH_MAGIC_64, 0x0100_0007, 0x8000_0003, 2, false));
        assert_eq!(m.architectures(), vec!["x86_64"]);
        assert!(m.is_executable() && !m.is_fat() && !m.fat_container);
        let m = sniff_bytes(&thin(MH_CIGAM, 18, 0, 2, true));
        assert_eq!(m.architectures(), vec!["ppc"]);
        assert!(m.slices[0].big_endian && m.is_executable());
        let m = sniff_bytes(&thin(MH_MAGIC, 7, 3, 6, false));
        assert!(m.is_macho() && !m.is_executable());
    }

    #[test]
    fn too_short_is_not_macho() {
        let m = sniff_bytes(&thin(MH_MAGIC_64, 0x0100_000c, 0, 2, false)[..27]);
        assert!(!m.is_macho());
    }

    #[test]
    fn fat_slices_in_table_order_with_unknown_names() {
        let mut v = fat(&[(18, 10, 4096, 64), (0x0100_000c, 0, 8192, 64)], 8192 + 64);
        v[4096..4160].copy_from_slice(&thin(MH_CIGAM, 18, 10, 2, true));
        v[8192..8256].copy_from_slice(&thin(MH_MAGIC_64, 0x0100_000c, 0, 6, false));
        let m = sniff_bytes(&v);
        assert_eq!(m.architectures(), vec!["18:10", "arm64"]);
        assert!(m.is_fat() && m.fat_container && m.is_executable());
    }

    #[test]
    fn fat_slice_past_eof_or_too_many_arches() {
        let v = fat(&[(7, 3, 4096, 4096)], 4096 + 100);
        assert!(!sniff_bytes(&v).is_macho());
        let mut v = fat(&[], 8192);
        v[4..8].copy_from_slice(&65u32.to_be_bytes());
        let m = sniff_bytes(&v);
        assert!(!m.is_macho() && m.fat_container);
    }

    #[test]
    fn java_class_is_not_macho() {
        // 0xCAFEBABE, minor 0, major 51: reads as 51 fat_arch records of class-file bytes.
        let mut v = vec![0u8; 1464];
        v[..8].copy_from_slice(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 51]);
        for (i, b) in v.iter_mut().enumerate().skip(8) {
            *b = (i * 7 % 251) as u8;
        }
        assert!(!sniff_bytes(&v).is_macho());
    }

    #[test]
    fn duplicate_arch_keeps_position_takes_last_value() {
        let mut v = fat(
            &[(7, 3, 4096, 64), (0x0100_0007, 3, 8192, 64), (7, 3, 12288, 64)],
            12288 + 64,
        );
        v[4096..4160].copy_from_slice(&thin(MH_MAGIC, 7, 3, 2, false));
        v[8192..8256].copy_from_slice(&thin(MH_MAGIC_64, 0x0100_0007, 3, 2, false));
        v[12288..12352].copy_from_slice(&thin(MH_MAGIC, 7, 3, 6, false));
        let m = sniff_bytes(&v);
        assert_eq!(m.architectures(), vec!["i386", "x86_64"]);
        assert_eq!(m.slices[0].filetype, 6);
        assert!(!m.is_executable());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..6000)) {
            let m = sniff_bytes(&data);
            prop_assert!(m.slices.len() <= MAX_FAT_ARCH_COUNT as usize);
            // The cheap pre-check never turns away a file that sniffs as Mach-O.
            prop_assert!(has_macho_magic(&data) || !m.is_macho() && !m.fat_container);
        }

        #[test]
        fn arbitrary_fat_tables_never_panic(
            n in 0u32..70,
            recs in proptest::collection::vec(any::<(u32, u32, u32, u32)>(), 0..70),
            tail in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            let mut v = fat(&recs, 8 + recs.len() * 20);
            v[4..8].copy_from_slice(&n.to_be_bytes());
            v.extend_from_slice(&tail);
            let _ = sniff_bytes(&v);
        }
    }
}
