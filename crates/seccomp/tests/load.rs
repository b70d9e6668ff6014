//! Loads real filters into forked children that then exec the host's static
//! busybox, and checks what the kernel does to their syscalls. Root only:
//! loading without no_new_privs needs CAP_SYS_ADMIN.

mod common;

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

use berth_seccomp::SeccompError;
use berth_testutil::{require_root, TempDir, BUSYBOX};
use common::{assert_fails_with, load_errno, mkdir_rule, program, run_filtered, stderr, stdout};
use serde_json::{json, Value};

#[test]
fn errno_rule_denies_mkdir_and_leaves_other_syscalls_alone() {
    require_root!();
    let dir = TempDir::new("seccomp-errno").expect("tempdir");
    let target = dir.join("denied");
    let target = target.to_str().expect("utf-8 path");
    let filtered = program(mkdir_rule("SCMP_ACT_ERRNO", None));

    let out = run_filtered(&filtered, &["mkdir", target]);
    assert_fails_with(&out, "Operation not permitted");
    assert!(!dir.join("denied").exists());

    let file = dir.join("file");
    let script = format!("echo hello > {0} && cat {0}", file.display());
    let out = run_filtered(&filtered, &["sh", "-c", &script]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");

    // The same mkdir works without the filter, so the filter made the difference.
    let out = Command::new(BUSYBOX)
        .args(["mkdir", target])
        .output()
        .expect("spawn");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn errno_ret_sets_the_returned_error() {
    require_root!();
    let dir = TempDir::new("seccomp-enosys").expect("tempdir");
    let target = dir.join("x");
    let filtered = program(mkdir_rule("SCMP_ACT_ERRNO", Some(libc::ENOSYS as u32)));
    let out = run_filtered(&filtered, &["mkdir", target.to_str().expect("utf-8")]);
    assert_fails_with(&out, "Function not implemented");
}

#[test]
fn trace_without_a_tracer_fails_the_call_with_enosys() {
    require_root!();
    // The kernel answers SECCOMP_RET_TRACE with ENOSYS when nothing traces
    // the process; errnoRet is the value a tracer would see.
    let dir = TempDir::new("seccomp-trace").expect("tempdir");
    let target = dir.join("x");
    let filtered = program(mkdir_rule("SCMP_ACT_TRACE", Some(7)));
    let out = run_filtered(&filtered, &["mkdir", target.to_str().expect("utf-8")]);
    assert_fails_with(&out, "Function not implemented");
    assert!(!target.exists());
}

/// `kill -0 $$` and `kill -URG $$` from busybox sh, under a rule on kill's
/// signal argument: reports which of the two went through.
fn kill_results(op: &str, value: u64, value_two: Option<u64>) -> (bool, bool) {
    let mut arg = json!({"index": 1, "value": value, "op": op});
    if let Some(v) = value_two {
        arg["valueTwo"] = json!(v);
    }
    let filtered = program(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [arg]}]
    }));
    let out = run_filtered(
        &filtered,
        &[
            "sh",
            "-c",
            "kill -0 $$ && echo sig0-ok; kill -URG $$ && echo urg-ok; true",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (zero, urg) = (text.contains("sig0-ok"), text.contains("urg-ok"));
    if !zero || !urg {
        assert!(
            stderr(&out).contains("Operation not permitted"),
            "{op}: {}",
            stderr(&out)
        );
    }
    (zero, urg)
}

#[test]
fn argument_rules_only_hit_matching_arguments() {
    require_root!();
    const URG: u64 = libc::SIGURG as u64; // 23 = 0b10111
                                          // (operator, value, valueTwo, signal 0 allowed, SIGURG allowed)
    let cases = [
        ("SCMP_CMP_EQ", URG, None, true, false),
        ("SCMP_CMP_NE", URG, None, false, true),
        ("SCMP_CMP_LT", 10, None, false, true),
        ("SCMP_CMP_LE", 0, None, false, true),
        ("SCMP_CMP_GT", 10, None, true, false),
        ("SCMP_CMP_GE", URG, None, true, false),
        ("SCMP_CMP_MASKED_EQ", 0x10, Some(0x10), true, false),
        ("SCMP_CMP_MASKED_EQ", 0x10, Some(0), false, true),
    ];
    for (op, value, value_two, zero_allowed, urg_allowed) in cases {
        assert_eq!(
            kill_results(op, value, value_two),
            (zero_allowed, urg_allowed),
            "{op} value={value} valueTwo={value_two:?}: (signal 0 allowed, SIGURG allowed)"
        );
    }
}

#[test]
fn default_errno_with_an_allowlist_runs_busybox() {
    require_root!();
    // What a static glibc busybox needs to start, run `true`/`echo` and exit,
    // plus names this libseccomp may not know (skipped with a warning).
    let allowed = [
        "execve",
        "brk",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "readlink",
        "readlinkat",
        "uname",
        "mprotect",
        "mmap",
        "munmap",
        "getrandom",
        "exit",
        "exit_group",
        "write",
        "writev",
        "read",
        "close",
        "fstat",
        "newfstatat",
        "getuid",
        "geteuid",
        "getpid",
        "ioctl",
        "rt_sigaction",
        "rt_sigprocmask",
        "futex",
        "berth_future_syscall",
    ];
    let filtered = program(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EACCES,
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    }));
    assert_eq!(
        filtered.warnings(),
        ["seccomp: syscalls[0].names[29]: unknown syscall \"berth_future_syscall\" skipped"]
    );

    let out = run_filtered(&filtered, &["true"]);
    assert!(
        out.status.success(),
        "busybox true failed: {:?} {}",
        out.status,
        stderr(&out)
    );
    let out = run_filtered(&filtered, &["echo", "allowed"]);
    assert_eq!(stdout(&out), "allowed\n", "{}", stderr(&out));

    let dir = TempDir::new("seccomp-allowlist").expect("tempdir");
    let out = run_filtered(
        &filtered,
        &["mkdir", dir.join("x").to_str().expect("utf-8")],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Permission denied"),
        "defaultErrnoRet not used: {}",
        stderr(&out)
    );
}

