//! Unpacked layers, keyed by chain id, laid out like Docker's overlay2 driver:
//!
//! ```text
//! <root>/layers/<chain-hex>/diff/      the layer's own changes (overlay whiteouts inside)
//! <root>/layers/<chain-hex>/diff_id    sha256 of the layer's uncompressed tar
//! <root>/layers/<chain-hex>/parent     chain id of the layer below (absent for a base layer)
//! <root>/layers/<chain-hex>/size       bytes of regular-file content
//! <root>/layers/<chain-hex>/link       26-character short name
//! <root>/layers/l/<short> -> ../<chain-hex>/diff
//! <root>/layers/staging/<unique>/      layers being applied or removed
//! ```
//!
//! A layer directory appears only by one atomic `rename` of a complete staging
//! directory, so a reader never sees half a layer and a crash leaves only
//! staging leftovers, which `open` removes (each live staging directory is
//! `flock`ed by its writer, so leftovers of running writers are spared).

mod fsops;
mod hashpipe;
mod tarwriter;
mod unpack;

pub use tarwriter::diff_from_upper;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::ImageError;
use crate::fsutil::{self, RemoveOnDrop};

/// The OCI chain id of a stack of layers (`diff_ids` base first):
/// `chain(L0) = diff(L0)`, `chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln))`.
/// Panics never; an empty slice yields the digest of the empty string, which no
/// layer has.
pub fn chain_id(diff_ids: &[Digest]) -> Digest {
    let Some((first, rest)) = diff_ids.split_first() else {
        return Digest::of_bytes(b"");
    };
    rest.iter()
        .fold(*first, |chain, diff| chain_step(&chain, diff))
}

pub(crate) fn chain_step(parent_chain: &Digest, diff_id: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update(parent_chain.to_string().as_bytes());
    h.update(b" ");
    h.update(diff_id.to_string().as_bytes());
    Digest::from_raw(h.finalize().into())
}

/// A stored layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub chain_id: Digest,
    /// sha256 of the uncompressed tar the layer was applied from.
    pub diff_id: Digest,
    /// Chain id of the layer below.
    pub parent: Option<Digest>,
    /// Bytes of regular-file content in this layer (unpacked).
    pub size: u64,
}

/// Unpacked image layers under `<root>/layers`.
#[derive(Debug, Clone)]
pub struct LayerStore {
    dir: PathBuf,
    links: PathBuf,
    staging: PathBuf,
    durable: bool,
}

const SHORT_LINK_LEN: usize = 26;
const LINK_DIR: &str = "l";

