//! Hostile layer tars, built byte by byte: none may write, link or delete
//! anything outside the layer directory.

mod common;

use std::fs;
use std::path::Path;

use berth_image::{ErrorKind, ImageError, LayerStore};
use berth_testutil::TempDir;
use common::TarBuilder;
use tar::EntryType::{Link, Regular};

struct Setup {
    tmp: TempDir,
}

impl Setup {
    fn new(name: &str) -> Self {
        let tmp = TempDir::new(name).unwrap();
        fs::create_dir_all(tmp.join("canary/dir")).unwrap();
        fs::write(tmp.join("canary/target"), b"original").unwrap();
        fs::write(tmp.join("canary/dir/secret"), b"secret").unwrap();
        fs::create_dir(tmp.join("root")).unwrap();
        Self { tmp }
    }

    /// The canary directory as seen from a staging diff dir
    /// (`root/layers/staging/<x>/diff`).
    fn up(&self) -> &'static str {
        "../../../../canary"
    }

    fn canary_abs(&self) -> String {
        self.tmp.join("canary").to_string_lossy().into_owned()
    }

    fn layers(&self) -> LayerStore {
        let mut s = LayerStore::open(&self.tmp.join("root")).unwrap();
        s.set_durable(false);
        s
    }

    fn canary(&self) -> std::collections::BTreeMap<String, String> {
        common::tree(&self.tmp.join("canary"))
    }

    /// Applies `tar`, expects a refusal mentioning `entry` and `reason`, and
    /// checks that nothing changed outside and nothing was stored.
    fn refused(&self, tar: Vec<u8>, entry: &str, reason: &str) {
        let before = self.canary();
        let layers = self.layers();
        let err = layers.apply(None, &tar[..], None).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, ImageError::LayerEntry { .. }),
            "unexpected error kind: {msg}"
        );
        assert_eq!(err.kind(), ErrorKind::Corrupt);
        assert!(
            msg.contains(&format!("entry {entry:?}")),
            "error does not name the entry {entry:?}: {msg}"
        );
        assert!(msg.contains(reason), "error does not say {reason:?}: {msg}");
        assert!(msg.starts_with("layer (unverified): "), "{msg}");
        assert_eq!(self.canary(), before, "canary changed");
        assert!(layers.list().unwrap().is_empty());
        assert_eq!(
            fs::read_dir(self.tmp.join("root/layers/staging"))
                .unwrap()
                .count(),
            0
        );
    }
}

#[test]
fn dotdot_traversal_is_refused() {
    berth_testutil::require_root!();
    let s = Setup::new("evil-dotdot");
    let name = format!("{}/pwned", s.up());
    let mut t = TarBuilder::new();
    t.raw(Regular, name.as_bytes(), b"", b"pwned", 0o644);
    s.refused(t.finish(), &name, "path escapes the layer root");

    let name = format!("a/b/../../../{}/pwned", s.up());
    let mut t = TarBuilder::new();
    t.dir("a/", 0o755)
        .raw(Regular, name.as_bytes(), b"", b"pwned", 0o644);
    s.refused(t.finish(), &name, "path escapes the layer root");

    // The classic payload: overwrite the host's passwd.
    let err_entry = "../../etc/passwd";
    let mut t = TarBuilder::new();
    t.raw(
        Regular,
        err_entry.as_bytes(),
        b"",
        b"root::0:0::/:/bin/sh\n",
        0o644,
    );
    s.refused(t.finish(), err_entry, "path escapes the layer root");
}

#[test]
fn absolute_paths_are_refused() {
    berth_testutil::require_root!();
    let s = Setup::new("evil-abs");
    let name = format!("{}/pwned", s.canary_abs());
    let mut t = TarBuilder::new();
    t.raw(Regular, name.as_bytes(), b"", b"pwned", 0o644);
    s.refused(t.finish(), &name, "absolute path not allowed in a layer");
}

#[test]
fn writes_through_symlinks_are_refused() {
    berth_testutil::require_root!();
    let s = Setup::new("evil-symlink");
    // A symlink to / and a file through it.
    let through = format!("rootlink{}/pwned", s.canary_abs());
    let mut t = TarBuilder::new();
    t.symlink("rootlink", "/")
        .raw(Regular, through.as_bytes(), b"", b"pwned", 0o644);
    s.refused(
        t.finish(),
        &through,
        "path goes through symlink \"rootlink\"",
    );

    // A chain of relative symlinks climbing out.
    let mut t = TarBuilder::new();
    t.symlink("up", "../../../..").symlink("up2", "up").raw(
        Regular,
        b"up2/canary/pwned",
        b"",
        b"pwned",
        0o644,
    );
    s.refused(
        t.finish(),
        "up2/canary/pwned",
        "path goes through symlink \"up2\"",
    );

    let mut t = TarBuilder::new();
    t.dir("x/", 0o755).symlink("x/y", "..").raw(
        Regular,
        b"x/y/y/../../../../../canary/pwned",
        b"",
        b"p",
        0o644,
    );
    s.refused(
        t.finish(),
        "x/y/y/../../../../../canary/pwned",
        "path escapes the layer root",
    );

    let mut t = TarBuilder::new();
    t.dir("x/", 0o755)
        .symlink("x/y", "..")
        .raw(Regular, b"x/y/z", b"", b"p", 0o644);
    s.refused(t.finish(), "x/y/z", "path goes through symlink \"x/y\"");

    // Directories, devices, whiteouts and opaque markers through a symlink.
    let mut t = TarBuilder::new();
    t.symlink("link", s.up()).dir("link/newdir/", 0o755);
    s.refused(
        t.finish(),
        "link/newdir/",
        "path goes through symlink \"link\"",
    );
    let mut t = TarBuilder::new();
    t.symlink("link", s.up()).whiteout("link/.wh.target");
    s.refused(
        t.finish(),
        "link/.wh.target",
        "path goes through symlink \"link\"",
    );
    let mut t = TarBuilder::new();
    t.symlink("link", s.up()).whiteout("link/dir/.wh..wh..opq");
    s.refused(
        t.finish(),
        "link/dir/.wh..wh..opq",
        "path goes through symlink \"link\"",
    );
    let mut t = TarBuilder::new();
    t.symlink("link", s.up())
        .node("link/fifo", tar::EntryType::Fifo, 0, 0, 0o644);
    s.refused(
        t.finish(),
        "link/fifo",
        "path goes through symlink \"link\"",
    );
}

