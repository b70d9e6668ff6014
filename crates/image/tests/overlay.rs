//! Overlay snapshots over stored layers, and layer tars generated from real
//! overlay upper dirs. Each test runs in a private mount namespace, so its
//! mounts can never outlive it or reach the host.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};

use berth_image::{diff_from_upper, Digest, ErrorKind, ImageError, LayerStore, OverlaySnapshotter};
use berth_testutil::TempDir;
use common::{TarBuilder, UnmountGuard};

fn stores(tmp: &TempDir) -> (LayerStore, OverlaySnapshotter) {
    let mut layers = LayerStore::open(tmp.path()).unwrap();
    layers.set_durable(false);
    let snaps = OverlaySnapshotter::open(tmp.path(), layers.clone()).unwrap();
    (layers, snaps)
}

fn base_tar() -> Vec<u8> {
    let mut t = TarBuilder::new();
    t.dir("a/", 0o755)
        .file("a/f1", b"one", 0o644)
        .dir("a/b/", 0o755)
        .file("a/b/f2", b"two", 0o644)
        .file("del.txt", b"delete me", 0o644)
        .dir("opq/", 0o755)
        .file("opq/old1", b"old1", 0o644)
        .file("opq/old2", b"old2", 0o644)
        .dir("keep/", 0o711)
        .file("keep/k", b"k", 0o600)
        .file("hl1", b"linked", 0o644)
        .hardlink("hl2", "hl1");
    t.finish()
}

