//! `berth-init CMD [ARG…]`: a minimal PID 1 for containers (Docker's
//! `--init`, mounted at /sbin/docker-init).
//!
//! Runs CMD as its child, forwards every catchable signal to it, reaps every
//! zombie that is re-parented to it, and exits with the child's status (128+n
//! when a signal n ended it). Linked statically (see build.rs): containers
//! need not have a libc.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, fork, ForkResult, Pid};

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let mut args: Vec<CString> = std::env::args_os()
        .skip(1)
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    // `docker-init -- CMD…` (tini's form, which Docker and berth use): the
    // `--` only ends init's own options.
    if args.first().is_some_and(|a| a.as_bytes() == b"--") {
        args.remove(0);
    }
    let Some(program) = args.first().cloned() else {
        eprintln!("berth-init: usage: berth-init [--] CMD [ARG...]");
        return 2;
    };
    // Every signal that can be caught is taken synchronously with sigwait;
    // the child gets the mask back before exec.
    let mut all = SigSet::all();
    all.remove(Signal::SIGKILL);
    all.remove(Signal::SIGSTOP);
    for s in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGABRT,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ] {
        // Faults of init itself must not be blocked (they would kill it
        // without a core-able state); they are not forwarded.
        all.remove(s);
    }
    let mut previous = SigSet::empty();
    if let Err(e) = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&all),
        Some(&mut previous),
    ) {
        eprintln!("berth-init: sigprocmask: {e}");
        return 1;
    }
    // SAFETY: single-threaded; the child only resets its mask, moves to
    // its own foreground process group handling and execs.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&previous),
                None,
            );
            let e = execvp(&program, &args).err();
            eprintln!(
                "berth-init: exec {}: {}",
                program.to_string_lossy(),
                e.map_or_else(String::new, |e| e.desc().to_string())
            );
            // 127 like a shell for a missing program, 126 otherwise.
            let code = if e == Some(nix::errno::Errno::ENOENT) {
                127
            } else {
                126
            };
            // SAFETY: leaving the forked child without running the parent's
            // destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            eprintln!("berth-init: fork: {e}");
            return 1;
        }
    };
    loop {
        let signal = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if signal != Signal::SIGCHLD {
            // The child may already be gone; nothing to do then.
            let _ = kill(child, signal);
            continue;
        }
        if let Some(code) = reap(child) {
            return code;
        }
    }
}

/// Reaps every exited process; the child's exit status once it is gone.
fn reap(child: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => result = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                result = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => return result,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return result,
        }
    }
}
