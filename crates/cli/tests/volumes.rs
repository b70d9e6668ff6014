//! Volumes through the `berth` binary: the scenarios of seed 001
//! (§数据卷, §匿名卷, §具名卷, §volumes-from, §备份恢复) and berth's
//! export/import and snapshots.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{berth, inspect, Berth};

fn names(out: &str) -> Vec<String> {
    out.lines().map(str::to_string).collect()
}

fn volume_inspect(b: &Berth, name: &str) -> serde_json::Value {
    let out = b.ok(&["volume", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("volume inspect JSON");
    v[0].clone()
}

fn mountpoint(b: &Berth, name: &str) -> PathBuf {
    PathBuf::from(volume_inspect(b, name)["Mountpoint"].as_str().unwrap())
}

/// Mount points at or below `dir` in this mount namespace.
fn mounts_under(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect()
}

/// An image `name` whose /app holds files owned by 1000:1000 (dir 0750,
/// file 0640, a symlink), declared `VOLUME /app`.
fn app_image(b: &Berth, name: &str) {
    b.ok(&[
        "run",
        "--name",
        "app-src",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /app/sub && echo secret > /app/sub/f && ln -s sub/f /app/link && chown -R 1000:1000 /app && chmod 0750 /app/sub && chmod 0640 /app/sub/f && chmod 0711 /app",
    ]);
    b.ok(&["commit", "-c", "VOLUME /app", "app-src", name]);
    b.ok(&["rm", "app-src"]);
}

#[test]
fn named_volume_survives_rm_and_recreate() {
    berth_testutil::require_root!();
    let b = berth("vol-named");
    b.ok(&[
        "run",
        "--name",
        "n1",
        "-v",
        "keep:/data",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /data/f",
    ]);
    let c = inspect(&b, "n1");
    let mounts = c["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let m = &mounts[0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], "keep");
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["Mode"], "z");
    assert_eq!(m["RW"], true);
    assert_eq!(m["Propagation"], "");
    let v = volume_inspect(&b, "keep");
    assert_eq!(m["Source"], v["Mountpoint"]);
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"], serde_json::Value::Null);
    assert_eq!(v["Options"], serde_json::Value::Null);
    assert!(v["CreatedAt"].as_str().unwrap().len() >= 20);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );

    b.ok(&["rm", "-f", "-v", "n1"]);
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])), ["keep"]);
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/data",
        "busybox",
        "cat",
        "/data/f",
    ]);
    assert_eq!(out, "persisted\n");
    // `--rm` never takes a named volume along.
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])), ["keep"]);
}

#[test]
fn anonymous_volume_listed_with_label_and_files_on_host() {
    berth_testutil::require_root!();
    let b = berth("vol-anon");
    b.ok(&[
        "run",
        "--name",
        "a1",
        "-v",
        "/data",
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/test",
    ]);
    let listed = names(&b.ok(&["volume", "ls", "-q"]));
    assert_eq!(listed.len(), 1);
    let name = &listed[0];
    assert_eq!(name.len(), 64);
    assert!(name.bytes().all(|c| c.is_ascii_hexdigit()));
    let v = volume_inspect(&b, name);
    assert_eq!(
        v["Labels"],
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );
    let host = mountpoint(&b, name);
    assert_eq!(std::fs::read_to_string(host.join("test")).unwrap(), "hi\n");
    let m = &inspect(&b, "a1")["Mounts"][0];
    assert_eq!(m["Name"], name.as_str());
    assert_eq!(m["Mode"], "");
    let table = b.ok(&["volume", "ls"]);
    assert!(table.starts_with("DRIVER    VOLUME NAME\n"), "{table}");
    assert!(table.contains(&format!("local     {name}")), "{table}");

    // In use: not dangling, not pruned, not removable.
    assert_eq!(
        names(&b.ok(&["volume", "ls", "-q", "--filter", "dangling=true"])),
        Vec::<String>::new()
    );
    let out = b.ok(&["volume", "prune", "-f"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let err = b.fails(&["volume", "rm", name], 1);
    let id = inspect(&b, "a1")["Id"].as_str().unwrap().to_string();
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: remove {name}: volume is in use - [{id}]")
    );
    assert!(b
        .ok(&["ps", "-a", "-q", "--filter", &format!("volume={name}")])
        .starts_with(&id[..12]));

    b.ok(&["rm", "a1"]);
    assert_eq!(
        names(&b.ok(&["volume", "ls", "-q", "--filter", "dangling=true"])),
        std::slice::from_ref(name)
    );
    let out = b.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{name}\n\nTotal reclaimed space: 3B\n")
    );
    assert!(b.ok(&["volume", "ls", "-q"]).is_empty());
    assert!(!host.exists());
}

