//! `berth save` / `berth load`: round trips, compression, corruption,
//! crash safety and concurrent loads.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{docker_archive, layer_tar, noise, Berth, Layout, TestImage};

#[test]
fn save_load_round_trip_both_formats() {
    let src = Berth::new("save-src");
    let l1 = layer_tar(&[("etc/one", b"1".to_vec())]);
    let l2 = layer_tar(&[("etc/two", noise(100_000, 2))]);
    docker_archive(
        &src.dir.join("in.tar"),
        &[TestImage::new(vec![l1, l2], "multi:1")],
        Layout::Legacy,
    );
    src.ok(&["load", "-i", src.dir.join("in.tar").to_str().unwrap()]);
    src.import_busybox("busybox", &[]);
    let multi = src.id_and_layers("multi:1");
    let busybox = src.id_and_layers("busybox");

    for format in ["docker-archive", "oci-archive"] {
        let out = src.dir.join(format!("{format}.tar"));
        src.ok(&[
            "save",
            "--format",
            format,
            "-o",
            out.to_str().unwrap(),
            "multi:1",
            "busybox:latest",
        ]);
        let dst = Berth::new(&format!("save-dst-{format}"));
        let loaded = dst.ok(&["load", "-i", out.to_str().unwrap()]);
        assert_eq!(
            loaded, "Loaded image: multi:1\nLoaded image: busybox:latest\n",
            "{format}"
        );
        assert_eq!(dst.id_and_layers("multi:1"), multi, "{format}");
        assert_eq!(dst.id_and_layers("busybox"), busybox, "{format}");
        // The unpacked layer has the file.
        let v = dst.inspect("multi:1");
        let upper = v["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
        assert_eq!(
            std::fs::read(std::path::Path::new(upper).join("etc/two")).unwrap(),
            noise(100_000, 2)
        );
        assert!(v["GraphDriver"]["Data"]["LowerDir"]
            .as_str()
            .unwrap()
            .contains("/diff"));
        // Saved again from the new root: byte-identical archive.
        let again = dst.dir.join("again.tar");
        dst.ok(&[
            "save",
            "--format",
            format,
            "-o",
            again.to_str().unwrap(),
            "multi:1",
            "busybox:latest",
        ]);
        assert_eq!(
            std::fs::read(&again).unwrap(),
            std::fs::read(&out).unwrap(),
            "{format}"
        );
    }
    // Saved by id: the image has no name in the archive.
    let by_id = src.dir.join("byid.tar");
    src.ok(&["save", "-o", by_id.to_str().unwrap(), &multi.0[7..19]]);
    let dst = Berth::new("save-byid");
    assert_eq!(
        dst.ok(&["load", "-i", by_id.to_str().unwrap()]),
        format!("Loaded image ID: {}\n", multi.0)
    );
    // To stdout (a pipe), loaded from stdin.
    let out = src.run(&["save", "busybox"]);
    assert!(out.status.success());
    let dst = Berth::new("save-pipe");
    let o = dst.run_stdin(&["load"], &out.stdout);
    assert_eq!(
        common::stdout(&o),
        "Loaded image: busybox:latest\n",
        "{}",
        common::stderr(&o)
    );
    let err = src.fails(
        &[
            "save",
            "-o",
            src.dir.join("x.tar").to_str().unwrap(),
            "nope",
        ],
        1,
    );
    assert!(err.contains("No such image: nope:latest"), "{err}");
    assert!(!src.dir.join("x.tar").exists());
}

#[test]
fn loads_blobs_layout_and_compressed_archives() {
    let b = Berth::new("compressed");
    let img = TestImage::new(vec![layer_tar(&[("f", noise(50_000, 9))])], "zipped:1");
    let plain = b.dir.join("plain.tar");
    docker_archive(&plain, &[img], Layout::Blobs);
    let id = {
        b.ok(&["load", "-i", plain.to_str().unwrap()]);
        b.id_and_layers("zipped:1")
    };
    b.ok(&["rmi", "zipped:1"]);
    for (tool, ext) in [("gzip", "gz"), ("zstd", "zst")] {
        if !common::have(tool) {
            eprintln!("SKIPPED: {tool} is not installed");
            continue;
        }
        let packed = b.dir.join(format!("plain.tar.{ext}"));
        let st = std::process::Command::new(tool)
            .args(["-c", "-q"])
            .arg(&plain)
            .stdout(std::fs::File::create(&packed).unwrap())
            .status()
            .unwrap();
        assert!(st.success());
        b.ok(&["load", "-q", "-i", packed.to_str().unwrap()]);
        assert_eq!(b.id_and_layers("zipped:1"), id);
        b.ok(&["rmi", "zipped:1"]);
        let o = b.run_stdin(&["load"], &std::fs::read(&packed).unwrap());
        assert!(o.status.success(), "{}", common::stderr(&o));
        assert_eq!(b.id_and_layers("zipped:1"), id);
        b.ok(&["rmi", "zipped:1"]);
    }
    // A gzip-compressed layer inside the archive.
    let raw = layer_tar(&[("g", noise(20_000, 4))]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    let gz = gz.finish().unwrap();
    let img = TestImage::new(vec![raw.clone()], "gzlayer:1");
    let config = img.config();
    let ar = b.dir.join("gzlayer.tar");
    write_custom_archive(&ar, &config, &[("layer.tar.gz", gz)], "gzlayer:1");
    b.ok(&["load", "-i", ar.to_str().unwrap()]);
    let (_, layers) = b.id_and_layers("gzlayer:1");
    assert_eq!(
        layers,
        vec![berth_image::Digest::of_bytes(&raw).to_string()]
    );
}

/// A docker-archive whose layer members have arbitrary names and bytes.
fn write_custom_archive(
    path: &std::path::Path,
    config: &[u8],
    layers: &[(&str, Vec<u8>)],
    tag: &str,
) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = common::file_header(data.len());
        b.append_data(&mut h, name, data).unwrap();
    };
    let config_name = format!("{}.json", berth_image::Digest::of_bytes(config).hex());
    add(&config_name, config);
    for (name, data) in layers {
        add(name, data);
    }
    let names: Vec<&str> = layers.iter().map(|(n, _)| *n).collect();
    let manifest = serde_json::json!([{"Config": config_name, "RepoTags": [tag], "Layers": names}]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.into_inner().unwrap();
}

fn assert_nothing_stored(b: &Berth) {
    assert_eq!(b.ok(&["images", "-a", "-q"]).trim(), "");
    assert!(
        b.layer_dirs().is_empty(),
        "layers left behind: {:?}",
        b.layer_dirs()
    );
    assert!(b.blobs().is_empty(), "blobs left behind: {:?}", b.blobs());
    assert!(
        b.layer_tars().is_empty(),
        "tar-split files left behind: {:?}",
        b.layer_tars()
    );
    let staging = b.root().join("layers/staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|r| r.filter_map(|e| e.ok()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staging not empty: {left:?}");
    let spool: Vec<_> = std::fs::read_dir(b.root().join("tmp"))
        .map(|r| {
            r.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("load-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(spool.is_empty(), "spool files left: {spool:?}");
}

#[test]
fn corrupt_and_truncated_archives_leave_nothing() {
    let b = Berth::new("corrupt");
    let good1 = layer_tar(&[("a", noise(30_000, 1))]);
    let good2 = layer_tar(&[("b", noise(30_000, 2))]);
    let img = TestImage::new(vec![good1.clone(), good2.clone()], "bad:1");
    let config = img.config();

    // Second layer's bytes differ from its diff id: the first layer was
    // already stored and must be removed again.
    let mut tampered = good2.clone();
    tampered[600] ^= 0xff;
    let ar = b.dir.join("mismatch.tar");
    write_custom_archive(
        &ar,
        &config,
        &[("l1/layer.tar", good1.clone()), ("l2/layer.tar", tampered)],
        "bad:1",
    );
    let err = b.fails(&["load", "-i", ar.to_str().unwrap()], 1);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert_nothing_stored(&b);

    // A blobs/ layout layer whose name is not its digest.
    let ar = b.dir.join("blobname.tar");
    let wrong = format!("blobs/sha256/{}", "0".repeat(64));
    write_custom_archive(
        &ar,
        &config,
        &[(&wrong, good1.clone()), ("l2/layer.tar", good2.clone())],
        "bad:1",
    );
    let err = b.fails(&["load", "-i", ar.to_str().unwrap()], 1);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_nothing_stored(&b);

    // Config whose name is not its digest.
    let ar = b.dir.join("config.tar");
    let mut other_config = config.clone();
    other_config.extend_from_slice(b" ");
    {
        let mut t = tar::Builder::new(std::fs::File::create(&ar).unwrap());
        let mut add = |name: &str, data: &[u8]| {
            let mut h = common::file_header(data.len());
            t.append_data(&mut h, name, data).unwrap();
        };
        let name = format!("{}.json", berth_image::Digest::of_bytes(&config).hex());
        add(&name, &other_config);
        add("l1/layer.tar", &good1);
        add("l2/layer.tar", &good2);
        add(
            "manifest.json",
            &serde_json::to_vec(&serde_json::json!([{"Config": name, "RepoTags": ["bad:1"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]))
                .unwrap(),
        );
        t.into_inner().unwrap();
    }
    let err = b.fails(&["load", "-i", ar.to_str().unwrap()], 1);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_nothing_stored(&b);

    // Truncated in the middle of the second layer (file and pipe).
    let full = b.dir.join("full.tar");
    write_custom_archive(
        &full,
        &config,
        &[("l1/layer.tar", good1), ("l2/layer.tar", good2)],
        "bad:1",
    );
    let bytes = std::fs::read(&full).unwrap();
    let cut = b.dir.join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = b.fails(&["load", "-i", cut.to_str().unwrap()], 1);
    assert!(
        err.contains("truncated") || err.contains("manifest.json"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    assert_nothing_stored(&b);
    let o = b.run_stdin(&["load"], &bytes[..bytes.len() / 2]);
    assert_eq!(o.status.code(), Some(1));
    assert_nothing_stored(&b);
    // Not an archive at all.
    let o = b.run_stdin(&["load"], b"hello, this is not a tar file at all");
    assert_eq!(o.status.code(), Some(1));
    assert_nothing_stored(&b);
    // The intact archive still loads.
    b.ok(&["load", "-i", full.to_str().unwrap()]);
}

fn big_archive(b: &Berth, name: &str, layers: &[u64], tag: &str) -> std::path::PathBuf {
    let ls: Vec<Vec<u8>> = layers
        .iter()
        .map(|&seed| layer_tar(&[(&format!("data-{seed}"), noise(24 << 20, seed))]))
        .collect();
    let path = b.dir.join(name);
    docker_archive(&path, &[TestImage::new(ls, tag)], Layout::Legacy);
    path
}

#[test]
fn load_killed_midway_then_load_again() {
    let b = Berth::new("sigkill");
    let ar = big_archive(&b, "big.tar", &[11, 12, 13, 14], "big:1");
    let mut killed_midway = false;
    for delay_ms in [150u64, 400, 800, 50] {
        let mut child = b
            .command()
            .args(["load", "-i", ar.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let status = child.wait().unwrap();
        if finished {
            b.ok(&["rmi", "big:1"]);
            continue;
        }
        // No image, whatever state the layers are in.
        let images = b.ok(&["images", "-a", "-q"]);
        if images.trim().is_empty() {
            killed_midway = true;
            assert!(!status.success());
            break;
        }
        // Killed after the commit: the image is complete.
        b.ok(&["image", "inspect", "big:1"]);
        b.ok(&["rmi", "big:1"]);
    }
    assert!(
        killed_midway,
        "the load was never interrupted before its commit"
    );
    let out = b.ok(&["load", "-i", ar.to_str().unwrap()]);
    assert_eq!(out, "Loaded image: big:1\n");
    let v = b.inspect("big:1");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 4);
    assert_eq!(b.layer_dirs().len(), 4);
    // Leftovers of the killed load are garbage for the next collection.
    b.ok(&["rmi", "big:1"]);
    assert!(b.layer_dirs().is_empty() && b.blobs().is_empty() && b.layer_tars().is_empty());
    let tmp: Vec<String> = std::fs::read_dir(b.root().join("tmp"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(tmp.is_empty(), "leftovers in tmp: {tmp:?}");
}

#[test]
fn concurrent_loads_share_layers() {
    let b = Berth::new("concurrent");
    // Two images with a common 3-layer base.
    let a = big_archive(&b, "a.tar", &[21, 22, 23, 24], "a:1");
    let c = big_archive(&b, "c.tar", &[21, 22, 23, 25], "c:1");
    let start = Instant::now();
    let spawn = |p: &std::path::Path| {
        b.command()
            .args(["load", "-i", p.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ca, cc) = (spawn(&a), spawn(&c));
    let (oa, oc) = (
        ca.wait_with_output().unwrap(),
        cc.wait_with_output().unwrap(),
    );
    assert!(oa.status.success(), "{}", common::stderr(&oa));
    assert!(oc.status.success(), "{}", common::stderr(&oc));
    eprintln!("two concurrent loads took {:?}", start.elapsed());
    assert_eq!(common::stdout(&oa), "Loaded image: a:1\n");
    assert_eq!(common::stdout(&oc), "Loaded image: c:1\n");
    // 5 distinct layers, each stored once with its tar-split description;
    // the only blobs are the 2 configs.
    assert_eq!(b.layer_dirs().len(), 5, "{:?}", b.layer_dirs());
    assert_eq!(b.layer_tars().len(), 5, "{:?}", b.layer_tars());
    assert_eq!(b.blobs().len(), 2, "{:?}", b.blobs());
    let (_, la) = b.id_and_layers("a:1");
    let (_, lc) = b.id_and_layers("c:1");
    assert_eq!(la[..3], lc[..3]);
    // Removing one keeps the shared base for the other.
    b.ok(&["rmi", "a:1"]);
    assert_eq!(b.layer_dirs().len(), 4);
    let v = b.inspect("c:1");
    let lower = v["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    for dir in lower.split(':') {
        assert!(std::path::Path::new(dir).is_dir(), "{dir}");
    }
}

#[test]
fn layer_with_a_path_twice_is_kept_whole_and_saves_identically() {
    let b = Berth::new("dup-path");
    // `a` twice: the unpacked layer has only the second copy, so the tar
    // cannot be rebuilt from it; the whole tar is kept instead.
    let dup = layer_tar(&[
        ("a", b"first".to_vec()),
        ("a", b"second".to_vec()),
        ("b", b"x".to_vec()),
    ]);
    let ar = b.dir.join("dup.tar");
    docker_archive(
        &ar,
        &[TestImage::new(vec![dup.clone()], "dup:1")],
        Layout::Blobs,
    );
    b.ok(&["load", "-i", ar.to_str().unwrap()]);
    let diff = berth_image::Digest::of_bytes(&dup);
    assert!(b.blobs().contains(&diff.hex()), "{:?}", b.blobs());
    assert!(b.layer_tars().is_empty());
    let v = b.inspect("dup:1");
    let upper = v["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    assert_eq!(
        std::fs::read(std::path::Path::new(upper).join("a")).unwrap(),
        b"second"
    );
    let out = b.dir.join("out.tar");
    b.ok(&["save", "-o", out.to_str().unwrap(), "dup:1"]);
    let other = Berth::new("dup-path-2");
    other.ok(&["load", "-i", out.to_str().unwrap()]);
    assert_eq!(other.id_and_layers("dup:1"), b.id_and_layers("dup:1"));
    b.ok(&["rmi", "dup:1"]);
    assert!(b.blobs().is_empty() && b.layer_dirs().is_empty());
}

/// An OCI layout whose index.json points at a multi-platform index; the
/// linux/amd64 image has a zstd layer and a gzip layer.
#[test]
fn oci_nested_index_picks_linux_amd64() {
    use berth_image::Digest;
    use serde_json::json;
    let b = Berth::new("oci-nested");
    let dir = b.dir.join("layout");
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let d = Digest::of_bytes(bytes);
        std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
        (d.to_string(), bytes.len())
    };
    let l1 = layer_tar(&[("zstd-file", noise(10_000, 31))]);
    let l2 = layer_tar(&[("gzip-file", noise(10_000, 32))]);
    let z1 = zstd::encode_all(&l1[..], 3).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &l2).unwrap();
    let g2 = gz.finish().unwrap();
    let mk_image = |arch: &str, layers: &[(&[u8], &[u8], &str)]| -> (String, usize, String) {
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|(raw, _, _)| Digest::of_bytes(raw).to_string())
            .collect();
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .unwrap();
        let (cd, cs) = put(&config);
        let descs: Vec<_> = layers
            .iter()
            .map(|(_, blob, mt)| {
                let (d, s) = put(blob);
                json!({"mediaType": mt, "digest": d, "size": s})
            })
            .collect();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": descs,
        }))
        .unwrap();
        let (md, ms) = put(&manifest);
        (md, ms, cd)
    };
    let (arm_m, arm_s, _) = mk_image(
        "arm64",
        &[(&l1, &l1, "application/vnd.oci.image.layer.v1.tar")],
    );
    let (amd_m, amd_s, amd_config) = mk_image(
        "amd64",
        &[
            (&l1, &z1, "application/vnd.oci.image.layer.v1.tar+zstd"),
            (&l2, &g2, "application/vnd.oci.image.layer.v1.tar+gzip"),
        ],
    );
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_m, "size": arm_s,
             "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd_m, "size": amd_s,
             "platform": {"architecture": "amd64", "os": "linux"}},
        ],
    }))
    .unwrap();
    let (id, is) = put(&index);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let top = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": id, "size": is,
        "annotations": {"io.containerd.image.name": "docker.io/library/multi:1", "org.opencontainers.image.ref.name": "1"},
    }]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();

    assert_eq!(
        b.ok(&["load", "-i", dir.to_str().unwrap()]),
        "Loaded image: multi:1\n"
    );
    let v = b.inspect("multi:1");
    assert_eq!(v["Id"], amd_config.as_str());
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(
        v["RootFS"]["Layers"],
        json!([
            Digest::of_bytes(&l1).to_string(),
            Digest::of_bytes(&l2).to_string()
        ])
    );
    assert_eq!(v["RepoDigests"], json!([format!("multi@{amd_m}")]));
    let out = b.ok(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}} {{.Tag}} {{.Digest}}",
    ]);
    assert_eq!(out.trim(), format!("multi 1 {amd_m}"));
    // A corrupted blob in the layout is caught.
    let gz_path = dir.join("blobs/sha256").join(Digest::of_bytes(&g2).hex());
    let mut bad = g2.clone();
    let n = bad.len();
    bad[n - 20] ^= 0x55;
    std::fs::write(&gz_path, &bad).unwrap();
    let other = Berth::new("oci-nested-bad");
    let err = other.fails(&["load", "-i", dir.to_str().unwrap()], 1);
    assert!(
        err.contains("digest mismatch") || err.contains("gzip") || err.contains("corrupt"),
        "{err}"
    );
    assert_eq!(other.ok(&["images", "-q"]).trim(), "");
    assert!(other.layer_dirs().is_empty() && other.layer_tars().is_empty());
}
