//! Layer apply: every entry kind, whiteouts, compression, idempotence,
//! concurrency and crash safety.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_image::{chain_id, Digest, ErrorKind, ImageError, LayerStore};
use berth_testutil::TempDir;
use common::TarBuilder;
use tar::EntryType;

/// cap_net_bind_service+ep as a VFS_CAP_REVISION_2 `security.capability` value.
const CAP_NET_BIND_SERVICE: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn base_layer() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("bin/", 0o755)
        .file_owned(
            "bin/tool",
            b"#!tool v1\n",
            0o4755,
            1000,
            1000,
            1_234_567_890,
        )
        .hardlink("bin/tool2", "bin/tool")
        .symlink("bin/sh", "busybox")
        .symlink("abs", "/etc/passwd")
        .xattrs(&[("trusted.berth-test", b"on the link")])
        .symlink("xlink", "/nonexistent/target")
        .xattrs(&[("security.capability", &CAP_NET_BIND_SERVICE)])
        .file("bin/ping", b"ping", 0o755)
        .dir("data/", 0o700)
        .xattrs(&[
            ("user.comment", b"hello xattr"),
            ("trusted.overlay.redirect", b"/elsewhere"),
        ])
        .file("data/note", b"note", 0o640)
        .dir("dev/", 0o755)
        .node("dev/null", EntryType::Char, 1, 3, 0o666)
        .node("dev/loopx", EntryType::Block, 7, 0, 0o660)
        .dir("run/", 0o755)
        .node("run/fifo", EntryType::Fifo, 0, 0, 0o600)
        .dir("old/", 0o755)
        .file("old/remove-me", b"bye", 0o644)
        .file("old/keep", b"stay", 0o644)
        .dir("opq/", 0o755)
        .file("opq/a", b"a", 0o644)
        // Parent directories that the tar does not list are created.
        .file("implicit/deep/file", b"deep", 0o600);
    // A directory whose mtime must survive its children being written later.
    let mut t2 = t;
    t2.raw(EntryType::Directory, b"www/", b"", b"", 0o750);
    t2.file("www/index.html", b"<html>", 0o644);
    // An old-style directory: a regular-file entry whose name ends in '/'.
    t2.raw(EntryType::Regular, b"olddir/", b"", b"", 0o755);
    t2.file("olddir/x", b"", 0o644);
    t2.finish()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn store(tmp: &TempDir) -> LayerStore {
    store_at(tmp.path())
}

fn store_at(root: &Path) -> LayerStore {
    let mut s = LayerStore::open(root).unwrap();
    s.set_durable(false);
    s
}

