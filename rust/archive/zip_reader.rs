//! Zip (also .whl, .ipa, .jar): the central directory is read in place and each member
//! decompressed on its own, so a member that is not Mach-O costs one page of inflation.

use std::fs::File;
use std::io::{BufReader, Read};

use super::{EntryKind, Failure, Outcome, Sink};

const S_IFMT: u32 = 0o170000;
const S_IFLNK: u32 = 0o120000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
/// A symlink's target is its content; a longer one is not a path.
const MAX_LINK_BYTES: u64 = 4096;

pub fn read(file: File, sink: &mut Sink) -> Outcome {
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| Failure::Malformed(format!("not a readable zip archive: {e}")))?;
    if zip.len() as u64 > sink.caps().max_members {
        return Err(Failure::Hostile(format!(
            "more than {} members ({} in the central directory)",
            sink.caps().max_members,
            zip.len()
        )));
    }
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| Failure::Malformed(format!("member {i}: {e}")))?;
        let name = member.name_raw().to_vec();
        let mode = member.unix_mode().unwrap_or(0) & S_IFMT;
        let size = member.size();
        if member.is_dir() || mode == S_IFDIR {
            sink.add(&name, EntryKind::Directory, 0, None)?;
        } else if mode == S_IFLNK {
            let mut target = Vec::new();
            sink.expansion
                .wrap(&mut member)
                .take(MAX_LINK_BYTES)
                .read_to_end(&mut target)?;
            sink.add(&name, EntryKind::Symlink, size, Some(&target))?;
        } else if mode == 0 || mode == S_IFREG {
            let mut data = sink.expansion.wrap(&mut member);
            sink.add_file(&name, size, &mut data)?;
        } else {
            sink.add(&name, EntryKind::Other, size, None)?;
        }
    }
    Ok(())
}
