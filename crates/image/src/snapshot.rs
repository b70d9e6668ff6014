//! Writable overlay snapshots over stored layers:
//! `<root>/snapshots/<key>/{upper,work,merged,parent}`.
//!
//! Mounting prefers the new mount API (one `fsconfig` call per layer, no
//! length limit; Linux ≥ 6.8). Elsewhere lower directories are named by the
//! layers' short links (`l/ABC…`, 28 bytes each) relative to `<root>/layers`,
//! which keeps the mount data of a 128-layer image under mount(2)'s 4096-byte
//! limit; a forked child changes into `<root>/layers` to mount, so the
//! caller's (possibly multi-threaded) process never changes its cwd.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::ImageError;
use crate::fsutil;
use crate::layer::{diff_from_upper, LayerStore};
use crate::overlay_mount::{self, NewApiError};

/// mount(2) copies at most one page of option data, including the NUL.
const MOUNT_DATA_LIMIT: usize = 4095;

/// Overlay snapshots on top of a [`LayerStore`].
#[derive(Debug, Clone)]
pub struct OverlaySnapshotter {
    dir: PathBuf,
    layers: LayerStore,
}

/// Everything needed to mount one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMount {
    pub key: String,
    /// Lower directories, top first, relative to `layers_dir` (`l/<short>`).
    pub lowerdirs: Vec<String>,
    /// The directory the relative `lowerdirs` are resolved from.
    pub layers_dir: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// `<root>/snapshots/<key>/merged`, a ready mount point.
    pub merged: PathBuf,
    /// The overlay mount data: `lowerdir=l/A:l/B,upperdir=…,workdir=…`, for
    /// mount(2) with cwd = `layers_dir` (see [`SnapshotMount::mount_at`]).
    /// 128 layers fit in mount(2)'s 4095 bytes; more need the new mount API.
    pub options: String,
}

impl SnapshotMount {
    /// The lower directories as absolute paths, top first (for runtimes that
    /// take the mount as an OCI `mounts` entry).
    pub fn absolute_lowerdirs(&self) -> Vec<PathBuf> {
        self.lowerdirs
            .iter()
            .map(|l| self.layers_dir.join(l))
            .collect()
    }

    /// Mounts the overlay at `target` (an existing directory): with the new
    /// mount API where the kernel has overlay's `lowerdir+` (no length limit),
    /// else with [`SnapshotMount::mount_with_mount2`].
    pub fn mount_at(&self, target: &Path) -> Result<(), ImageError> {
        self.mount_at_with(target, false)
    }

    /// [`Self::mount_at`], optionally `volatile`: overlay then never syncs
    /// the upper directory, which saves the file system sync that an
    /// unmount otherwise waits for (hundreds of ms on a busy disk), at the
    /// price of the upper dir being unusable after a host crash. For
    /// throw-away snapshots only (`run --rm`, like podman does).
    pub fn mount_at_with(&self, target: &Path, volatile: bool) -> Result<(), ImageError> {
        let target = absolute(target)?;
        let lowers = self.absolute_lowerdirs();
        let lower_refs: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
        match overlay_mount::mount_new_api(&lower_refs, &self.upper, &self.work, &target, volatile)
        {
            Ok(()) => Ok(()),
            Err(NewApiError::Failed(source)) => Err(ImageError::Mount {
                op: "mount overlay at",
                target,
                source,
            }),
            Err(NewApiError::Unsupported) => self.mount_with_mount2_opts(&target, volatile),
        }
    }

    /// Mounts the overlay at `target` with mount(2) and [`SnapshotMount::options`]
    /// (relative short links), from a forked child whose cwd is `layers_dir`.
    /// Works on any kernel with overlayfs; limited to 4095 bytes of options
    /// (about 128 layers).
    pub fn mount_with_mount2(&self, target: &Path) -> Result<(), ImageError> {
        self.mount_with_mount2_opts(target, false)
    }

    fn mount_with_mount2_opts(&self, target: &Path, volatile: bool) -> Result<(), ImageError> {
        let target = absolute(target)?;
        let options = if volatile {
            format!("{},volatile", self.options)
        } else {
            self.options.clone()
        };
        if options.len() > MOUNT_DATA_LIMIT {
            return Err(ImageError::MountOptionsTooLong {
                key: self.key.clone(),
                len: options.len(),
                limit: MOUNT_DATA_LIMIT,
            });
        }
        overlay_mount::mount_in_dir(&self.layers_dir, &target, &options).map_err(|source| {
            ImageError::Mount {
                op: "mount overlay at",
                target,
                source,
            }
        })
    }
}

fn absolute(p: &Path) -> Result<PathBuf, ImageError> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .map_err(|e| ImageError::io("get current directory", p, e))?
        .join(p))
}

impl OverlaySnapshotter {
    /// Opens (creating) `<root>/snapshots`. `layers` is the store the snapshots' parents live in.
    pub fn open(root: &Path, layers: LayerStore) -> Result<Self, ImageError> {
        let dir = root.join("snapshots");
        fsutil::create_dir_all(&dir)?;
        Ok(Self { dir, layers })
    }

