//! Layer tars generated from directories: overlay whiteout encodings, long
//! names, large ids, and byte-identical regeneration.

mod common;

use std::fs;
use std::os::unix::fs::symlink;

use berth_image::{diff_from_upper, Digest, LayerStore};
use berth_testutil::TempDir;

#[test]
fn encodes_whiteouts_long_names_and_large_ids() {
    berth_testutil::require_root!();
    let tmp = TempDir::new("tarwriter").unwrap();
    let upper = tmp.join("upper");
    fs::create_dir(&upper).unwrap();
    // Kernel-style whiteout (0:0 char device) and an "xwhiteout" (a regular
    // file marked with trusted.overlay.whiteout, Linux >= 6.7).
    nix::sys::stat::mknod(
        &upper.join("gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
    fs::write(upper.join("xgone"), b"").unwrap();
    xattr::set(upper.join("xgone"), "trusted.overlay.whiteout", b"").unwrap();
    fs::create_dir(upper.join("opaque")).unwrap();
    xattr::set(upper.join("opaque"), "trusted.overlay.opaque", b"y").unwrap();
    xattr::set(upper.join("opaque"), "trusted.overlay.origin", b"internal").unwrap();
    fs::write(upper.join("opaque/inside"), b"i").unwrap();
    let long_dir = upper.join("d".repeat(120)).join("e".repeat(120));
    fs::create_dir_all(&long_dir).unwrap();
    fs::write(long_dir.join("f".repeat(200)), b"long").unwrap();
    symlink("t".repeat(300), upper.join("longlink")).unwrap();
    fs::write(upper.join("bigid"), b"id").unwrap();
    std::os::unix::fs::lchown(
        upper.join("bigid"),
        Some(3_000_000_000),
        Some(4_000_000_000),
    )
    .unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(upper.join("socket")).unwrap();

    let mut tar = Vec::new();
    let diff = diff_from_upper(&upper, &mut tar).unwrap();
    assert_eq!(diff, Digest::of_bytes(&tar));
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let xattrs: Vec<String> = e
            .pax_extensions()
            .unwrap()
            .map(|p| p.map(|x| x.unwrap().key().unwrap().to_string()).collect())
            .unwrap_or_default();
        assert!(
            !xattrs.iter().any(|k| k.contains("trusted.overlay")),
            "{name}: {xattrs:?}"
        );
        names.push(name);
    }
    for want in [
        ".wh.gone",
        ".wh.xgone",
        "opaque/",
        "opaque/.wh..wh..opq",
        "opaque/inside",
        "bigid",
        "longlink",
    ] {
        assert!(names.iter().any(|n| n == want), "missing {want}: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("socket")),
        "sockets are skipped"
    );
    assert!(names.iter().any(|n| n.ends_with(&"f".repeat(200))));

    // Applying and regenerating gives the same bytes.
    let mut layers = LayerStore::open(&tmp.join("root")).unwrap();
    layers.set_durable(false);
    let info = layers.apply(None, &tar[..], Some(&diff)).unwrap();
    let d = layers.diff_dir(&info.chain_id);
    assert_eq!(
        fs::read_link(d.join("longlink")).unwrap().to_string_lossy(),
        "t".repeat(300)
    );
    let md = fs::symlink_metadata(d.join("bigid")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&md), 3_000_000_000);
    assert_eq!(std::os::unix::fs::MetadataExt::gid(&md), 4_000_000_000);
    let mut again = Vec::new();
    assert_eq!(layers.write_tar(&info.chain_id, &mut again).unwrap(), diff);
    assert_eq!(again, tar);
}
