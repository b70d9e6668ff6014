//! Helpers shared by the root tests: compile a JSON spec, run busybox with
//! the filter loaded right before execve.
#![allow(dead_code)] // each test binary uses a different subset

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::sync::Arc;

use berth_seccomp::{compile, parse_spec, SeccompError, SeccompProgram};
use berth_testutil::BUSYBOX;
use serde_json::{json, Value};

pub fn program(value: Value) -> Arc<SeccompProgram> {
    Arc::new(compile(&parse_spec(&value).expect("valid spec")).expect("compiles"))
}

/// Errno the child reports through `Command::spawn` when `load` fails.
pub fn load_errno(err: &SeccompError) -> io::Error {
    match err {
        SeccompError::LoadNotPermitted { .. } => io::Error::from_raw_os_error(libc::EACCES),
        _ => io::Error::from_raw_os_error(libc::EIO),
    }
}

/// Runs busybox with `args` under `program`, loaded in the child right before execve.
pub fn run_filtered(program: &Arc<SeccompProgram>, args: &[&str]) -> Output {
    let program = Arc::clone(program);
    let mut command = Command::new(BUSYBOX);
    command.args(args);
    // SAFETY: the hook only calls SeccompProgram::load, which neither
    // allocates nor takes locks, and builds an io::Error from an errno.
    unsafe {
        command.pre_exec(move || program.load().map(drop).map_err(|e| load_errno(&e)));
    }
    command.output().expect("spawn busybox")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The filtered command failed, and its stderr shows the errno's message.
pub fn assert_fails_with(out: &Output, message: &str) {
    assert!(!out.status.success(), "succeeded under the filter");
    assert!(stderr(out).contains(message), "{}", stderr(out));
}

pub fn mkdir_rule(action: &str, errno_ret: Option<u32>) -> Value {
    let mut rule = json!({"names": ["mkdir", "mkdirat"], "action": action});
    if let Some(errno) = errno_ret {
        rule["errnoRet"] = json!(errno);
    }
    json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
}
