use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while compiling, loading or handing over a
/// seccomp filter. Messages name the offending field of the OCI
/// `linux.seccomp` object (`syscalls[3].args[0]`) so a user can find it in
/// their `config.json`.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A string in the spec is not one of the values the OCI spec allows
    /// (an operator, action, architecture or flag berth does not know).
    #[error("seccomp: {field}: unknown {kind} {value}")]
    UnknownValue {
        field: String,
        kind: &'static str,
        value: String,
    },

    /// A value is well-formed but cannot be used (out of range, missing, …).
    #[error("seccomp: {field}: {reason}")]
    InvalidValue { field: String, reason: String },

    /// The JSON object does not have the shape of `LinuxSeccomp`.
    #[error("seccomp: {field}: malformed")]
    Malformed {
        field: String,
        #[source]
        source: serde_json::Error,
    },

    /// This kernel does not support a requested filter flag.
    #[error("seccomp: {field}: {flag} is not supported by this kernel")]
    UnsupportedFlag { field: String, flag: &'static str },

    /// This kernel does not support a requested action.
    #[error("seccomp: {field}: action {action} is not supported by this kernel")]
    UnsupportedAction { field: String, action: &'static str },

    /// libseccomp refused an operation while the filter was being built.
    #[error("seccomp: {field}: {operation} failed")]
    Libseccomp {
        field: String,
        operation: &'static str,
        #[source]
        source: libseccomp::error::SeccompError,
    },

    /// The compiled program could not be read back from libseccomp.
    #[error("seccomp: exporting the BPF program: {operation} failed")]
    Export {
        operation: &'static str,
        #[source]
        source: io::Error,
    },

    /// The program is longer than the kernel accepts (BPF_MAXINSNS).
    #[error("seccomp: the compiled filter has {instructions} BPF instructions, the kernel accepts at most {max}")]
    TooLong { instructions: usize, max: usize },

    /// seccomp(2) returned EACCES: the caller has neither no_new_privs set nor
    /// CAP_SYS_ADMIN in its user namespace.
    #[error("seccomp: loading the filter with seccomp(SECCOMP_SET_MODE_FILTER) was refused: the process needs no_new_privs or CAP_SYS_ADMIN")]
    LoadNotPermitted {
        #[source]
        source: io::Error,
    },

    /// seccomp(2) failed for another reason.
    #[error(
        "seccomp: loading the filter with seccomp(SECCOMP_SET_MODE_FILTER, {flags:#x}) failed"
    )]
    Load {
        flags: u32,
        #[source]
        source: io::Error,
    },

    /// With SECCOMP_FILTER_FLAG_TSYNC, another thread of the process could
    /// not be switched to the new filter.
    #[error("seccomp: SECCOMP_FILTER_FLAG_TSYNC: thread {thread} could not be synchronised to the new filter")]
    TsyncFailed { thread: libc::c_long },

    /// The container state handed to [`crate::send_to_listener`] is not an OCI state document.
    #[error("seccomp: listener {path}: the container state is not valid OCI state JSON")]
    ListenerState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// Talking to the seccomp agent at `listenerPath` failed.
    #[error("seccomp: listener {path}: {operation} failed")]
    Listener {
        path: PathBuf,
        operation: &'static str,
        #[source]
        source: io::Error,
    },
}
