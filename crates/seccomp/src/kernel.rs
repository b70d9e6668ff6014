//! Thin wrappers over seccomp(2): probing what the running kernel supports
//! and attaching a filter. libseccomp's own loader is not used because it
//! allocates and takes locks, and the container's init must load the filter
//! between fork and execve without either.

use std::io;

/// The filter flags of the OCI spec with their kernel values.
pub(crate) const FILTER_FLAGS: [(&str, u32); 4] = [
    (
        "SECCOMP_FILTER_FLAG_TSYNC",
        libc::SECCOMP_FILTER_FLAG_TSYNC as u32,
    ),
    (
        "SECCOMP_FILTER_FLAG_LOG",
        libc::SECCOMP_FILTER_FLAG_LOG as u32,
    ),
    (
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32,
    ),
    (
        "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32,
    ),
];

pub(crate) const NEW_LISTENER: u32 = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
pub(crate) const TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
pub(crate) const TSYNC_ESRCH: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
pub(crate) const WAIT_KILLABLE_RECV: u32 = libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32;

/// True when the kernel accepts `flags` for SECCOMP_SET_MODE_FILTER.
///
/// The kernel validates flags before it reads the program, so a NULL program
/// yields EFAULT for supported flags and EINVAL for unsupported ones (the
/// probe libseccomp uses as well). Nothing is attached either way.
pub(crate) fn filter_flags_supported(flags: u32) -> bool {
    // WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER.
    let flags = if flags & WAIT_KILLABLE_RECV != 0 {
        flags | NEW_LISTENER
    } else {
        flags
    };
    // SAFETY: seccomp(2) with a NULL program pointer only validates the flags
    // and then fails with EFAULT reading the program; no memory is touched.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    rc < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// True when the kernel implements the seccomp return action `action`
/// (a `SECCOMP_RET_*` value without data).
pub(crate) fn action_supported(action: u32) -> bool {
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 from the pointer, which
    // points to a live local.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0 as libc::c_ulong,
            &action as *const u32,
        )
    };
    rc == 0
}
