//! `berth import / images / tag / rmi / history / inspect / prune / system df`.

mod common;

use common::{docker_archive, layer_tar, Berth, Layout, TestImage};

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn import_then_images_columns_quiet_digests_and_format() {
    let b = Berth::new("images");
    let id = b.import_busybox("busybox", &[]);
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let hex = &id[7..];

    let out = b.ok(&["images"]);
    let l = lines(&out);
    assert_eq!(l.len(), 2, "{out}");
    assert!(
        l[0].starts_with("REPOSITORY   TAG       IMAGE ID       CREATED"),
        "{out}"
    );
    assert!(l[0].ends_with("SIZE"), "{out}");
    let cols: Vec<&str> = l[1].split_whitespace().collect();
    assert_eq!(&cols[..3], &["busybox", "latest", &hex[..12]], "{out}");
    assert!(l[1].contains("ago"), "{out}");
    assert!(l[1].trim_end().ends_with("MB"), "{out}");

    assert_eq!(b.ok(&["images", "-q"]).trim(), &hex[..12]);
    assert_eq!(b.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    let out = b.ok(&["image", "ls", "--digests"]);
    assert!(
        out.starts_with("REPOSITORY   TAG       DIGEST    IMAGE ID"),
        "{out}"
    );
    assert!(out.contains("<none>"), "{out}");
    assert_eq!(
        b.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
            .trim(),
        format!("busybox:latest {}", &hex[..12])
    );
    let out = b.ok(&["images", "--format", "table {{.ID}}\\t{{.Repository}}"]);
    assert_eq!(lines(&out)[0].trim_end(), "IMAGE ID       REPOSITORY");
    let out = b.ok(&["images", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["Repository"], "busybox");
    assert_eq!(v["Containers"], "N/A");
    // A bad template is a clean error.
    let err = b.fails(&["images", "--format", "{{.Nope"], 1);
    assert!(err.contains("template"), "{err}");
}

#[test]
fn filters_reference_dangling_label() {
    let b = Berth::new("filters");
    let a = b.import_busybox("busybox:1", &["-c", "LABEL tier=base"]);
    b.ok(&["tag", "busybox:1", "localhost/other:2"]);
    let c = b.import_busybox("busybox:1", &["-m", "second"]);
    assert_ne!(a, c);
    // The tag moved; `a` keeps only localhost/other:2.
    let out = b.ok(&[
        "images",
        "--filter",
        "reference=busybox",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(out.trim(), "busybox:1");
    let out = b.ok(&[
        "images",
        "--filter",
        "reference=*/other:*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(out.trim(), "localhost/other:2");
    let out = b.ok(&["images", "localhost/other", "-q"]);
    assert_eq!(out.trim(), &a[7..19]);
    let out = b.ok(&["images", "--filter", "label=tier=base", "-q", "--no-trunc"]);
    assert_eq!(out.trim(), a);
    let out = b.ok(&["images", "--filter", "label=tier", "-q", "--no-trunc"]);
    assert_eq!(out.trim(), a);
    assert_eq!(b.ok(&["images", "--filter", "label=nope", "-q"]).trim(), "");
    assert_eq!(
        b.ok(&["images", "--filter", "dangling=true", "-q"]).trim(),
        ""
    );
    assert_eq!(
        lines(&b.ok(&["images", "--filter", "dangling=false", "-q"])).len(),
        2
    );
    // before/since compare creation times with another image's.
    let out = b.ok(&[
        "images",
        "--filter",
        &format!("before={}", &c[7..19]),
        "-q",
        "--no-trunc",
    ]);
    assert_eq!(out.trim(), a);
    let out = b.ok(&[
        "images",
        "--filter",
        "since=localhost/other:2",
        "-q",
        "--no-trunc",
    ]);
    assert_eq!(out.trim(), c);
    let err = b.fails(&["images", "--filter", "bogus=1"], 1);
    assert!(err.contains("invalid filter 'bogus'"), "{err}");
}

#[test]
fn moving_a_tag_leaves_a_dangling_image() {
    let b = Berth::new("dangling");
    let first = b.import_busybox("app:v1", &[]);
    let second = b.import_busybox("app:v1", &["-m", "rebuilt"]);
    let out = b.ok(&["images"]);
    assert!(out.contains("<none>       <none>"), "{out}");
    assert_eq!(
        b.ok(&["images", "-f", "dangling=true", "-q", "--no-trunc"])
            .trim(),
        first
    );
    assert_eq!(
        b.ok(&["images", "-f", "dangling=false", "-q", "--no-trunc"])
            .trim(),
        second
    );
}

#[test]
fn tag_and_rmi_rules_and_messages() {
    let b = Berth::new("rmi");
    let id = b.import_busybox("busybox", &[]);
    let short = &id[7..19];
    b.ok(&["tag", "busybox", "mine:1"]);
    b.ok(&["tag", short, "mine:2"]);
    assert_eq!(lines(&b.ok(&["images"])).len(), 4);

    // By name: only the tag goes.
    assert_eq!(b.ok(&["rmi", "mine:2"]), "Untagged: mine:2\n");
    // By id with names in two repositories: must be forced.
    let err = b.fails(&["rmi", &id[7..13]], 1);
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories")
    );
    let out = b.ok(&["image", "rm", "-f", &format!("sha256:{}", &id[7..15])]);
    assert!(out.contains("Untagged: busybox:latest\n"), "{out}");
    assert!(out.contains("Untagged: mine:1\n"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}\n")), "{out}");
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    // Everything the image used is gone from disk.
    assert!(b.layer_dirs().is_empty(), "{:?}", b.layer_dirs());
    assert!(b.blobs().is_empty(), "{:?}", b.blobs());

    let err = b.fails(&["rmi", "busybox"], 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: No such image: busybox:latest"
    );
    let err = b.fails(&["image", "inspect", "nope"], 1);
    assert!(err.contains("No such image: nope:latest"), "{err}");
    let err = b.fails(&["inspect", "nope"], 1);
    assert!(err.contains("Error: No such object: nope"), "{err}");
    // Several arguments: the good ones are done, the status says one failed.
    let id2 = b.import_busybox("x:1", &[]);
    let out = b.run(&["rmi", "nope", "x:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stdout(&out).contains(&format!("Deleted: {id2}")));
}

#[test]
fn reference_and_usage_errors() {
    let b = Berth::new("refs");
    b.import_busybox("busybox", &[]);
    let err = b.fails(&["tag", "busybox", "UPPER:1"], 1);
    assert!(err.contains("invalid reference format"), "{err}");
    let err = b.fails(&["images", "--bogus"], 125);
    assert!(err.contains("--bogus"), "{err}");
    b.fails(&["tag", "busybox"], 125);
    b.fails(
        &["save", "--format", "tarball", "-o", "/dev/null", "busybox"],
        125,
    );
    // `berth --help` is not an error.
    assert!(b.ok(&["--help"]).contains("images"));
}

#[test]
fn save_refuses_a_terminal() {
    if !common::have("script") {
        eprintln!("SKIPPED: script(1) is not installed");
        return;
    }
    let b = Berth::new("tty");
    b.import_busybox("busybox", &[]);
    // script(1) gives the command a pseudo-terminal as stdout.
    let cmd = format!(
        "BERTH_ROOT={} BERTH_RUNROOT={} {} save busybox",
        b.root().display(),
        b.dir.join("run").display(),
        env!("CARGO_BIN_EXE_berth")
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", common::stdout(&out));
    assert!(common::stdout(&out)
        .contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"));
}

#[test]
fn ambiguous_id_prefix_is_an_error() {
    let b = Berth::new("ambiguous");
    // 17 images with distinct ids: two share a first hex digit.
    let mut ids = Vec::new();
    for i in 0..17 {
        ids.push(b.import_busybox(&format!("img:{i}"), &["-m", &format!("m{i}")]));
    }
    let mut by_first = std::collections::HashMap::<char, Vec<&String>>::new();
    for id in &ids {
        by_first
            .entry(id.chars().nth(7).unwrap())
            .or_default()
            .push(id);
    }
    let (c, _) = by_first.iter().find(|(_, v)| v.len() > 1).unwrap();
    let err = b.fails(&["image", "inspect", &c.to_string()], 1);
    assert!(
        err.contains(&format!("multiple IDs found with provided prefix: {c}")),
        "{err}"
    );
    // A unique prefix resolves.
    let unique = ids
        .iter()
        .find(|id| {
            ids.iter()
                .filter(|o| o[7..].starts_with(&id[7..12]))
                .count()
                == 1
        })
        .unwrap();
    assert_eq!(b.inspect(&unique[7..12])["Id"], unique.as_str());
}

#[test]
fn history_rows_missing_and_empty_layers() {
    let b = Berth::new("history");
    let l1 = layer_tar(&[("a", b"one".to_vec())]);
    let l2 = layer_tar(&[("b", vec![7u8; 5000])]);
    let mut img = TestImage::new(vec![l1, l2], "hist:1");
    img.history = vec![
        ("/bin/sh -c #(nop) ADD file:abc in / ".into(), false),
        ("/bin/sh -c #(nop)  CMD [\"sh\"]".into(), true),
        (
            "/bin/sh -c dd if=/dev/zero of=/b bs=1000 count=5 && echo this is a long command"
                .into(),
            false,
        ),
    ];
    let ar = b.dir.join("h.tar");
    docker_archive(&ar, &[img], Layout::Legacy);
    b.ok(&["load", "-i", ar.to_str().unwrap()]);
    let id = b.inspect("hist:1")["Id"].as_str().unwrap().to_string();

    let out = b.ok(&["history", "hist:1"]);
    let l = lines(&out);
    assert!(
        l[0].starts_with("IMAGE          CREATED       CREATED BY"),
        "{out}"
    );
    assert!(
        l[0].contains("SIZE") && l[0].trim_end().ends_with("COMMENT"),
        "{out}"
    );
    assert_eq!(l.len(), 4, "{out}");
    assert!(l[1].starts_with(&id[7..19]), "{out}");
    assert!(l[1].contains('…'), "long commands are truncated: {out}");
    assert!(l[1].contains("5kB"), "{out}");
    assert!(
        l[2].starts_with("<missing>") && l[2].contains(" 0B"),
        "{out}"
    );
    assert!(l[3].starts_with("<missing>"), "{out}");
    let out = b.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}|{{.Size}}",
        "hist:1",
    ]);
    assert_eq!(
        lines(&out),
        vec![
            "/bin/sh -c dd if=/dev/zero of=/b bs=1000 count=5 && echo this is a long command|5kB",
            "/bin/sh -c #(nop)  CMD [\"sh\"]|0B",
            "/bin/sh -c #(nop) ADD file:abc in / |3B",
        ]
    );
    let out = b.ok(&["history", "-q", "hist:1"]);
    assert_eq!(lines(&out), vec![&id[7..19], "<missing>", "<missing>"]);
}

#[test]
fn inspect_fields_and_templates() {
    let b = Berth::new("inspect");
    let id = b.import_busybox(
        "busybox:tagged",
        &[
            "-c",
            "CMD [\"sh\"]",
            "-c",
            "ENV A=1",
            "-c",
            "WORKDIR /srv",
            "-c",
            "EXPOSE 80",
            "-c",
            "USER nobody",
            "-m",
            "hello",
        ],
    );
    let v = b.inspect("busybox:tagged");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["RepoTags"], serde_json::json!(["busybox:tagged"]));
    assert_eq!(v["RepoDigests"], serde_json::json!([]));
    assert_eq!(v["Comment"], "hello");
    assert_eq!(v["Parent"], "");
    assert_eq!(v["DockerVersion"], "");
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(v["Config"]["Env"], serde_json::json!(["A=1"]));
    assert_eq!(v["Config"]["WorkingDir"], "/srv");
    assert_eq!(v["Config"]["User"], "nobody");
    assert_eq!(
        v["Config"]["ExposedPorts"],
        serde_json::json!({"80/tcp": {}})
    );
    assert_eq!(v["Config"]["AttachStdin"], false);
    assert_eq!(v["GraphDriver"]["Name"], "overlay2");
    let upper = v["GraphDriver"]["Data"]["UpperDir"].as_str().unwrap();
    assert!(
        std::path::Path::new(upper).join("bin/busybox").exists(),
        "{upper}"
    );
    assert_eq!(v["RootFS"]["Type"], "layers");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert!(v["Size"].as_u64().unwrap() > 1_000_000);
    assert!(v["Metadata"]["LastTagTime"].is_string());
    // Key order is Docker's.
    let raw = b.ok(&["image", "inspect", "busybox:tagged"]);
    let pos = |k: &str| raw.find(&format!("\"{k}\"")).unwrap();
    assert!(
        pos("Id") < pos("RepoTags")
            && pos("Config") < pos("Architecture")
            && pos("RootFS") < pos("Metadata")
    );
    assert!(raw.starts_with("[\n    {\n        \"Id\""), "{raw}");

    assert_eq!(
        b.ok(&["inspect", "-f", "{{.Config.Cmd}}", "busybox:tagged"])
            .trim(),
        "[sh]"
    );
    assert_eq!(
        b.ok(&[
            "inspect",
            "--format",
            "{{json .Config.Env}}",
            "busybox:tagged"
        ])
        .trim(),
        "[\"A=1\"]"
    );
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{index .Config.ExposedPorts \"80/tcp\"}}",
            "busybox:tagged"
        ])
        .trim(),
        "map[]"
    );
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}",
            &id
        ])
        .trim(),
        "linux/amd64 1"
    );
    // Several images, one missing: the found ones print, the status is 1.
    let out = b.run(&["image", "inspect", "busybox:tagged", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn import_from_stdin_and_http() {
    let b = Berth::new("import");
    let tar = std::fs::read(common::busybox_tar(&b.dir)).unwrap();
    let out = b.run_stdin(&["import", "-", "fromstdin:1"], &tar);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(b.inspect("fromstdin:1")["Comment"], "Imported from -");

    // A one-shot HTTP server on a private port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = tar.clone();
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = listener.accept().unwrap();
        let mut req = [0u8; 4096];
        let _ = s.read(&mut req).unwrap();
        write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
    });
    let url = format!("http://127.0.0.1:{port}/rootfs.tar");
    let id = b.ok(&["import", &url, "fromhttp:1"]).trim().to_string();
    server.join().unwrap();
    let v = b.inspect("fromhttp:1");
    assert_eq!(v["Id"], id.as_str());
    assert_eq!(v["Comment"], format!("Imported from {url}"));
    // Same tar, same layer: stored once.
    assert_eq!(b.layer_dirs().len(), 1);
    let err = b.fails(&["import", "/nonexistent.tar"], 1);
    assert!(err.contains("/nonexistent.tar"), "{err}");
    let err = b.fails(&["import", "-c", "RUN true", "-"], 1);
    assert!(err.contains("RUN is not a valid change command"), "{err}");
}

#[test]
fn prune_dangling_then_all() {
    let b = Berth::new("prune");
    let old = b.import_busybox("p:1", &["-m", "old"]);
    let _new = b.import_busybox("p:1", &["-m", "new"]);
    let _other = b.import_busybox("q:1", &["-m", "other"]);
    // Only the old config goes: the layer is shared with the new image.
    let out = b.ok(&["image", "prune", "-f"]);
    let expected = format!("Deleted Images:\ndeleted: {old}\n\nTotal reclaimed space: ");
    assert!(
        out.starts_with(&expected) && out.ends_with("B\n") && !out.contains("MB"),
        "{out}"
    );
    // Nothing dangling any more.
    assert_eq!(
        b.ok(&["image", "prune", "-f"]),
        "Total reclaimed space: 0B\n"
    );
    // Declining the prompt does nothing.
    let out = b.run_stdin(&["image", "prune", "-a"], b"n\n");
    assert!(common::stdout(&out).contains(
        "WARNING! This will remove all images without at least one container associated to them."
    ));
    assert_eq!(lines(&b.ok(&["images", "-q"])).len(), 2);
    let out = b.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.starts_with("Deleted Images:\n"), "{out}");
    assert!(
        out.contains("untagged: p:1\n") && out.contains("untagged: q:1\n"),
        "{out}"
    );
    let reclaimed = out.lines().last().unwrap();
    assert!(
        reclaimed.starts_with("Total reclaimed space: ") && reclaimed.ends_with("MB"),
        "{out}"
    );
    assert!(b.layer_dirs().is_empty() && b.blobs().is_empty());
}

