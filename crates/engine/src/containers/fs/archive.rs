//! Tar archives of a tree reached through `O_PATH` fds (`cp` from a
//! container, `export`).
//!
//! Every object is opened relative to its parent's fd with `O_NOFOLLOW`
//! and described by `fstat` of that very fd, so a container that swaps a
//! directory for a symlink while it is archived cannot make the walk read
//! the host's files. Entries come in byte order of their names, parents
//! first; numeric owners; hard links inside the archive as link entries;
//! `security.capability` kept as a PAX `SCHILY.xattr` record (what Docker
//! carries); sockets skipped, as they cannot be archived.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fstat, FileStat, Mode, SFlag};
use tar::{EntryType, Header};

use super::error::ContainerFsError;
use super::resolve::file_kind;

const CAPABILITY_XATTR: &str = "security.capability";

pub(crate) struct TreeArchiver<W: Write> {
    builder: tar::Builder<W>,
    /// (dev, ino) of multiply-linked files already written → their name.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// Bytes of file content written.
    pub(crate) content_bytes: u64,
}

impl<W: Write> TreeArchiver<W> {
    pub(crate) fn new(w: W) -> Self {
        Self {
            builder: tar::Builder::new(w),
            links: HashMap::new(),
            content_bytes: 0,
        }
    }

    /// Appends the object `fd` (`O_PATH`, the object itself, not followed)
    /// as `name`, and for a directory everything below it.
    pub(crate) fn append(&mut self, fd: &OwnedFd, name: &[u8]) -> Result<(), ContainerFsError> {
        let st = fstat(fd).map_err(|e| sys("fstat", name, e))?;
        let kind = file_kind(&st);
        if kind == SFlag::S_IFSOCK {
            return Ok(());
        }
        let perm = st.st_mode & 0o7777;
        if kind == SFlag::S_IFDIR {
            let mut h = header(&st, EntryType::Directory, perm);
            let mut dir_name = name.to_vec();
            if !dir_name.ends_with(b"/") {
                dir_name.push(b'/');
            }
            self.write(&mut h, &dir_name, io::empty())?;
            return self.append_children(fd, name);
        }
        if kind != SFlag::S_IFDIR && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                let mut h = header(&st, EntryType::Link, perm);
                return self
                    .builder
                    .append_link(&mut h, as_path(name), as_path(&first))
                    .map_err(|e| tar_err(name, e));
            }
            self.links.insert(key, name.to_vec());
        }
        match kind {
            SFlag::S_IFREG => {
                let file = reopen_for_reading(fd, name)?;
                if let Some(cap) = capability_xattr(&file) {
                    self.builder
                        .append_pax_extensions([(
                            format!("SCHILY.xattr.{CAPABILITY_XATTR}").as_str(),
                            cap.as_slice(),
                        )])
                        .map_err(|e| tar_err(name, e))?;
                }
                let size = u64::try_from(st.st_size).unwrap_or(0);
                let mut h = header(&st, EntryType::Regular, perm);
                h.set_size(size);
                self.content_bytes += size;
                let reader = ExactSize {
                    inner: io::BufReader::with_capacity(1 << 20, file),
                    left: size,
                };
                self.write(&mut h, name, reader)
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(fd, "").map_err(|e| sys("readlink", name, e))?;
                let mut h = header(&st, EntryType::Symlink, perm);
                self.builder
                    .append_link(&mut h, as_path(name), Path::new(&target))
                    .map_err(|e| tar_err(name, e))
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                let entry = match kind {
                    SFlag::S_IFCHR => EntryType::Char,
                    SFlag::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                };
                let mut h = header(&st, entry, perm);
                if entry != EntryType::Fifo {
                    let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
                    h.set_device_major(major).map_err(|e| tar_err(name, e))?;
                    h.set_device_minor(minor).map_err(|e| tar_err(name, e))?;
                }
                self.write(&mut h, name, io::empty())
            }
            _ => Ok(()),
        }
    }

    /// Appends everything below the directory `dir`, named `prefix/child`
    /// (just `child` for an empty prefix), without an entry for `dir`.
    pub(crate) fn append_children(
        &mut self,
        dir: &OwnedFd,
        prefix: &[u8],
    ) -> Result<(), ContainerFsError> {
        let mut listing = Dir::openat(
            dir.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| sys("open directory", prefix, e))?;
        let mut names: Vec<Vec<u8>> = Vec::new();
        for ent in listing.iter() {
            let ent = ent.map_err(|e| sys("read directory", prefix, e))?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        drop(listing);
        names.sort();
        for n in names {
            let mut child_name = prefix.to_vec();
            if !child_name.is_empty() && !child_name.ends_with(b"/") {
                child_name.push(b'/');
            }
            child_name.extend_from_slice(&n);
            let child = match openat(
                dir.as_fd(),
                OsStr::from_bytes(&n),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                // Removed while we walked (a running container): skip it, as
                // a walk that had come a moment later would.
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(sys("open", &child_name, e)),
            };
            self.append(&child, &child_name)?;
        }
        Ok(())
    }

    /// Writes the end-of-archive blocks and returns the writer.
    pub(crate) fn finish(self) -> Result<W, ContainerFsError> {
        self.builder
            .into_inner()
            .map_err(|e| ContainerFsError::io("finishing the archive", e))
    }

    fn write(
        &mut self,
        h: &mut Header,
        name: &[u8],
        data: impl io::Read,
    ) -> Result<(), ContainerFsError> {
        self.builder
            .append_data(h, as_path(name), data)
            .map_err(|e| tar_err(name, e))
    }
}

/// Exactly `left` bytes of `inner`: a file that a running container grows
/// while it is archived ends where its header says, one that it shrinks is
/// padded with zeros, so the archive stays well-formed either way.
struct ExactSize<R> {
    inner: R,
    left: u64,
}

impl<R: io::Read> io::Read for ExactSize<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

fn header(st: &FileStat, kind: EntryType, mode: u32) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// A readable fd for the regular file behind the `O_PATH` fd `fd`: through
/// its `/proc/self/fd` link, which reaches exactly that inode.
fn reopen_for_reading(fd: &OwnedFd, name: &[u8]) -> Result<File, ContainerFsError> {
    let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let opened = nix::fcntl::open(
        proc_path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| sys("open for reading", name, e))?;
    Ok(File::from(opened))
}

/// The file's `security.capability`, if it has one.
fn capability_xattr(file: &File) -> Option<Vec<u8>> {
    let key = CString::new(CAPABILITY_XATTR).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: fgetxattr writes at most `buf.len()` bytes into `buf`, which
    // lives for the call; the fd is open.
    let n = unsafe {
        libc::fgetxattr(
            file.as_raw_fd(),
            key.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn as_path(name: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(name))
}

fn sys(op: &'static str, name: &[u8], e: Errno) -> ContainerFsError {
    ContainerFsError::sys(op, String::from_utf8_lossy(name).into_owned(), e)
}

fn tar_err(name: &[u8], e: io::Error) -> ContainerFsError {
    ContainerFsError::io(
        format!("writing {} to the archive", String::from_utf8_lossy(name)),
        e,
    )
}
