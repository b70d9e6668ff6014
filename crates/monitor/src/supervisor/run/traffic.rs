//! The poll loop's traffic: what is readable or writable, output to the
//! log and the clients, input to the container, reaping children.

use std::os::fd::AsFd;
use std::time::{Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use super::{Source, Supervisor, READ_CHUNK, STDIN_HIGH_WATER};
use crate::error::MonitorError;
use crate::files;
use crate::supervisor::attach::ClientInput;
use crate::supervisor::log;
use crate::supervisor::trim::IDLE_AFTER;

/// How often a restarting container's monitor looks for the stop marker.
const STOP_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

impl Supervisor {
    pub(super) fn poll_once(&mut self) -> Result<(), MonitorError> {
        let now = Instant::now();
        // While waiting to restart, look for the stop marker every
        // STOP_CHECK: a stop must not wait out a backoff of up to a minute.
        let mut deadline: Option<Instant> = self.restart_at.map(|t| t.min(now + STOP_CHECK));
        if let Some(h) = &self.health {
            deadline = Some(deadline.map_or(h.deadline(), |d| d.min(h.deadline())));
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                // Round up so that the timer has passed when poll returns.
                let ms = d.saturating_duration_since(now).as_millis() + 1;
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        // The OOM counter is located once nothing is to be done (a
        // container that is over at once is not kept waiting for it).
        let timeout = if self.oom_pending {
            PollTimeout::ZERO
        } else {
            timeout
        };
        let ready = self.poll_sources(timeout)?;
        if self.oom_pending && ready.iter().all(|(_, revents)| revents.is_empty()) {
            self.locate_oom();
            return Ok(());
        }
        let mut outputs = Vec::new();
        let mut clients = Vec::new();
        let (mut signals, mut listener, mut stdin, mut probe) = (false, false, false, false);
        for (source, revents) in ready {
            if revents.is_empty() {
                continue;
            }
            match source {
                Source::Signals => signals = true,
                Source::Listener => listener = true,
                Source::Output(i) => outputs.push(i),
                Source::Stdin => stdin = true,
                Source::Client(i) => clients.push((i, revents)),
                Source::Probe => probe = true,
            }
        }
        for &i in outputs.iter().rev() {
            self.read_output(i, false);
        }
        if probe {
            if let Some(h) = &mut self.health {
                h.read_output();
            }
        }
        if stdin {
            self.write_stdin();
        }
        let mut input = Vec::new();
        for &(i, revents) in clients.iter().rev() {
            if revents.contains(PollFlags::POLLOUT) {
                self.attach.flush(i);
            }
            if revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                self.attach.read_client(i, &mut input);
            }
        }
        for i in input {
            self.client_input(i);
        }
        if listener {
            self.attach.accept();
        }
        if signals {
            self.handle_signals();
        }
        if let Some(h) = &mut self.health {
            if Instant::now() >= h.deadline() {
                h.tick(&self.runtime);
            }
        }
        let stop_requested = self.restart_at.is_some()
            && files::path(&self.config.state_dir, files::STOPPING).exists();
        if stop_requested || self.restart_at.is_some_and(|t| Instant::now() >= t) {
            self.restart_at = None;
            self.restart();
        }
        Ok(())
    }

    /// poll(2), handing code pages back first when nothing happened for
    /// [`IDLE_AFTER`] (see [`super::super::trim`]).
    fn wait(&self, fds: &mut [PollFd<'_>], timeout: PollTimeout) -> nix::Result<i32> {
        let idle = PollTimeout::try_from(IDLE_AFTER).unwrap_or(PollTimeout::MAX);
        let first = if timeout.is_none() || timeout > idle {
            idle
        } else {
            timeout
        };
        let n = poll(fds, first)?;
        if n > 0 || first == timeout {
            return Ok(n);
        }
        let rest = if timeout.is_none() {
            -1
        } else {
            i32::from(timeout).saturating_sub(i32::from(idle))
        };
        let n = self.code_pages.release_and_poll(fds, rest);
        if n < 0 {
            return Err(Errno::last());
        }
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }

    pub(super) fn poll_sources(
        &self,
        timeout: PollTimeout,
    ) -> Result<Vec<(Source, PollFlags)>, MonitorError> {
        let mut sources = vec![Source::Signals, Source::Listener];
        let mut fds = vec![
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.attach.listener(), PollFlags::POLLIN),
        ];
        if let Some(io) = &self.io {
            for (i, (_, fd)) in io.outputs.iter().enumerate() {
                sources.push(Source::Output(i));
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            if let Some(fd) = &io.stdin {
                if !self.stdin_buf.is_empty() {
                    sources.push(Source::Stdin);
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                }
            }
        }
        let take_input = self.stdin_buf.len() < STDIN_HIGH_WATER;
        for (i, c) in self.attach.clients.iter().enumerate() {
            let mut events = PollFlags::empty();
            if take_input {
                events |= PollFlags::POLLIN;
            }
            if c.wants_write() {
                events |= PollFlags::POLLOUT;
            }
            sources.push(Source::Client(i));
            fds.push(PollFd::new(c.fd.as_fd(), events));
        }
        if let Some(fd) = self.health.as_ref().and_then(|h| h.output_fd()) {
            sources.push(Source::Probe);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        match self.wait(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                return Err(MonitorError::Sys {
                    what: "poll",
                    source: e,
                })
            }
        }
        Ok(sources
            .into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .collect())
    }

    /// Reads output `index` until it would block (or, when `drain`, until
    /// nothing is left), passing it to the log and the clients; closes it
    /// at EOF.
    pub(super) fn read_output(&mut self, index: usize, drain: bool) {
        let Some(io) = &mut self.io else { return };
        let Some((stream, fd)) = io.outputs.get(index) else {
            return;
        };
        let stream = *stream;
        // Allocated on first output: an idle container's monitor keeps none.
        if self.buf.is_empty() {
            self.buf.resize(READ_CHUNK, 0);
        }
        let mut closed = false;
        // A bounded number of reads keeps one busy stream from starving
        // the rest of the loop.
        // Draining after the exit is bounded too: a process left behind
        // without a pid namespace may write on forever.
        let mut rounds = if drain { 4096 } else { 8 };
        while rounds > 0 {
            rounds -= 1;
            match nix::unistd::read(fd, &mut self.buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    let now = SystemTime::now();
                    if let Err(e) = self.log.write(stream, &self.buf[..n], now) {
                        log(&format!("log: {e}"));
                    }
                    self.attach.broadcast(stream, &self.buf[..n]);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                // EIO: the pty's other side is closed.
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            if let Err(e) = self.log.flush_partial(stream, SystemTime::now()) {
                log(&format!("log: {e}"));
            }
            io.outputs.remove(index);
        }
    }

    pub(super) fn write_stdin(&mut self) {
        let Some(io) = &mut self.io else { return };
        let Some(fd) = &io.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match nix::unistd::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    // The container closed its stdin: nothing more goes in.
                    self.stdin_buf.clear();
                    io.stdin = None;
                    return;
                }
            }
        }
        if self.stdin_closing {
            self.stdin_closing = false;
            self.stdin_closed = true;
            io.stdin = None;
        }
    }

    pub(super) fn client_input(&mut self, input: ClientInput) {
        match input {
            ClientInput::Stdin(data) => {
                let accepting = self.io.as_ref().is_some_and(|io| io.stdin.is_some());
                if accepting && !self.stdin_closing {
                    self.stdin_buf.extend_from_slice(&data);
                    self.write_stdin();
                }
            }
            ClientInput::Resize { rows, cols } => {
                if let Some(pty) = self.io.as_ref().and_then(|io| io.pty) {
                    crate::supervisor::stdio::resize(pty, rows, cols);
                }
            }
            ClientInput::StdinDone => {
                // With a tty the pty stays open for output; only pipes close.
                if self.config.stdin_once && !self.config.tty && !self.stdin_closed {
                    self.stdin_closing = true;
                    self.write_stdin();
                }
            }
        }
    }

    pub(super) fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
            if signo != libc::SIGCHLD {
                log(&format!("ignoring signal {signo}"));
            }
        }
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log(&format!("waitpid: {e}"));
                    return;
                }
            };
            if self.current.as_ref().is_some_and(|c| c.pid == pid) {
                self.container_exited(code);
                if self.done.is_some() {
                    // The runtime's delete may run already: its status is
                    // for `finish` to wait for, not for this loop to take.
                    return;
                }
            } else if let Some(h) = &mut self.health {
                h.reaped(pid, code);
            }
        }
    }
}
