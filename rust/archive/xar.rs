//! xar, the container of macOS flat packages (.pkg): a 28-byte header, a zlib-compressed XML
//! table of contents, then the heap holding every file's data at the offset the TOC gives.
//! A component's `Payload` and `Scripts` (gzip, pbzx, bzip2 or xz compressed cpio) are read
//! as folders of their own, so an app a package installs appears at
//! `<component>.pkg/Payload/Applications/X.app`. Small reader of our own: the xar crates on
//! crates.io bring signing, HTTP and cryptography stacks for what is 150 lines here.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};

use super::{cpio, pbzx::Pbzx, EntryKind, Failure, Outcome, Sink};

const HEADER_MIN: u64 = 28;

struct Member {
    path: String,
    kind: EntryKind,
    link: Option<String>,
    /// (heap offset, stored length, extracted size, encoding)
    data: Option<(u64, u64, u64, String)>,
}

fn malformed(what: impl Into<String>) -> Failure {
    Failure::Malformed(format!("xar: {}", what.into()))
}

pub fn read(mut file: File, sink: &mut Sink) -> Outcome {
    let file_size = file.metadata()?.len();
    let mut header = [0u8; 28];
    file.read_exact(&mut header)
        .map_err(|_| malformed("shorter than its header"))?;
    let header_size = u64::from(u16::from_be_bytes([header[4], header[5]]));
    let toc_compressed = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
    let toc_size = u64::from_be_bytes(header[16..24].try_into().unwrap_or_default());
    if header_size < HEADER_MIN || header_size.saturating_add(toc_compressed) > file_size {
        return Err(malformed(format!(
            "header declares a {toc_compressed}-byte table of contents in a {file_size}-byte file"
        )));
    }
    let max_toc = sink.caps().max_toc_bytes;
    if toc_size > max_toc {
        return Err(Failure::Hostile(format!(
            "xar: a table of contents of {toc_size} bytes (more than {max_toc})"
        )));
    }
    file.seek(SeekFrom::Start(header_size))?;
    let mut toc = Vec::new();
    flate2::read::ZlibDecoder::new((&mut file).take(toc_compressed))
        .take(max_toc + 1)
        .read_to_end(&mut toc)
        .map_err(|e| malformed(format!("table of contents cannot be inflated: {e}")))?;
    if toc.len() as u64 > max_toc {
        return Err(Failure::Hostile(format!(
            "xar: table of contents inflates past {max_toc} bytes"
        )));
    }
    let text = std::str::from_utf8(&toc).map_err(|_| malformed("table of contents is not UTF-8"))?;
    let doc = roxmltree::Document::parse(text).map_err(|e| malformed(format!("table of contents is not XML: {e}")))?;
    let toc_node = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("toc"))
        .ok_or_else(|| malformed("no <toc> in the table of contents"))?;
    let mut members = Vec::new();
    collect(toc_node, "", &mut members, sink.caps().max_members)?;
    let heap = header_size + toc_compressed;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    for m in members {
        match (m.kind, m.data) {
            (EntryKind::File, Some((offset, length, size, encoding))) => {
                let start = heap
                    .checked_add(offset)
                    .filter(|s| s.saturating_add(length) <= file_size);
                let Some(start) = start else {
                    return Err(malformed(format!("{}: data lies outside the file", m.path)));
                };
                reader.seek(SeekFrom::Start(start))?;
                let stored = (&mut reader).take(length);
                let decoded: Box<dyn Read + '_> = match encoding.as_str() {
                    "" | "application/octet-stream" => Box::new(stored),
                    "application/x-gzip" => Box::new(flate2::read::ZlibDecoder::new(stored)),
                    "application/x-bzip2" => Box::new(bzip2::read::BzDecoder::new(stored)),
                    "application/x-xz" | "application/x-lzma" => Box::new(liblzma::read::XzDecoder::new(stored)),
                    other => return Err(malformed(format!("{}: unknown encoding {other}", m.path))),
                };
                let mut decoded = sink.expansion.wrap(decoded);
                let base = m.path.rsplit('/').next().unwrap_or_default();
                if base == "Payload" || base == "Scripts" {
                    payload(&mut decoded, &m.path, size, sink)?;
                } else {
                    sink.add_file(m.path.as_bytes(), size, &mut decoded)?;
                }
            }
            (EntryKind::File, None) => sink.add_file(m.path.as_bytes(), 0, &mut io::empty())?,
            (kind, _) => sink.add(m.path.as_bytes(), kind, 0, m.link.as_deref().map(str::as_bytes))?,
        }
    }
    Ok(())
}

