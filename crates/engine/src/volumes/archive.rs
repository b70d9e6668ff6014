//! `volume export NAME FILE.tar.gz` and `volume import FILE NAME`: a
//! volume's files as a gzip tar with numeric owners, modes, times, xattrs
//! (PAX `SCHILY.xattr.*`), symlinks, device nodes and hard links.
//!
//! Export writes an unnamed file (`O_TMPFILE`) in the target's directory
//! and names it only when whole, so a crash never leaves a truncated
//! archive under the name asked for, nor a temporary file. Import unpacks into a
//! private staging directory and moves it into place in the same database
//! transaction that records the volume, so a crash leaves either no
//! volume or the whole import.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};
use tar::{EntryType, Header};

use super::store::{self, VolumeRecord};
use super::tree;
use super::{driver, fault, VolumeError, VolumeService, LOCAL_DRIVER};
use crate::error::EngineError;

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// What an import does with a volume that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// Refuse a volume that has files.
    #[default]
    EmptyOnly,
    /// Replace the files of an existing volume (not in use by a running container).
    Replace,
}

impl VolumeService<'_> {
    /// Writes the volume's files to `file` as a gzip tar.
    pub fn export(&self, name: &str, file: &Path) -> Result<u64, EngineError> {
        let volume = store::get(self.engine.db().conn(), name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        let _lock = self.lock(name)?;
        let data = self.paths().data(name);
        let _mounted = self.mount_for_access(&volume)?;
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let out = ExportFile::create(dir)?;
        let archive_err = |e: io::Error| VolumeError::Archive {
            context: format!("writing {}", file.display()),
            source: e,
        };
        let bytes = {
            let gz = flate2::write::GzEncoder::new(
                io::BufWriter::with_capacity(1 << 20, out.file()),
                flate2::Compression::default(),
            );
            let mut w = TarWriter {
                builder: tar::Builder::new(gz),
                links: HashMap::new(),
                bytes: 0,
                fault: fault::Countdown::new(fault::EXPORT),
            };
            let root = tree::open_dir(&data).map_err(|e| VolumeError::io("opening", &data, e))?;
            w.root(root.as_fd()).map_err(archive_err)?;
            w.tree(root.as_fd(), Path::new(".")).map_err(archive_err)?;
            let TarWriter { builder, bytes, .. } = w;
            let gz = builder.into_inner().map_err(archive_err)?;
            let mut buf = gz.finish().map_err(archive_err)?;
            buf.flush().map_err(archive_err)?;
            bytes
        };
        out.file().sync_all().map_err(archive_err)?;
        out.persist(dir, file)?;
        Ok(bytes)
    }

    /// Creates volume `name` from an archive made by [`Self::export`] (or
    /// any tar, gzip-compressed or not).
    pub fn import(&self, file: &Path, name: &str, mode: ImportMode) -> Result<(), EngineError> {
        super::check_name(name)?;
        let input =
            File::open(file).map_err(|e| VolumeError::io("opening the archive", file, e))?;
        let _lock = self.lock(name)?;
        self.sweep_staging();
        let staging = self.paths().staging()?;
        let unpacked = staging.path.join("volume");
        let data = unpacked.join("_data");
        std::fs::create_dir_all(&data).map_err(|e| VolumeError::io("creating", &data, e))?;
        unpack(input, &data).map_err(|e| VolumeError::Archive {
            context: format!("reading {}", file.display()),
            source: e,
        })?;
        let paths = self.paths();
        let existing = store::get(self.engine.db().conn(), name)?;
        if let Some(v) = existing {
            let target = paths.data(name);
            if driver::is_mounted_kind(&v.options) {
                return Err(VolumeError::Conflict(format!(
                    "volume {name} exists and keeps its files on {}: import into a new volume name",
                    v.options.get("device").cloned().unwrap_or_default()
                ))
                .into());
            }
            let empty =
                tree::is_empty(&target).map_err(|e| VolumeError::io("reading", &target, e))?;
            if !empty && mode == ImportMode::EmptyOnly {
                return Err(VolumeError::Conflict(format!(
                    "volume {name} already exists and is not empty: remove it first, or pass --force to replace its files"
                ))
                .into());
            }
            if self.running_users(name) {
                return Err(VolumeError::Conflict(format!(
                    "volume {name} is in use by a running container: stop it before replacing the volume's files"
                ))
                .into());
            }
            self.ensure_dirs(name)?;
            exchange(&data, &target)?;
            return Ok(());
        }
        let record = VolumeRecord {
            name: name.to_string(),
            driver: LOCAL_DRIVER.into(),
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            created: chrono::Utc::now(),
        };
        let dir = paths.dir(name);
        std::fs::create_dir_all(paths.dir(name).parent().unwrap_or(Path::new("/")))
            .map_err(|e| VolumeError::io("creating", &dir, e))?;
        let mut db = self.engine.db();
        let tx = db.write()?;
        if !store::insert(&tx, &record)? {
            return Err(VolumeError::Conflict(format!(
                "volume {name} was created meanwhile: import again"
            ))
            .into());
        }
        store::event(
            &tx,
            "create",
            name,
            &BTreeMap::from([("driver".into(), LOCAL_DRIVER.into())]),
        );
        // Leftovers of a crashed import of this name (a directory without
        // a row) are not this volume's.
        self.trash_orphan(&dir)?;
        set_mode(&unpacked, 0o701)?;
        std::fs::rename(&unpacked, &dir)
            .map_err(|e| VolumeError::io("moving the import into place", &dir, e))?;
        if let Err(e) = tx.commit() {
            let _ = std::fs::rename(&dir, &unpacked);
            return Err(EngineError::db("committing an imported volume", e));
        }
        Ok(())
    }

    /// Whether a started container holds the volume.
    /// The volume's lock must be held.
    pub(crate) fn running_users(&self, name: &str) -> bool {
        !self.live_users(name, None).is_empty()
    }

    /// Moves a volume directory that has no row out of the way.
    pub(crate) fn trash_orphan(&self, dir: &Path) -> Result<(), EngineError> {
        if !dir.exists() {
            return Ok(());
        }
        let trash = self.paths().trash();
        std::fs::create_dir_all(&trash).map_err(|e| VolumeError::io("creating", &trash, e))?;
        let to = trash.join(&crate::containers::defaults::names::new_container_id()[..16]);
        std::fs::rename(dir, &to)
            .map_err(|e| VolumeError::io("moving a stale volume directory to the trash", dir, e))?;
        Ok(())
    }

    /// Mounts a driver-backed volume that no container holds, for the
    /// duration of the returned guard. The volume's lock must be held.
    pub(crate) fn mount_for_access(
        &self,
        v: &VolumeRecord,
    ) -> Result<Option<TempMount>, EngineError> {
        let data = self.paths().data(&v.name);
        self.ensure_dirs(&v.name)?;
        if !driver::is_mounted_kind(&v.options) || driver::is_mount_point(&data) {
            return Ok(None);
        }
        driver::mount(&v.name, &v.options, &data)?;
        Ok(Some(TempMount { path: data }))
    }
}

