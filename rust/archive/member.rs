//! One archive member streamed through the engine's Mach-O sniff and hashing, as a file on
//! disk is: Santa reads at most the first page to identify it, and only a Mach-O goes on.
//! A Mach-O member goes through `capture::MemberSink` (SHA-256, SHA-1, `macho::sniff`, and
//! the bounded byte ranges and code-page hashes `santacore.identity` needs to describe it),
//! so the member is read once, whatever is asked of it later.

use std::io::{self, Read};
use std::sync::Arc;

use crate::capture::{MemberImage, MemberSink};
use crate::hash::CHUNK_SIZE;
use crate::macho::{self, HEAD_SIZE, MACH_HEADER_SIZE};

#[derive(Debug)]
pub enum MemberError {
    Io(io::Error),
    /// The stream held a different number of bytes than declared.
    Length {
        got: u64,
    },
}

impl From<io::Error> for MemberError {
    fn from(e: io::Error) -> Self {
        MemberError::Io(e)
    }
}

/// Reads the member's `size` bytes from `data` (a member that is not Mach-O is read only as
/// far as its first page: the caller's reader skips the rest). Returns the captured image of a
/// Mach-O member (at most `capture_limit` bytes kept), None for anything else.
pub fn digest_member(
    data: &mut dyn Read,
    size: u64,
    capture_limit: u64,
) -> Result<Option<Arc<MemberImage>>, MemberError> {
    let mut head = vec![0u8; (size.min(HEAD_SIZE as u64)) as usize];
    let got = super::read_up_to(data, &mut head)?;
    if got < head.len() {
        return Err(MemberError::Length { got: got as u64 });
    }
    if size < MACH_HEADER_SIZE as u64 || !macho::has_macho_magic(&head) {
        return Ok(None);
    }
    let mut sink = MemberSink::new(capture_limit);
    sink.update(&head);
    let mut buf = vec![0u8; CHUNK_SIZE];
    // One byte past the declared size tells a member longer than it says.
    let mut rest = data.take(size - head.len() as u64 + 1);
    loop {
        match rest.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => sink.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if sink.position() != size {
        return Err(MemberError::Length { got: sink.position() });
    }
    Ok(Some(Arc::new(sink.finish())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thin(filetype: u32, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        v[..4].copy_from_slice(&0xfeed_facfu32.to_le_bytes());
        v[4..8].copy_from_slice(&0x0100_000cu32.to_le_bytes());
        v[12..16].copy_from_slice(&filetype.to_le_bytes());
        v
    }

    /// A fat file whose second slice starts far past the first page.
    fn fat() -> Vec<u8> {
        let a = thin(2, 5000);
        let b = thin(2, 7000);
        let mut v = vec![0u8; 0x10000 + b.len()];
        v[..4].copy_from_slice(&0xcafe_babeu32.to_be_bytes());
        v[4..8].copy_from_slice(&2u32.to_be_bytes());
        let rec = |v: &mut Vec<u8>, i: usize, cpu: u32, off: u32, len: u32| {
            let r = 8 + i * 20;
            v[r..r + 4].copy_from_slice(&cpu.to_be_bytes());
            v[r + 4..r + 8].copy_from_slice(&3u32.to_be_bytes());
            v[r + 8..r + 12].copy_from_slice(&off.to_be_bytes());
            v[r + 12..r + 16].copy_from_slice(&len.to_be_bytes());
        };
        rec(&mut v, 0, 0x0100_0007, 0x1000, a.len() as u32);
        rec(&mut v, 1, 0x0100_000c, 0x10000, b.len() as u32);
        v[0x1000..0x1000 + a.len()].copy_from_slice(&a);
        v[0x10000..].copy_from_slice(&b);
        v
    }

    /// Yields a few bytes per read, so captures straddle chunk boundaries.
    struct Dribble<'a>(&'a [u8], usize);
    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streamed_equals_on_disk_sniff_and_hash() {
        use sha2::{Digest, Sha256};
        for data in [thin(2, 4200), thin(6, 100), fat()] {
            for step in [7usize, 4096, 1 << 20] {
                let m = digest_member(&mut Dribble(&data, step), data.len() as u64, 1 << 20)
                    .unwrap()
                    .unwrap();
                assert_eq!(m.macho, macho::sniff_bytes(&data));
                assert_eq!(m.sha256.as_slice(), Sha256::digest(&data).as_slice());
            }
        }
        assert_eq!(
            digest_member(&mut Dribble(&fat(), 13), fat().len() as u64, 1 << 20)
                .unwrap()
                .unwrap()
                .macho
                .slices
                .len(),
            2
        );
    }

    #[test]
    fn not_macho_and_wrong_lengths() {
        assert!(
            digest_member(&mut &b"hello world, not a binary at all"[..], 32, 1 << 20)
                .unwrap()
                .is_none()
        );
        let data = thin(2, 5000);
        assert!(matches!(
            digest_member(&mut &data[..], 6000, 1 << 20),
            Err(MemberError::Length { got: 5000 })
        ));
        assert!(matches!(
            digest_member(&mut &data[..], 4500, 1 << 20),
            Err(MemberError::Length { got: 4501 })
        ));
    }
}
