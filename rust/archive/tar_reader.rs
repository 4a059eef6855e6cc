//! Tar, plain or compressed with gzip, bzip2, xz or zstd: one forward pass through the
//! decompressor (`tar` reads GNU and pax long names and links), every byte counted against
//! the archive's expansion budget.

use std::fs::File;
use std::io::{BufReader, Read};

use super::{EntryKind, Failure, Outcome, Sink};

pub fn read(file: File, kind: &str, sink: &mut Sink) -> Outcome {
    let raw = BufReader::with_capacity(256 * 1024, file);
    let stream: Box<dyn Read> = match kind {
        "tar" => Box::new(raw),
        "tar.gz" => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        "tar.bz2" => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
        "tar.xz" => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(raw)),
        "tar.zst" => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
        other => return Err(Failure::Malformed(format!("unknown archive kind {other}"))),
    };
    let counted = sink.expansion.wrap(stream);
    let mut archive = tar::Archive::new(counted);
    let entries = archive
        .entries()
        .map_err(|e| Failure::Malformed(format!("not a readable tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| tar_failure(e, kind))?;
        let header = entry.header();
        let kind_byte = header.entry_type();
        let size = header
            .entry_size()
            .map_err(|e| Failure::Malformed(format!("bad member size: {e}")))?;
        let name = entry.path_bytes().into_owned();
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        use tar::EntryType as T;
        match kind_byte {
            T::Regular | T::Continuous => sink.add_file(&name, size, &mut entry)?,
            T::Directory => sink.add(&name, EntryKind::Directory, 0, None)?,
            T::Symlink => sink.add(&name, EntryKind::Symlink, 0, link.as_deref())?,
            T::Link => sink.add_hard_link(&name, link.as_deref().unwrap_or_default())?,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => {}
            _ => sink.add(&name, EntryKind::Other, size, None)?,
        }
    }
    Ok(())
}

fn tar_failure(e: std::io::Error, kind: &str) -> Failure {
    let f = Failure::from(e);
    match f {
        Failure::Malformed(m) if !m.starts_with("truncated") => {
            Failure::Malformed(format!("not a readable {kind} archive: {m}"))
        }
        other => other,
    }
}
