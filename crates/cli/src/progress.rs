//! Docker-style transfer progress: one line per layer, redrawn in place
//! with bars on a terminal; plain lines (state changes only, no bars, no
//! escape codes) otherwise.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_engine::{LayerStatus, TransferProgress};

use crate::units::human_size;

/// Where progress goes: stdout for `pull`/`push`, stderr for the
/// auto-pull of `run`/`create` (their stdout is the container's).
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

pub struct ProgressPrinter {
    stream: Stream,
    tty: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Layer ids in the order their lines were printed.
    order: Vec<String>,
    last: HashMap<String, String>,
    drawn_at: HashMap<String, Instant>,
}

const BAR_WIDTH: usize = 50;
const REDRAW_EVERY: Duration = Duration::from_millis(100);

impl ProgressPrinter {
    pub fn new(stream: Stream) -> Self {
        use std::io::IsTerminal;
        let tty = match stream {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        };
        Self {
            stream,
            tty,
            state: Mutex::new(State::default()),
        }
    }

    fn write(&self, text: &str) {
        // Progress is best effort: a closed stream must not fail the transfer.
        let _ = match self.stream {
            Stream::Stdout => {
                let mut o = std::io::stdout().lock();
                o.write_all(text.as_bytes()).and_then(|()| o.flush())
            }
            Stream::Stderr => {
                let mut o = std::io::stderr().lock();
                o.write_all(text.as_bytes()).and_then(|()| o.flush())
            }
        };
    }

    /// Prints a line outside the layer area (`Digest: …`).
    pub fn line(&self, text: &str) {
        let mut st = lock(&self.state);
        st.order.clear();
        st.last.clear();
        drop(st);
        self.write(&format!("{text}\n"));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `[=====>     ]  1.2MB/3.4MB`, as Docker draws it.
pub fn bar(current: u64, total: u64) -> String {
    let numbers = format!("{:>8}/{}", human_size(current), human_size(total));
    if total == 0 {
        return numbers;
    }
    let filled = ((current.min(total) as f64 / total as f64) * BAR_WIDTH as f64) as usize;
    let bar = if filled >= BAR_WIDTH {
        "=".repeat(BAR_WIDTH)
    } else {
        format!(
            "{}>{}",
            "=".repeat(filled),
            " ".repeat(BAR_WIDTH - filled - 1)
        )
    };
    format!("[{bar}] {numbers}")
}

impl TransferProgress for ProgressPrinter {
    fn header(&self, line: &str) {
        self.line(line);
    }

    fn layer(&self, id: &str, status: LayerStatus) {
        let mut st = lock(&self.state);
        let text = match status.progress() {
            Some((c, t)) => format!("{id}: {} {}", status.message(), bar(c, t)),
            None => format!("{id}: {}", status.message()),
        };
        if !self.tty {
            // Plain output: state changes only, as Docker without a terminal.
            if status.progress().is_some() || st.last.get(id) == Some(&text) {
                return;
            }
            st.last.insert(id.to_string(), text.clone());
            drop(st);
            self.write(&format!("{text}\n"));
            return;
        }
        let now = Instant::now();
        if let Some((c, t)) = status.progress() {
            let recent = st
                .drawn_at
                .get(id)
                .is_some_and(|at| now.duration_since(*at) < REDRAW_EVERY);
            if recent && c < t {
                return;
            }
        }
        st.drawn_at.insert(id.to_string(), now);
        st.last.insert(id.to_string(), text.clone());
        match st.order.iter().position(|i| i == id) {
            None => {
                st.order.push(id.to_string());
                drop(st);
                self.write(&format!("{text}\n"));
            }
            Some(pos) => {
                let up = st.order.len() - pos;
                drop(st);
                // Up to the layer's line, clear it, write, back down.
                self.write(&format!("\x1b[{up}A\r\x1b[2K{text}\r\x1b[{up}B"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_look_like_dockers() {
        assert_eq!(bar(0, 100), format!("[>{}]       0B/100B", " ".repeat(49)));
        assert_eq!(
            bar(50, 100),
            format!("[{}>{}]      50B/100B", "=".repeat(25), " ".repeat(24))
        );
        assert_eq!(bar(100, 100), format!("[{}]     100B/100B", "=".repeat(50)));
    }
}
