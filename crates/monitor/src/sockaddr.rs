//! Unix socket addresses for paths of any length.
//!
//! `sun_path` holds 107 bytes, and a state dir under a long runroot (a test's
//! temp dir, a deep `--runroot`) makes `<state_dir>/attach` longer than that.
//! Like conmon, such a path is reached through `/proc/self/fd/<dirfd>/<name>`
//! with an `O_PATH` fd of its directory, which the kernel resolves to the
//! same inode; the fd must stay open until bind/connect returned.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::UnixAddr;
use nix::sys::stat::Mode;

/// An address for `path`, and the directory fd it goes through (keep it
/// alive while using the address).
pub fn unix_addr(path: &Path) -> Result<(UnixAddr, Option<OwnedFd>), Errno> {
    if let Ok(addr) = UnixAddr::new(path) {
        return Ok((addr, None));
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Errno::ENAMETOOLONG);
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let fd = open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let short = Path::new("/proc/self/fd")
        .join(fd.as_raw_fd().to_string())
        .join(name);
    Ok((UnixAddr::new(&short)?, Some(fd)))
}

/// Sets `SO_SNDTIMEO` or `SO_RCVTIMEO` (`receive`) of a socket; best
/// effort: a socket without it blocks as before.
pub fn set_timeout(sock: &OwnedFd, receive: bool, d: std::time::Duration) {
    use nix::sys::socket::{setsockopt, sockopt};
    let tv = nix::sys::time::TimeVal::new(
        i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        i64::from(d.subsec_micros()),
    );
    let _ = if receive {
        setsockopt(sock, sockopt::ReceiveTimeout, &tv)
    } else {
        setsockopt(sock, sockopt::SendTimeout, &tv)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_go_through_the_directory_fd() {
        let base = tempfile_dir();
        let deep = base.join("d".repeat(120));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("attach");
        let (addr, fd) = unix_addr(&path).unwrap();
        assert!(fd.is_some());
        let listener = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        nix::sys::socket::bind(listener.as_raw_fd(), &addr).unwrap();
        assert!(path.exists(), "the socket is at the long path");
        let (short, none) = unix_addr(Path::new("/tmp/x")).unwrap();
        assert!(none.is_none());
        assert_eq!(short.path(), Some(Path::new("/tmp/x")));
        std::fs::remove_dir_all(&base).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("berth-sockaddr-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}
