//! The engine's one error type. Only an unusable root or bad input to the super hash
//! is an error: problems with individual files are reported as skipped paths instead.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("invalid SHA-256 hex digest {0:?}: expected 64 hexadecimal characters")]
    InvalidDigest(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("could not start the hashing thread pool: {0}")]
    ThreadPool(String),
}

pub type Result<T> = std::result::Result<T, CoreError>;
