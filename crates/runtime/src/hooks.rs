//! OCI hooks: each gets the container's state JSON on stdin, runs with its
//! own args and env, and is killed when its `timeout` passes.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Hooks};

use crate::error::{HookFailure, RuntimeError};

/// The six hook points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    pub fn select(self, hooks: &Hooks) -> &[Hook] {
        #[allow(deprecated)]
        let list = match self {
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

/// Whether `spec` has any hook of `kind`.
pub fn has(spec: &oci_spec::runtime::Spec, kind: HookKind) -> bool {
    spec.hooks()
        .as_ref()
        .is_some_and(|h| !kind.select(h).is_empty())
}

/// Runs every hook of `kind` in order; the first failure stops the rest.
pub fn run(
    spec: &oci_spec::runtime::Spec,
    kind: HookKind,
    state_json: &[u8],
) -> Result<(), RuntimeError> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    for (index, hook) in kind.select(hooks).iter().enumerate() {
        run_one(hook, state_json).map_err(|source| RuntimeError::Hook {
            hook: kind.name(),
            index,
            path: hook.path().clone(),
            source,
        })?;
    }
    Ok(())
}

fn run_one(hook: &Hook, state_json: &[u8]) -> Result<(), HookFailure> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some(first) = args.first() {
            cmd.arg0(first);
        }
        cmd.args(args.iter().skip(1));
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(HookFailure::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores its stdin may exit before reading it: EPIPE
        // is not a failure of the hook.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .map(|t| (t, Instant::now() + Duration::from_secs(t.max(0) as u64)));
    let mut pause = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(HookFailure::Spawn(e)),
        }
        if let Some((secs, deadline)) = deadline {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HookFailure::Timeout(secs));
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    Err(HookFailure::Failed {
        status: status.to_string(),
        stderr: stderr.trim().to_string(),
    })
}
