//! cpio, as a flat package's Payload holds it: "odc" (070707, what Apple's tools write) and
//! "newc" (070701/070702). Streamed: each member's bytes go to the sink straight from the
//! decompressor. Hard links repeat their data in odc, so every member is read as itself.

use std::io::{self, Read};

use super::{nested_name, EntryKind, Failure, Outcome, Sink};

const MAX_LINK_BYTES: u64 = 4096;

fn field(bytes: &[u8], radix: u32, what: &str) -> Result<u64, Failure> {
    let text = std::str::from_utf8(bytes).map_err(|_| garbage(what))?;
    u64::from_str_radix(text, radix).map_err(|_| garbage(what))
}

fn garbage(what: &str) -> Failure {
    Failure::Malformed(format!("cpio payload: garbage in a header's {what}"))
}

fn skip(r: &mut impl Read, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut r.take(n), &mut io::sink())?;
    if copied < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Reads every member of the cpio stream `r` into `sink`, names below `prefix`.
pub fn read(r: &mut impl Read, prefix: &str, sink: &mut Sink) -> Outcome {
    let max_name = sink.caps().max_name_bytes as u64;
    loop {
        let mut magic = [0u8; 6];
        r.read_exact(&mut magic)?;
        let (mode, size, namesize, newc) = match &magic {
            b"070707" => {
                let mut h = [0u8; 70];
                r.read_exact(&mut h)?;
                (
                    field(&h[12..18], 8, "mode")?,
                    field(&h[59..70], 8, "file size")?,
                    field(&h[53..59], 8, "name size")?,
                    false,
                )
            }
            b"070701" | b"070702" => {
                let mut h = [0u8; 104];
                r.read_exact(&mut h)?;
                (
                    field(&h[8..16], 16, "mode")?,
                    field(&h[48..56], 16, "file size")?,
                    field(&h[88..96], 16, "name size")?,
                    true,
                )
            }
            _ => {
                return Err(Failure::Malformed(format!(
                    "cpio payload: bad header magic {:?}",
                    String::from_utf8_lossy(&magic)
                )))
            }
        };
        if namesize == 0 || namesize > max_name {
            return Err(Failure::Hostile(format!(
                "cpio payload: a name size of {namesize} bytes"
            )));
        }
        let mut name = vec![0u8; namesize as usize];
        r.read_exact(&mut name)?;
        if name.last() == Some(&0) {
            name.pop();
        }
        if newc {
            skip(r, (4 - (110 + namesize) % 4) % 4)?;
        }
        let pad = if newc { (4 - size % 4) % 4 } else { 0 };
        if name == b"TRAILER!!!" {
            return Ok(());
        }
        let full = nested_name(prefix, &name);
        match mode & 0o170000 {
            0o100000 => {
                let mut data = (&mut *r).take(size);
                sink.add_file(&full, size, &mut data)?;
                let left = data.limit();
                skip(r, left)?; // what the sink did not need (not Mach-O)
            }
            0o040000 => {
                sink.add(&full, EntryKind::Directory, 0, None)?;
                skip(r, size)?;
            }
            0o120000 => {
                if size > MAX_LINK_BYTES {
                    return Err(Failure::Hostile(format!("cpio payload: a {size}-byte symlink target")));
                }
                let mut target = vec![0u8; size as usize];
                r.read_exact(&mut target)?;
                sink.add(&full, EntryKind::Symlink, 0, Some(&target))?;
            }
            _ => {
                sink.add(&full, EntryKind::Other, size, None)?;
                skip(r, size)?;
            }
        }
        skip(r, pad)?;
    }
}
