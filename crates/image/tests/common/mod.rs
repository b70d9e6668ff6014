//! Helpers shared by the image crate's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use tar::{EntryType, Header};

/// Environment variable that turns a re-executed test binary into a child role.
pub const CHILD_ENV: &str = "BERTH_IMAGE_TEST_CHILD";

/// The child role this process was started for, if any.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// A command that re-runs this test binary's test `test_name` as a child with `role`.
pub fn spawn_self(test_name: &str, role: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current exe"));
    c.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role);
    c
}

/// Builds tar archives entry by entry with explicit headers.
pub struct TarBuilder {
    b: tar::Builder<Vec<u8>>,
    pub mtime: u64,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
            mtime: 1_600_000_000,
        }
    }

    fn header(&self, kind: EntryType, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h.set_size(0);
        h
    }

    /// Appends an entry with the raw name bytes written straight into the
    /// header (no validation: this is how hostile tars are made).
    pub fn raw(
        &mut self,
        kind: EntryType,
        name: &[u8],
        link: &[u8],
        data: &[u8],
        mode: u32,
    ) -> &mut Self {
        let mut h = self.header(kind, mode);
        h.set_size(data.len() as u64);
        {
            let gnu = h.as_gnu_mut().expect("gnu header");
            gnu.name = [0; 100];
            gnu.name[..name.len()].copy_from_slice(name);
            gnu.linkname = [0; 100];
            gnu.linkname[..link.len()].copy_from_slice(link);
        }
        h.set_cksum();
        self.b.append(&h, data).expect("append raw");
        self
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let h = self.header(EntryType::Directory, mode);
        self.append(h, name, &[])
    }

    pub fn file(&mut self, name: &str, data: &[u8], mode: u32) -> &mut Self {
        let h = self.header(EntryType::Regular, mode);
        self.append(h, name, data)
    }

    pub fn file_owned(
        &mut self,
        name: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    ) -> &mut Self {
        let mut h = self.header(EntryType::Regular, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        self.append(h, name, data)
    }

    pub fn xattrs(&mut self, pairs: &[(&str, &[u8])]) -> &mut Self {
        let keys: Vec<(String, &[u8])> = pairs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        self.b
            .append_pax_extensions(keys.iter().map(|(k, v)| (k.as_str(), *v)))
            .expect("pax");
        self
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = self.header(EntryType::Symlink, 0o777);
        self.b.append_link(&mut h, name, target).expect("symlink");
        self
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut h = self.header(EntryType::Link, 0o644);
        self.b.append_link(&mut h, name, target).expect("hardlink");
        self
    }

    pub fn node(
        &mut self,
        name: &str,
        kind: EntryType,
        major: u32,
        minor: u32,
        mode: u32,
    ) -> &mut Self {
        let mut h = self.header(kind, mode);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        self.append(h, name, &[])
    }

    pub fn whiteout(&mut self, name: &str) -> &mut Self {
        self.file(name, b"", 0o600)
    }

    fn append(&mut self, mut h: Header, name: &str, data: &[u8]) -> &mut Self {
        h.set_size(data.len() as u64);
        self.b.append_data(&mut h, name, data).expect("append");
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("finish tar")
    }
}

/// A comparable description of a directory tree: per path, type, mode,
/// owner, content digest / link target / device, xattrs, and (for
/// non-directories) mtime seconds.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let rel = p
            .strip_prefix(root)
            .expect("prefix")
            .to_string_lossy()
            .into_owned();
        let md = fs::symlink_metadata(&p).expect("lstat");
        let ft = md.file_type();
        let mut xattrs: Vec<String> = xattr::list(&p)
            .map(|l| {
                l.filter_map(|k| {
                    let v = xattr::get(&p, &k).ok().flatten()?;
                    Some(format!("{}={}", k.to_string_lossy(), hex(&v)))
                })
                .collect()
            })
            .unwrap_or_default();
        xattrs.sort();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_file() {
            format!(
                "file {} mtime={}",
                berth_image::Digest::of_bytes(&fs::read(&p).expect("read")),
                md.mtime()
            )
        } else if ft.is_symlink() {
            format!(
                "symlink {} mtime={}",
                fs::read_link(&p).expect("readlink").display(),
                md.mtime()
            )
        } else if ft.is_char_device() || ft.is_block_device() {
            format!(
                "dev {} {}",
                if ft.is_char_device() { 'c' } else { 'b' },
                md.rdev()
            )
        } else if ft.is_fifo() {
            "fifo".to_string()
        } else {
            "other".to_string()
        };
        let mode = if ft.is_symlink() {
            0
        } else {
            md.mode() & 0o7777
        };
        out.insert(
            rel,
            format!(
                "{what} mode={mode:o} {}:{} xattrs=[{}]",
                md.uid(),
                md.gid(),
                xattrs.join(",")
            ),
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Moves the calling thread into a private mount namespace (mounts made
/// afterwards vanish with the test process and never reach the host).
pub fn private_mount_ns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare mount ns");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .expect("make / rslave");
}

/// Mount points of this thread's namespace at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/thread-self/mountinfo").expect("mountinfo");
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// Unmounts `target` when dropped (test cleanup also on failure).
pub struct UnmountGuard(pub std::path::PathBuf);

impl Drop for UnmountGuard {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}