/// The file an export is written to before it gets its name: an
/// unnamed `O_TMPFILE` in the target's directory, so that a crash
/// leaves nothing behind, or where the filesystem has none a hidden
/// named file beside the target.
enum ExportFile {
    Unnamed(File),
    Named(tempfile::NamedTempFile),
}

const EXPORT_PREFIX: &str = ".berth-volume-export-";

impl ExportFile {
    fn create(dir: &Path) -> Result<Self, EngineError> {
        match nix::fcntl::open(
            dir,
            OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(fd) => return Ok(Self::Unnamed(File::from(fd))),
            Err(nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::EISDIR) => {}
            Err(e) => {
                return Err(VolumeError::sys("creating a file for the export in", dir, e).into())
            }
        }
        let named = tempfile::Builder::new()
            .prefix(EXPORT_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| VolumeError::io("creating a file beside the export", dir, e))?;
        Ok(Self::Named(named))
    }

    fn file(&self) -> &File {
        match self {
            Self::Unnamed(f) => f,
            Self::Named(n) => n.as_file(),
        }
    }

    /// Gives the finished file its name, replacing what was there in one
    /// step.
    fn persist(self, dir: &Path, file: &Path) -> Result<(), EngineError> {
        let f = match self {
            Self::Named(n) => {
                n.persist(file).map_err(|e| {
                    VolumeError::io("renaming the export into place", file, e.error)
                })?;
                return Ok(());
            }
            Self::Unnamed(f) => f,
        };
        // `linkat` cannot replace a file: link under a fresh hidden name,
        // then rename over the target.
        let hidden = dir.join(format!(
            "{EXPORT_PREFIX}{}",
            &crate::containers::defaults::names::new_container_id()[..16]
        ));
        let fd_path = PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd()));
        nix::unistd::linkat(
            nix::fcntl::AT_FDCWD,
            &fd_path,
            nix::fcntl::AT_FDCWD,
            &hidden,
            AtFlags::AT_SYMLINK_FOLLOW,
        )
        .map_err(|e| VolumeError::sys("naming the export", &hidden, e))?;
        if let Err(e) = std::fs::rename(&hidden, file) {
            let _ = std::fs::remove_file(&hidden);
            return Err(VolumeError::io("renaming the export into place", file, e).into());
        }
        Ok(())
    }
}