    fn snap_dir(&self, key: &str) -> Result<PathBuf, ImageError> {
        let ok = !key.is_empty()
            && key.len() <= 128
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !key.starts_with('.');
        if !ok {
            return Err(ImageError::InvalidSnapshotKey {
                key: key.to_string(),
                reason: "use 1-128 characters of [A-Za-z0-9_.-], not starting with '.'",
            });
        }
        Ok(self.dir.join(key))
    }

    /// Creates the snapshot `key` on top of the layer `parent` (a chain id; `None`
    /// for an empty base) and returns how to mount it.
    pub fn prepare(&self, key: &str, parent: Option<&Digest>) -> Result<SnapshotMount, ImageError> {
        let dir = self.snap_dir(key)?;
        if let Some(p) = parent {
            // Fail before creating anything when the parent is missing.
            self.layers.chain(p)?;
        }
        if dir.exists() {
            return Err(ImageError::SnapshotExists {
                key: key.to_string(),
                store: self.dir.clone(),
            });
        }
        if !self.take_skeleton(&dir) {
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(ImageError::SnapshotExists {
                        key: key.to_string(),
                        store: self.dir.clone(),
                    })
                }
                Err(e) => return Err(ImageError::io("create snapshot directory", &dir, e)),
            }
        }
        let mut guard = fsutil::RemoveOnDrop(Some(dir.clone()));
        // `empty` stands in for the layers of a snapshot without a parent
        // (see `mounts`); each directory is an inode allocation on the host
        // filesystem per container, so only the needed ones.
        let subs: &[&str] = if parent.is_some() {
            &["upper", "work", "merged"]
        } else {
            &["upper", "work", "merged", "empty"]
        };
        for sub in subs {
            fsutil::create_dir_all(&dir.join(sub))?;
        }
        let parent_path = dir.join("parent");
        if let Some(p) = parent {
            // Rewritten in place in a recycled skeleton, and cut to length
            // after the write rather than truncated before it: truncating a
            // file to zero frees its block, which ext4 mounted `discard`
            // (the dev VM's and CI's root) discards before open returns,
            // 0.2-0.8 ms of each `run`; a shorter length keeps the block.
            let text = p.to_string();
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&parent_path)
                .map_err(|e| ImageError::io("create", &parent_path, e))?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.set_len(text.len() as u64))
                .map_err(|e| ImageError::io("write", &parent_path, e))?;
        } else if let Err(e) = fs::remove_file(&parent_path) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(ImageError::io("remove", &parent_path, e));
            }
        }
        let m = self.mounts(key)?;
        guard.disarm();
        Ok(m)
    }

    /// Moves a recycled skeleton (see [`recycle`]) to `dir`; `false` when
    /// the pool has none. Racing callers each get their own (rename).
    fn take_skeleton(&self, dir: &Path) -> bool {
        let Ok(entries) = fs::read_dir(self.dir.join(POOL_DIR)) else {
            return false;
        };
        entries.flatten().any(|e| fs::rename(e.path(), dir).is_ok())
    }

    /// How to mount an existing snapshot.
    pub fn mounts(&self, key: &str) -> Result<SnapshotMount, ImageError> {
        let dir = self.snap_dir(key)?;
        if !dir.is_dir() {
            return Err(ImageError::SnapshotNotFound {
                key: key.to_string(),
                store: self.dir.clone(),
            });
        }
        let parent_path = dir.join("parent");
        let parent = match fs::read_to_string(&parent_path) {
            Ok(s) => Some(s.trim().parse::<Digest>()?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(ImageError::io("read", parent_path, e)),
        };
        let lowerdirs = match parent {
            Some(p) => {
                let chain = self.layers.chain(&p)?;
                let mut out = Vec::with_capacity(chain.len());
                for l in chain {
                    out.push(self.layers.short_link(&l.chain_id)?);
                }
                out
            }
            // overlay needs a lowerdir; an empty one stands for "no layers".
            None => vec![dir.join("empty").to_string_lossy().into_owned()],
        };
        let upper = dir.join("upper");
        let work = dir.join("work");
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lowerdirs.join(":"),
            upper.display(),
            work.display()
        );
        Ok(SnapshotMount {
            key: key.to_string(),
            lowerdirs,
            layers_dir: self.layers.layers_dir().to_path_buf(),
            upper,
            work,
            merged: dir.join("merged"),
            options,
        })
    }

    /// Mounts snapshot `key` at `target`.
    pub fn mount(&self, key: &str, target: &Path) -> Result<(), ImageError> {
        self.mounts(key)?.mount_at(target)
    }

    /// Mounts snapshot `key` at `target`, `volatile` as in [`SnapshotMount::mount_at_with`].
    pub fn mount_with(&self, key: &str, target: &Path, volatile: bool) -> Result<(), ImageError> {
        self.mounts(key)?.mount_at_with(target, volatile)
    }

    /// Unmounts `target`; a target that is not mounted is not an error.
    pub fn unmount(&self, target: &Path) -> Result<(), ImageError> {
        match nix::mount::umount2(target, nix::mount::MntFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
            Err(e) => Err(ImageError::Mount {
                op: "unmount",
                target: target.to_path_buf(),
                source: e.into(),
            }),
        }
    }

    /// Writes the snapshot's changes as a layer tar (see [`diff_from_upper`]).
    pub fn diff(&self, key: &str, w: impl Write) -> Result<Digest, ImageError> {
        diff_from_upper(&self.mounts(key)?.upper, w)
    }

    /// Keys of all snapshots, sorted.
    pub fn list(&self) -> Result<Vec<String>, ImageError> {
        let rd =
            fs::read_dir(&self.dir).map_err(|e| ImageError::io("read directory", &self.dir, e))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| ImageError::io("read directory", &self.dir, e))?;
            match ent.file_name().to_str() {
                Some(n) if !n.starts_with('.') => out.push(n.to_string()),
                _ => {}
            }
        }
        out.sort();
        Ok(out)
    }

    /// The directory of snapshot `key`, which exists and no overlay mount
    /// uses (what [`Self::remove`] and [`Self::discard`] require).
    fn unused_dir(&self, key: &str) -> Result<PathBuf, ImageError> {
        let dir = self.snap_dir(key)?;
        if !dir.is_dir() {
            return Err(ImageError::SnapshotNotFound {
                key: key.to_string(),
                store: self.dir.clone(),
            });
        }
        if let Some(target) = mounted_at(&dir.join("upper")) {
            return Err(ImageError::SnapshotMounted { target });
        }
        Ok(dir)
    }

    /// Removes a snapshot. Refused while any overlay mount still uses its upper dir.
    pub fn remove(&self, key: &str) -> Result<(), ImageError> {
        fsutil::remove_all(&self.unused_dir(key)?)
    }

    /// [`Self::remove`] that only renames the snapshot to `into` (a path
    /// on the same filesystem, in a directory nothing lists), for the
    /// caller to delete later, off its critical path. Where the rename is
    /// not possible (another filesystem), removes it here.
    pub fn discard(&self, key: &str, into: &Path) -> Result<(), ImageError> {
        let dir = self.unused_dir(key)?;
        match fs::rename(&dir, into) {
            Ok(()) => Ok(()),
            Err(_) => fsutil::remove_all(&dir),
        }
    }
}

