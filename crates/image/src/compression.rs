//! Layer compression detection and transparent decompression.

use std::io::{BufReader, Read};

use crate::error::ImageError;

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Large reads keep per-syscall and per-call overhead negligible for layers of
/// hundreds of megabytes.
pub(crate) const READ_BUFFER: usize = 1 << 20;

/// Detects compression from the first bytes of a blob (4 are enough).
pub fn detect_compression(first_bytes: &[u8]) -> Compression {
    if first_bytes.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if first_bytes.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `r` in the decompressor its magic bytes call for (none for plain tar).
/// The returned reader is buffered.
pub fn decompress<'a>(r: impl Read + 'a) -> Result<Box<dyn Read + 'a>, ImageError> {
    let (compression, stream) = sniff(r)?;
    Ok(match compression {
        Compression::None => Box::new(BufReader::with_capacity(READ_BUFFER, stream)),
        c => Box::new(BufReader::with_capacity(READ_BUFFER, decoder(c, stream))),
    })
}

/// Like [`decompress`] without buffering the output, for a consumer that reads
/// in large blocks itself (the layer unpacker): a plain tar then goes from the
/// source straight into the consumer's buffer, saving one copy of every byte.
pub(crate) fn decompress_unbuffered<'a>(
    r: impl Read + 'a,
) -> Result<Box<dyn Read + 'a>, ImageError> {
    let (compression, stream) = sniff(r)?;
    Ok(match compression {
        Compression::None => Box::new(stream),
        c => decoder(c, stream),
    })
}

/// Reads the magic bytes and returns the compression and a stream that
/// still starts with them.
fn sniff<'a>(mut r: impl Read + 'a) -> Result<(Compression, impl Read + 'a), ImageError> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut r, &mut magic).map_err(|source| ImageError::Decompress {
        what: "layer header",
        source,
    })?;
    let compression = detect_compression(&magic[..n]);
    Ok((
        compression,
        std::io::Cursor::new(magic).take(n as u64).chain(r),
    ))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The decoder for `c` over `r` (compressed input buffered, output not).
fn decoder<'a, R: Read + 'a>(c: Compression, r: R) -> Box<dyn Read + 'a> {
    let input = BufReader::with_capacity(READ_BUFFER, r);
    match c {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(input) {
            Ok(d) => Box::new(d),
            Err(e) => Box::new(FailingReader(Some(e))),
        },
    }
}

/// Reports a decoder set-up failure on first read, so `decompress` keeps a
/// simple signature for the common case.
struct FailingReader(Option<std::io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(self
            .0
            .take()
            .unwrap_or_else(|| std::io::Error::other("zstd decoder failed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(c: Compression) {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let blob = match c {
            Compression::None => data.clone(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&data).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(&data[..], 1).unwrap(),
        };
        assert_eq!(detect_compression(&blob), c);
        let mut out = Vec::new();
        decompress(&blob[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        let mut out = Vec::new();
        decompress_unbuffered(&blob[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn roundtrips() {
        roundtrip(Compression::None);
        roundtrip(Compression::Gzip);
        roundtrip(Compression::Zstd);
    }

    /// A reader that returns one byte per read, to exercise the short-peek path.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn short_first_reads() {
        let blob = zstd::encode_all(&b"hello zstd"[..], 1).unwrap();
        let mut out = Vec::new();
        decompress(Trickle(&blob))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello zstd");
        let mut out = Vec::new();
        decompress(Trickle(b"ab"))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"ab");
    }
}
