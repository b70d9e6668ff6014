//! OCI seccomp for berth's runtime.
//!
//! [`compile`] turns the spec's `linux.seccomp` into a classic BPF program in
//! the runtime's parent process, so a bad profile is reported before the
//! container exists. [`SeccompProgram::load`] then attaches it in the
//! container's init with one seccomp(2) call, without allocating, right
//! before execve. Filters using `SCMP_ACT_NOTIFY` yield a listener fd that
//! [`send_to_listener`] hands to the seccomp agent at `listenerPath`.
//!
//! Behaviour follows runc: syscall names this libseccomp does not know are
//! skipped with a warning, `SCMP_ACT_KILL` means kill-thread, `errnoRet`
//! defaults to EPERM, and syscalls of architectures not in the filter hit
//! libseccomp's bad-arch action (kill-thread) instead of passing through.
//! Deny-by-default filters get runc's -ENOSYS stub, so syscalls newer than
//! the profile fail with ENOSYS (and programs fall back) instead of EPERM.

mod cache;
mod compile;
mod enosys;
mod error;
mod features;
mod kernel;
mod listener;
mod spec_json;

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

pub use cache::compile_cached;
pub use error::SeccompError;
pub use features::{features, SeccompFeatures};
pub use listener::send_to_listener;
pub use spec_json::parse_spec;

/// A compiled seccomp filter, ready to be attached by [`SeccompProgram::load`].
pub struct SeccompProgram {
    instructions: Vec<libc::sock_filter>,
    flags: u32,
    uses_notify: bool,
    warnings: Vec<String>,
}

/// Compiles `spec` into a BPF program. Errors name the offending field;
/// things that are skipped rather than refused (unknown syscall names,
/// ignored `errnoRet`/`valueTwo`) are listed by [`SeccompProgram::warnings`]
/// for the caller to print.
pub fn compile(spec: &oci_spec::runtime::LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    compile::compile(spec)
}

impl SeccompProgram {
    /// Attaches the filter to the calling thread (all threads with
    /// `SECCOMP_FILTER_FLAG_TSYNC`). Made to run in the container's init
    /// after fork/clone and right before execve: it neither allocates nor
    /// takes locks. The caller decides about no_new_privs; without it the
    /// process needs CAP_SYS_ADMIN ([`SeccompError::LoadNotPermitted`]).
    ///
    /// Returns the notify listener fd (close-on-exec) when a rule uses
    /// `SCMP_ACT_NOTIFY`.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        let program = libc::sock_fprog {
            // compile() refuses programs longer than BPF_MAXINSNS (4096).
            len: self.instructions.len() as u16,
            filter: self.instructions.as_ptr().cast_mut(),
        };
        // SAFETY: `program` points to `self.instructions`, which outlives the
        // call; the kernel copies the program and does not write to it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(self.flags),
                &program as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            let source = io::Error::last_os_error();
            if source.raw_os_error() == Some(libc::EACCES) {
                return Err(SeccompError::LoadNotPermitted { source });
            }
            return Err(SeccompError::Load {
                flags: self.flags,
                source,
            });
        }
        if self.uses_notify {
            let Ok(fd) = i32::try_from(rc) else {
                return Err(SeccompError::Load {
                    flags: self.flags,
                    source: io::Error::from_raw_os_error(libc::EBADF),
                });
            };
            // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful
            // seccomp(2) returns a new fd that nothing else owns.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        if rc > 0 {
            // TSYNC without NEW_LISTENER reports the thread that could not be
            // synchronised as a positive return value.
            return Err(SeccompError::TsyncFailed { thread: rc });
        }
        Ok(None)
    }

    /// Whether any rule uses `SCMP_ACT_NOTIFY`, i.e. [`Self::load`] returns a
    /// listener fd that must reach the agent at `listenerPath`.
    pub fn uses_notify(&self) -> bool {
        self.uses_notify
    }

    /// What compiling skipped or ignored, one message per item, each
    /// starting with `seccomp:` and naming the field.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The seccomp(2) flags [`Self::load`] passes (`SECCOMP_FILTER_FLAG_*`).
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Number of BPF instructions in the program.
    pub fn instruction_count(&self) -> usize {
        self.instructions.len()
    }
}

impl std::fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeccompProgram")
            .field("instructions", &self.instructions.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("uses_notify", &self.uses_notify)
            .field("warnings", &self.warnings)
            .finish()
    }
}
