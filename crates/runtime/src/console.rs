//! `process.terminal`: a pty whose master goes to the `--console-socket`
//! (SCM_RIGHTS, like runc) and whose slave becomes the process's stdio and
//! controlling terminal.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::RuntimeError;

/// Connects to the console socket given on the command line (in the
/// runtime's own namespaces, before the container exists).
pub fn connect(path: &Path) -> Result<UnixStream, RuntimeError> {
    UnixStream::connect(path)
        .map_err(|e| RuntimeError::io(format!("connect to console socket {}", path.display()), e))
}

/// A new pty.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub slave_path: PathBuf,
}

/// Opens a pty on `ptmx` and sets its window size.
pub fn open_pty(ptmx: &Path, size: Option<(u32, u32)>) -> Result<Pty, String> {
    let master = nix::fcntl::open(
        ptmx,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open {}: {e}", ptmx.display()))?;
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) } != 0 {
        return Err(format!("unlock pty: {}", std::io::Error::last_os_error()));
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int into the valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } != 0 {
        return Err(format!("pty number: {}", std::io::Error::last_os_error()));
    }
    // TIOCGPTPEER opens the slave through the master, so a path swapped
    // under /dev/pts cannot give us a different file.
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd or -1.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(format!(
            "open pty slave: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the ioctl returned a new fd that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some((height, width)) = size {
        let ws = libc::winsize {
            ws_row: u16::try_from(height).unwrap_or(u16::MAX),
            ws_col: u16::try_from(width).unwrap_or(u16::MAX),
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from the valid pointer.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(format!(
                "set console size: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(Pty {
        master,
        slave,
        slave_path: PathBuf::from(format!("/dev/pts/{n}")),
    })
}

/// Opens a pty on the container's devpts (`<rootfs>/dev/pts/ptmx`, resolved
/// inside the rootfs), or on the runtime's when the container has none.
pub fn open_container_pty(rootfs: &Path, size: Option<(u32, u32)>) -> Result<Pty, String> {
    match berth_rootfs::open_in_root(rootfs, Path::new("/dev/pts/ptmx"), None) {
        Ok(ptmx) => open_pty(
            Path::new(&format!("/proc/self/fd/{}", ptmx.as_raw_fd())),
            size,
        )
        .map_err(|e| format!("container's /dev/pts/ptmx: {e}")),
        Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => {
            open_pty(Path::new("/dev/ptmx"), size)
        }
        Err(e) => Err(format!(
            "container's /dev/pts/ptmx: {}",
            crate::error::one_line(&e)
        )),
    }
}

/// Bind-mounts the pty slave at the container's /dev/console (before the
/// root switch; both ends through their fds, so no path is resolved twice).
pub fn mount_console(rootfs: &Path, slave: &OwnedFd) -> Result<(), String> {
    let target = berth_rootfs::open_in_root(
        rootfs,
        Path::new("/dev/console"),
        Some(berth_rootfs::CreateKind::File),
    )
    .map_err(|e| format!("/dev/console: {}", crate::error::one_line(&e)))?;
    nix::mount::mount(
        Some(format!("/proc/self/fd/{}", slave.as_raw_fd()).as_str()),
        format!("/proc/self/fd/{}", target.as_raw_fd()).as_str(),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind mount the pty slave at /dev/console: {e}"))
}

/// Sends the pty master over the console socket; the message data is the
/// pty's name, as runc sends it.
pub fn send_master(console_socket: RawFd, master: RawFd, name: &str) -> Result<(), String> {
    let fds = [master];
    loop {
        match sendmsg::<()>(
            console_socket,
            &[IoSlice::new(name.as_bytes())],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(_) => return Ok(()),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(format!("send the pty master to the console socket: {e}")),
        }
    }
}

/// Receives a pty master sent with [`send_master`].
pub fn receive_master(sock: &UnixStream) -> Result<OwnedFd, RuntimeError> {
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = nix::sys::socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| RuntimeError::sys("receive the pty master", e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| RuntimeError::sys("receive the pty master", e))?
    {
        if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this fd for us just now.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(RuntimeError::Protocol {
        context: "console",
        reason: "no pty master received".into(),
    })
}

/// Makes `slave` the controlling terminal and stdin/stdout/stderr of a new
/// session.
pub fn become_terminal(slave: &OwnedFd) -> Result<(), String> {
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // SAFETY: TIOCSCTTY with an integer argument on a valid tty fd.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(format!(
            "set controlling terminal: {}",
            std::io::Error::last_os_error()
        ));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto stdio of our own fd table.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(format!(
                "dup2 pty slave to fd {target}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}
