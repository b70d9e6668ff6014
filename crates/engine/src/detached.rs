//! Work handed to a detached background process: deleting a removed
//! container's files, releasing the last reference to an overlay mount.
//! A command collects it in [`Deferred`] and forks once, when its engine
//! closes.
//!
//! The CLI is one short process per command, and a user waits for it (and
//! for `$(berth rm …)`, for every process holding its stdout). Work whose
//! result nobody waits for (disk space given back, a superblock's sync)
//! goes to a child of its own: its own session, stdio on /dev/null and no
//! other inherited descriptor, init's once the command has exited (a
//! program started from a threaded caller is a grandchild, init's at once).

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::trash::Trash;

/// Runs `job` in a detached child, which keeps only `keep` (sorted) of
/// the caller's descriptors. Returns `false` without running it when that
/// is not possible: a multi-threaded caller (a fork would copy locks other
/// threads hold) or a failed fork; the caller then does the work itself.
///
/// The child is not waited for, nor forked twice to make it init's at once:
/// callers are commands at their end (the engine runs this when it closes),
/// so it is init's a moment later, and the caller's last step is not held up
/// by a second fork and a wait (~0.5 ms). A caller that lives on would keep
/// one zombie per call until it exits.
pub(crate) fn run_detached(keep: &[RawFd], job: impl FnOnce()) -> bool {
    if !single_threaded() {
        return false;
    }
    // SAFETY: the process is single-threaded (checked above), so the
    // child's copy of the address space is consistent: no lock is held by
    // a thread that does not exist there.
    match unsafe { libc::fork() } {
        0 => {
            detach_from_caller(keep);
            job();
            // SAFETY: _exit skips the atexit handlers and destructors that
            // belong to the parent's state.
            unsafe { libc::_exit(0) }
        }
        -1 => false,
        _ => true,
    }
}

/// A double fork: `job` runs in a grandchild that is init's at once.
///
/// # Safety
/// In a multi-threaded caller `job` may only make async-signal-safe calls
/// on data made before (another thread may have held a lock, the
/// allocator's among them, at the fork).
unsafe fn double_fork(keep: &[RawFd], job: impl FnOnce()) -> bool {
    // SAFETY: the intermediate child only forks and exits; the grandchild
    // detaches with plain syscalls and runs `job` (the caller's promise).
    match unsafe { libc::fork() } {
        0 => {
            // SAFETY: as above.
            if unsafe { libc::fork() } == 0 {
                detach_from_caller(keep);
                job();
            }
            // SAFETY: _exit skips the atexit handlers and destructors that
            // belong to the parent's state.
            unsafe { libc::_exit(0) }
        }
        -1 => false,
        child => {
            // The child exits right after its fork: reaping it is quick.
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            true
        }
    }
}

/// Runs the program `argv[0]` with `argv` detached, as [`run_detached`]
/// does, from single- and multi-threaded callers alike (an attached `run`
/// keeps a signal-forwarding thread to its end). Returns `false` if it
/// could not be started.
pub(crate) fn exec_detached(argv: &[&OsStr]) -> bool {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    if argv.is_empty() {
        return false;
    }
    let Ok(cargv) = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    let mut ptrs: Vec<*const libc::c_char> = cargv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let exec = move || {
        // SAFETY: execv with argv's strings and pointer array, made above.
        unsafe { libc::execv(ptrs[0], ptrs.as_ptr()) };
    };
    // A single-threaded caller is a command (its child is init's once it
    // exits, see `run_detached`): one fork, nothing waited for. Threaded
    // callers fork twice, so that a long-lived one (the API server) keeps
    // no zombie.
    if single_threaded() {
        return run_detached(&[], exec);
    }
    // SAFETY: the grandchild only detaches (plain syscalls) and execs:
    // async-signal-safe calls on prepared data, so this is sound with other
    // threads too. Nothing waits for the exec: the intermediate child exits
    // right after its fork, and the grandchild is init's.
    unsafe { double_fork(&[], exec) }
}

/// Runs `berth ARGS...` (the CLI found as the monitor is: `BERTH_CLI`,
/// beside this program, `$PATH`) detached, as [`exec_detached`] does.
pub(crate) fn berth_detached(args: &[&OsStr]) -> bool {
    let Ok(cli) = crate::containers::find_binary("BERTH_CLI", "berth") else {
        return false;
    };
    let mut argv: Vec<&OsStr> = vec![cli.as_os_str()];
    argv.extend_from_slice(args);
    exec_detached(&argv)
}

/// In the grandchild: a session of its own, the lowest CPU priority (it
/// should not compete with the commands that follow on a small machine),
/// stdio on /dev/null, every other descriptor but `keep` closed.
fn detach_from_caller(keep: &[RawFd]) {
    // SAFETY: plain syscalls on descriptors this process owns; the path
    // is a NUL-terminated literal.
    unsafe {
        libc::setsid();
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
        // Everything from 3 up but the kept ones, in the gaps between them.
        let mut first: libc::c_uint = 3;
        for &k in keep {
            let Ok(k) = libc::c_uint::try_from(k) else {
                continue;
            };
            if k < first {
                continue;
            }
            if first < k {
                libc::syscall(libc::SYS_close_range, first, k - 1, 0);
            }
            first = k + 1;
        }
        libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0);
    }
}

/// Trashes up to this many entries are emptied by the command itself
/// when the alternative is a new process: a few dozen unlinks cost
/// ~0.1 ms, the process (exec, start-up, exit) ~2 ms of CPU that the next
/// command on a small machine competes with.
const SMALL_TRASH_ENTRIES: usize = 64;