#[test]
fn hardlinks_outside_are_refused() {
    berth_testutil::require_root!();
    let s = Setup::new("evil-hardlink");
    let mut t = TarBuilder::new();
    t.raw(Link, b"passwd", b"/etc/passwd", b"", 0o644);
    s.refused(
        t.finish(),
        "passwd",
        "hardlink target \"/etc/passwd\" is an absolute path",
    );

    let target = format!("{}/target", s.up());
    let mut t = TarBuilder::new();
    t.raw(Link, b"stolen", target.as_bytes(), b"", 0o644);
    s.refused(t.finish(), "stolen", "path escapes the layer root");

    let mut t = TarBuilder::new();
    t.symlink("link", s.up())
        .raw(Link, b"stolen", b"link/target", b"", 0o644);
    s.refused(t.finish(), "stolen", "path goes through symlink \"link\"");

    // Missing targets are reported, not silently skipped.
    let mut t = TarBuilder::new();
    t.raw(Link, b"dangling", b"nowhere", b"", 0o644);
    s.refused(
        t.finish(),
        "dangling",
        "does not exist in this layer or below",
    );
}

#[test]
fn entries_over_symlinks_replace_them_without_following() {
    berth_testutil::require_root!();
    let s = Setup::new("evil-over");
    let before = s.canary();
    let outside_file = format!("{}/target", s.canary_abs());
    let outside_dir = format!("{}/dir", s.canary_abs());
    let mut t = TarBuilder::new();
    // tar -x semantics: a later entry replaces the symlink; the write never
    // goes through it.
    t.symlink("f", &outside_file)
        .raw(Regular, b"f", b"", b"overwritten?", 0o644)
        .symlink("rel", "../../../../canary/target")
        .raw(Regular, b"rel", b"", b"overwritten?", 0o644)
        .symlink("d", &outside_dir)
        .dir("d/", 0o755)
        .file("d/secret", b"inside", 0o644)
        .symlink("h", &outside_file)
        .file("inside", b"x", 0o644)
        .raw(Link, b"h", b"inside", b"", 0o644)
        .symlink("n", &outside_dir)
        .node("n", tar::EntryType::Fifo, 0, 0, 0o600);
    let layers = s.layers();
    let info = layers.apply(None, &t.finish()[..], None).unwrap();
    assert_eq!(s.canary(), before, "nothing outside changed");
    let d = layers.diff_dir(&info.chain_id);
    for (name, content) in [
        ("f", &b"overwritten?"[..]),
        ("rel", b"overwritten?"),
        ("d/secret", b"inside"),
        ("h", b"x"),
    ] {
        let md = fs::symlink_metadata(d.join(name)).unwrap();
        assert!(md.is_file(), "{name} is a regular file inside the layer");
        assert_eq!(fs::read(d.join(name)).unwrap(), content);
    }
    assert!(fs::symlink_metadata(d.join("d")).unwrap().is_dir());
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::symlink_metadata(d.join("n")).unwrap().file_type()
    ));
    assert_eq!(fs::read(Path::new(&outside_file)).unwrap(), b"original");
}

#[test]
fn symlink_entries_are_never_followed_when_setting_metadata() {
    berth_testutil::require_root!();
    let s = Setup::new("evil-meta");
    let before_mode = fs::metadata(s.tmp.join("canary/target")).unwrap();
    let mut t = TarBuilder::new();
    // A symlink pointing out, then a hardlink and a whiteout naming it: they
    // act on the link itself.
    t.symlink("out", &format!("{}/target", s.canary_abs()))
        .raw(Link, b"out2", b"out", b"", 0o777)
        .whiteout(".wh.out");
    let layers = s.layers();
    let info = layers.apply(None, &t.finish()[..], None).unwrap();
    let d = layers.diff_dir(&info.chain_id);
    assert!(fs::symlink_metadata(d.join("out2"))
        .unwrap()
        .file_type()
        .is_symlink());
    let after = fs::metadata(s.tmp.join("canary/target")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::mode(&after),
        std::os::unix::fs::MetadataExt::mode(&before_mode)
    );
    assert_eq!(fs::read(s.tmp.join("canary/target")).unwrap(), b"original");
}

#[test]
fn replacing_an_ancestor_by_a_symlink_redirects_nothing() {
    berth_testutil::require_root!();
    let s = Setup::new("evil-ancestor");
    let mut t = TarBuilder::new();
    // `a/b` is looked up (and cached) first; then `a` becomes a symlink out.
    t.dir("a/", 0o755)
        .dir("a/b/", 0o755)
        .file("a/b/f1", b"1", 0o644)
        .symlink("a", "../../../../canary/dir")
        .raw(Regular, b"a/b/f2", b"", b"2", 0o644);
    s.refused(t.finish(), "a/b/f2", "path goes through symlink \"a\"");
}