#[test]
fn system_df_rows() {
    let b = Berth::new("df");
    b.import_busybox("a:1", &[]);
    b.import_busybox("b:1", &["-m", "same layer, other config"]);
    let out = b.ok(&["system", "df"]);
    let l = lines(&out);
    assert_eq!(
        l[0].split_whitespace().collect::<Vec<_>>(),
        vec!["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    );
    assert!(l[1].starts_with("Images          2         0"), "{out}");
    // The shared layer counts once: about 2 MB, all reclaimable.
    assert!(l[1].contains("MB (100%)"), "{out}");
    assert!(
        l[2].starts_with("Containers      0         0         0B"),
        "{out}"
    );
    assert!(l[3].starts_with("Local Volumes   0"), "{out}");
    assert!(l[4].starts_with("Build Cache     0"), "{out}");
    let out = b.ok(&["system", "df", "--format", "{{.Type}}={{.TotalCount}}"]);
    assert_eq!(
        lines(&out),
        vec![
            "Images=2",
            "Containers=0",
            "Local Volumes=0",
            "Build Cache=0"
        ]
    );
    let out = b.ok(&["system", "df", "-v"]);
    assert!(
        out.starts_with("Images space usage:\n\nREPOSITORY"),
        "{out}"
    );
    assert!(
        out.contains("SHARED SIZE") && out.contains("Containers space usage:"),
        "{out}"
    );
}

#[test]
fn prune_filters_label_and_until() {
    let b = Berth::new("prune-filters");
    let labelled = b.import_busybox("p:1", &["-c", "LABEL tier=scratch"]);
    let plain = b.import_busybox("q:1", &["-m", "plain"]);
    // Everything here was created just now: nothing is older than an hour.
    assert_eq!(
        b.ok(&["image", "prune", "-a", "-f", "--filter", "until=1h"]),
        "Total reclaimed space: 0B\n"
    );
    let out = b.ok(&["image", "prune", "-a", "-f", "--filter", "label!=tier"]);
    assert!(
        out.contains(&format!("deleted: {plain}")) && !out.contains(&labelled),
        "{out}"
    );
    let out = b.ok(&[
        "image",
        "prune",
        "-a",
        "-f",
        "--filter",
        "label=tier=scratch",
    ]);
    assert!(out.contains(&format!("deleted: {labelled}")), "{out}");
    assert_eq!(b.ok(&["images", "-q"]).trim(), "");
    let err = b.fails(&["image", "prune", "-f", "--filter", "until=soon"], 1);
    assert!(err.contains("invalid until value"), "{err}");
}