/// Background work a command collected: last references to overlay
/// mounts to drop, trashes to empty. [`Deferred::run`] hands all of it to
/// one detached process (one fork for a whole `rm` of many containers).
#[derive(Default)]
pub(crate) struct Deferred {
    holders: Vec<OwnedFd>,
    trashes: Vec<Trash>,
    /// A database to checkpoint, its connection closed before this runs
    /// (see `crate::db::checkpoint_closed`).
    checkpoint: Option<std::path::PathBuf>,
}

impl Deferred {
    /// `fd` is to be closed, out of the caller's way.
    pub(crate) fn release(&mut self, fd: OwnedFd) {
        self.holders.push(fd);
    }

    /// `trash` is to be emptied.
    pub(crate) fn empty(&mut self, trash: Trash) {
        if !self.trashes.iter().any(|t| t.dir() == trash.dir()) {
            self.trashes.push(trash);
        }
    }

    /// The database at `db` is to be checkpointed, once every connection
    /// of this process to it is closed.
    pub(crate) fn checkpoint(&mut self, db: std::path::PathBuf) {
        self.checkpoint = Some(db);
    }

    /// Does the collected work in a detached process, or here when none
    /// can be started.
    pub(crate) fn run(&mut self) {
        if self.holders.is_empty() && self.trashes.is_empty() && self.checkpoint.is_none() {
            return;
        }
        let holders = std::mem::take(&mut self.holders);
        let trashes = std::mem::take(&mut self.trashes);
        let checkpoint = self.checkpoint.take();
        let mut keep: Vec<RawFd> = holders.iter().map(AsRawFd::as_raw_fd).collect();
        keep.sort_unstable();
        let job = || {
            // The forked copies of the holders: closing them drops the
            // mounts' last references (and waits for their sync) here.
            for &fd in &keep {
                // SAFETY: each is a descriptor of this (forked) process,
                // closed once.
                unsafe { libc::close(fd) };
            }
            // First: the next command's open replays the WAL.
            if let Some(db) = &checkpoint {
                crate::db::checkpoint_closed(db);
            }
            trashes.iter().for_each(Trash::empty);
        };
        if run_detached(&keep, job) {
            drop(holders);
            return;
        }
        // Threads (an attached `run -i --rm` doing its own cleanup keeps
        // the thread copying stdin, blocked in a read): no fork for
        // arbitrary work, but a new program, or for a small trash not even
        // that (see SMALL_TRASH_ENTRIES). The holders are closed here (such
        // a container's overlay is volatile: its release does not sync).
        drop(holders);
        if let Some(db) = &checkpoint {
            if !crate::db::spawn_checkpointer(db) {
                crate::db::checkpoint_closed(db);
            }
        }
        let trashes = empty_small(trashes);
        if trashes.is_empty() {
            return;
        }
        let mut args: Vec<&OsStr> = vec!["system".as_ref(), "empty-trash".as_ref()];
        args.extend(trashes.iter().map(|t| t.dir().as_os_str()));
        let handed = berth_detached(&args);
        if !handed {
            trashes.iter().for_each(Trash::empty);
        }
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        self.run();
    }
}

/// Empties the small ones of `trashes` here; returns the others.
fn empty_small(trashes: Vec<Trash>) -> Vec<Trash> {
    trashes
        .into_iter()
        .filter(|t| {
            let small = t.is_small(SMALL_TRASH_ENTRIES);
            if small {
                t.empty();
            }
            !small
        })
        .collect()
}

fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::{Duration, Instant};

    /// The job runs in another session, and does not hold the caller's
    /// pipe: reading it ends as soon as the caller's end is closed.
    #[test]
    fn job_runs_detached_without_the_callers_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let (r, w) = nix::unistd::pipe().unwrap();
        let session = nix::unistd::getsid(None).unwrap();
        // The test harness runs tests on threads: the caller is a forked
        // (so single-threaded) child of this process.
        // SAFETY: the child only runs run_detached and _exits; glibc keeps
        // malloc usable after fork.
        match unsafe { libc::fork() } {
            0 => {
                let flag = flag.clone();
                let ran = run_detached(&[], move || {
                    std::thread::sleep(Duration::from_millis(300));
                    let other = nix::unistd::getsid(None).unwrap() != session;
                    std::fs::write(&flag, if other { "other" } else { "same" }).unwrap();
                });
                // SAFETY: _exit in a forked child.
                unsafe { libc::_exit(if ran { 0 } else { 1 }) }
            }
            child => {
                let status =
                    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None).unwrap();
                assert_eq!(
                    status,
                    nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(child), 0)
                );
            }
        }
        drop(w);
        let start = Instant::now();
        let mut buf = Vec::new();
        std::fs::File::from(r).read_to_end(&mut buf).unwrap();
        assert!(
            start.elapsed() < Duration::from_millis(250),
            "the job held the caller's pipe"
        );
        for _ in 0..100 {
            if flag.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_to_string(&flag).unwrap(), "other");
    }

    /// Threads do not stop a program from being started detached.
    #[test]
    fn threaded_callers_can_exec_detached() {
        let _t = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(500)));
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let script = format!("echo $(cut -d' ' -f6 /proc/self/stat) > {}", flag.display());
        let argv = [OsStr::new("/bin/sh"), OsStr::new("-c"), OsStr::new(&script)];
        assert!(exec_detached(&argv));
        for _ in 0..100 {
            if std::fs::read_to_string(&flag).is_ok_and(|s| s.ends_with('\n')) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Field 6 of stat is the session: the shell's own (setsid).
        let session: i32 = std::fs::read_to_string(&flag)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_ne!(session, nix::unistd::getsid(None).unwrap().as_raw());
    }

    #[test]
    fn threaded_callers_are_told_to_do_it_themselves() {
        let _t = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(500)));
        let mut ran = false;
        assert!(!run_detached(&[], || ran = true));
        assert!(!ran);
    }
}