impl LayerStore {
    /// Opens (creating) the store under `<root>/layers` and removes staging
    /// leftovers of killed processes (best effort; live appliers' staging
    /// directories are locked and spared).
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        let dir = root.join("layers");
        let store = Self {
            links: dir.join(LINK_DIR),
            staging: dir.join("staging"),
            dir,
            durable: true,
        };
        fsutil::create_dir_all(&store.links)?;
        fsutil::create_dir_all(&store.staging)?;
        // Layers are unpacked in staging directories (then renamed, which
        // moves no inode): each starts in a block group of its own.
        fsutil::mark_top_of_hierarchies(&store.staging);
        store.remove_stale_staging()?;
        Ok(store)
    }

    /// Whether `apply` makes a layer durable (one `syncfs` of the layer store's
    /// file system before the final rename) — the default. Without it a crash
    /// soon after `apply` may leave a layer whose files lost their content;
    /// tests and benchmarks may turn it off.
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    /// The `<root>/layers` directory; [`LayerStore::short_link`] names are relative to it.
    pub fn layers_dir(&self) -> &Path {
        &self.dir
    }

    fn layer_dir(&self, chain: &Digest) -> PathBuf {
        self.dir.join(chain.hex())
    }

    /// `<root>/layers/<chain-hex>/diff`, the layer's own changes (an overlay lowerdir).
    pub fn diff_dir(&self, chain: &Digest) -> PathBuf {
        self.layer_dir(chain).join("diff")
    }

    /// Unpacks a (possibly compressed) layer tar on top of `parent` (a chain id)
    /// into a staging dir, computing the diff id in the same pass, then renames it
    /// into place atomically. Idempotent and safe when several processes apply the
    /// same layer at once (exactly one stored copy, all succeed). With
    /// `expected_diff_id`, an already stored layer is returned without reading `r`,
    /// and a tar with another digest is refused with [`ImageError::DigestMismatch`].
    pub fn apply(
        &self,
        parent: Option<&Digest>,
        r: impl Read,
        expected_diff_id: Option<&Digest>,
    ) -> Result<LayerInfo, ImageError> {
        let lowers = match parent {
            Some(p) => self.lower_diff_dirs(p)?,
            None => Vec::new(),
        };
        self.apply_with_lowers(parent, r, expected_diff_id, Some(&lowers))
    }

    /// [`LayerStore::apply`] for a layer whose parent (`parent`, a chain id)
    /// may not be stored yet, so that the layers of one image can be unpacked
    /// side by side: a layer's diff directory holds only its own changes, and
    /// whiteouts are written as overlay whiteouts without looking below. Only
    /// a hardlink to a file of a lower layer needs the layers below (to copy
    /// the file up); such a layer fails with
    /// [`ImageError::LowerLayersPending`], and the caller applies it again
    /// with [`LayerStore::apply`] once its parent is stored. Until then the
    /// stored layer's parent is missing, which only a load in progress (or
    /// killed, whose garbage collection removes it) can see: images refer to
    /// layers only after all of them are stored.
    pub fn apply_before_parent(
        &self,
        parent: Option<&Digest>,
        r: impl Read,
        expected_diff_id: Option<&Digest>,
    ) -> Result<LayerInfo, ImageError> {
        self.apply_with_lowers(parent, r, expected_diff_id, None)
    }

    fn apply_with_lowers(
        &self,
        parent: Option<&Digest>,
        r: impl Read,
        expected_diff_id: Option<&Digest>,
        lowers: Option<&[PathBuf]>,
    ) -> Result<LayerInfo, ImageError> {
        if let Some(d) = expected_diff_id {
            let chain = parent.map_or(*d, |p| chain_step(p, d));
            if let Some(info) = self.get(&chain)? {
                return Ok(info);
            }
        }
        let staging = self.create_staging()?;
        let diff = staging.path.join("diff");
        fsutil::create_dir_all(&diff)?;
        let label = expected_diff_id.map_or_else(|| "(unverified)".to_string(), Digest::to_string);
        let unpacked = unpack::unpack(&diff, r, &label, lowers, self.durable)?;
        if let Some(expected) = expected_diff_id {
            if *expected != unpacked.diff_id {
                return Err(ImageError::DigestMismatch {
                    expected: *expected,
                    actual: unpacked.diff_id,
                });
            }
        }
        let chain = parent.map_or(unpacked.diff_id, |p| chain_step(p, &unpacked.diff_id));
        let info = LayerInfo {
            chain_id: chain,
            diff_id: unpacked.diff_id,
            parent: parent.copied(),
            size: unpacked.size,
        };
        self.write_metadata(&staging.path, &info)?;
        // One barrier per layer, before its rename, rather than one per
        // load before the image is committed: a layer directory in place is
        // trusted by every later load (reused without reading its tar), so
        // it must never exist with files a power loss could leave empty. A
        // per-load barrier would have to hold back every rename until the
        // end. The barrier is cheap: the unpacker starts each file's
        // writeback as soon as it is written, and layers of one image are
        // applied side by side, so their syncfs calls overlap.
        if self.durable {
            nix::unistd::syncfs(&staging.lock)
                .map_err(|e| ImageError::io("syncfs", &staging.path, e.into()))?;
        }
        let dest = self.layer_dir(&chain);
        match fs::rename(&staging.path, &dest) {
            Ok(()) => {
                let mut staging = staging;
                staging.guard.disarm();
                fsutil::sync_dir(&self.dir)?;
            }
            // Someone else stored the same layer first; ours is dropped with `staging`.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) => {}
            Err(e) => return Err(ImageError::io("rename layer into place", &dest, e)),
        }
        self.ensure_link(&chain)?;
        Ok(info)
    }

    /// The stored layer with this chain id, if any.
    pub fn get(&self, chain: &Digest) -> Result<Option<LayerInfo>, ImageError> {
        let dir = self.layer_dir(chain);
        let diff_id_path = dir.join("diff_id");
        let diff_id = match fs::read_to_string(&diff_id_path) {
            Ok(s) => self.parse_meta_digest(chain, &diff_id_path, &s)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ImageError::io("read", diff_id_path, e)),
        };
        let parent_path = dir.join("parent");
        let parent = match fs::read_to_string(&parent_path) {
            Ok(s) => Some(self.parse_meta_digest(chain, &parent_path, &s)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(ImageError::io("read", parent_path, e)),
        };
        let size_path = dir.join("size");
        let size = fs::read_to_string(&size_path)
            .map_err(|e| ImageError::io("read", &size_path, e))?
            .trim()
            .parse::<u64>()
            .map_err(|e| ImageError::LayerCorrupt {
                chain_id: *chain,
                path: size_path,
                reason: e.to_string(),
            })?;
        Ok(Some(LayerInfo {
            chain_id: *chain,
            diff_id,
            parent,
            size,
        }))
    }

    fn require(&self, chain: &Digest) -> Result<LayerInfo, ImageError> {
        self.get(chain)?.ok_or_else(|| ImageError::LayerNotFound {
            chain_id: *chain,
            store: self.dir.clone(),
        })
    }

    fn parse_meta_digest(
        &self,
        chain: &Digest,
        path: &Path,
        s: &str,
    ) -> Result<Digest, ImageError> {
        s.trim()
            .parse()
            .map_err(|e: ImageError| ImageError::LayerCorrupt {
                chain_id: *chain,
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
    }

    /// The diff dirs of `top` and every layer below it, top first.
    pub fn lower_diff_dirs(&self, top: &Digest) -> Result<Vec<PathBuf>, ImageError> {
        Ok(self
            .chain(top)?
            .iter()
            .map(|i| self.diff_dir(&i.chain_id))
            .collect())
    }

    /// `top` and the layers below it, top first.
    pub fn chain(&self, top: &Digest) -> Result<Vec<LayerInfo>, ImageError> {
        let mut out = Vec::new();
        let mut next = Some(*top);
        while let Some(c) = next {
            let info = self.require(&c)?;
            next = info.parent;
            out.push(info);
            if out.len() > 1000 {
                return Err(ImageError::LayerCorrupt {
                    chain_id: *top,
                    path: self.layer_dir(top),
                    reason: "parent chain longer than 1000 layers (cycle?)".into(),
                });
            }
        }
        Ok(out)
    }

    /// The layer's short link, relative to [`LayerStore::layers_dir`]
    /// (`l/ABC…`), recreated if missing.
    pub fn short_link(&self, chain: &Digest) -> Result<String, ImageError> {
        self.ensure_link(chain)
    }

    fn ensure_link(&self, chain: &Digest) -> Result<String, ImageError> {
        let short = short_name(chain);
        let link = self.links.join(&short);
        match symlink(Path::new("..").join(chain.hex()).join("diff"), &link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(ImageError::io("create short link", link, e)),
        }
        Ok(format!("{LINK_DIR}/{short}"))
    }

    /// Removes a layer. Refused while another stored layer has it as parent.
    /// The layer first moves to staging (atomically), so a crash never leaves a
    /// half-removed layer in place.
    pub fn remove(&self, chain: &Digest) -> Result<(), ImageError> {
        self.require(chain)?;
        if let Some(child) = self
            .list()?
            .into_iter()
            .find(|l| l.parent.as_ref() == Some(chain))
        {
            return Err(ImageError::LayerInUse {
                chain_id: *chain,
                child: child.chain_id,
            });
        }
        let trash = self.staging.join(fsutil::unique_name("rm-"));
        let src = self.layer_dir(chain);
        fs::rename(&src, &trash).map_err(|e| ImageError::io("move layer to staging", &src, e))?;
        let link = self.links.join(short_name(chain));
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImageError::io("remove short link", link, e)),
        }
        fsutil::remove_all(&trash)
    }

    /// Every stored layer, sorted by chain id.
    pub fn list(&self) -> Result<Vec<LayerInfo>, ImageError> {
        let rd =
            fs::read_dir(&self.dir).map_err(|e| ImageError::io("read directory", &self.dir, e))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| ImageError::io("read directory", &self.dir, e))?;
            let Some(chain) = ent
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue;
            };
            if let Some(info) = self.get(&chain)? {
                out.push(info);
            }
        }
        out.sort_by_key(|l| l.chain_id);
        Ok(out)
    }

    /// Writes the layer's own changes as an uncompressed tar (for save/push),
    /// regenerated from the diff dir (overlay whiteouts become `.wh.` entries,
    /// opaque dirs `.wh..wh..opq`), and returns the digest of what was written.
    ///
    /// That digest equals the layer's `diff_id` when the layer was applied from
    /// a tar berth generated ([`diff_from_upper`] or `write_tar`: the output is
    /// deterministic), but generally not for layers pulled or loaded from
    /// elsewhere (other tar writers order entries and encode headers
    /// differently). Callers that need the original bytes — save and push —
    /// therefore keep the original layer blob in the [`crate::ContentStore`] and
    /// use `write_tar` only when that blob is gone, then describe the layer by
    /// the returned digest.
    pub fn write_tar(&self, chain: &Digest, w: impl Write) -> Result<Digest, ImageError> {
        self.require(chain)?;
        diff_from_upper(&self.diff_dir(chain), w)
    }

    fn write_metadata(&self, dir: &Path, info: &LayerInfo) -> Result<(), ImageError> {
        let write = |name: &str, content: String| -> Result<(), ImageError> {
            let p = dir.join(name);
            let mut f = File::create(&p).map_err(|e| ImageError::io("create", &p, e))?;
            f.write_all(content.as_bytes())
                .map_err(|e| ImageError::io("write", &p, e))
        };
        write("diff_id", info.diff_id.to_string())?;
        if let Some(p) = &info.parent {
            write("parent", p.to_string())?;
        }
        write("size", info.size.to_string())?;
        write("link", short_name(&info.chain_id))
    }

    fn create_staging(&self) -> Result<Staging, ImageError> {
        loop {
            let path = self.staging.join(fsutil::unique_name("apply-"));
            fs::create_dir(&path)
                .map_err(|e| ImageError::io("create staging directory", &path, e))?;
            let guard = RemoveOnDrop(Some(path.clone()));
            // Another process opening the store sweeps unlocked staging
            // directories: between our mkdir and our lock it may remove
            // this one. Then try again under a new name.
            let lock = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ImageError::io("open staging directory", &path, e)),
            };
            fsutil::flock(&lock, &path, false)?;
            if fsutil::still_linked(&lock, &path) {
                return Ok(Staging { path, lock, guard });
            }
        }
    }

    fn remove_stale_staging(&self) -> Result<(), ImageError> {
        let rd = fs::read_dir(&self.staging)
            .map_err(|e| ImageError::io("read directory", &self.staging, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| ImageError::io("read directory", &self.staging, e))?;
            let path = ent.path();
            let Ok(f) = File::open(&path) else { continue };
            // Best effort: a leftover that cannot be removed now (e.g. a
            // mount left inside it) must not make the store unusable; the next
            // open tries again.
            if fsutil::flock(&f, &path, true).unwrap_or(false) {
                let _ = fsutil::remove_all(&path);
            }
        }
        Ok(())
    }
}

