//! Test-only fault injection for the crash-safety tests of volume
//! operations. Inert unless `BERTH_FAULT_INJECT` is set, which nothing
//! but the test suite does:
//!
//! `BERTH_FAULT_INJECT=<point>:after=<N>[,<point>:after=<N>…]`
//!
//! makes the process SIGKILL itself once the operation at `<point>` has
//! finished `N` items (files copied, archive entries written or
//! unpacked), the closest a test can get to a power cut or an OOM kill at
//! a chosen moment. Points: `volume-copy-up`, `volume-export`,
//! `volume-import`, `volume-snapshot-create`, `volume-snapshot-restore`.

/// The environment variable naming the faults to inject.
pub(crate) const ENV: &str = "BERTH_FAULT_INJECT";

/// Copy-up of an image directory into a volume.
pub(crate) const COPY_UP: &str = "volume-copy-up";
/// Writing a volume's archive.
pub(crate) const EXPORT: &str = "volume-export";
/// Unpacking an archive into a volume.
pub(crate) const IMPORT: &str = "volume-import";
/// Copying a volume into a snapshot.
pub(crate) const SNAPSHOT_CREATE: &str = "volume-snapshot-create";
/// Copying a snapshot back for a restore.
pub(crate) const SNAPSHOT_RESTORE: &str = "volume-snapshot-restore";

/// Counts the items of one operation and kills the process at the
/// injected one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Countdown {
    /// Items still allowed; `None`: no fault at this point.
    left: Option<u64>,
}

impl Countdown {
    /// The countdown for `point` as `BERTH_FAULT_INJECT` asks.
    pub(crate) fn new(point: &str) -> Self {
        let left = std::env::var(ENV)
            .ok()
            .and_then(|spec| after_for(&spec, point));
        Self { left }
    }

    /// One item done: dies here if it was the last one allowed.
    pub(crate) fn tick(&mut self) {
        let Some(left) = self.left.as_mut() else {
            return;
        };
        *left = left.saturating_sub(1);
        if *left == 0 {
            // What a crash loses: buffered output is not flushed, no
            // destructor runs, locks go with the process.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// `N` of `<point>:after=N` in a comma-separated spec.
fn after_for(spec: &str, point: &str) -> Option<u64> {
    spec.split(',').find_map(|item| {
        let (name, arg) = item.trim().split_once(':')?;
        if name != point {
            return None;
        }
        arg.strip_prefix("after=")?.parse().ok().filter(|n| *n > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points() {
        let spec = "volume-export:after=3, volume-copy-up:after=10";
        assert_eq!(after_for(spec, COPY_UP), Some(10));
        assert_eq!(after_for(spec, EXPORT), Some(3));
        assert_eq!(after_for(spec, IMPORT), None);
        assert_eq!(after_for("volume-import:after=0", IMPORT), None);
        assert_eq!(after_for("volume-import:after=x", IMPORT), None);
        assert_eq!(after_for("volume-import", IMPORT), None);
    }

    #[test]
    fn counts_down_without_a_fault() {
        let mut c = Countdown { left: None };
        for _ in 0..10 {
            c.tick();
        }
        let mut c = Countdown { left: Some(5) };
        for _ in 0..3 {
            c.tick();
        }
        assert_eq!(c.left, Some(2));
    }
}