/// Where cleaned skeletons of discarded snapshots wait to be taken by
/// [`OverlaySnapshotter::prepare`]: `<store>/.free` (keys cannot start
/// with a dot).
const POOL_DIR: &str = ".free";

/// Skeletons kept at most; more are deleted.
const POOL_LIMIT: usize = 32;

/// Takes a discarded snapshot (renamed out of `store_dir` by
/// [`OverlaySnapshotter::discard`]) back as an empty skeleton for a later
/// snapshot: its upper and work directories emptied, moved into the pool.
/// Returns `false` (the caller deletes it) when it is not a snapshot, is
/// still mounted, or the pool is full.
///
/// Why: every directory a container's snapshot creates and deletes costs
/// the host filesystem an inode allocation and a free; on ext4 without a
/// journal each allocation also steps over every inode freed in the last
/// minute (`recently_deleted`), so a burst of short-lived containers slows
/// its own snapshots down. A recycled skeleton keeps its directories.
pub fn recycle(discarded: &Path, store_dir: &Path) -> bool {
    let upper = discarded.join("upper");
    let shaped = ["upper", "work", "merged"]
        .iter()
        .all(|d| discarded.join(d).is_dir());
    if !shaped || !store_dir.is_dir() || mounted_at(&upper).is_some() {
        return false;
    }
    let pool = store_dir.join(POOL_DIR);
    if fs::create_dir_all(&pool).is_err() {
        return false;
    }
    if fs::read_dir(&pool).map_or(true, |d| d.count() >= POOL_LIMIT) {
        return false;
    }
    let empty_dir = |dir: &Path| -> bool {
        fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .all(|e| fsutil::remove_all(&e.path()).is_ok())
        })
    };
    // Everything but the three directories (and the parent file, which
    // `prepare` rewrites in place) goes; their contents too.
    let rest_gone = fs::read_dir(discarded).is_ok_and(|entries| {
        entries.flatten().all(|e| {
            matches!(
                e.file_name().to_str(),
                Some("upper" | "work" | "merged" | "parent")
            ) || fsutil::remove_all(&e.path()).is_ok()
        })
    });
    if !(rest_gone
        && empty_dir(&upper)
        && empty_dir(&discarded.join("work"))
        && empty_dir(&discarded.join("merged")))
    {
        return false;
    }
    let name = discarded
        .file_name()
        .map_or_else(|| "skeleton".into(), |n| n.to_string_lossy().into_owned());
    fs::rename(discarded, pool.join(name)).is_ok()
}

/// The mount point of an overlay whose upperdir is `upper`, if one is mounted.
fn mounted_at(upper: &Path) -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/thread-self/mountinfo").ok()?;
    let needle = format!("upperdir={}", upper.display());
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if !post.starts_with("overlay ") {
            return None;
        }
        let opts = post.split(' ').nth(2)?;
        opts.split(',')
            .any(|o| o == needle)
            .then(|| PathBuf::from(pre.split(' ').nth(4).unwrap_or("")))
    })
}