#[test]
fn applies_every_entry_kind() {
    berth_testutil::require_root!();
    let tmp = TempDir::new("apply-kinds").unwrap();
    let layers = store(&tmp);
    let tar = base_layer();
    let info = layers.apply(None, &gzip(&tar)[..], None).unwrap();
    assert_eq!(
        info.diff_id,
        Digest::of_bytes(&tar),
        "diff id is the uncompressed tar's digest"
    );
    assert_eq!(info.chain_id, info.diff_id);
    assert_eq!(info.parent, None);
    let regular: u64 = [
        &b"#!tool v1\n"[..],
        b"ping",
        b"note",
        b"bye",
        b"stay",
        b"a",
        b"deep",
        b"<html>",
    ]
    .iter()
    .map(|b| b.len() as u64)
    .sum();
    assert_eq!(info.size, regular);
    let d = layers.diff_dir(&info.chain_id);

    let tool = fs::symlink_metadata(d.join("bin/tool")).unwrap();
    assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid survives chown");
    assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
    assert_eq!(tool.mtime(), 1_234_567_890);
    let tool2 = fs::symlink_metadata(d.join("bin/tool2")).unwrap();
    assert_eq!(tool2.ino(), tool.ino(), "hardlink shares the inode");
    assert_eq!(
        fs::read_link(d.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(d.join("abs")).unwrap(),
        Path::new("/etc/passwd"),
        "symlinks are stored as-is"
    );
    assert_eq!(
        xattr::get(d.join("bin/ping"), "security.capability")
            .unwrap()
            .unwrap(),
        CAP_NET_BIND_SERVICE
    );
    let data = fs::symlink_metadata(d.join("data")).unwrap();
    assert_eq!(data.mode() & 0o7777, 0o700);
    assert_eq!(
        xattr::get(d.join("data/note"), "user.comment")
            .unwrap()
            .unwrap(),
        b"hello xattr"
    );
    assert_eq!(
        xattr::get(d.join("data/note"), "trusted.overlay.redirect").unwrap(),
        None,
        "overlay xattrs from the tar are dropped"
    );
    let null = fs::symlink_metadata(d.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let blk = fs::symlink_metadata(d.join("dev/loopx")).unwrap();
    assert!(blk.file_type().is_block_device());
    assert_eq!(blk.rdev(), nix::sys::stat::makedev(7, 0));
    assert!(fs::symlink_metadata(d.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(fs::read(d.join("implicit/deep/file")).unwrap(), b"deep");
    assert!(fs::symlink_metadata(d.join("olddir")).unwrap().is_dir());
    assert!(d.join("olddir/x").is_file());
    let www = fs::symlink_metadata(d.join("www")).unwrap();
    assert_eq!(
        www.mtime(),
        1_600_000_000,
        "directory mtime is set after its children"
    );
    assert_eq!(www.mode() & 0o7777, 0o750);
    let bin = fs::symlink_metadata(d.join("bin")).unwrap();
    assert_eq!(bin.mtime(), 1_600_000_000);
    assert_eq!(layers.get(&info.chain_id).unwrap(), Some(info.clone()));
    assert_eq!(layers.list().unwrap(), vec![info]);
}

fn upper_layer() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("old/", 0o755)
        .whiteout("old/.wh.remove-me")
        .dir("opq/", 0o755)
        .whiteout("opq/.wh..wh..opq")
        .file("opq/b", b"b", 0o644)
        .whiteout(".wh..wh.plnk")
        // A hardlink to a file that only exists in the layer below is copied up.
        .hardlink("bin/tool3", "bin/tool");
    t.finish()
}

#[test]
fn whiteouts_opaque_dirs_zstd_and_idempotence() {
    berth_testutil::require_root!();
    let tmp = TempDir::new("apply-wh").unwrap();
    let layers = store(&tmp);
    let base = layers.apply(None, &base_layer()[..], None).unwrap();
    let tar = upper_layer();
    let diff = Digest::of_bytes(&tar);
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let info = layers
        .apply(Some(&base.chain_id), &zst[..], Some(&diff))
        .unwrap();
    assert_eq!(info.diff_id, diff);
    assert_eq!(info.chain_id, chain_id(&[base.diff_id, diff]));
    assert_eq!(info.parent, Some(base.chain_id));
    let d = layers.diff_dir(&info.chain_id);
    let wh = fs::symlink_metadata(d.join("old/remove-me")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0:0 char device"
    );
    assert!(
        !d.join("old/keep").exists(),
        "untouched lower files are not copied"
    );
    assert_eq!(
        xattr::get(d.join("opq"), "trusted.overlay.opaque")
            .unwrap()
            .unwrap(),
        b"y"
    );
    assert_eq!(fs::read(d.join("opq/b")).unwrap(), b"b");
    assert!(!d.join(".wh..wh.plnk").exists());
    let tool3 = fs::symlink_metadata(d.join("bin/tool3")).unwrap();
    assert_eq!(fs::read(d.join("bin/tool3")).unwrap(), b"#!tool v1\n");
    assert_eq!((tool3.mode() & 0o7777, tool3.uid()), (0o4755, 1000));

    // Already stored: returned without reading the stream.
    struct Unreadable;
    impl Read for Unreadable {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("stream read although the layer is stored")
        }
    }
    assert_eq!(
        layers
            .apply(Some(&base.chain_id), Unreadable, Some(&diff))
            .unwrap(),
        info
    );
    // Without a digest it is unpacked again and lands on the same single copy.
    assert_eq!(
        layers.apply(Some(&base.chain_id), &tar[..], None).unwrap(),
        info
    );
    assert_eq!(layers.list().unwrap().len(), 2);
    assert_eq!(fs::read_dir(tmp.join("layers/staging")).unwrap().count(), 0);

    // A stream that does not match its announced digest stores nothing.
    let other = Digest::of_bytes(b"not this layer");
    let err = layers
        .apply(Some(&base.chain_id), &tar[..], Some(&other))
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert_eq!(layers.list().unwrap().len(), 2);
    assert_eq!(fs::read_dir(tmp.join("layers/staging")).unwrap().count(), 0);

    // A missing parent is reported as such.
    let err = layers.apply(Some(&other), &tar[..], None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // Removal: parents are protected while children exist.
    let err = layers.remove(&base.chain_id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    layers.remove(&info.chain_id).unwrap();
    layers.remove(&base.chain_id).unwrap();
    assert!(layers.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(tmp.join("layers/l")).unwrap().count(), 0);
    assert_eq!(
        layers.remove(&base.chain_id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn durable_apply_and_short_links() {
    berth_testutil::require_root!();
    let tmp = TempDir::new("apply-durable").unwrap();
    let layers = LayerStore::open(tmp.path()).unwrap();
    let info = layers.apply(None, &base_layer()[..], None).unwrap();
    let link = layers.short_link(&info.chain_id).unwrap();
    assert_eq!(link.len(), 2 + 26);
    let via_link = tmp.join("layers").join(&link);
    assert_eq!(
        fs::canonicalize(via_link).unwrap(),
        fs::canonicalize(layers.diff_dir(&info.chain_id)).unwrap()
    );
}

#[test]
fn regenerated_tar_round_trips() {
    berth_testutil::require_root!();
    let tmp = TempDir::new("apply-rt").unwrap();
    let layers = store(&tmp);
    let base = layers.apply(None, &base_layer()[..], None).unwrap();
    let up = layers
        .apply(Some(&base.chain_id), &upper_layer()[..], None)
        .unwrap();

    // Regenerate both layers, apply them into a second store, regenerate again.
    let tmp2 = TempDir::new("apply-rt2").unwrap();
    let layers2 = store(&tmp2);
    let mut t1 = Vec::new();
    let d1 = layers.write_tar(&base.chain_id, &mut t1).unwrap();
    assert_eq!(d1, Digest::of_bytes(&t1));
    let mut t2 = Vec::new();
    let d2 = layers.write_tar(&up.chain_id, &mut t2).unwrap();
    let b2 = layers2.apply(None, &t1[..], Some(&d1)).unwrap();
    let u2 = layers2
        .apply(Some(&b2.chain_id), &t2[..], Some(&d2))
        .unwrap();
    assert_eq!(
        common::tree(&layers.diff_dir(&base.chain_id)),
        common::tree(&layers2.diff_dir(&b2.chain_id))
    );
    assert_eq!(
        common::tree(&layers.diff_dir(&up.chain_id)),
        common::tree(&layers2.diff_dir(&u2.chain_id))
    );
    let mut again = Vec::new();
    assert_eq!(
        layers2.write_tar(&b2.chain_id, &mut again).unwrap(),
        d1,
        "berth's tars reproduce their diff id"
    );
    assert_eq!(again, t1);
    let mut again = Vec::new();
    assert_eq!(layers2.write_tar(&u2.chain_id, &mut again).unwrap(), d2);

    // The regenerated upper layer carries the whiteout and the opaque marker.
    let mut names = Vec::new();
    for e in tar::Archive::new(&t2[..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert!(
        names.contains(&"old/.wh.remove-me".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"opq/.wh..wh..opq".to_string()), "{names:?}");
}

/// About 24 MB of files, so that two concurrent appliers overlap.
fn big_layer() -> Vec<u8> {
    let mut t = TarBuilder::new();
    let mut seed = 0x1234_5678u32;
    for i in 0..96 {
        let data: Vec<u8> = (0..256 * 1024)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        t.file(&format!("d{}/f{i}", i % 8), &data, 0o644);
    }
    t.finish()
}

#[test]
fn concurrent_apply_same_layer_processes() {
    if let Some(role) = common::child_role() {
        let (root, tar) = role.split_once('|').unwrap();
        let mut layers = LayerStore::open(Path::new(root)).unwrap();
        layers.set_durable(false);
        let info = layers
            .apply(None, fs::File::open(tar).unwrap(), None)
            .unwrap();
        println!("RESULT {}", info.chain_id);
        std::process::exit(0);
    }
    berth_testutil::require_root!();
    let tmp = TempDir::new("apply-conc").unwrap();
    let tar = big_layer();
    let tar_path = tmp.join("layer.tar");
    fs::write(&tar_path, &tar).unwrap();
    let root = tmp.join("root");
    let role = format!("{}|{}", root.display(), tar_path.display());
    fs::create_dir(&root).unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            common::spawn_self("concurrent_apply_same_layer_processes", &role)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let expected = Digest::of_bytes(&tar);
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}");
        assert!(stdout.contains(&format!("RESULT {expected}")), "{stdout}");
    }
    let layers = store_at(&root);
    assert_eq!(layers.list().unwrap().len(), 1, "exactly one stored copy");
    assert_eq!(
        fs::read_dir(root.join("layers/staging")).unwrap().count(),
        0
    );
    assert_eq!(fs::read_dir(root.join("layers/l")).unwrap().count(), 1);
    assert_eq!(
        layers.get(&expected).unwrap().unwrap().size,
        96 * 256 * 1024
    );
    let mut regenerated = Vec::new();
    layers.write_tar(&expected, &mut regenerated).unwrap();
    let original: Vec<_> = tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().size())
        .collect();
    let again: Vec<_> = tar::Archive::new(&regenerated[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().size())
        .collect();
    assert_eq!(again.iter().sum::<u64>(), original.iter().sum::<u64>());
}

#[test]
fn killed_apply_leaves_nothing_after_reopen() {
    if let Some(root) = common::child_role() {
        // Feed half the layer, then stall until killed.
        struct Stall {
            data: Vec<u8>,
            pos: usize,
        }
        impl Read for Stall {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.pos >= self.data.len() / 2 {
                    std::thread::sleep(std::time::Duration::from_secs(120));
                }
                let n = buf.len().min(self.data.len() / 2 - self.pos).min(64 * 1024);
                buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
                self.pos += n;
                Ok(n)
            }
        }
        let layers = LayerStore::open(Path::new(&root)).unwrap();
        let _ = layers.apply(
            None,
            Stall {
                data: big_layer(),
                pos: 0,
            },
            None,
        );
        std::process::exit(1);
    }
    berth_testutil::require_root!();
    let tmp = TempDir::new("apply-kill").unwrap();
    let mut child = common::spawn_self(
        "killed_apply_leaves_nothing_after_reopen",
        tmp.path().to_str().unwrap(),
    )
    .spawn()
    .unwrap();
    let staging = tmp.join("layers/staging");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // Wait until the child has unpacked files into its staging directory.
    loop {
        let busy = fs::read_dir(&staging)
            .map(|rd| rd.flatten().any(|e| e.path().join("diff/d0").exists()))
            .unwrap_or(false);
        if busy {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "child never started unpacking"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // While the child lives, opening the store spares its staging directory.
    let _ = LayerStore::open(tmp.path()).unwrap();
    assert_eq!(fs::read_dir(&staging).unwrap().count(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    let layers = LayerStore::open(tmp.path()).unwrap();
    assert_eq!(
        fs::read_dir(&staging).unwrap().count(),
        0,
        "leftovers removed on open"
    );
    assert!(layers.list().unwrap().is_empty());
}
