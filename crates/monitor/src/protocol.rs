//! The attach protocol on `<state_dir>/attach`.
//!
//! The socket is `SOCK_SEQPACKET`: every `send` is one message and every
//! `recv` returns one whole message, so a frame needs no length prefix. A
//! frame is one tag byte followed by its payload:
//!
//! | tag | direction | payload |
//! |---|---|---|
//! | `0x01` stdout | monitor → client | output bytes (≤ [`MAX_DATA`]) |
//! | `0x02` stderr | monitor → client | output bytes |
//! | `0x03` exit | monitor → client | exit code, `i32` little endian; last frame |
//! | `0x04` exit-cleanup | monitor → client | exit code as for exit; the exit command's work is this client's |
//! | `0x10` attach-stdin | client → monitor | none: this client feeds stdin |
//! | `0x11` stdin | client → monitor | input bytes |
//! | `0x12` resize | client → monitor | rows `u16` LE, cols `u16` LE |
//! | `0x13` close-stdin | client → monitor | none: the client's input ended |
//! | `0x14` no-output | client → monitor | none: send this client only the exit frame |
//! | `0x15` take-cleanup | client → monitor | none: this client does the exit command's work |
//!
//! The monitor streams output produced after the client connected (like
//! `docker attach` without `--logs`). With a tty, all output is stdout. A
//! client too slow to take its output loses it (the container is never
//! blocked). When the container stopped for good and the exit command has
//! finished, the monitor sends exit and closes the connection. A client
//! that sent attach-stdin and goes away (or sends close-stdin) closes the
//! container's stdin when the container has `stdin_once`.
//!
//! take-cleanup: an attached `run --rm` already has the state open that the
//! exit command (`berth container cleanup`) would open again in a new
//! process. The first client still connected that sent it gets exit-cleanup
//! as soon as the container stopped for good, instead of the monitor
//! running its exit command; the monitor closes that connection once the
//! runtime's state is deleted. A client that leaves before then leaves the
//! work to the exit command. Unknown tags are
//! ignored, so the protocol can grow.

pub const TAG_STDOUT: u8 = 0x01;
pub const TAG_STDERR: u8 = 0x02;
pub const TAG_EXIT: u8 = 0x03;
pub const TAG_EXIT_CLEANUP: u8 = 0x04;
pub const TAG_ATTACH_STDIN: u8 = 0x10;
pub const TAG_STDIN: u8 = 0x11;
pub const TAG_RESIZE: u8 = 0x12;
pub const TAG_CLOSE_STDIN: u8 = 0x13;
pub const TAG_NO_OUTPUT: u8 = 0x14;
pub const TAG_TAKE_CLEANUP: u8 = 0x15;

/// Largest payload of a data frame.
pub const MAX_DATA: usize = 16 * 1024;
/// Largest frame (tag included).
pub const MAX_FRAME: usize = MAX_DATA + 1;

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    Stdout(&'a [u8]),
    Stderr(&'a [u8]),
    Exit(i32),
    /// Exit, and the exit command's work is the receiving client's.
    ExitCleanup(i32),
    AttachStdin,
    Stdin(&'a [u8]),
    Resize {
        rows: u16,
        cols: u16,
    },
    CloseStdin,
    NoOutput,
    TakeCleanup,
    /// A tag this version does not know.
    Unknown(u8),
}

impl<'a> Frame<'a> {
    /// Decodes one message; `None` for an empty or short one.
    pub fn decode(msg: &'a [u8]) -> Option<Frame<'a>> {
        let (&tag, payload) = msg.split_first()?;
        Some(match tag {
            TAG_STDOUT => Frame::Stdout(payload),
            TAG_STDERR => Frame::Stderr(payload),
            TAG_EXIT => Frame::Exit(i32::from_le_bytes(payload.get(..4)?.try_into().ok()?)),
            TAG_EXIT_CLEANUP => {
                Frame::ExitCleanup(i32::from_le_bytes(payload.get(..4)?.try_into().ok()?))
            }
            TAG_ATTACH_STDIN => Frame::AttachStdin,
            TAG_STDIN => Frame::Stdin(payload),
            TAG_RESIZE => Frame::Resize {
                rows: u16::from_le_bytes(payload.get(..2)?.try_into().ok()?),
                cols: u16::from_le_bytes(payload.get(2..4)?.try_into().ok()?),
            },
            TAG_CLOSE_STDIN => Frame::CloseStdin,
            TAG_NO_OUTPUT => Frame::NoOutput,
            TAG_TAKE_CLEANUP => Frame::TakeCleanup,
            other => Frame::Unknown(other),
        })
    }

    /// Encodes into a new message.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, payload): (u8, &[u8]) = match self {
            Frame::Stdout(d) => (TAG_STDOUT, d),
            Frame::Stderr(d) => (TAG_STDERR, d),
            Frame::Stdin(d) => (TAG_STDIN, d),
            Frame::Exit(code) => return [&[TAG_EXIT][..], &code.to_le_bytes()].concat(),
            Frame::ExitCleanup(code) => {
                return [&[TAG_EXIT_CLEANUP][..], &code.to_le_bytes()].concat()
            }
            Frame::Resize { rows, cols } => {
                return [&[TAG_RESIZE][..], &rows.to_le_bytes(), &cols.to_le_bytes()].concat()
            }
            Frame::AttachStdin => (TAG_ATTACH_STDIN, &[]),
            Frame::CloseStdin => (TAG_CLOSE_STDIN, &[]),
            Frame::NoOutput => (TAG_NO_OUTPUT, &[]),
            Frame::TakeCleanup => (TAG_TAKE_CLEANUP, &[]),
            Frame::Unknown(t) => (*t, &[]),
        };
        let mut v = Vec::with_capacity(1 + payload.len());
        v.push(tag);
        v.extend_from_slice(payload);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for f in [
            Frame::Stdout(b"out"),
            Frame::Stderr(b""),
            Frame::Exit(-3),
            Frame::Exit(137),
            Frame::AttachStdin,
            Frame::Stdin(b"in\n"),
            Frame::Resize {
                rows: 40,
                cols: 120,
            },
            Frame::CloseStdin,
            Frame::NoOutput,
            Frame::ExitCleanup(2),
            Frame::TakeCleanup,
        ] {
            let enc = f.encode();
            assert_eq!(Frame::decode(&enc), Some(f));
        }
        assert_eq!(Frame::decode(&[]), None);
        assert_eq!(Frame::decode(&[TAG_EXIT, 1]), None);
        assert_eq!(Frame::decode(&[0x7f]), Some(Frame::Unknown(0x7f)));
    }
}