/// Unmounts on drop what [`VolumeService::mount_for_access`] mounted.
pub(crate) struct TempMount {
    path: PathBuf,
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Err(e) = driver::unmount(&self.path) {
            tracing::warn!("{e}");
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), EngineError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| VolumeError::io("setting the mode of", path, e).into())
}

/// Swaps two directories in one step (`renameat2(RENAME_EXCHANGE)`),
/// then removes what was at `target` (now at `new`).
pub(crate) fn exchange(new: &Path, target: &Path) -> Result<(), EngineError> {
    nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        new,
        nix::fcntl::AT_FDCWD,
        target,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    )
    .map_err(|e| VolumeError::sys("exchanging the volume's files", target, e))?;
    tree::remove_all(new).map_err(|e| VolumeError::io("removing the replaced files", new, e))?;
    Ok(())
}

/// Unpacks a (gzip) tar into `dest` with owners, modes, times and xattrs.
fn unpack(input: File, dest: &Path) -> io::Result<()> {
    let mut r = BufReader::with_capacity(1 << 20, input);
    let gzip = r.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn io::Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(r))
    } else {
        Box::new(r)
    };
    let mut a = tar::Archive::new(reader);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    a.set_unpack_xattrs(true);
    a.set_overwrite(true);
    let mut fault = fault::Countdown::new(fault::IMPORT);
    // Directory times are set last: writing their contents changes them.
    let mut dir_times: Vec<(PathBuf, u64)> = Vec::new();
    // `unpack_in` refuses names with `..` and writes through no symlink
    // that leads out of `dest`.
    for entry in a.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let kind = entry.header().entry_type();
        let mtime = entry.header().mtime().ok();
        let xattrs = pax_xattrs(&mut entry)?;
        if path == Path::new(".") || path == Path::new("./") {
            // The volume's root: its owner, mode and xattrs.
            let h = entry.header().clone();
            std::os::unix::fs::chown(
                dest,
                h.uid().ok().and_then(|u| u32::try_from(u).ok()),
                h.gid().ok().and_then(|g| u32::try_from(g).ok()),
            )?;
            if let Ok(mode) = h.mode() {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode & 0o7777))?;
            }
            set_xattrs(dest, &xattrs);
            dir_times.extend(mtime.map(|t| (dest.to_path_buf(), t)));
            continue;
        }
        if !entry.unpack_in(dest)? {
            continue;
        }
        // `tar` gives xattrs to regular files only; directories, symlinks
        // (`lsetxattr`: `trusted.*`/`security.*`, as the filesystem
        // allows), devices and fifos get theirs here.
        if !matches!(
            kind,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse | EntryType::Link
        ) {
            set_xattrs(&dest.join(&path), &xattrs);
        }
        if kind == EntryType::Directory {
            dir_times.extend(mtime.map(|t| (dest.join(&path), t)));
        }
        fault.tick();
    }
    for (dir, mtime) in dir_times.iter().rev() {
        let t = nix::sys::time::TimeSpec::new(i64::try_from(*mtime).unwrap_or(0), 0);
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            dir,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )?;
    }
    Ok(())
}