#[test]
fn rm_f_of_a_running_container_keeps_its_anonymous_volume_unless_v() {
    berth_testutil::require_root!();
    let b = berth("vol-rmf");
    for name in ["keeps", "takes"] {
        b.ok(&[
            "run", "-d", "--name", name, "-v", "/data", "busybox", "sleep", "1000",
        ]);
    }
    let all = names(&b.ok(&["volume", "ls", "-q"]));
    assert_eq!(all.len(), 2);
    let volume_of = |c: &str| {
        inspect(&b, c)["Mounts"][0]["Name"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (kept, taken) = (volume_of("keeps"), volume_of("takes"));
    b.ok(&["rm", "-f", "keeps"]);
    b.ok(&["rm", "-f", "-v", "takes"]);
    assert!(b.ok(&["ps", "-aq"]).is_empty());
    let left = names(&b.ok(&["volume", "ls", "-q"]));
    assert_eq!(left, std::slice::from_ref(&kept), "taken was {taken}");
    // Dangling now, as Docker leaves it.
    assert_eq!(
        names(&b.ok(&["volume", "ls", "-q", "--filter", "dangling=true"])),
        [kept]
    );
}

#[test]
fn prune_keeps_named_volumes_unless_all() {
    berth_testutil::require_root!();
    let b = berth("vol-prune");
    b.ok(&["volume", "create", "--label", "tier=db", "named-a"]);
    b.ok(&["volume", "create", "named-b"]);
    let anon = b.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64);
    let out = b.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 0B\n")
    );
    let out = b.ok(&["volume", "prune", "-a", "-f", "--filter", "label=tier=db"]);
    assert_eq!(
        out,
        "Deleted Volumes:\nnamed-a\n\nTotal reclaimed space: 0B\n"
    );
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])), ["named-b"]);
    let out = b.ok(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}}|{{.Driver}}|{{.Scope}}",
    ]);
    assert_eq!(out, "named-b|local|local\n");
    let out = b.ok(&["volume", "ls", "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(row["Name"], "named-b");
    assert_eq!(
        row["Mountpoint"],
        mountpoint(&b, "named-b").display().to_string()
    );
    let out = b.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}}",
        "named-b",
    ]);
    assert_eq!(out, "named-b local\n");
    b.ok(&["volume", "rm", "named-b"]);
    // Docker's -f: a missing volume is not an error.
    b.ok(&["volume", "rm", "-f", "named-b"]);
    let err = b.fails(&["volume", "rm", "named-b"], 1);
    assert_eq!(
        err.trim(),
        "Error response from daemon: get named-b: no such volume"
    );
    let err = b.fails(&["volume", "inspect", "named-b"], 1);
    assert!(err.contains("get named-b: no such volume"), "{err}");
}