/// errno of a raw syscall with no arguments.
fn raw_syscall_errno(number: libc::c_long) -> i32 {
    // SAFETY: both numbers used below take no pointer arguments: 1000 does
    // not exist and getppid has none.
    let rc = unsafe { libc::syscall(number, 0, 0, 0) };
    if rc < 0 {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    require_root!();
    let filtered = program(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EACCES,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": [
            "execve", "brk", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "prlimit64", "readlink",
            "uname", "mprotect", "mmap", "munmap", "getrandom", "exit", "exit_group", "write", "read", "close",
            "fstat", "newfstatat", "getuid", "rt_sigaction", "rt_sigprocmask", "futex"
        ], "action": "SCMP_ACT_ALLOW"}]
    }));
    let mut command = Command::new(BUSYBOX);
    command.arg("true");
    // SAFETY: the hook calls load (no allocation, no locks) and raw syscalls.
    unsafe {
        command.pre_exec(move || {
            filtered.load().map_err(|e| load_errno(&e))?;
            // Above the profile's largest syscall (rseq): ENOSYS, so programs fall back.
            let newer = raw_syscall_errno(1000);
            // Below it but not allowed: the default action's errno.
            let older = raw_syscall_errno(libc::SYS_getppid);
            if newer == libc::ENOSYS && older == libc::EACCES {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(10_000 + newer * 100 + older))
            }
        });
    }
    let status = command.status().map_err(|e| {
        let code = e.raw_os_error().unwrap_or(0) - 10_000;
        format!(
            "syscall 1000 gave errno {}, getppid gave errno {}",
            code / 100,
            code % 100
        )
    });
    assert!(status.expect("filter behaved").success());
}