/// The `SCHILY.xattr.*` records of an entry's PAX header.
fn pax_xattrs<R: io::Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts.flatten() {
            if let Ok(key) = ext.key() {
                if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                    out.push((attr.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(out)
}

/// `lsetxattr`s, skipping what the filesystem refuses (as `tar` does).
fn set_xattrs(path: &Path, xattrs: &[(String, Vec<u8>)]) {
    for (name, value) in xattrs {
        if let Err(e) = xattr::set(path, name, value) {
            tracing::debug!("xattr {name} of {}: {e}", path.display());
        }
    }
}

struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
    links: HashMap<(u64, u64), PathBuf>,
    bytes: u64,
    /// Test-only crash point, ticked once per entry written.
    fault: fault::Countdown,
}

fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

impl<W: Write> TarWriter<W> {
    fn header(st: &FileStat, entry: EntryType) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(entry);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(0);
        h
    }

    /// `deref`: `path` is a `/proc/self/fd/N` link to the object.
    fn xattrs(&mut self, path: &Path, deref: bool) -> io::Result<()> {
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        let listed = if deref {
            xattr::list_deref(path)
        } else {
            xattr::list(path)
        };
        if let Ok(names) = listed {
            for name in names {
                let value = if deref {
                    xattr::get_deref(path, &name)
                } else {
                    xattr::get(path, &name)
                };
                if let Ok(Some(v)) = value {
                    records.push((format!("SCHILY.xattr.{}", name.to_string_lossy()), v));
                }
            }
        }
        if !records.is_empty() {
            self.builder
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        Ok(())
    }

    fn root(&mut self, dir: BorrowedFd<'_>) -> io::Result<()> {
        let st = nix::sys::stat::fstat(dir)?;
        self.xattrs(
            &PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())),
            true,
        )?;
        let mut h = Self::header(&st, EntryType::Directory);
        self.builder.append_data(&mut h, "./", io::empty())
    }

    fn tree(&mut self, dir: BorrowedFd<'_>, rel: &Path) -> io::Result<()> {
        for name in tree::entries(dir)? {
            let name = name.as_os_str();
            let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let path = rel.join(name);
            let k = kind(&st);
            if k == SFlag::S_IFSOCK {
                continue;
            }
            if k == SFlag::S_IFREG && st.st_nlink > 1 {
                if let Some(first) = self.links.get(&(st.st_dev, st.st_ino)).cloned() {
                    let mut h = Self::header(&st, EntryType::Link);
                    self.builder.append_link(&mut h, &path, &first)?;
                    continue;
                }
                self.links.insert((st.st_dev, st.st_ino), path.clone());
            }
            self.xattrs(&proc_path(dir, name), false)?;
            match k {
                SFlag::S_IFDIR => {
                    let sub = match openat(
                        dir,
                        name,
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => fd,
                        Err(
                            nix::errno::Errno::ENOENT
                            | nix::errno::Errno::ELOOP
                            | nix::errno::Errno::ENOTDIR,
                        ) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let mut h = Self::header(&st, EntryType::Directory);
                    let mut dir_name = path.as_os_str().as_bytes().to_vec();
                    dir_name.push(b'/');
                    self.builder
                        .append_data(&mut h, OsStr::from_bytes(&dir_name), io::empty())?;
                    self.tree(sub.as_fd(), &path)?;
                }
                SFlag::S_IFREG => {
                    let fd = match openat(
                        dir,
                        name,
                        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => fd,
                        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ELOOP) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let f = File::from(fd);
                    let len = f.metadata()?.len();
                    let mut h = Self::header(&st, EntryType::Regular);
                    h.set_size(len);
                    // A file that grows while archived is cut at the size
                    // in its header; one that shrinks fails the export.
                    self.builder
                        .append_data(&mut h, &path, io::Read::take(f, len))?;
                    self.bytes += len;
                }
                SFlag::S_IFLNK => {
                    let target = match readlinkat(dir, name) {
                        Ok(t) => t,
                        Err(nix::errno::Errno::ENOENT) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let mut h = Self::header(&st, EntryType::Symlink);
                    self.builder.append_link(&mut h, &path, &target)?;
                }
                SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                    let entry = match k {
                        SFlag::S_IFCHR => EntryType::Char,
                        SFlag::S_IFBLK => EntryType::Block,
                        _ => EntryType::Fifo,
                    };
                    let mut h = Self::header(&st, entry);
                    if k != SFlag::S_IFIFO {
                        h.set_device_major(nix::sys::stat::major(st.st_rdev) as u32)?;
                        h.set_device_minor(nix::sys::stat::minor(st.st_rdev) as u32)?;
                    }
                    self.builder.append_data(&mut h, &path, io::empty())?;
                }
                _ => {}
            }
            self.fault.tick();
        }
        Ok(())
    }
}
