//! The OCI `listenerPath` protocol: the runtime connects to the seccomp
//! agent's unix socket and sends one message whose data is the container
//! process state (`ContainerProcessState`) and whose SCM_RIGHTS carry the
//! notify fd, named `seccompFd` in the state's `fds`.

use std::io::{IoSlice, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
use oci_spec::runtime::{ContainerProcessState, State, SECCOMP_FD_NAME};

use crate::SeccompError;

/// Sends the seccomp notify fd `fd` to the agent listening on
/// `listener_path`, together with the container's OCI state (`state_json`,
/// as `<runtime> state` prints it) and the spec's `listenerMetadata`.
pub fn send_to_listener(
    listener_path: &Path,
    fd: BorrowedFd<'_>,
    state_json: &[u8],
    metadata: &str,
) -> Result<(), SeccompError> {
    let path = listener_path.to_path_buf();
    let state: State =
        serde_json::from_slice(state_json).map_err(|source| SeccompError::ListenerState {
            path: path.clone(),
            source,
        })?;
    let mut process_state = ContainerProcessState::default();
    process_state
        .set_version(state.version().clone())
        .set_fds(vec![SECCOMP_FD_NAME.to_string()])
        .set_pid(state.pid().unwrap_or_default())
        .set_metadata((!metadata.is_empty()).then(|| metadata.to_string()))
        .set_state(state);
    let message =
        serde_json::to_vec(&process_state).map_err(|source| SeccompError::ListenerState {
            path: path.clone(),
            source,
        })?;

    let io_error = |operation| {
        let path = path.clone();
        move |source| SeccompError::Listener {
            path,
            operation,
            source,
        }
    };
    let mut stream = UnixStream::connect(listener_path).map_err(io_error("connecting"))?;
    let fds = [fd.as_raw_fd()];
    let sent = sendmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &[IoSlice::new(&message)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|errno| io_error("sending the notify fd with sendmsg")(errno.into()))?;
    // The fd travels with the first byte; a short send only leaves data.
    if let Some(rest) = message.get(sent..) {
        stream
            .write_all(rest)
            .map_err(io_error("sending the container state"))?;
    }
    Ok(())
}