#[test]
fn kill_and_trap_actions_deliver_sigsys() {
    require_root!();
    let dir = TempDir::new("seccomp-kill").expect("tempdir");
    let target = dir.join("x");
    for action in [
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
    ] {
        let out = run_filtered(
            &program(mkdir_rule(action, None)),
            &["mkdir", target.to_str().expect("utf-8")],
        );
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGSYS),
            "{action}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert!(!target.exists());
    }
    // SCMP_ACT_LOG lets the call through.
    let out = run_filtered(
        &program(mkdir_rule("SCMP_ACT_LOG", None)),
        &["mkdir", target.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(target.is_dir());
}

#[test]
fn flags_are_passed_to_the_kernel() {
    require_root!();
    let filtered = program(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    }));
    let out = run_filtered(&filtered, &["cat", "/proc/self/status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = stdout(&out);
    assert!(
        status.lines().any(|l| l == "Seccomp:\t2"),
        "not in filter mode:\n{status}"
    );
    assert!(
        status.lines().any(|l| l == "Seccomp_filters:\t1"),
        "{status}"
    );
}

#[test]
fn load_needs_no_new_privs_or_cap_sys_admin() {
    require_root!();
    for set_no_new_privs in [false, true] {
        let filtered = program(mkdir_rule("SCMP_ACT_ERRNO", None));
        let mut command = Command::new(BUSYBOX);
        command.arg("true");
        // SAFETY: the hook makes async-signal-safe syscalls and calls
        // SeccompProgram::load, which neither allocates nor takes locks.
        unsafe {
            command.pre_exec(move || {
                // Dropping to an unprivileged uid clears CAP_SYS_ADMIN.
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if set_no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                filtered.load().map(drop).map_err(|e| load_errno(&e))
            });
        }
        let result = command.status();
        if set_no_new_privs {
            assert!(result.expect("spawn").success());
        } else {
            let err = result.expect_err("load succeeded without NNP or CAP_SYS_ADMIN");
            assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
        }
    }
    // The error says what is missing.
    let message = SeccompError::LoadNotPermitted {
        source: io::Error::from_raw_os_error(libc::EACCES),
    }
    .to_string();
    assert!(
        message.contains("needs no_new_privs or CAP_SYS_ADMIN"),
        "{message}"
    );
}

/// getpid through the 32-bit int 0x80 entry (i386 syscall 20).
#[cfg(target_arch = "x86_64")]
fn i386_getpid() -> i64 {
    let ret: i64;
    // SAFETY: int 0x80 with eax=20 is i386 getpid, which takes no arguments
    // and touches no memory; the registers the entry path may clobber are declared.
    unsafe {
        std::arch::asm!("int 0x80", inlateout("rax") 20i64 => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "x86_64")]
#[test]
fn syscalls_of_architectures_not_in_the_filter_are_killed() {
    require_root!();
    let run = |archs: Value| {
        let filtered = program(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": archs}));
        let mut command = Command::new(BUSYBOX);
        command.arg("true");
        // SAFETY: the hook calls load (no allocation, no locks) and a raw syscall.
        unsafe {
            command.pre_exec(move || {
                filtered.load().map_err(|e| load_errno(&e))?;
                if i386_getpid() < 0 {
                    return Err(io::Error::from_raw_os_error(libc::ENOSYS));
                }
                Ok(())
            });
        }
        command.status()
    };
    // Control: with x86 in the filter the 32-bit call goes through.
    match run(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])) {
        Ok(status) if status.success() => {}
        other => {
            eprintln!(
                "SKIPPED: 32-bit syscalls do not work here without seccomp either: {other:?}"
            );
            return;
        }
    }
    let status = run(json!(["SCMP_ARCH_X86_64"])).expect("spawn");
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{status:?}");
}
#[test]
fn cached_programs_load_like_fresh_ones() {
    require_root!();
    let dir = TempDir::new("seccomp-cached-load").expect("tempdir");
    let spec = berth_seccomp::parse_spec(&mkdir_rule("SCMP_ACT_ERRNO", Some(libc::ENOSYS as u32)))
        .expect("spec");
    berth_seccomp::compile_cached(&spec, &dir.join("cache")).expect("fills the cache");
    let cached = std::sync::Arc::new(
        berth_seccomp::compile_cached(&spec, &dir.join("cache")).expect("from the cache"),
    );
    let out = run_filtered(&cached, &["mkdir", dir.join("x").to_str().expect("utf-8")]);
    assert_fails_with(&out, "Function not implemented");
}