#[test]
fn bind_mount_hides_image_files_and_shares_writes() {
    berth_testutil::require_root!();
    let b = berth("vol-bind");
    app_image(&b, "app");
    let empty = b.dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let spec = format!("{}:/app", empty.display());
    let out = b.ok(&["run", "--rm", "-v", &spec, "app", "ls", "-A", "/app"]);
    assert_eq!(out, "", "the bind mount hides the image's files");
    std::fs::write(empty.join("from-host"), "host\n").unwrap();
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "app",
        "sh",
        "-c",
        "cat /app/from-host; echo ctr > /app/from-ctr",
    ]);
    assert_eq!(out, "host\n");
    assert_eq!(
        std::fs::read_to_string(empty.join("from-ctr")).unwrap(),
        "ctr\n"
    );
    assert!(
        b.ok(&["volume", "ls", "-q"]).is_empty(),
        "a bind makes no volume"
    );

    // -v creates a missing host directory; --mount refuses it.
    let missing = b.dir.join("made/by/run");
    b.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/x", missing.display()),
        "busybox",
        "true",
    ]);
    assert!(missing.is_dir());
    let gone = b.dir.join("not-there");
    let err = b.fails(
        &[
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,src={},dst=/x", gone.display()),
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("bind source path does not exist"), "{err}");
    assert!(!gone.exists());

    b.ok(&[
        "create",
        "--name",
        "bound",
        "-v",
        &format!("{spec}:ro"),
        "busybox",
        "true",
    ]);
    let m = &inspect(&b, "bound")["Mounts"][0];
    assert_eq!(m["Type"], "bind");
    assert_eq!(m["Source"], empty.display().to_string());
    assert_eq!(m["Mode"], "ro");
    assert_eq!(m["RW"], false);
    assert_eq!(m["Propagation"], "rprivate");
}

#[test]
fn read_only_mounts_refuse_writes() {
    berth_testutil::require_root!();
    let b = berth("vol-ro");
    let dir = b.dir.join("ro-src");
    std::fs::create_dir(&dir).unwrap();
    let out = b.run(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/d:ro", dir.display()),
        "busybox",
        "touch",
        "/d/x",
    ]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("Read-only file system"),
        "{}",
        common::stderr(&out)
    );
    assert!(!dir.join("x").exists());
    let out = b.run(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=rov,dst=/d,readonly",
        "busybox",
        "touch",
        "/d/x",
    ]);
    assert!(!out.status.success());
    let out = b.run(&[
        "run",
        "--rm",
        "-v",
        "rov:/d:ro",
        "busybox",
        "sh",
        "-c",
        "echo > /d/y",
    ]);
    assert!(!out.status.success());
    assert!(crate::common::stdout(&out).is_empty());
    b.ok(&["run", "--rm", "-v", "rov:/d", "busybox", "touch", "/d/ok"]);
    assert!(mountpoint(&b, "rov").join("ok").exists());
}

#[test]
fn tmpfs_data_disappears_on_restart() {
    berth_testutil::require_root!();
    let b = berth("vol-tmpfs");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "tt",
        "--tmpfs",
        "/scratch",
        "--mount",
        "type=tmpfs,dst=/s2,tmpfs-size=1m",
        "busybox",
        "sleep",
        "1000",
    ]);
    b.ok(&[
        "exec",
        "tt",
        "sh",
        "-c",
        "echo x > /scratch/f && echo y > /s2/f",
    ]);
    assert_eq!(
        b.ok(&["exec", "tt", "cat", "/scratch/f", "/s2/f"]),
        "x\ny\n"
    );
    let mounts = inspect(&b, "tt")["Mounts"].clone();
    assert_eq!(
        mounts,
        serde_json::json!([{"Type": "tmpfs", "Source": "", "Destination": "/s2", "Mode": "", "RW": true, "Propagation": ""}])
    );
    b.ok(&["restart", "-t", "0", "tt"]);
    assert_eq!(
        b.ok(&["exec", "tt", "ls", "-A", "/scratch", "/s2"]),
        "/s2:\n\n/scratch:\n"
    );
}

