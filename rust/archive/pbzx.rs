//! pbzx, Apple's chunked xz wrapper for large package payloads: "pbzx", a big-endian u64,
//! then chunks of (u64 flags, u64 length, bytes); a chunk is an xz stream when it starts
//! with the xz magic, else stored. Read as one stream, one chunk in memory at a time.

use std::io::{self, Cursor, Read};

/// A compressed chunk is 16 MiB or less in Apple's packages; anything past this is refused.
const MAX_CHUNK: u64 = 64 << 20;
const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";

pub struct Pbzx<R> {
    inner: R,
    chunk: Option<Box<dyn Read>>,
}

impl<R: Read> Pbzx<R> {
    /// `inner` positioned just after the 4-byte "pbzx" magic.
    pub fn new(mut inner: R) -> io::Result<Self> {
        let mut flags = [0u8; 8];
        inner.read_exact(&mut flags)?;
        Ok(Pbzx { inner, chunk: None })
    }

    fn next_chunk(&mut self) -> io::Result<bool> {
        let mut header = [0u8; 16];
        let mut got = 0;
        while got < 16 {
            match self.inner.read(&mut header[got..])? {
                0 if got == 0 => return Ok(false),
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => got += n,
            }
        }
        let length = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
        if length > MAX_CHUNK {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("pbzx payload: a chunk declares {length} bytes (more than {MAX_CHUNK})"),
            ));
        }
        let mut bytes = Vec::with_capacity(length as usize);
        (&mut self.inner).take(length).read_to_end(&mut bytes)?;
        if (bytes.len() as u64) < length {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.chunk = Some(if bytes.starts_with(XZ_MAGIC) {
            Box::new(liblzma::read::XzDecoder::new(Cursor::new(bytes)))
        } else {
            Box::new(Cursor::new(bytes))
        });
        Ok(true)
    }
}

impl<R: Read> Read for Pbzx<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(chunk) = self.chunk.as_mut() {
                let n = chunk.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                self.chunk = None;
            }
            if !self.next_chunk()? {
                return Ok(0);
            }
        }
    }
}
