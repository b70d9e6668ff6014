//! Archives exchanged with real peers: podman and skopeo.
//!
//! Needs `localhost/busybox:latest` in podman (/work/shared/peers/setup-peers.sh);
//! a test whose peer is missing says SKIPPED and returns.

mod common;

use std::process::Command;

use common::{stderr, stdout, Berth};

const PODMAN_IMAGE: &str = "localhost/busybox:latest";

fn podman_ready() -> bool {
    if !common::have("podman") {
        eprintln!("SKIPPED: podman is not installed");
        return false;
    }
    let ok = Command::new("podman")
        .args(["image", "exists", PODMAN_IMAGE])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: podman has no {PODMAN_IMAGE} (run /work/shared/peers/setup-peers.sh)");
    }
    ok
}

fn podman(args: &[&str]) -> String {
    let out = Command::new("podman").args(args).output().expect("podman");
    assert!(out.status.success(), "podman {args:?}: {}", stderr(&out));
    stdout(&out)
}

fn podman_layers_and_id(name: &str) -> (String, Vec<String>) {
    let id = podman(&["inspect", "--format", "{{.Id}}", name])
        .trim()
        .to_string();
    let layers: Vec<String> = serde_json::from_str(
        podman(&["inspect", "--format", "{{json .RootFS.Layers}}", name]).trim(),
    )
    .unwrap();
    (format!("sha256:{id}"), layers)
}

#[test]
fn podman_save_loads_into_berth() {
    if !podman_ready() {
        return;
    }
    let expected = podman_layers_and_id(PODMAN_IMAGE);
    for format in ["docker-archive", "oci-archive"] {
        let b = Berth::new(&format!("podman-{format}"));
        let ar = b.dir.join("podman.tar");
        podman(&[
            "save",
            "-q",
            "--format",
            format,
            "-o",
            ar.to_str().unwrap(),
            PODMAN_IMAGE,
        ]);
        let out = b.ok(&["load", "-i", ar.to_str().unwrap()]);
        assert_eq!(out, "Loaded image: localhost/busybox:latest\n", "{format}");
        assert_eq!(b.id_and_layers("localhost/busybox"), expected, "{format}");
        let v = b.inspect("localhost/busybox");
        let upper = v["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
        assert!(std::path::Path::new(upper).join("bin/busybox").is_file());
    }
}

/// Removes a podman image when the test ends, also on failure.
struct PodmanImage(String);

impl Drop for PodmanImage {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn berth_save_loads_and_runs_in_podman() {
    if !podman_ready() {
        return;
    }
    let b = Berth::new("to-podman");
    b.import_busybox("busybox", &["-c", "CMD [\"sh\"]"]);
    for format in ["docker-archive", "oci-archive"] {
        let name = format!("localhost/berth-interop-{}-{format}:1", std::process::id());
        let _guard = PodmanImage(name.clone());
        b.ok(&["tag", "busybox", &name]);
        let ar = b.dir.join(format!("{format}.tar"));
        b.ok(&[
            "save",
            "--format",
            format,
            "-o",
            ar.to_str().unwrap(),
            &name,
        ]);
        let out = podman(&["load", "-q", "-i", ar.to_str().unwrap()]);
        assert!(out.contains(&name), "{format}: {out}");
        assert_eq!(
            podman_layers_and_id(&name),
            b.id_and_layers(&name),
            "{format}"
        );
        let out = Command::new("podman")
            .args(["run", "--rm", "--network", "none", &name, "/bin/true"])
            .output()
            .unwrap();
        assert!(out.status.success(), "podman run {name}: {}", stderr(&out));
        let out = Command::new("podman")
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                &name,
                "/bin/sh",
                "-c",
                "echo from-berth",
            ])
            .output()
            .unwrap();
        assert_eq!(stdout(&out).trim(), "from-berth");
    }
}

#[test]
fn skopeo_oci_layout_loads() {
    if !podman_ready() {
        return;
    }
    if !common::have("skopeo") {
        eprintln!("SKIPPED: skopeo is not installed");
        return;
    }
    let b = Berth::new("skopeo");
    let expected = podman_layers_and_id(PODMAN_IMAGE);
    let docker_ar = b.dir.join("podman.tar");
    podman(&[
        "save",
        "-q",
        "--format",
        "docker-archive",
        "-o",
        docker_ar.to_str().unwrap(),
        PODMAN_IMAGE,
    ]);
    let layout = b.dir.join("layout");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "-q",
            &format!("docker-archive:{}", docker_ar.display()),
            &format!("oci:{}:mytag", layout.display()),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo: {}", stderr(&out));
    // The layout directory itself, and the same as a tar.
    let out = b.ok(&["load", "-i", layout.to_str().unwrap()]);
    assert_eq!(out, format!("Loaded image ID: {}\n", expected.0));
    assert_eq!(b.id_and_layers(&expected.0), expected);
    let tarred = b.dir.join("layout.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&tarred)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let b2 = Berth::new("skopeo-tar");
    b2.ok(&["load", "-i", tarred.to_str().unwrap()]);
    assert_eq!(b2.id_and_layers(&expected.0), expected);
}
