//! Response bodies: small ones in memory, blobs streamed from disk by a
//! blocking reader so that a layer is never held whole in memory.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// Bytes per read from a blob file (and per frame sent).
const READ_CHUNK: usize = 512 * 1024;
/// Chunks read ahead of the socket.
const READ_AHEAD: usize = 4;

pub type RespBody = BoxBody<Bytes, io::Error>;

pub fn full(data: impl Into<Bytes>) -> RespBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> RespBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// `len` bytes of `file` from `offset`, read on a blocking thread.
pub fn file_range(file: File, offset: u64, len: u64) -> RespBody {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    tokio::task::spawn_blocking(move || read_range(file, offset, len, tx));
    FileBody { rx, remaining: len }.boxed()
}

fn read_range(file: File, mut offset: u64, len: u64, tx: mpsc::Sender<io::Result<Bytes>>) {
    let end = offset + len;
    while offset < end {
        let want = READ_CHUNK.min((end - offset) as usize);
        let mut buf = vec![0u8; want];
        let chunk = match file.read_at(&mut buf, offset) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob shorter than its recorded size",
            )),
            Ok(n) => {
                buf.truncate(n);
                offset += n as u64;
                Ok(Bytes::from(buf))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
        let failed = chunk.is_err();
        // The receiver is gone when the client went away: stop reading.
        if tx.blocking_send(chunk).is_err() || failed {
            return;
        }
    }
}

struct FileBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    remaining: u64,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Some(Ok(b))) => {
                self.remaining = self.remaining.saturating_sub(b.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