#[test]
fn copy_up_keeps_owners_and_modes() {
    berth_testutil::require_root!();
    let b = berth("vol-copyup");
    app_image(&b, "app");
    let stat = "stat -c '%n %u:%g %a' /app /app/sub /app/sub/f && cat /app/link";
    let out = b.ok(&["run", "--rm", "-v", "appvol:/app", "app", "sh", "-c", stat]);
    assert_eq!(
        out,
        "/app 1000:1000 711\n/app/sub 1000:1000 750\n/app/sub/f 1000:1000 640\nsecret\n"
    );
    let host = mountpoint(&b, "appvol");
    let m = std::fs::metadata(host.join("sub/f")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o640));
    assert_eq!(
        std::fs::read_link(host.join("link")).unwrap(),
        Path::new("sub/f")
    );
    assert_eq!(std::fs::metadata(&host).unwrap().mode() & 0o7777, 0o711);
    // A volume with files is not filled again.
    std::fs::remove_file(host.join("link")).unwrap();
    b.ok(&["run", "--rm", "-v", "appvol:/app", "app", "true"]);
    assert!(!host.join("link").exists());
    // nocopy, in both syntaxes; the image's anonymous VOLUME is filled.
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "-v",
            "bare:/app:nocopy",
            "app",
            "ls",
            "-A",
            "/app"
        ]),
        ""
    );
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=bare2,dst=/app,volume-nocopy",
            "app",
            "ls",
            "-A",
            "/app"
        ]),
        ""
    );
    assert_eq!(b.ok(&["run", "--rm", "app", "ls", "/app"]), "link\nsub\n");
    // volume-subpath mounts a directory of the volume.
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=appvol,dst=/only,volume-subpath=sub",
            "busybox",
            "ls",
            "/only"
        ]),
        "f\n"
    );
    let err = b.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=appvol,dst=/only,volume-subpath=nope",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("cannot access path"), "{err}");
}

#[test]
fn volumes_from_is_transitive() {
    berth_testutil::require_root!();
    let b = berth("vol-from");
    // opensuse_data2(data2) -> opensuse_data1(data1) -> opensuse_data(data)
    b.ok(&[
        "run", "-d", "--name", "data", "-v", "/data", "busybox", "sleep", "1000",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--volumes-from=data",
        "-v",
        "/data1",
        "--name",
        "data1",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = b.ok(&[
        "run",
        "--volumes-from=data1",
        "-v",
        "/data2",
        "--name",
        "data2",
        "busybox",
        "sh",
        "-c",
        "echo 0 > /data/f && echo 1 > /data1/f && echo 2 > /data2/f && ls -d /data*",
    ]);
    assert_eq!(out, "/data\n/data1\n/data2\n");
    let by_dest = |c: &str| -> std::collections::BTreeMap<String, String> {
        inspect(&b, c)["Mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["Destination"].as_str().unwrap().to_string(),
                    m["Name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let d0 = by_dest("data");
    let d1 = by_dest("data1");
    let d2 = by_dest("data2");
    assert_eq!(d2.len(), 3);
    assert_eq!(d2["/data"], d0["/data"]);
    assert_eq!(d2["/data1"], d1["/data1"]);
    assert_eq!(b.ok(&["exec", "data", "cat", "/data/f"]), "0\n");
    assert_eq!(b.ok(&["exec", "data1", "cat", "/data1/f"]), "1\n");
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])).len(), 3);

    // rm -v data1: its /data1 volume is still used by data2, so it stays.
    b.ok(&["rm", "-f", "-v", "data1"]);
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])).len(), 3);
    // A new data1 gets a new /data1 volume, not data2's.
    b.ok(&[
        "run",
        "-d",
        "--volumes-from=data",
        "-v",
        "/data1",
        "--name",
        "data1",
        "busybox",
        "sleep",
        "1000",
    ]);
    let new1 = by_dest("data1");
    assert_ne!(new1["/data1"], d2["/data1"]);
    assert_eq!(new1["/data"], d0["/data"]);
    assert_eq!(b.ok(&["exec", "data1", "ls", "-A", "/data1"]), "");

    // :ro makes every inherited mount read-only.
    let out = b.run(&[
        "run",
        "--rm",
        "--volumes-from",
        "data:ro",
        "busybox",
        "touch",
        "/data/x",
    ]);
    assert!(!out.status.success());
    let ro = b.ok(&["create", "--volumes-from", "data:ro", "busybox", "true"]);
    assert_eq!(inspect(&b, ro.trim())["Mounts"][0]["RW"], false);
}

