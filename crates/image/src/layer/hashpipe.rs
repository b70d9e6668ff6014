//! A reader that hashes what passes through it on a second thread.
//!
//! sha256 of a layer costs about as much CPU as unpacking it; computing the
//! diff id beside the unpacker instead of inline keeps apply close to `tar -x`
//! speed. The caller's reader stays on the calling thread (layer streams, e.g.
//! entries of a docker-archive tar, are often not `Send`); only filled blocks
//! are shared with the hashing thread, and recycled once hashed.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};

use crate::digest::{Digest, Hasher};

const BLOCK: usize = 1 << 20;
const IN_FLIGHT: usize = 8;

pub(crate) struct HashPipe<'scope, R> {
    inner: R,
    cur: Option<Arc<Vec<u8>>>,
    pos: usize,
    to_hasher: Option<SyncSender<Arc<Vec<u8>>>>,
    recycled: Receiver<Arc<Vec<u8>>>,
    hasher: Option<ScopedJoinHandle<'scope, (Digest, u64)>>,
    eof: bool,
}

impl<'scope, R: Read> HashPipe<'scope, R> {
    pub(crate) fn new<'env>(scope: &'scope Scope<'scope, 'env>, inner: R) -> io::Result<Self> {
        let (to_hasher, blocks) = sync_channel::<Arc<Vec<u8>>>(IN_FLIGHT);
        let (recycle, recycled) = sync_channel::<Arc<Vec<u8>>>(IN_FLIGHT + 2);
        let hasher = std::thread::Builder::new()
            .name("berth-layer-hash".into())
            .spawn_scoped(scope, move || {
                let mut h = Hasher::new();
                for block in blocks {
                    h.update(&block);
                    // The reader may be gone (error path); then the block is just freed.
                    let _ = recycle.try_send(block);
                }
                let len = h.len();
                (h.finish(), len)
            })?;
        Ok(Self {
            inner,
            cur: None,
            pos: 0,
            to_hasher: Some(to_hasher),
            recycled,
            hasher: Some(hasher),
            eof: false,
        })
    }

    fn next_block(&mut self) -> io::Result<()> {
        self.cur = None;
        let mut block = loop {
            match self.recycled.try_recv() {
                Ok(mut b) => {
                    if Arc::get_mut(&mut b).is_some() {
                        break b;
                    }
                }
                Err(_) => break Arc::new(vec![0u8; BLOCK]),
            }
        };
        let buf = Arc::get_mut(&mut block)
            .ok_or_else(|| io::Error::other("hash pipe block still shared"))?;
        buf.resize(BLOCK, 0);
        let mut n = 0;
        while n < BLOCK {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        if n == 0 {
            self.eof = true;
            self.to_hasher = None;
            return Ok(());
        }
        if let Some(tx) = &self.to_hasher {
            tx.send(Arc::clone(&block))
                .map_err(|_| io::Error::other("hashing thread ended early"))?;
        }
        self.cur = Some(block);
        self.pos = 0;
        Ok(())
    }

    /// Reads the rest of the stream and returns the digest and length of everything.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64)> {
        while !self.eof {
            self.next_block()?;
        }
        self.to_hasher = None;
        match self.hasher.take().map(ScopedJoinHandle::join) {
            Some(Ok(r)) => Ok(r),
            _ => Err(io::Error::other("hashing thread panicked")),
        }
    }
}

impl<R: Read> Read for HashPipe<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(cur) = &self.cur {
                if self.pos < cur.len() {
                    let n = out.len().min(cur.len() - self.pos);
                    out[..n].copy_from_slice(&cur[self.pos..self.pos + n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            if self.eof {
                return Ok(0);
            }
            self.next_block()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_everything_in_order() {
        let data: Vec<u8> = (0..3 * BLOCK + 12345).map(|i| (i % 253) as u8).collect();
        let (read, digest) = std::thread::scope(|s| {
            let mut p = HashPipe::new(s, &data[..]).unwrap();
            let mut first = vec![0u8; BLOCK + 7];
            p.read_exact(&mut first).unwrap();
            let (d, n) = p.finish().unwrap();
            assert_eq!(n, data.len() as u64);
            (first, d)
        });
        assert_eq!(read, &data[..BLOCK + 7]);
        assert_eq!(digest, Digest::of_bytes(&data));
    }

    #[test]
    fn dropping_early_does_not_hang() {
        let data = vec![7u8; 10 * BLOCK];
        std::thread::scope(|s| {
            let mut p = HashPipe::new(s, &data[..]).unwrap();
            let mut b = [0u8; 10];
            p.read_exact(&mut b).unwrap();
            drop(p);
        });
    }
}