/// A component's Payload or Scripts: a compressed cpio read as the folder `path`, or, when
/// it is something else, a plain file.
fn payload(stream: &mut dyn Read, path: &str, size: u64, sink: &mut Sink) -> Outcome {
    let mut magic = [0u8; 6];
    let got = super::read_up_to(stream, &mut magic)?;
    let head = &magic[..got];
    let mut whole = Cursor::new(head.to_vec()).chain(stream);
    let inner: Box<dyn Read + '_> = if head.starts_with(b"\x1f\x8b") {
        Box::new(flate2::read::MultiGzDecoder::new(whole))
    } else if head.starts_with(b"pbzx") {
        let mut rest = [0u8; 4];
        whole.read_exact(&mut rest)?;
        Box::new(Pbzx::new(whole)?)
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(whole))
    } else if head.starts_with(b"\xfd7zXZ\x00") {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(whole))
    } else if head.starts_with(b"0707") {
        Box::new(whole)
    } else {
        return sink.add_file(path.as_bytes(), size, &mut whole);
    };
    sink.add(path.as_bytes(), EntryKind::Directory, 0, None)?;
    let mut counted = sink.expansion.wrap(inner);
    cpio::read(&mut counted, path, sink)
}

fn text<'a>(node: roxmltree::Node<'a, '_>, tag: &str) -> Option<&'a str> {
    node.children().find(|n| n.has_tag_name(tag)).and_then(|n| n.text())
}

fn number(node: roxmltree::Node<'_, '_>, tag: &str, path: &str) -> Result<u64, Failure> {
    let value = text(node, tag).unwrap_or("0").trim();
    value
        .parse()
        .map_err(|_| malformed(format!("{path}: <{tag}> is not a number: {value:?}")))
}

/// Every <file> below `node`, depth first, parents before children.
fn collect(node: roxmltree::Node<'_, '_>, parent: &str, out: &mut Vec<Member>, max: u64) -> Result<(), Failure> {
    for f in node.children().filter(|n| n.has_tag_name("file")) {
        if out.len() as u64 >= max {
            return Err(Failure::Hostile(format!("more than {max} members")));
        }
        let name = text(f, "name").unwrap_or_default();
        let path = if parent.is_empty() {
            name.to_owned()
        } else {
            format!("{parent}/{name}")
        };
        let kind = match text(f, "type").unwrap_or("file") {
            "file" | "hardlink" => EntryKind::File,
            "directory" => EntryKind::Directory,
            "symlink" => EntryKind::Symlink,
            _ => EntryKind::Other,
        };
        let data = match f.children().find(|n| n.has_tag_name("data")) {
            Some(d) => {
                let encoding = d
                    .children()
                    .find(|n| n.has_tag_name("encoding"))
                    .and_then(|e| e.attribute("style"))
                    .unwrap_or_default()
                    .to_owned();
                Some((
                    number(d, "offset", &path)?,
                    number(d, "length", &path)?,
                    number(d, "size", &path)?,
                    encoding,
                ))
            }
            None => None,
        };
        let link = text(f, "link").map(str::to_owned);
        let is_dir = kind == EntryKind::Directory;
        out.push(Member {
            path: path.clone(),
            kind,
            link,
            data,
        });
        if is_dir {
            collect(f, &path, out, max)?;
        }
    }
    Ok(())
}