#[test]
fn backup_and_restore_between_containers() {
    berth_testutil::require_root!();
    let b = berth("vol-backup");
    let backup = b.dir.join("backup");
    std::fs::create_dir(&backup).unwrap();
    let backup_spec = format!("{}:/backup", backup.display());
    b.ok(&[
        "run",
        "--name",
        "opensuse_data",
        "-v",
        "/data",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/db && echo important > /data/db/file && chown -R 1000:1000 /data/db",
    ]);
    b.ok(&[
        "run",
        "--rm",
        "--volumes-from=opensuse_data",
        "-v",
        &backup_spec,
        "busybox",
        "tar",
        "-zcpvf",
        "/backup/backup.tar.gz",
        "/data",
    ]);
    assert!(backup.join("backup.tar.gz").metadata().unwrap().len() > 0);
    b.ok(&[
        "run",
        "--name",
        "centos_data",
        "-v",
        "/data",
        "busybox",
        "true",
    ]);
    b.ok(&[
        "run",
        "--rm",
        "--volumes-from=centos_data",
        "-v",
        &backup_spec,
        "busybox",
        "tar",
        "xvzf",
        "/backup/backup.tar.gz",
        "-C",
        "/data",
    ]);
    // tar stored `data/…` (no leading /), so -C /data puts it at /data/data.
    let out = b.ok(&[
        "run",
        "--rm",
        "--volumes-from=centos_data",
        "busybox",
        "sh",
        "-c",
        "cat /data/data/db/file; stat -c %u /data/data/db/file",
    ]);
    assert_eq!(out, "important\n1000\n");
}

#[test]
fn rm_v_removes_anonymous_volumes_only() {
    berth_testutil::require_root!();
    let b = berth("vol-rmv");
    b.ok(&[
        "create",
        "--name",
        "rr",
        "-v",
        "/anon",
        "-v",
        "named-r:/named",
        "--mount",
        "type=volume,dst=/anon2",
        "busybox",
        "true",
    ]);
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])).len(), 3);
    b.ok(&["rm", "-v", "rr"]);
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])), ["named-r"]);
    // --rm also takes its anonymous volumes along.
    b.ok(&["run", "--rm", "-v", "/scratch", "busybox", "true"]);
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])), ["named-r"]);
    // Plain rm keeps them.
    b.ok(&["run", "--name", "kk", "-v", "/kept", "busybox", "true"]);
    b.ok(&["rm", "kk"]);
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])).len(), 2);
}

