//! One read pass over a file feeding SHA-256 (and BLAKE3 when asked). `sha2` picks the
//! SHA-NI backend at run time where the CPU has it.

use std::fs::File;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// Santa reads in chunks of `min(size, 256 KiB)`; a fixed buffer of that size keeps
/// memory flat however large the file.
pub const CHUNK_SIZE: usize = 256 * 1024;

pub struct Digests {
    pub sha256: [u8; 32],
    pub blake3: Option<[u8; 32]>,
}

/// Why a file's bytes could not be hashed; callers report it as a skip reason.
#[derive(Debug)]
pub enum HashFailure {
    Io(io::Error),
    /// Fewer bytes than `lstat` promised: the file shrank while it was read.
    Truncated {
        expected: u64,
        read: u64,
    },
}

/// Feeds `prefix` (bytes already read from the start of the file, e.g. the header page)
/// and then the rest of `file` up to `size` bytes in total.
pub fn hash_file(
    file: &mut File,
    prefix: &[u8],
    size: u64,
    want_blake3: bool,
    buf: &mut [u8],
    mut on_bytes: impl FnMut(u64),
) -> Result<Digests, HashFailure> {
    let mut sha = Sha256::new();
    let mut b3 = want_blake3.then(blake3::Hasher::new);
    let mut update = |chunk: &[u8]| {
        sha.update(chunk);
        if let Some(h) = b3.as_mut() {
            h.update(chunk);
        }
    };
    update(prefix);
    let mut done = prefix.len() as u64;
    on_bytes(done);
    while done < size {
        let want = buf.len().min((size - done) as usize);
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(HashFailure::Truncated {
                    expected: size,
                    read: done,
                })
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HashFailure::Io(e)),
        };
        update(&buf[..n]);
        done += n as u64;
        on_bytes(n as u64);
    }
    Ok(Digests {
        sha256: sha.finalize().into(),
        blake3: b3.map(|h| *h.finalize().as_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn prefix_plus_rest_equals_whole_file() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&data).unwrap();
        let mut f = File::open(tmp.path()).unwrap();
        let mut head = vec![0u8; 4096];
        f.read_exact(&mut head).unwrap();
        let mut buf = vec![0u8; CHUNK_SIZE];
        let d = hash_file(&mut f, &head, data.len() as u64, true, &mut buf, |_| {}).unwrap();
        assert_eq!(d.sha256.as_slice(), Sha256::digest(&data).as_slice());
        assert_eq!(d.blake3.unwrap(), *blake3::hash(&data).as_bytes());
    }

    #[test]
    fn short_file_is_reported_truncated() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&[1u8; 100]).unwrap();
        let mut f = File::open(tmp.path()).unwrap();
        let mut buf = vec![0u8; 64];
        match hash_file(&mut f, &[], 200, false, &mut buf, |_| {}) {
            Err(HashFailure::Truncated {
                expected: 200,
                read: 100,
            }) => {}
            other => panic!("unexpected {:?}", other.err()),
        }
    }
}
