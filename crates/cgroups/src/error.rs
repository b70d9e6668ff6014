//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// A broad category for an error, which the CLI maps to exit codes and the
/// API to HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A file, directory or controller is not there.
    NotFound,
    /// A caller-supplied value (path, resource, key) is invalid.
    InvalidArgument,
    /// The kernel refused a value because something is in use
    /// (`EBUSY`, e.g. a memory limit below current usage).
    Busy,
    /// Not allowed (`EPERM`/`EACCES`).
    PermissionDenied,
    /// The kernel or hierarchy lacks the feature.
    Unsupported,
    /// Waiting for the kernel (e.g. to finish freezing) took too long.
    Timeout,
    /// Anything else.
    Other,
}

/// Errors from creating, configuring or inspecting cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: read {path}: {}", os_msg(.source))]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: write {value} to {path}: {}", os_msg(.source))]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: mkdir {path}: {}", os_msg(.source))]
    Mkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: rmdir {path}: {}", os_msg(.source))]
    Rmdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: statfs {path}: {source}")]
    Statfs {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cgroup: {path} is not a cgroup filesystem (f_type {fs_type:#x})")]
    NotCgroupFs { path: PathBuf, fs_type: i64 },
    #[error("cgroup: parse {value:?} from {path}: {reason}")]
    Parse {
        path: PathBuf,
        value: String,
        reason: String,
    },
    #[error("cgroup: invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: PathBuf, reason: String },
    #[error("cgroup: invalid linux.resources.{field} {value:?}: {reason}")]
    InvalidResource {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("cgroup: {what} needs the {controller} controller, which is not available at {path}")]
    ControllerMissing {
        controller: String,
        what: String,
        path: PathBuf,
    },
    #[error("cgroup: no {what} hierarchy is mounted")]
    NoHierarchy { what: String },
    #[error("cgroup: {syscall} for the device program on {path}: {}", os_msg(.source))]
    Bpf {
        syscall: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: bpf(BPF_PROG_LOAD) of the device program for {path}: {}; verifier: {verifier_log}", os_msg(.source))]
    BpfLoad {
        path: PathBuf,
        verifier_log: String,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: {path} did not become {state} within {waited_ms} ms")]
    Timeout {
        path: PathBuf,
        state: &'static str,
        waited_ms: u64,
    },
}

impl CgroupError {
    /// The broad category of this error.
    /// Whether this is a mkdir, read or write that failed because a
    /// directory on the path no longer exists (ENOENT).
    pub fn is_vanished_dir(&self) -> bool {
        match self {
            CgroupError::Mkdir { source, .. }
            | CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            CgroupError::Read { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Mkdir { source, .. }
            | CgroupError::Rmdir { source, .. }
            | CgroupError::Bpf { source, .. }
            | CgroupError::BpfLoad { source, .. } => kind_of_io(source),
            CgroupError::Statfs { source, .. } => kind_of_io(&io::Error::from(*source)),
            CgroupError::NotCgroupFs { .. } | CgroupError::NoHierarchy { .. } => {
                ErrorKind::Unsupported
            }
            CgroupError::ControllerMissing { .. } => ErrorKind::Unsupported,
            CgroupError::Parse { .. } => ErrorKind::Other,
            CgroupError::InvalidPath { .. } | CgroupError::InvalidResource { .. } => {
                ErrorKind::InvalidArgument
            }
            CgroupError::Timeout { .. } => ErrorKind::Timeout,
        }
    }
}

/// The errno's description without std's " (os error N)" suffix:
/// "Device or resource busy".
fn os_msg(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

fn kind_of_io(err: &io::Error) -> ErrorKind {
    match err.raw_os_error() {
        Some(libc::ENOENT) => ErrorKind::NotFound,
        Some(libc::EBUSY) => ErrorKind::Busy,
        Some(libc::EPERM) | Some(libc::EACCES) => ErrorKind::PermissionDenied,
        Some(libc::EINVAL) | Some(libc::ERANGE) => ErrorKind::InvalidArgument,
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => ErrorKind::Unsupported,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_value_and_errno() {
        let err = CgroupError::Write {
            path: PathBuf::from("/sys/fs/cgroup/memory/berth/x/memory.limit_in_bytes"),
            value: "104857600".to_string(),
            source: io::Error::from_raw_os_error(libc::EBUSY),
        };
        assert_eq!(
            err.to_string(),
            "cgroup: write 104857600 to /sys/fs/cgroup/memory/berth/x/memory.limit_in_bytes: \
             Device or resource busy"
        );
        assert_eq!(err.kind(), ErrorKind::Busy);
        assert!(std::error::Error::source(&err).is_some());
        let err = CgroupError::Read {
            path: PathBuf::from("/x"),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