#[test]
fn export_rm_import_round_trip() {
    berth_testutil::require_root!();
    let b = berth("vol-export");
    b.ok(&[
        "run", "--rm", "-v", "src:/v", "busybox", "sh", "-c",
        "mkdir -p /v/d && echo data > /v/d/f && ln /v/d/f /v/hard && ln -s d/f /v/sym && chown -R 1000:2000 /v/d && chmod 4755 /v/d/f && chmod 0700 /v/d && chmod 0750 /v",
    ]);
    let host = mountpoint(&b, "src");
    let xattr = xattr::set(host.join("d/f"), "user.berth", b"kept").is_ok();
    let file = b.dir.join("src.tar.gz");
    b.ok(&["volume", "export", "src", file.to_str().unwrap()]);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
    b.ok(&["volume", "rm", "src"]);
    assert_eq!(
        b.ok(&["volume", "import", file.to_str().unwrap(), "src"]),
        "src\n"
    );
    let host = mountpoint(&b, "src");
    let m = |p: &str| std::fs::symlink_metadata(host.join(p)).unwrap();
    assert_eq!(
        (m("d/f").uid(), m("d/f").gid(), m("d/f").mode() & 0o7777),
        (1000, 2000, 0o4755)
    );
    assert_eq!((m("d").uid(), m("d").mode() & 0o7777), (1000, 0o700));
    assert_eq!(m("").mode() & 0o7777, 0o750);
    assert_eq!(m("hard").ino(), m("d/f").ino());
    assert_eq!(
        std::fs::read_link(host.join("sym")).unwrap(),
        Path::new("d/f")
    );
    assert_eq!(std::fs::read_to_string(host.join("d/f")).unwrap(), "data\n");
    if xattr {
        assert_eq!(
            xattr::get(host.join("d/f"), "user.berth")
                .unwrap()
                .as_deref(),
            Some(&b"kept"[..])
        );
    }
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "src:/v", "busybox", "cat", "/v/sym"]),
        "data\n"
    );
    // A non-empty volume is not overwritten unless asked.
    let err = b.fails(&["volume", "import", file.to_str().unwrap(), "src"], 1);
    assert!(err.contains("already exists and is not empty"), "{err}");
    std::fs::write(host.join("extra"), "x").unwrap();
    b.ok(&["volume", "import", "--force", file.to_str().unwrap(), "src"]);
    assert!(!mountpoint(&b, "src").join("extra").exists());
    // A broken archive leaves no volume behind.
    let junk = b.dir.join("junk.tar.gz");
    std::fs::write(&junk, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).unwrap();
    b.fails(&["volume", "import", junk.to_str().unwrap(), "broken"], 1);
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])), ["src"]);
    assert!(!b.root().join("volumes/broken").exists());
    let staging = b.root().join("volumes/.staging");
    assert!(
        std::fs::read_dir(&staging)
            .map(|rd| rd.count())
            .unwrap_or(0)
            == 0
    );
}

#[test]
fn snapshots_and_in_use_refusals() {
    berth_testutil::require_root!();
    let b = berth("vol-snap");
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "sv:/v",
        "busybox",
        "sh",
        "-c",
        "echo one > /v/f && mkdir /v/d && chown 1000 /v/d",
    ]);
    assert_eq!(b.ok(&["volume", "snapshot", "create", "sv", "s1"]), "s1\n");
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "sv:/v",
        "busybox",
        "sh",
        "-c",
        "echo two > /v/f && rm -r /v/d && touch /v/new",
    ]);
    let ls = b.ok(&["volume", "snapshot", "ls", "-q", "sv"]);
    assert_eq!(ls, "s1\n");
    let table = b.ok(&["volume", "snapshot", "ls", "sv"]);
    assert!(table.starts_with("NAME"), "{table}");
    let err = b.fails(&["volume", "snapshot", "create", "sv", "s1"], 1);
    assert!(err.contains("already exists"), "{err}");

    // Refused while a running container uses the volume.
    b.ok(&[
        "run", "-d", "--name", "user", "-v", "sv:/v", "busybox", "sleep", "1000",
    ]);
    let err = b.fails(&["volume", "snapshot", "restore", "sv", "s1"], 1);
    assert!(err.contains("in use by a running container"), "{err}");
    let id = inspect(&b, "user")["Id"].as_str().unwrap().to_string();
    let err = b.fails(&["volume", "rm", "sv"], 1);
    assert_eq!(
        err.trim(),
        format!("Error response from daemon: remove sv: volume is in use - [{id}]")
    );
    b.ok(&["stop", "-t", "0", "user"]);

    b.ok(&["volume", "snapshot", "restore", "sv", "s1"]);
    let out = b.ok(&[
        "run",
        "--rm",
        "-v",
        "sv:/v",
        "busybox",
        "sh",
        "-c",
        "cat /v/f; stat -c %u /v/d; ls /v",
    ]);
    assert_eq!(out, "one\n1000\nd\nf\n");
    // The snapshot is a copy: the restored volume's changes leave it alone.
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "sv:/v",
        "busybox",
        "sh",
        "-c",
        "echo three > /v/f",
    ]);
    b.ok(&["volume", "snapshot", "restore", "sv", "s1"]);
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "sv:/v", "busybox", "cat", "/v/f"]),
        "one\n"
    );
    b.ok(&["volume", "snapshot", "rm", "sv", "s1"]);
    assert_eq!(b.ok(&["volume", "snapshot", "ls", "-q", "sv"]), "");
    let err = b.fails(&["volume", "snapshot", "restore", "sv", "s1"], 1);
    assert!(err.contains("no such snapshot"), "{err}");
}