/// A locked staging directory, removed on drop unless renamed into place.
/// `guard` is declared first so the directory is removed while still locked
/// (fields drop in declaration order): no concurrent `open` races the removal.
struct Staging {
    guard: RemoveOnDrop,
    path: PathBuf,
    lock: File,
}

/// A short, deterministic name for a layer's link: 26 characters of base32 over
/// a hash of the chain id. Deterministic so that concurrent appliers of the same
/// layer agree on it.
fn short_name(chain: &Digest) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let h = Sha256::digest(chain.as_bytes());
    let mut bits: u128 = 0;
    for b in &h[..16] {
        bits = (bits << 8) | u128::from(*b);
    }
    (0..SHORT_LINK_LEN)
        .map(|i| {
            let shift = 128 - 5 * (i + 1) as i32;
            let v = if shift >= 0 {
                (bits >> shift) & 31
            } else {
                (bits << -shift) & 31
            };
            char::from(ALPHABET[v as usize])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        assert_eq!(chain_id(&[a]), a);
        let expected = Digest::of_bytes(format!("{a} {b}").as_bytes());
        assert_eq!(chain_id(&[a, b]), expected);
    }

    /// The staging directory carries ext4's top-of-hierarchy hint, so each
    /// layer's inodes start in a block group of their own; on a file system
    /// without inode flags (tmpfs, overlay) opening the store still works.
    #[test]
    fn staging_is_marked_top_of_hierarchies_where_supported() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayerStore::open(dir.path()).unwrap();
        let ext4 = nix::sys::statfs::statfs(dir.path())
            .map(|s| s.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC)
            .unwrap_or(false);
        assert_eq!(fsutil::is_top_of_hierarchies(&store.staging), ext4);
        // The hint is not inherited by what is made inside.
        let staging = store.create_staging().unwrap();
        assert!(!fsutil::is_top_of_hierarchies(&staging.path));
        // Opening the store again keeps it.
        let again = LayerStore::open(dir.path()).unwrap();
        assert_eq!(fsutil::is_top_of_hierarchies(&again.staging), ext4);
    }

    #[test]
    fn short_names_are_stable_and_distinct() {
        let a = short_name(&Digest::of_bytes(b"a"));
        assert_eq!(a.len(), SHORT_LINK_LEN);
        assert_eq!(a, short_name(&Digest::of_bytes(b"a")));
        assert_ne!(a, short_name(&Digest::of_bytes(b"b")));
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)));
    }
}
