//! gzip for layer uploads that skips the work deflate cannot win.
//!
//! Layers hold a lot of already-compressed data (archives, media, packed
//! binaries), on which deflate spends most of a push's CPU time to emit
//! blocks no smaller than their input (the fast level even grows random
//! data by ~4 % with its fixed Huffman codes). Like btrfs's compression
//! heuristic, each 1 MiB chunk's byte entropy is measured first: chunks
//! that look incompressible are written as deflate stored blocks (a copy
//! and a CRC), the rest are compressed at the fast level. The result is ordinary gzip
//! and depends only on the input, so the same layer always gets the same
//! blob digest.

use std::io::{self, Read};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes judged (and compressed at one level) at a time.
const CHUNK: usize = 1 << 20;

/// Above this many bits per byte of entropy a chunk is stored.
const INCOMPRESSIBLE_BITS: f64 = 7.9;

/// A reader of the gzip compression of `inner`.
pub(crate) struct LayerGzip<R> {
    inner: R,
    deflate: Compress,
    /// Whether the last chunk went out as stored blocks (written here, not
    /// by deflate, whose state then starts afresh for the next chunk).
    storing: bool,
    crc: Crc,
    input: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    finished: bool,
}

impl<R: Read> LayerGzip<R> {
    pub(crate) fn new(inner: R) -> Self {
        // mtime 0, no name, XFL 0, OS 255 (unknown): the same bytes anywhere.
        let header = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        Self {
            inner,
            deflate: Compress::new(Compression::fast(), false),
            storing: false,
            crc: Crc::new(),
            input: Vec::with_capacity(CHUNK),
            out: header,
            out_pos: 0,
            finished: false,
        }
    }

    /// Compresses the next chunk of input (or the end) into `out`.
    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.out_pos = 0;
        self.input.clear();
        let mut filled = 0;
        self.input.resize(CHUNK, 0);
        while filled < CHUNK {
            match self.inner.read(&mut self.input[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.input.truncate(filled);
        if filled == 0 {
            self.run(FlushCompress::Finish)?;
            self.out.extend_from_slice(&self.crc.sum().to_le_bytes());
            self.out.extend_from_slice(&self.crc.amount().to_le_bytes());
            self.finished = true;
            return Ok(());
        }
        self.crc.update(&self.input);
        if looks_incompressible(&self.input) {
            if !self.storing {
                // Ends deflate's blocks on a byte boundary, where stored
                // blocks can follow.
                let chunk = std::mem::take(&mut self.input);
                self.run(FlushCompress::Sync)?;
                self.input = chunk;
                self.storing = true;
            }
            for block in self.input.chunks(u16::MAX as usize) {
                let len = block.len() as u16;
                // BFINAL 0, BTYPE 00 (stored), then LEN and its complement.
                self.out.push(0);
                self.out.extend_from_slice(&len.to_le_bytes());
                self.out.extend_from_slice(&(!len).to_le_bytes());
                self.out.extend_from_slice(block);
            }
            return Ok(());
        }
        if self.storing {
            // Deflate's window must not refer to bytes it did not see.
            self.deflate.reset();
            self.storing = false;
        }
        self.run(FlushCompress::None)
    }

    /// Feeds all of `self.input` to deflate with `flush`, appending to `out`.
    fn run(&mut self, flush: FlushCompress) -> io::Result<()> {
        let mut consumed = 0;
        loop {
            if self.out.capacity() - self.out.len() < 64 << 10 {
                self.out.reserve(self.input.len() - consumed + (128 << 10));
            }
            let before_in = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(&self.input[consumed..], &mut self.out, flush)
                .map_err(io::Error::other)?;
            consumed += (self.deflate.total_in() - before_in) as usize;
            // Deflate has emitted all it will for this flush once the input
            // is in and it stopped short of the space it had.
            let room_left = self.out.len() < self.out.capacity();
            let done = match flush {
                FlushCompress::Finish => status == Status::StreamEnd,
                _ => consumed == self.input.len() && room_left,
            };
            if done {
                return Ok(());
            }
        }
    }
}

impl<R: Read> Read for LayerGzip<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() {
            if self.finished {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Whether `chunk`'s bytes are spread so evenly (Shannon entropy above
/// [`INCOMPRESSIBLE_BITS`]) that deflate would not shrink it.
fn looks_incompressible(chunk: &[u8]) -> bool {
    if chunk.len() < 4096 {
        return false;
    }
    let mut counts = [0u32; 256];
    for &b in chunk {
        counts[b as usize] += 1;
    }
    let n = chunk.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    entropy > INCOMPRESSIBLE_BITS
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn text(len: usize) -> Vec<u8> {
        b"the quick brown fox jumps over the lazy dog 0123456789\n"
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // Small reads, as an HTTP body writer makes them.
        let mut r = LayerGzip::new(data);
        let mut buf = [0u8; 7000];
        loop {
            let n = r.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(data)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn round_trips_mixed_content_and_is_deterministic() {
        let mut data = noise(3 * CHUNK + 12345, 7);
        data.extend(text(2 * CHUNK + 999));
        data.extend(noise(CHUNK / 2, 9));
        data.extend(text(100));
        let gz = gzip(&data);
        assert_eq!(gunzip(&gz), data);
        assert_eq!(gzip(&data), gz, "same input, same blob");
    }

    #[test]
    fn stores_noise_and_compresses_text() {
        let data = noise(4 * CHUNK, 3);
        let gz = gzip(&data);
        assert_eq!(gunzip(&gz), data);
        assert!(
            gz.len() < data.len() + data.len() / 1000,
            "noise grew to {} of {}",
            gz.len(),
            data.len()
        );
        let data = text(4 * CHUNK);
        let gz = gzip(&data);
        assert_eq!(gunzip(&gz), data);
        assert!(
            gz.len() < data.len() / 20,
            "text only shrank to {}",
            gz.len()
        );
    }

    #[test]
    fn empty_input_is_an_empty_gzip_member() {
        let gz = gzip(&[]);
        assert_eq!(gunzip(&gz), Vec::<u8>::new());
    }
}
