//! santacore's engine: Santa-exact Mach-O sniffing, parallel bundle walking and
//! streaming SHA-256 / BLAKE3, with no Python inside. `python.rs` is the only file that
//! touches PyO3, so `cargo test --no-default-features` needs no libpython.

pub mod archive;
pub mod bundle;
pub mod capture;
pub mod digest;
pub mod error;
pub mod hash;
pub mod macho;
pub mod walk;

#[cfg(feature = "python")]
mod python;

#[cfg(feature = "python")]
#[pyo3::pymodule(gil_used = false)]
mod _core {
    #[pymodule_export]
    use crate::python::{
        arch_name, archive_kind, bundle_hash_from_hashes, code_page_hashes, digest, file_digests, hash_tree,
        scan_archive, sniff_macho, sniff_macho_bytes, ArchiveEntry, ArchiveScan, BinaryFile, FileDigests, MachOInfo,
        MachOSlice, MemberImage, MemberSink, Progress, SkippedPath, TreeHash, TreeStats,
    };

    #[pymodule_init]
    fn init(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
        use pyo3::types::PyModuleMethods;
        m.add("__version__", env!("CARGO_PKG_VERSION"))
    }
}