#[test]
fn concurrent_runs_share_one_named_volume() {
    berth_testutil::require_root!();
    let b = berth("vol-race");
    let runs: Vec<_> = (0..8)
        .map(|i| {
            b.command()
                .args([
                    "run",
                    "--rm",
                    "-v",
                    "shared:/d",
                    "busybox",
                    "sh",
                    "-c",
                    &format!("echo {i} >> /d/log"),
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in runs {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(names(&b.ok(&["volume", "ls", "-q"])), ["shared"]);
    let log = std::fs::read_to_string(mountpoint(&b, "shared").join("log")).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort();
    assert_eq!(lines, ["0", "1", "2", "3", "4", "5", "6", "7"]);
}

#[test]
fn tmpfs_and_ext4_backed_volumes_mount_while_used() {
    berth_testutil::require_root!();
    let b = berth("vol-driver");
    b.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m,mode=0777",
        "tv",
    ]);
    let v = volume_inspect(&b, "tv");
    assert_eq!(
        v["Options"],
        serde_json::json!({"device": "tmpfs", "o": "size=1m,mode=0777", "type": "tmpfs"})
    );
    let tv = mountpoint(&b, "tv");
    b.ok(&[
        "run", "-d", "--name", "tu", "-v", "tv:/t", "busybox", "sleep", "1000",
    ]);
    assert_eq!(mounts_under(&tv), [tv.display().to_string()]);
    b.ok(&["exec", "tu", "sh", "-c", "echo x > /t/f"]);
    assert!(tv.join("f").exists());
    b.ok(&["stop", "-t", "0", "tu"]);
    assert!(
        mounts_under(&tv).is_empty(),
        "unmounted when its last user stopped"
    );
    b.ok(&["start", "tu"]);
    assert_eq!(
        b.ok(&["exec", "tu", "ls", "-A", "/t"]),
        "",
        "a tmpfs volume starts empty"
    );
    b.ok(&["rm", "-f", "tu"]);
    assert!(mounts_under(&tv).is_empty());

    if !common::have("mkfs.ext4") {
        eprintln!("SKIPPED (ext4 part): mkfs.ext4 is not installed");
        return;
    }
    let img = b.dir.join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let st = std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(&img)
        .status()
        .unwrap();
    assert!(st.success());
    b.ok(&[
        "volume",
        "create",
        "--opt",
        "type=ext4",
        "--opt",
        &format!("device={}", img.display()),
        "ev",
    ]);
    let ev = mountpoint(&b, "ev");
    b.ok(&[
        "run",
        "--rm",
        "-v",
        "ev:/e",
        "busybox",
        "sh",
        "-c",
        "echo disk > /e/f",
    ]);
    assert!(mounts_under(&ev).is_empty());
    let loops = std::process::Command::new("losetup")
        .arg("-j")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        loops.stdout.is_empty(),
        "loop device left: {}",
        String::from_utf8_lossy(&loops.stdout)
    );
    assert!(
        !ev.join("f").exists(),
        "the file is on the image, not under _data"
    );
    assert_eq!(
        b.ok(&["run", "--rm", "-v", "ev:/e", "busybox", "cat", "/e/f"]),
        "disk\n"
    );
    // Export reaches the files on the device too.
    let file = b.dir.join("ev.tar.gz");
    b.ok(&["volume", "export", "ev", file.to_str().unwrap()]);
    assert!(mounts_under(&ev).is_empty());
    b.ok(&["volume", "import", file.to_str().unwrap(), "ev-copy"]);
    assert_eq!(
        std::fs::read_to_string(mountpoint(&b, "ev-copy").join("f")).unwrap(),
        "disk\n"
    );
    let err = b.fails(&["volume", "snapshot", "create", "ev", "s"], 1);
    assert!(err.contains("export it instead"), "{err}");
    // A device that is not there fails the start, cleanly.
    b.ok(&[
        "volume",
        "create",
        "-o",
        "type=ext4",
        "-o",
        "device=/dev/berth-no-such-disk",
        "bad-dev",
    ]);
    let err = b.fails(&["run", "--rm", "-v", "bad-dev:/x", "busybox", "true"], 125);
    assert!(
        err.contains("error while mounting volume 'bad-dev'"),
        "{err}"
    );
    assert!(mounts_under(&b.root().join("volumes")).is_empty());
}

#[test]
fn bad_input_fails_cleanly() {
    berth_testutil::require_root!();
    let b = berth("vol-bad");
    let err = b.fails(&["volume", "create", "-o", "foo=bar", "v1"], 1);
    assert_eq!(err.trim(), "Error response from daemon: invalid option: \"foo\": the local driver takes type=, device= and o=");
    let err = b.fails(&["volume", "create", "-o", "type=tmpfs", "v1"], 1);
    assert!(err.contains("missing required option: \"device\""), "{err}");
    let err = b.fails(&["volume", "create", "x"], 1);
    assert!(
        err.contains("includes invalid characters for a local volume name"),
        "{err}"
    );
    let err = b.fails(&["volume", "create", "-d", "nfsplugin", "v2"], 1);
    assert!(err.contains("plugin \"nfsplugin\" not found"), "{err}");
    assert!(b.ok(&["volume", "ls", "-q"]).is_empty());
    let err = b.fails(&["volume", "ls", "--filter", "dangling=maybe"], 1);
    assert!(err.contains("invalid filter 'dangling=maybe'"), "{err}");

    let err = b.fails(
        &["run", "--rm", "-v", "bad:name:/x:/y", "busybox", "true"],
        125,
    );
    assert!(err.contains("invalid"), "{err}");
    // An unknown --volumes-from source: no container, no anonymous volume left.
    let err = b.fails(
        &[
            "run",
            "--rm",
            "-v",
            "/anon",
            "--volumes-from",
            "missing",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("No such container: missing"), "{err}");
    assert!(b.ok(&["ps", "-aq"]).is_empty());
    assert!(b.ok(&["volume", "ls", "-q"]).is_empty());
    let err = b.fails(
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=v,dst=/x,volume-driver=other",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("plugin \"other\" not found"), "{err}");
    assert!(b.ok(&["volume", "ls", "-q"]).is_empty());
    let err = b.fails(&["volume", "import", "/nonexistent.tar.gz", "imp"], 1);
    assert!(err.contains("opening the archive"), "{err}");
    let err = b.fails(&["volume", "export", "nope", "/tmp/x.tar.gz"], 1);
    assert!(err.contains("get nope: no such volume"), "{err}");

    // system df counts volumes.
    b.ok(&["volume", "create", "counted"]);
    let df = b.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.contains("Local Volumes 1 0"), "{df}");
    let out = b.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(
        !out.contains("counted"),
        "named volumes are not pruned: {out}"
    );
}
