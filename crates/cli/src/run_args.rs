//! `berth create` and `berth run` flags (Docker 28's names, short forms,
//! value syntax and defaults) and their translation into the engine's
//! [`CreateRequest`], with Docker's error messages.
//!
//! Flag values are kept as the strings the user typed and parsed in
//! [`CreateArgs::to_request`]: Docker reports a bad value as
//! `invalid argument "x" for "-m, --memory" flag: invalid size: 'x'`, which
//! clap's own value parsers cannot produce.
//!
//! The reference is Docker itself: the tests compare every client-side
//! error text with the `docker` CLI's, and the requests with the bodies the
//! `docker` CLI posts to a stand-in daemon. Checks Docker's daemon makes on
//! a request's syntax alone (restart policy, names, signals, mount specs,
//! capabilities, security options) are made here too, so that `berth run`
//! fails before anything is created; checks that need the host (bind
//! sources, CPU counts, cgroup support) are the engine's.

mod flags;
mod mounts;
mod network;
mod ports;
mod request;
mod resources;
mod security;
pub(crate) mod values;

#[cfg(test)]
mod tests;

use berth_engine::containers::model::CreateRequest;

pub use flags::{CreateArgs, RunArgs};
// The handlers read `networks()`; unused until they are wired in.
#[allow(unused_imports)]
pub use network::NetworkAttachment;
pub use values::KvFileError;

/// A flag value Docker would refuse, with Docker's message.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// The value does not parse (pflag's message for a failed `Set`; the
    /// value quoted like Go's `%q`).
    #[error("invalid argument {value:?} for \"{flag}\" flag: {reason}")]
    InvalidArgument {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// The value parses but Docker's CLI or daemon rejects it.
    #[error("{message}")]
    InvalidValue { flag: &'static str, message: String },
    /// Two flags that cannot be used together.
    #[error("{message}")]
    Conflict { message: String },
    /// `--env-file` or `--label-file` could not be read or parsed.
    #[error("{source}")]
    KeyValueFile {
        flag: &'static str,
        #[source]
        source: KvFileError,
    },
    /// `--security-opt seccomp=FILE` could not be read.
    #[error(
        "opening seccomp profile ({path}) failed: open {path}: {}",
        values::go_io_error(source)
    )]
    SeccompProfileRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `--security-opt seccomp=FILE` is not JSON.
    #[error("compacting json for seccomp profile ({path}) failed: {source}")]
    SeccompProfileJson {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// A Docker feature berth does not have on this platform.
    #[error("{message}")]
    Unsupported { flag: &'static str, message: String },
}

impl FlagError {
    /// How Docker reports a bad flag: `berth: <message>` and a pointer to
    /// the command's help, exit status 125.
    pub fn to_cli_error(&self, command: &str) -> crate::output::CliError {
        crate::output::CliError::usage(format!("berth: {self}\nSee 'berth {command} --help'."))
    }

    fn invalid_argument(flag: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            flag,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    fn invalid_value(flag: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidValue {
            flag,
            message: message.into(),
        }
    }

    fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
        }
    }
}

/// `--pull`: when to pull the image before creating the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull only when the image is not present (Docker's default).
    Missing,
    Always,
    Never,
}

impl CreateArgs {
    /// The image reference (the first positional argument).
    pub fn image(&self) -> &str {
        self.image_and_command
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The command and its arguments after the image (empty: the image's).
    pub fn command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or_default()
    }

    /// `--pull`, validated.
    pub fn pull_policy(&self) -> Result<PullPolicy, FlagError> {
        match self.pull.as_str() {
            "missing" | "" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(FlagError::invalid_value(
                "--pull",
                format!(
                    "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
                ),
            )),
        }
    }

    /// Warnings Docker prints (`WARNING: …`) for accepted but ineffective
    /// flags.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self
            .kernel_memory
            .as_deref()
            .is_some_and(|v| crate::units::ram_in_bytes(v).is_ok_and(|b| b > 0))
        {
            // Kernel memory accounting limits are gone from cgroup v2 and
            // deprecated in v1 since Linux 5.4; Docker drops the limit too.
            out.push("Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.".to_string());
        }
        let memory_set = self
            .memory
            .as_deref()
            .is_some_and(|v| crate::units::ram_in_bytes(v).is_ok_and(|b| b > 0));
        if self.oom_kill_disable && !memory_set {
            out.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".to_string());
        }
        out
    }
}

impl RunArgs {
    /// The create request for `run`: as for `create`, and with `-d` nothing
    /// is attached.
    pub fn to_request(&self) -> Result<CreateRequest, FlagError> {
        let mut request = self.create.to_request()?;
        if self.detach {
            if !self.create.attach.is_empty() {
                return Err(FlagError::conflict(
                    "conflicting options: cannot specify both --attach and --detach",
                ));
            }
            let config = &mut request.config;
            config.attach_stdin = false;
            config.attach_stdout = false;
            config.attach_stderr = false;
            config.stdin_once = false;
        }
        Ok(request)
    }

    /// `--detach-keys` as bytes (moby/term's `ToBytes`: `ctrl-p,ctrl-q`,
    /// single characters, `ctrl-@` … `ctrl-_`); `None` when not given.
    pub fn detach_keys(&self) -> Result<Option<Vec<u8>>, FlagError> {
        self.detach_keys
            .as_deref()
            .map(parse_detach_keys)
            .transpose()
    }
}

/// `container:<name|id>` → the name or id.
fn container_ref(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// An integer flag (pflag's `strconv.ParseInt(s, 0, bits)`).
fn int_flag(flag: &'static str, value: &str, bits: u32) -> Result<i64, FlagError> {
    values::go_int(value, bits).map_err(|r| FlagError::invalid_argument(flag, value, r))
}

/// A size flag (`opts.MemBytes`: go-units `RAMInBytes`).
fn size_flag(flag: &'static str, value: &str) -> Result<i64, FlagError> {
    crate::units::ram_in_bytes(value).map_err(|r| FlagError::invalid_argument(flag, value, r))
}

/// `--detach-keys` as bytes (moby/term's `ToBytes`: `ctrl-p,ctrl-q`, single
/// characters, `ctrl-@` … `ctrl-_`), for `run`, `start`, `attach` and `exec`.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, FlagError> {
    let mut codes = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            codes.push(key.as_bytes()[0]);
            continue;
        }
        let code = key
            .strip_prefix("ctrl-")
            .filter(|c| c.len() == 1)
            .map(|c| c.as_bytes()[0])
            .and_then(|c| match c {
                b'@' => Some(0),
                b'a'..=b'z' => Some(c - b'a' + 1),
                b'[' => Some(27),
                b'\\' => Some(28),
                b']' => Some(29),
                b'^' => Some(30),
                b'_' => Some(31),
                _ => None,
            });
        match code {
            Some(code) => codes.push(code),
            None => {
                return Err(FlagError::invalid_value(
                    "--detach-keys",
                    format!("Invalid detach keys ({keys}) provided"),
                ))
            }
        }
    }
    Ok(codes)
}
