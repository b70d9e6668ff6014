//! Starting a program without waiting for its exec.
//!
//! `std::process::Command::spawn` returns only once the child has exec'd
//! (it reads an error pipe, or vforks), which for the standby monitor is
//! the very time it is meant to save its caller. Here the child is forked
//! and execs on its own; an exec that fails shows as the child's exit
//! status 127 and, for the standby monitor, as the end of its ready pipe.

use std::ffi::{CString, OsStr};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::unistd::Pid;

/// Forks and execs `program args…` with stdin and stdout on /dev/null,
/// stderr too unless `keep_stderr`, and `fds` (source, target) dup'ed
/// onto their targets; the child starts with an empty signal mask and
/// SIGPIPE at its default, as std's spawn leaves it. Returns the child's
/// pid (to be reaped by the caller).
pub fn spawn(
    program: &Path,
    args: &[&OsStr],
    keep_stderr: bool,
    fds: &[(RawFd, RawFd)],
) -> std::io::Result<Pid> {
    fork_exec(program, args, keep_stderr, fds, None)
}

/// [`spawn`], whose child first runs `prelude` and exits 0 without the
/// exec when it returns `true`: for work that needs the program only
/// sometimes. The caller must be single-threaded (the prelude is ordinary
/// code in a forked child), as the monitor is.
pub fn spawn_unless_done(
    program: &Path,
    args: &[&OsStr],
    keep_stderr: bool,
    prelude: &mut dyn FnMut() -> bool,
) -> std::io::Result<Pid> {
    fork_exec(program, args, keep_stderr, &[], Some(prelude))
}

fn fork_exec(
    program: &Path,
    args: &[&OsStr],
    keep_stderr: bool,
    fds: &[(RawFd, RawFd)],
    prelude: Option<&mut dyn FnMut() -> bool>,
) -> std::io::Result<Pid> {
    let invalid = |_| std::io::Error::from(std::io::ErrorKind::InvalidInput);
    // Everything the child needs is made before the fork: after it, in a
    // possibly multi-threaded caller, it may only make async-signal-safe
    // calls (sigprocmask, signal, fcntl, dup2, execv, _exit).
    let path = CString::new(program.as_os_str().as_bytes()).map_err(invalid)?;
    let args = args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    let mut argv: Vec<*const libc::c_char> = vec![path.as_ptr()];
    argv.extend(args.iter().map(|a| a.as_ptr()));
    argv.push(std::ptr::null());
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let null_fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    let mut plan: Vec<(RawFd, RawFd)> = vec![(null_fd, 0), (null_fd, 1)];
    if !keep_stderr {
        plan.push((null_fd, 2));
    }
    plan.extend_from_slice(fds);
    // SAFETY: an all-zero sigset_t is a valid value to fill.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sigemptyset initialises the set it is given.
    unsafe { libc::sigemptyset(&mut empty) };
    // SAFETY: fork itself; what the child may do after it is below.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        // SAFETY: the child calls only sigprocmask, signal, fcntl, dup2,
        // execv and _exit, all async-signal-safe, on data prepared before
        // the fork; and the prelude, whose callers are single-threaded
        // (spawn_unless_done).
        0 => unsafe {
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            for &(src, target) in &plan {
                // dup2 onto itself keeps close-on-exec: clear it instead.
                let ok = if src == target {
                    libc::fcntl(src, libc::F_SETFD, 0) >= 0
                } else {
                    libc::dup2(src, target) >= 0
                };
                if !ok {
                    libc::_exit(127);
                }
            }
            if let Some(prelude) = prelude {
                if prelude() {
                    libc::_exit(0);
                }
            }
            libc::execv(path.as_ptr(), argv.as_ptr());
            libc::_exit(127)
        },
        pid => Ok(Pid::from_raw(pid)),
    }
}