#[test]
fn snapshot_mount_unmount_remove() {
    berth_testutil::require_root!();
    common::private_mount_ns();
    let tmp = TempDir::new("snap-basic").unwrap();
    let (layers, snaps) = stores(&tmp);
    let base = layers.apply(None, &base_tar()[..], None).unwrap();

    let m = snaps.prepare("s1", Some(&base.chain_id)).unwrap();
    assert_eq!(
        m.lowerdirs,
        vec![layers.short_link(&base.chain_id).unwrap()]
    );
    assert!(m.options.starts_with("lowerdir=l/"), "{}", m.options);
    assert_eq!(
        m.absolute_lowerdirs()[0],
        tmp.join("layers").join(&m.lowerdirs[0])
    );
    let err = snaps.prepare("s1", Some(&base.chain_id)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");

    snaps.mount("s1", &m.merged).unwrap();
    let guard = UnmountGuard(m.merged.clone());
    assert_eq!(fs::read(m.merged.join("a/f1")).unwrap(), b"one");
    fs::write(m.merged.join("new"), b"written").unwrap();
    assert_eq!(fs::read(m.upper.join("new")).unwrap(), b"written");
    assert!(
        !layers.diff_dir(&base.chain_id).join("new").exists(),
        "layers stay read-only"
    );

    let err = snaps.remove("s1").unwrap_err();
    assert!(matches!(err, ImageError::SnapshotMounted { .. }), "{err}");
    snaps.unmount(&m.merged).unwrap();
    snaps.unmount(&m.merged).unwrap(); // idempotent
    drop(guard);
    snaps.remove("s1").unwrap();
    assert!(!tmp.join("snapshots/s1").exists());
    assert_eq!(snaps.remove("s1").unwrap_err().kind(), ErrorKind::NotFound);
    assert!(
        common::mounts_under(tmp.path()).is_empty(),
        "{:?}",
        common::mounts_under(tmp.path())
    );

    // An empty base (no layers) mounts too.
    let e = snaps.prepare("empty", None).unwrap();
    snaps.mount("empty", &e.merged).unwrap();
    let guard = UnmountGuard(e.merged.clone());
    assert_eq!(fs::read_dir(&e.merged).unwrap().count(), 0);
    snaps.unmount(&e.merged).unwrap();
    drop(guard);
    snaps.remove("empty").unwrap();

    // Bad keys and missing parents leave nothing behind.
    let err = snaps.prepare("../escape", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let missing = Digest::of_bytes(b"no such layer");
    assert_eq!(
        snaps.prepare("s2", Some(&missing)).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(snaps.list().unwrap().is_empty());
    assert!(common::mounts_under(tmp.path()).is_empty());
}

fn stack(layers: &LayerStore, n: usize) -> Digest {
    let mut parent: Option<Digest> = None;
    for i in 0..n {
        let mut t = TarBuilder::new();
        t.file(&format!("f{i}"), format!("{i}").as_bytes(), 0o644)
            .file("top", format!("layer {i}").as_bytes(), 0o644);
        let info = layers
            .apply(parent.as_ref(), &t.finish()[..], None)
            .unwrap();
        parent = Some(info.chain_id);
    }
    parent.unwrap()
}

fn check_stack(snaps: &OverlaySnapshotter, key: &str, top: &Digest, n: usize, legacy: bool) {
    let m = snaps.prepare(key, Some(top)).unwrap();
    assert_eq!(m.lowerdirs.len(), n);
    if legacy {
        m.mount_with_mount2(&m.merged).unwrap();
    } else {
        m.mount_at(&m.merged).unwrap();
    }
    let guard = UnmountGuard(m.merged.clone());
    assert_eq!(
        fs::read_to_string(m.merged.join("top")).unwrap(),
        format!("layer {}", n - 1)
    );
    assert_eq!(fs::read_to_string(m.merged.join("f0")).unwrap(), "0");
    assert_eq!(fs::read_to_string(m.merged.join("f77")).unwrap(), "77");
    assert_eq!(fs::read_dir(&m.merged).unwrap().count(), n + 1);
    snaps.unmount(&m.merged).unwrap();
    drop(guard);
    snaps.remove(key).unwrap();
}

#[test]
fn snapshot_with_128_layers() {
    berth_testutil::require_root!();
    common::private_mount_ns();
    let tmp = TempDir::new("snap128").unwrap();
    let (layers, snaps) = stores(&tmp);
    let top = stack(&layers, 128);
    assert_eq!(layers.chain(&top).unwrap().len(), 128);
    let m = snaps.prepare("probe", Some(&top)).unwrap();
    assert!(m.options.len() < 4096, "{} bytes", m.options.len());
    snaps.remove("probe").unwrap();
    // Both mount paths: mount(2) with relative short links, and the default.
    check_stack(&snaps, "legacy", &top, 128, true);
    check_stack(&snaps, "k128", &top, 128, false);
    assert!(common::mounts_under(tmp.path()).is_empty());
}

#[test]
fn snapshot_beyond_the_mount2_limit() {
    berth_testutil::require_root!();
    common::private_mount_ns();
    let tmp = TempDir::new("snap200").unwrap();
    let (layers, snaps) = stores(&tmp);
    let top = stack(&layers, 200);
    let m = snaps.prepare("big", Some(&top)).unwrap();
    assert!(m.options.len() > 4095);
    let err = m.mount_with_mount2(&m.merged).unwrap_err();
    assert!(
        matches!(err, ImageError::MountOptionsTooLong { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("over the 4095-byte limit"),
        "{err}"
    );
    snaps.remove("big").unwrap();
    // The new mount API (Linux >= 6.8) has no such limit.
    let release = nix::sys::utsname::uname()
        .unwrap()
        .release()
        .to_string_lossy()
        .into_owned();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|x| x.parse::<u32>().ok());
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    if (major, minor) < (6, 8) {
        eprintln!("SKIPPED: kernel {release} has no overlay lowerdir+");
        return;
    }
    check_stack(&snaps, "big", &top, 200, false);
    assert!(common::mounts_under(tmp.path()).is_empty());
}

#[test]
fn applied_whiteouts_take_effect_in_overlay() {
    berth_testutil::require_root!();
    common::private_mount_ns();
    let tmp = TempDir::new("snap-wh").unwrap();
    let (layers, snaps) = stores(&tmp);
    let base = layers.apply(None, &base_tar()[..], None).unwrap();
    let mut t = TarBuilder::new();
    t.whiteout(".wh.del.txt")
        .dir("opq/", 0o755)
        .whiteout("opq/.wh..wh..opq")
        .file("opq/fresh", b"f", 0o644);
    t.dir("a/", 0o755).dir("a/b/", 0o755).whiteout("a/b/.wh.f2");
    let up = layers
        .apply(Some(&base.chain_id), &t.finish()[..], None)
        .unwrap();
    let m = snaps.prepare("wh", Some(&up.chain_id)).unwrap();
    snaps.mount("wh", &m.merged).unwrap();
    let guard = UnmountGuard(m.merged.clone());
    assert!(!m.merged.join("del.txt").exists());
    let opq: Vec<_> = fs::read_dir(m.merged.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(opq, vec!["fresh"]);
    assert!(!m.merged.join("a/b/f2").exists());
    assert_eq!(fs::read(m.merged.join("a/f1")).unwrap(), b"one");
    assert_eq!(fs::read(m.merged.join("keep/k")).unwrap(), b"k");
    snaps.unmount(&m.merged).unwrap();
    drop(guard);
    snaps.remove("wh").unwrap();
}

#[test]
fn diff_from_upper_round_trip() {
    berth_testutil::require_root!();
    common::private_mount_ns();
    let tmp = TempDir::new("snap-diff").unwrap();
    let (layers, snaps) = stores(&tmp);
    let base = layers.apply(None, &base_tar()[..], None).unwrap();
    let m = snaps.prepare("work", Some(&base.chain_id)).unwrap();
    snaps.mount("work", &m.merged).unwrap();
    let guard = UnmountGuard(m.merged.clone());
    let root = &m.merged;
    // Changes of every kind, made through a real overlay mount.
    fs::remove_file(root.join("del.txt")).unwrap();
    fs::remove_dir_all(root.join("opq")).unwrap();
    fs::create_dir(root.join("opq")).unwrap();
    fs::write(root.join("opq/new"), b"new in opaque").unwrap();
    fs::write(root.join("a/f1"), b"one modified").unwrap();
    fs::rename(root.join("a/b/f2"), root.join("a/b/f2-renamed")).unwrap();
    fs::create_dir(root.join("n")).unwrap();
    fs::write(root.join("n/new"), b"brand new").unwrap();
    std::os::unix::fs::chown(root.join("n/new"), Some(1234), Some(5678)).unwrap();
    fs::set_permissions(
        root.join("n/new"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4750),
    )
    .unwrap();
    xattr::set(root.join("n/new"), "user.x", b"1").unwrap();
    xattr::set(
        root.join("n/new"),
        "security.capability",
        &[1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    )
    .unwrap();
    fs::hard_link(root.join("n/new"), root.join("n/h1")).unwrap();
    symlink("../a/f1", root.join("n/link")).unwrap();
    nix::unistd::mkfifo(
        &root.join("n/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    fs::remove_file(root.join("hl2")).unwrap();
    let expected = common::tree(root);
    snaps.unmount(root).unwrap();
    drop(guard);

    let mut tar = Vec::new();
    let diff = diff_from_upper(&m.upper, &mut tar).unwrap();
    assert_eq!(diff, Digest::of_bytes(&tar));
    assert_eq!(
        snaps.diff("work", std::io::sink()).unwrap(),
        diff,
        "deterministic"
    );
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        let e = e.unwrap();
        names.push((
            e.path().unwrap().to_string_lossy().into_owned(),
            e.header().entry_type(),
        ));
    }
    let has = |n: &str| names.iter().any(|(p, _)| p == n);
    assert!(!has("del.txt") && has(".wh.del.txt"), "{names:?}");
    assert!(has("opq/.wh..wh..opq") && has("opq/new"), "{names:?}");
    assert!(has("a/b/.wh.f2") && has("a/b/f2-renamed"), "{names:?}");
    assert!(has(".wh.hl2"), "{names:?}");
    assert!(
        names
            .iter()
            .any(|(p, k)| p == "n/new" && *k == tar::EntryType::Link),
        "{names:?}"
    );

    // Apply the generated layer on top of the base: the result is the tree
    // the overlay showed.
    let top = layers
        .apply(Some(&base.chain_id), &tar[..], Some(&diff))
        .unwrap();
    let c = snaps.prepare("check", Some(&top.chain_id)).unwrap();
    snaps.mount("check", &c.merged).unwrap();
    let guard = UnmountGuard(c.merged.clone());
    let got = common::tree(&c.merged);
    snaps.unmount(&c.merged).unwrap();
    drop(guard);
    assert_eq!(got, expected);
    let n = fs::symlink_metadata(layers.diff_dir(&top.chain_id).join("n/new")).unwrap();
    assert_eq!((n.uid(), n.gid(), n.mode() & 0o7777), (1234, 5678, 0o4750));

    // Regenerating the stored layer reproduces the same bytes.
    let mut again = Vec::new();
    assert_eq!(layers.write_tar(&top.chain_id, &mut again).unwrap(), diff);
    assert_eq!(again, tar);
    snaps.remove("work").unwrap();
    snaps.remove("check").unwrap();
    assert!(common::mounts_under(tmp.path()).is_empty());
}

/// A discarded snapshot comes back as an empty skeleton for the next one:
/// same directories (inodes), nothing of the old container's writes, the
/// right parent; one that is still mounted is not taken.
#[test]
fn discarded_snapshots_are_recycled_as_empty_skeletons() {
    berth_testutil::require_root!();
    common::private_mount_ns();
    let tmp = TempDir::new("snap-recycle").unwrap();
    let (layers, snaps) = stores(&tmp);
    let base = layers.apply(None, &base_tar()[..], None).unwrap();
    let trash = tmp.join("trash");
    fs::create_dir_all(&trash).unwrap();

    let m = snaps.prepare("old", Some(&base.chain_id)).unwrap();
    snaps.mount("old", &m.merged).unwrap();
    let guard = UnmountGuard(m.merged.clone());
    fs::create_dir_all(m.merged.join("deep/er")).unwrap();
    fs::write(m.merged.join("deep/er/file"), b"old data").unwrap();
    fs::remove_file(m.merged.join("del.txt")).unwrap(); // a whiteout in upper
    let upper_ino = fs::metadata(&m.upper).unwrap().ino();
    // Still mounted: not recycled.
    fs::rename(tmp.join("snapshots/old"), trash.join("old.1")).unwrap();
    assert!(!berth_image::recycle_snapshot(
        &trash.join("old.1"),
        &tmp.join("snapshots")
    ));
    fs::rename(trash.join("old.1"), tmp.join("snapshots/old")).unwrap();
    snaps.unmount(&m.merged).unwrap();
    drop(guard);

    snaps.discard("old", &trash.join("old.2")).unwrap();
    assert!(berth_image::recycle_snapshot(
        &trash.join("old.2"),
        &tmp.join("snapshots")
    ));
    assert!(!trash.join("old.2").exists());
    assert_eq!(
        snaps.list().unwrap(),
        Vec::<String>::new(),
        "the pool is not a snapshot"
    );

    // A longer parent file than the new one (rewritten in place, not
    // truncated first): nothing of it may stay.
    let pooled = fs::read_dir(tmp.join("snapshots/.free"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::write(pooled.join("parent"), "x".repeat(300)).unwrap();
    let n = snaps.prepare("new", Some(&base.chain_id)).unwrap();
    assert_eq!(
        fs::metadata(&n.upper).unwrap().ino(),
        upper_ino,
        "the skeleton was reused"
    );
    assert_eq!(
        fs::read_to_string(tmp.join("snapshots/new/parent")).unwrap(),
        base.chain_id.to_string()
    );
    assert_eq!(fs::read_dir(&n.upper).unwrap().count(), 0);
    snaps.mount("new", &n.merged).unwrap();
    let guard = UnmountGuard(n.merged.clone());
    assert!(!n.merged.join("deep").exists());
    assert_eq!(fs::read(n.merged.join("del.txt")).unwrap(), b"delete me");
    assert_eq!(fs::read(n.merged.join("a/f1")).unwrap(), b"one");
    snaps.unmount(&n.merged).unwrap();
    drop(guard);

    // A parentless snapshot from a skeleton has no parent file.
    snaps.discard("new", &trash.join("new.1")).unwrap();
    assert!(berth_image::recycle_snapshot(
        &trash.join("new.1"),
        &tmp.join("snapshots")
    ));
    let e = snaps.prepare("scratch", None).unwrap();
    assert!(!tmp.join("snapshots/scratch/parent").exists());
    assert_eq!(e.lowerdirs.len(), 1);
    snaps.remove("scratch").unwrap();
    assert!(common::mounts_under(tmp.path()).is_empty());
}
