//! What pulls and pushes report while they run, and how they reach a
//! registry (settings from berth.toml, credentials from Docker's
//! config.json).

use berth_image::registry::{DockerConfigFile, RegistryClient, RegistryConfig};

use crate::error::EngineError;

/// A layer's state, named after Docker's progress messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    /// The layer is stored already (pull).
    AlreadyExists,
    /// Queued for download.
    PullingFsLayer,
    /// Bytes received (and unpacked as they arrive) of `total`.
    Downloading {
        current: u64,
        total: u64,
    },
    VerifyingChecksum,
    DownloadComplete,
    Extracting,
    PullComplete,
    /// Queued for upload.
    Preparing,
    Waiting,
    Pushing {
        current: u64,
        total: u64,
    },
    Pushed,
    /// The registry has the blob (push).
    LayerAlreadyExists,
    /// Linked from another repository of the registry (push).
    MountedFrom(String),
    /// A transient failure; the transfer is tried again.
    Retrying(String),
}

impl LayerStatus {
    /// The words Docker prints for the state (bars aside).
    pub fn message(&self) -> String {
        match self {
            Self::AlreadyExists => "Already exists".into(),
            Self::PullingFsLayer => "Pulling fs layer".into(),
            Self::Downloading { .. } => "Downloading".into(),
            Self::VerifyingChecksum => "Verifying Checksum".into(),
            Self::DownloadComplete => "Download complete".into(),
            Self::Extracting => "Extracting".into(),
            Self::PullComplete => "Pull complete".into(),
            Self::Preparing => "Preparing".into(),
            Self::Waiting => "Waiting".into(),
            Self::Pushing { .. } => "Pushing".into(),
            Self::Pushed => "Pushed".into(),
            Self::LayerAlreadyExists => "Layer already exists".into(),
            Self::MountedFrom(repo) => format!("Mounted from {repo}"),
            Self::Retrying(why) => format!("Retrying: {why}"),
        }
    }

    /// `(current, total)` of a byte-counting state.
    pub fn progress(&self) -> Option<(u64, u64)> {
        match self {
            Self::Downloading { current, total } | Self::Pushing { current, total } => {
                Some((*current, *total))
            }
            _ => None,
        }
    }
}

/// Receives progress from pull and push; called from several threads.
pub trait TransferProgress: Sync {
    /// A line before the layers (`latest: Pulling from library/busybox`).
    fn header(&self, line: &str);
    /// Layer `id` (12 hex digits) moved to `status`.
    fn layer(&self, id: &str, status: LayerStatus);
}

/// Progress that goes nowhere (`-q`, auto-pull in the API).
pub struct NoProgress;

impl TransferProgress for NoProgress {
    fn header(&self, _: &str) {}
    fn layer(&self, _: &str, _: LayerStatus) {}
}

/// A client for `registry`, with berth.toml's settings and the stored
/// login, if any.
pub(crate) fn connect(registry: &str) -> Result<RegistryClient, EngineError> {
    let config = RegistryConfig::load()?;
    let credentials = DockerConfigFile::load_default()?.credentials(registry)?;
    Ok(RegistryClient::connect(registry, &config, credentials)?)
}

/// How many layers move at once (Docker's default is 3; `BERTH_MAX_TRANSFERS`
/// overrides it).
pub(crate) fn parallel_transfers() -> usize {
    std::env::var("BERTH_MAX_TRANSFERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=32).contains(n))
        .unwrap_or(3)
}

/// Runs `work(i)` for `i` in `0..count` on `workers` threads; results in order.
pub(crate) fn run_parallel<T: Send>(
    count: usize,
    workers: usize,
    work: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let workers = workers.clamp(1, count.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= count {
                            return mine;
                        }
                        mine.push((i, work(i)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
