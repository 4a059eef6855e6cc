//! Digests for a file's identity (spec §7.1: SHA-256 and SHA-1 of every byte, one pass)
//! and for code-signature checks (the hash types a CodeDirectory names, per page).

use std::fs::File;
use std::io;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384};

use crate::error::{CoreError, Result};
use crate::hash::{visit_range, HashFailure};

/// `cs_blobs.h` hash types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashType {
    Sha1 = 1,
    Sha256 = 2,
    Sha256Truncated = 3,
    Sha384 = 4,
}

impl HashType {
    pub fn from_code(code: u32) -> Result<Self> {
        match code {
            1 => Ok(HashType::Sha1),
            2 => Ok(HashType::Sha256),
            3 => Ok(HashType::Sha256Truncated),
            4 => Ok(HashType::Sha384),
            other => Err(CoreError::InvalidArgument(format!(
                "unknown code-signature hash type {other}"
            ))),
        }
    }

    pub(crate) fn hasher(self) -> Hasher {
        match self {
            HashType::Sha1 => Hasher::Sha1(Sha1::new()),
            HashType::Sha256 | HashType::Sha256Truncated => Hasher::Sha256(Sha256::new()),
            HashType::Sha384 => Hasher::Sha384(Sha384::new()),
        }
    }

    /// Digest length as a CodeDirectory stores it (SHA-256 truncated keeps 20 bytes).
    pub fn stored_len(self) -> usize {
        match self {
            HashType::Sha1 | HashType::Sha256Truncated => 20,
            HashType::Sha256 => 32,
            HashType::Sha384 => 48,
        }
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finish(self.stored_len())
    }
}

pub(crate) enum Hasher {
    Sha1(Sha1),
    Sha256(Sha256),
    Sha384(Sha384),
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self, len: usize) -> Vec<u8> {
        let mut out = match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
        };
        out.truncate(len);
        out
    }
}

pub struct FileDigests {
    pub size: u64,
    pub sha256: String,
    pub sha1: String,
}

fn failure(path: &Path, f: HashFailure) -> CoreError {
    let source = match f {
        HashFailure::Io(e) => e,
        HashFailure::Truncated { .. } => io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being read"),
    };
    CoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// SHA-256 and SHA-1 of every byte of the file, read once.
pub fn file_digests(path: &Path) -> Result<FileDigests> {
    let io_err = |source| CoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    let (mut sha256, mut sha1) = (Sha256::new(), Sha1::new());
    let visit = |chunk: &[u8]| {
        sha256.update(chunk);
        sha1.update(chunk);
    };
    visit_range(&file, 0, size, visit, |_| {}).map_err(|f| failure(path, f))?;
    Ok(FileDigests {
        size,
        sha256: hex::encode(sha256.finalize()),
        sha1: hex::encode(sha1.finalize()),
    })
}

/// Hashes of consecutive `page`-byte chunks of a byte stream (the last one may be short),
/// as a CodeDirectory's code slots record them: fed in any chunk sizes.
pub struct PageHasher {
    page: u64,
    hash_type: HashType,
    current: Hasher,
    filled: u64,
    /// Every finished page's hash, back to back (`stored_len` bytes each): one allocation,
    /// not one per page.
    hashes: Vec<u8>,
}

impl PageHasher {
    pub fn new(page: u64, hash_type: HashType) -> Self {
        PageHasher {
            page: page.max(1),
            hash_type,
            current: hash_type.hasher(),
            filled: 0,
            hashes: Vec::new(),
        }
    }

    /// Feeds the next bytes; returns how many bytes of page hashes they added.
    pub fn update(&mut self, mut chunk: &[u8]) -> usize {
        let before = self.hashes.len();
        while !chunk.is_empty() {
            let take = ((self.page - self.filled) as usize).min(chunk.len());
            self.current.update(&chunk[..take]);
            self.filled += take as u64;
            chunk = &chunk[take..];
            if self.filled == self.page {
                let done = std::mem::replace(&mut self.current, self.hash_type.hasher());
                self.hashes.extend(done.finish(self.hash_type.stored_len()));
                self.filled = 0;
            }
        }
        self.hashes.len() - before
    }

    /// Every page's hash back to back, the short last page included.
    pub fn finish_flat(mut self) -> Vec<u8> {
        if self.filled > 0 {
            self.hashes.extend(self.current.finish(self.hash_type.stored_len()));
        }
        self.hashes.shrink_to_fit();
        self.hashes
    }

    /// Every page's hash, the short last page included.
    pub fn finish(self) -> Vec<Vec<u8>> {
        let len = self.hash_type.stored_len();
        self.finish_flat().chunks(len).map(<[u8]>::to_vec).collect()
    }
}

/// The hash of each `page_size` chunk of `[offset, offset + length)` (the last one may be
/// short); `page_size == 0` means one hash of the whole range, as a CodeDirectory with
/// pageSize 0 records it.
pub fn code_page_hashes(
    path: &Path,
    offset: u64,
    length: u64,
    page_size: u64,
    hash_type: HashType,
) -> Result<Vec<Vec<u8>>> {
    let io_err = |source| CoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(CoreError::InvalidArgument(format!(
            "code range {offset}+{length} runs past the end of the {size}-byte file"
        )));
    }
    let mut pages = PageHasher::new(if page_size == 0 { length.max(1) } else { page_size }, hash_type);
    visit_range(
        &file,
        offset,
        length,
        |chunk| {
            pages.update(chunk);
        },
        |_| {},
    )
    .map_err(|f| failure(path, f))?;
    Ok(pages.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn pages_and_whole_file_digests() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&data).unwrap();
        let d = file_digests(tmp.path()).unwrap();
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(d.sha1, hex::encode(Sha1::digest(&data)));
        let pages = code_page_hashes(tmp.path(), 100, 9000, 4096, HashType::Sha256Truncated).unwrap();
        let expected: Vec<Vec<u8>> = data[100..9100]
            .chunks(4096)
            .map(|c| Sha256::digest(c)[..20].to_vec())
            .collect();
        assert_eq!(pages, expected);
        let whole = code_page_hashes(tmp.path(), 0, 10_000, 0, HashType::Sha384).unwrap();
        assert_eq!(whole, vec![Sha384::digest(&data).to_vec()]);
        assert!(code_page_hashes(tmp.path(), 9000, 2000, 4096, HashType::Sha1).is_err());
        assert!(HashType::from_code(5).is_err());
    }
}
