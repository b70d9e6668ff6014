//! Interoperability with images built by other tools: umoci (Go's archive/tar,
//! OCI layout) and skopeo's Docker schema2 conversion. Skipped when the tools
//! are missing.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use berth_image::model::{media_types, parse_document, parse_manifest, Document, ImageConfig};
use berth_image::{Digest, LayerStore, OverlaySnapshotter};
use berth_testutil::TempDir;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn blob(layout: &Path, d: &Digest) -> Vec<u8> {
    fs::read(layout.join("blobs/sha256").join(d.hex())).unwrap()
}

#[test]
fn applies_umoci_built_layers_and_parses_docker_schema2() {
    berth_testutil::require_root!();
    if !have("umoci") || !have("skopeo") {
        eprintln!("SKIPPED: umoci or skopeo not installed");
        return;
    }
    common::private_mount_ns();
    let tmp = TempDir::new("interop").unwrap();
    let w = tmp.path();
    run(w, &["umoci", "init", "--layout", "oci"]);
    run(w, &["umoci", "new", "--image", "oci:img"]);
    // Layer 1: a busybox root file system plus odd entries.
    run(w, &["umoci", "unpack", "--image", "oci:img", "b1"]);
    let r1 = w.join("b1/rootfs");
    berth_testutil::busybox_rootfs(&r1).unwrap();
    fs::write(r1.join("etc/setuid"), b"s").unwrap();
    fs::set_permissions(
        r1.join("etc/setuid"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4711),
    )
    .unwrap();
    fs::hard_link(r1.join("etc/passwd"), r1.join("etc/passwd.hl")).unwrap();
    xattr::set(r1.join("etc/setuid"), "user.berth", b"x").unwrap();
    run(w, &["umoci", "repack", "--image", "oci:img", "b1"]);
    // Layer 2: deletions (whiteouts), an emptied-and-refilled directory, changes.
    run(w, &["umoci", "unpack", "--image", "oci:img", "b2"]);
    let r2 = w.join("b2/rootfs");
    fs::remove_file(r2.join("etc/group")).unwrap();
    fs::remove_dir_all(r2.join("usr")).unwrap();
    fs::create_dir_all(r2.join("usr/bin")).unwrap();
    fs::write(r2.join("usr/bin/new"), b"new").unwrap();
    fs::write(r2.join("etc/passwd"), b"root:x:0:0::/:/bin/sh\n").unwrap();
    run(w, &["umoci", "repack", "--image", "oci:img", "b2"]);
    run(
        w,
        &[
            "umoci",
            "config",
            "--image",
            "oci:img",
            "--config.cmd",
            "/bin/sh",
            "--config.env",
            "A=b",
        ],
    );
    run(w, &["umoci", "unpack", "--image", "oci:img", "final"]);

    // Parse the OCI layout with berth's model.
    let layout = w.join("oci");
    let index = parse_document(&fs::read(layout.join("index.json")).unwrap(), None).unwrap();
    let Document::Index(index) = index else {
        panic!("index.json is not an index")
    };
    let desc = index
        .manifests
        .iter()
        .find(|d| {
            d.annotations
                .get("org.opencontainers.image.ref.name")
                .map(String::as_str)
                == Some("img")
        })
        .unwrap();
    let manifest = parse_manifest(&blob(&layout, &desc.digest)).unwrap();
    assert_eq!(
        manifest.media_type.as_deref(),
        Some(media_types::OCI_MANIFEST)
    );
    let config = ImageConfig::from_json(&blob(&layout, &manifest.config.digest)).unwrap();
    assert_eq!(
        config.config.as_ref().unwrap().cmd.as_deref(),
        Some(&["/bin/sh".to_string()][..])
    );
    assert_eq!(manifest.layers.len(), 2);
    assert_eq!(config.rootfs.diff_ids.len(), 2);

    // Apply the gzip layers, verifying berth's diff ids against umoci's.
    let mut layers = LayerStore::open(&w.join("berth")).unwrap();
    layers.set_durable(false);
    let mut parent = None;
    for (l, diff) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        assert_eq!(l.media_type, media_types::OCI_LAYER_GZIP);
        let info = layers
            .apply(parent.as_ref(), &blob(&layout, &l.digest)[..], Some(diff))
            .unwrap();
        parent = Some(info.chain_id);
    }
    assert_eq!(parent, config.top_chain_id());

    // The mounted image equals umoci's own unpacking of it.
    let snaps = OverlaySnapshotter::open(&w.join("berth"), layers.clone()).unwrap();
    let m = snaps.prepare("check", parent.as_ref()).unwrap();
    m.mount_at(&m.merged).unwrap();
    let guard = common::UnmountGuard(m.merged.clone());
    let got = common::tree(&m.merged);
    snaps.unmount(&m.merged).unwrap();
    drop(guard);
    let want = common::tree(&w.join("final/rootfs"));
    assert_eq!(got.len(), want.len());
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "{k}");
    }
    assert!(!got.contains_key("etc/group") && got.contains_key("usr/bin/new"));
    snaps.remove("check").unwrap();

    // Docker schema2: skopeo converts the image; berth parses what it wrote.
    let dir = w.join("v2s2");
    run(
        w,
        &[
            "skopeo",
            "copy",
            "--format",
            "v2s2",
            "oci:oci:img",
            &format!("dir:{}", dir.display()),
        ],
    );
    let m2 = parse_manifest(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(m2.is_docker(), "{:?}", m2.media_type);
    assert_eq!(m2.config.media_type, media_types::DOCKER_CONFIG);
    assert!(m2
        .layers
        .iter()
        .all(|l| l.media_type == media_types::DOCKER_LAYER_GZIP));
    let c2 = ImageConfig::from_json(&fs::read(dir.join(m2.config.digest.hex())).unwrap()).unwrap();
    assert_eq!(c2.rootfs.diff_ids, config.rootfs.diff_ids);
    assert_eq!(c2.config.unwrap().env, vec!["A=b".to_string()]);
}
