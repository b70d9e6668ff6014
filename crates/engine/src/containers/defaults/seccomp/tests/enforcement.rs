//! The default profile enforced by the kernel: a forked child loads the
//! compiled filter (with no_new_privs, as a container's init does) and
//! reports the errno of one syscall as its exit status.

use berth_seccomp::SeccompProgram;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use super::resolve;
use crate::containers::defaults::seccomp::{host_arch, host_kernel_version};

fn program(extra_caps: &[&str]) -> SeccompProgram {
    let seccomp = resolve(extra_caps, host_arch(), host_kernel_version().unwrap());
    berth_seccomp::compile(&seccomp).unwrap()
}

/// Runs `call` in a child under `program` and returns the errno it failed
/// with, 0 when it succeeded.
fn errno_under(program: &SeccompProgram, call: fn() -> libc::c_long) -> i32 {
    // SAFETY: the child only calls prctl, seccomp (SeccompProgram::load does
    // not allocate or lock), `call` (one raw syscall) and _exit: all
    // async-signal-safe, as required after fork in a threaded process.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            // SAFETY: prctl with integer arguments touches no memory of ours.
            let code = if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                200
            } else if program.load().is_err() {
                201
            } else if call() < 0 {
                // SAFETY: reads this thread's errno.
                unsafe { *libc::__errno_location() }
            } else {
                0
            };
            // SAFETY: ends the child without running the parent's atexit
            // handlers or destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
            WaitStatus::Exited(_, code) => {
                assert!(code < 200, "child setup failed with {code}");
                code
            }
            other => panic!("child ended with {other:?}"),
        },
    }
}

fn unshare_uts() -> libc::c_long {
    // SAFETY: unshare takes flags only; the new namespace dies with the child.
    libc::c_long::from(unsafe { libc::unshare(libc::CLONE_NEWUTS) })
}

fn clone3_null() -> libc::c_long {
    // SAFETY: clone3 with a null argument of size 0 creates nothing: the
    // kernel refuses it (EINVAL) once the filter lets it through.
    unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) }
}

fn personality_query() -> libc::c_long {
    // SAFETY: 0xffffffff only queries the persona.
    libc::c_long::from(unsafe { libc::personality(0xffff_ffff) })
}

fn personality_bsd() -> libc::c_long {
    // SAFETY: sets the persona of the child only, which exits right after.
    libc::c_long::from(unsafe { libc::personality(0x0006) })
}

fn socket_vsock() -> libc::c_long {
    // SAFETY: creates (or fails to create) a socket the child's exit closes.
    libc::c_long::from(unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0) })
}

fn socket_unix() -> libc::c_long {
    // SAFETY: as above.
    libc::c_long::from(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) })
}

fn keyctl() -> libc::c_long {
    // SAFETY: KEYCTL_GET_KEYRING_ID (0) of the thread keyring (-1), no create.
    unsafe { libc::syscall(libc::SYS_keyctl, 0, -1, 0) }
}

#[test]
fn unshare_needs_cap_sys_admin() {
    berth_testutil::require_root!();
    assert_eq!(errno_under(&program(&[]), unshare_uts), libc::EPERM);
    assert_eq!(errno_under(&program(&["CAP_SYS_ADMIN"]), unshare_uts), 0);
}

#[test]
fn clone3_fails_with_enosys_without_cap_sys_admin() {
    berth_testutil::require_root!();
    assert_eq!(errno_under(&program(&[]), clone3_null), libc::ENOSYS);
    assert_eq!(
        errno_under(&program(&["CAP_SYS_ADMIN"]), clone3_null),
        libc::EINVAL
    );
}

#[test]
fn argument_filters_and_default_deny() {
    let p = program(&[]);
    assert_eq!(errno_under(&p, personality_query), 0);
    assert_eq!(errno_under(&p, personality_bsd), libc::EPERM);
    assert_eq!(errno_under(&p, socket_unix), 0);
    assert_eq!(errno_under(&p, socket_vsock), libc::EPERM);
    // Not in the allow list at all: the default action answers.
    assert_eq!(errno_under(&p, keyctl), libc::EPERM);
}
