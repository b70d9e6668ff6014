//! `diff`, `cp`, `export` and `commit` through the `berth` binary, against
//! real containers (running and stopped), with Docker's outputs and exit
//! codes; a container's symlinks must never lead a copy to the host.

mod common;

use std::io::Read;
use std::path::Path;

use common::{berth, stderr, stdout};

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// Names of the entries of a tar.
fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .expect("tar entries")
        .map(|e| {
            let e = e.expect("tar entry");
            String::from_utf8_lossy(&e.path_bytes()).into_owned()
        })
        .collect()
}

/// Our own mounts under the test's root (there must be none left).
fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&root))
        .map(str::to_string)
        .collect()
}

#[test]
fn diff_lists_added_changed_and_deleted_paths() {
    berth_testutil::require_root!();
    let b = berth("fs-diff");
    b.ok(&[
        "run",
        "--name",
        "d1",
        "busybox",
        "sh",
        "-c",
        "echo hi > /tmp/new; rm /etc/group; echo x >> /etc/passwd; mkdir -p /usr/local/lib; rm -r /var; mkdir /var",
    ]);
    let out = b.ok(&["diff", "d1"]);
    // Docker's order and letters; the runtime's mount-point stubs
    // (/etc/hosts, /etc/hostname, /etc/resolv.conf) are not changes.
    assert_eq!(
        lines(&out),
        [
            "C /etc",
            "D /etc/group",
            "C /etc/passwd",
            "C /tmp",
            "A /tmp/new",
            "C /usr",
            "A /usr/local",
            "A /usr/local/lib",
            "D /var",
        ],
        "{out}"
    );
    // A running container, changed through exec; `container diff` too.
    b.ok(&["run", "-d", "--name", "d2", "busybox", "sleep", "300"]);
    b.ok(&["exec", "d2", "sh", "-c", "touch /root/made; rm /bin/vi"]);
    let out = b.ok(&["container", "diff", "d2"]);
    assert_eq!(
        lines(&out),
        ["C /bin", "D /bin/vi", "C /root", "A /root/made"],
        "{out}"
    );
    // A fresh container has no changes.
    b.ok(&["create", "--name", "d3", "busybox", "true"]);
    assert_eq!(b.ok(&["diff", "d3"]), "");
    let err = b.fails(&["diff", "nosuch"], 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    assert!(b.fails(&["diff"], 125).contains("CONTAINER"));
}

#[test]
fn cp_copies_files_and_directories_both_ways() {
    berth_testutil::require_root!();
    let b = berth("fs-cp");
    let host = b.dir.join("host");
    std::fs::create_dir_all(host.join("src/sub")).unwrap();
    std::fs::write(host.join("src/top.txt"), "top\n").unwrap();
    std::fs::write(host.join("src/sub/deep.txt"), "deep\n").unwrap();
    std::os::unix::fs::symlink("top.txt", host.join("src/link")).unwrap();
    std::os::unix::fs::chown(host.join("src/top.txt"), Some(1234), Some(4321)).unwrap();
    let h = |p: &str| host.join(p).to_string_lossy().into_owned();

    b.ok(&["run", "-d", "--name", "ctr", "busybox", "sleep", "300"]);
    // A directory into an existing directory keeps its name; owned by the
    // container's root without -a, by the archive's ids with -a.
    b.ok(&["cp", &h("src"), "ctr:/tmp"]);
    let ls = b.ok(&["exec", "ctr", "sh", "-c", "cat /tmp/src/top.txt /tmp/src/sub/deep.txt; readlink /tmp/src/link; stat -c %u:%g /tmp/src/top.txt"]);
    assert_eq!(ls, "top\ndeep\ntop.txt\n0:0\n");
    b.ok(&["cp", "-a", &h("src/top.txt"), "ctr:/tmp/owned.txt"]);
    assert_eq!(
        b.ok(&["exec", "ctr", "stat", "-c", "%u:%g %a", "/tmp/owned.txt"]),
        "1234:4321 644\n"
    );
    // To a new name: renamed; `/.` copies the contents.
    b.ok(&["cp", &h("src"), "ctr:/tmp/renamed"]);
    b.ok(&["exec", "ctr", "mkdir", "/tmp/existing"]);
    b.ok(&["cp", &format!("{}/.", h("src")), "ctr:/tmp/existing"]);
    assert_eq!(
        b.ok(&[
            "exec",
            "ctr",
            "sh",
            "-c",
            "ls /tmp/renamed; ls /tmp/existing"
        ]),
        "link\nsub\ntop.txt\nlink\nsub\ntop.txt\n"
    );

    // Back out: a directory into an existing one, to a new name, a file.
    let out = b.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = |p: &str| out.join(p).to_string_lossy().into_owned();
    b.ok(&["cp", "ctr:/tmp/src", &o("")]);
    assert_eq!(
        std::fs::read_to_string(out.join("src/sub/deep.txt")).unwrap(),
        "deep\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("src/link")).unwrap(),
        Path::new("top.txt")
    );
    b.ok(&["cp", "ctr:/tmp/src", &o("copy")]);
    assert!(out.join("copy/sub/deep.txt").is_file());
    b.ok(&["cp", "ctr:/tmp/src/.", &o("copy")]);
    assert!(out.join("copy/top.txt").is_file() && !out.join("copy/src").exists());
    // Contents (`/.`) and the whole root to new names.
    b.ok(&["cp", "ctr:/tmp/src/.", &o("contents")]);
    assert!(out.join("contents/sub/deep.txt").is_file());
    assert!(!out.join("sub").exists() && !out.join("contents/src").exists());
    b.ok(&["cp", "ctr:/", &o("wholeroot")]);
    assert!(out.join("wholeroot/bin/busybox").is_file());
    assert!(out.join("wholeroot/tmp/src/top.txt").is_file());
    assert!(!out.join("bin").exists());
    b.ok(&["cp", &format!("{}/.", h("src")), "ctr:/tmp/newcontents"]);
    assert_eq!(
        b.ok(&["exec", "ctr", "ls", "/tmp/newcontents"]),
        "link\nsub\ntop.txt\n"
    );
    b.ok(&["cp", "ctr:/etc/passwd", &o("pw")]);
    assert!(std::fs::read_to_string(out.join("pw"))
        .unwrap()
        .starts_with("root:x:0:0"));
    // -L follows a final symlink and names the copy as the link.
    b.ok(&["cp", "-L", "ctr:/tmp/src/link", &o("")]);
    assert_eq!(std::fs::read_to_string(out.join("link")).unwrap(), "top\n");
    assert!(!std::fs::symlink_metadata(out.join("link"))
        .unwrap()
        .is_symlink());

    // Tar streams: `-` as destination and as source.
    let o_tar = b.run(&["cp", "ctr:/tmp/src", "-"]);
    assert!(o_tar.status.success(), "{}", stderr(&o_tar));
    let names = tar_names(&o_tar.stdout);
    assert_eq!(
        names,
        [
            "src/",
            "src/link",
            "src/sub/",
            "src/sub/deep.txt",
            "src/top.txt"
        ],
        "{names:?}"
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut hd = common::file_header(4);
    tar.append_data(&mut hd, "streamed/a.txt", &b"abc\n"[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let res = b.run_stdin(&["cp", "-", "ctr:/tmp"], &tar);
    assert!(res.status.success(), "{}", stderr(&res));
    assert_eq!(
        b.ok(&["exec", "ctr", "cat", "/tmp/streamed/a.txt"]),
        "abc\n"
    );
    let res = b.run_stdin(&["cp", "-", "ctr:/etc/passwd"], &tar);
    assert_eq!(res.status.code(), Some(1));
    assert!(
        stderr(&res).contains("must be a directory"),
        "{}",
        stderr(&res)
    );

    // A stopped container: its rootfs is mounted for the copy only.
    b.ok(&["stop", "-t", "0", "ctr"]);
    b.ok(&["cp", &h("src/top.txt"), "ctr:/root/while-stopped"]);
    b.ok(&["cp", "ctr:/root/while-stopped", &o("back")]);
    assert_eq!(std::fs::read_to_string(out.join("back")).unwrap(), "top\n");
    assert!(
        mounts_under(&b.root()).is_empty(),
        "{:?}",
        mounts_under(&b.root())
    );
    b.ok(&["start", "ctr"]);
    assert_eq!(
        b.ok(&["exec", "ctr", "cat", "/root/while-stopped"]),
        "top\n"
    );
}

#[test]
fn cp_errors_are_dockers() {
    berth_testutil::require_root!();
    let b = berth("fs-cp-errors");
    b.ok(&["create", "--name", "ctr", "busybox", "true"]);
    b.ok(&["create", "--name", "other", "busybox", "true"]);
    let out = b.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.to_string_lossy().into_owned();
    let err = b.fails(&["cp", "ctr:/nope", &o], 1);
    assert!(
        err.contains("Error response from daemon: Could not find the file /nope in container ctr"),
        "{err}"
    );
    let err = b.fails(&["cp", "nosuch:/etc", &o], 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let err = b.fails(&["cp", "ctr:/etc", "other:/tmp"], 1);
    assert!(
        err.contains("copying between containers is not supported"),
        "{err}"
    );
    let err = b.fails(&["cp", &o, "/tmp"], 1);
    assert!(
        err.contains("must specify at least one container source"),
        "{err}"
    );
    std::fs::write(out.join("file"), "x").unwrap();
    let err = b.fails(&["cp", "ctr:/etc", &format!("{o}/file")], 1);
    assert!(err.contains("cannot copy directory"), "{err}");
    let err = b.fails(&["cp", "ctr:/etc/passwd", &format!("{o}/missing/")], 1);
    assert!(err.contains("no such directory"), "{err}");
    let err = b.fails(&["cp", "ctr:/etc/passwd", &format!("{o}/a/b/c")], 1);
    assert!(err.contains("does not exist"), "{err}");
    // Into a missing directory of the container.
    let err = b.fails(&["cp", &format!("{o}/file"), "ctr:/no/such/dir/"], 1);
    assert!(err.contains("no such directory"), "{err}");
    let err = b.fails(&["cp", &format!("{o}/file"), "ctr:/no/such/file"], 1);
    assert!(
        err.contains("Could not find the file /no/such in container ctr"),
        "{err}"
    );
    assert!(mounts_under(&b.root()).is_empty());
}

#[test]
fn cp_never_follows_a_containers_symlink_to_the_host() {
    berth_testutil::require_root!();
    let b = berth("fs-cp-escape");
    // A host directory with a secret, named by absolute path in the container.
    let secret_dir = b.dir.join("hostsecret");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("secret"), "host secret\n").unwrap();
    let sd = secret_dir.to_string_lossy().into_owned();
    b.ok(&["run", "-d", "--name", "ctr", "busybox", "sleep", "300"]);
    b.ok(&[
        "exec",
        "ctr",
        "sh",
        "-c",
        &format!("ln -s / /escape; ln -s {sd} /hostdir; ln -s ../../../../../../../../etc /rel; echo mine > /etc/shadow"),
    ]);
    let out = b.dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = |p: &str| out.join(p).to_string_lossy().into_owned();
    // `/escape/etc/shadow` is the container's /etc/shadow, not the host's.
    b.ok(&["cp", "ctr:/escape/etc/shadow", &o("shadow")]);
    assert_eq!(
        std::fs::read_to_string(out.join("shadow")).unwrap(),
        "mine\n"
    );
    b.ok(&["cp", "ctr:/rel/shadow", &o("shadow2")]);
    assert_eq!(
        std::fs::read_to_string(out.join("shadow2")).unwrap(),
        "mine\n"
    );
    // The host path behind /hostdir does not exist in the container.
    let err = b.fails(&["cp", "ctr:/hostdir/secret", &o("s")], 1);
    assert!(
        err.contains("Could not find the file /hostdir/secret"),
        "{err}"
    );
    let err = b.fails(&["cp", "-L", "ctr:/hostdir", &o("s")], 1);
    assert!(err.contains("Could not find the file"), "{err}");
    assert!(!out.join("s").exists());
    // Archiving the link itself gives the link, not what it points to on the host.
    let res = b.run(&["cp", "ctr:/hostdir", "-"]);
    assert!(res.status.success());
    let mut a = tar::Archive::new(&res.stdout[..]);
    let entries: Vec<(String, tar::EntryType)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().entry_type(),
            )
        })
        .collect();
    assert_eq!(entries, [("hostdir".to_string(), tar::EntryType::Symlink)]);
    // Copying into /hostdir/ writes inside the container or fails; never on the host.
    std::fs::write(out.join("payload"), "payload\n").unwrap();
    let _ = b.run(&["cp", &o("payload"), "ctr:/hostdir/"]);
    let _ = b.run(&["cp", &o("payload"), "ctr:/escape/tmp/"]);
    assert_eq!(
        std::fs::read_dir(&secret_dir).unwrap().count(),
        1,
        "a file was written to the host"
    );
    assert_eq!(b.ok(&["exec", "ctr", "cat", "/tmp/payload"]), "payload\n");
}

#[test]
fn export_then_import_then_run() {
    berth_testutil::require_root!();
    let b = berth("fs-export");
    b.ok(&[
        "run",
        "--name",
        "exp",
        "busybox",
        "sh",
        "-c",
        "echo exported > /root/file; rm /bin/vi",
    ]);
    let tar_path = b.dir.join("e.tar");
    let t = tar_path.to_string_lossy().into_owned();
    b.ok(&["export", "-o", &t, "exp"]);
    let mut bytes = Vec::new();
    std::fs::File::open(&tar_path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let names = tar_names(&bytes);
    assert!(names.contains(&"root/file".to_string()), "{names:?}");
    assert!(names.contains(&"bin/busybox".to_string()));
    assert!(!names.iter().any(|n| n == "bin/vi" || n == "./" || n == "/"));
    // Streamed to a pipe, the same entries.
    let piped = b.run(&["container", "export", "exp"]);
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(tar_names(&piped.stdout), names);
    let id = b.ok(&["import", &t, "exported:1"]);
    assert!(id.starts_with("sha256:"), "{id}");
    let out = b.ok(&[
        "run",
        "--rm",
        "exported:1",
        "sh",
        "-c",
        "cat /root/file; ls /bin/vi || true",
    ]);
    assert_eq!(out, "exported\n");
    let err = b.fails(&["export", "-o", &t, "nosuch"], 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    assert!(mounts_under(&b.root()).is_empty());
}

#[test]
fn commit_makes_an_image_that_runs_with_the_changes() {
    berth_testutil::require_root!();
    let b = berth("fs-commit");
    b.ok(&[
        "run",
        "--name",
        "src",
        "-e",
        "KEEP=1",
        "-w",
        "/root",
        "busybox",
        "sh",
        "-c",
        "echo committed > /root/file; rm /etc/group",
    ]);
    let id = b
        .ok(&[
            "commit",
            "-a",
            "Jane <jane@example.com>",
            "-m",
            "a message",
            "-c",
            "ENV FOO=bar",
            "-c",
            "CMD [\"cat\", \"file\"]",
            "src",
            "mine:v1",
        ])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    // The new CMD, the container's env and workdir, the changed files.
    assert_eq!(b.ok(&["run", "--rm", "mine:v1"]), "committed\n");
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "mine:v1",
            "sh",
            "-c",
            "echo $FOO $KEEP; pwd; ls /etc/group || true"
        ]),
        "bar 1\n/root\n"
    );
    let hist = b.ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.Comment}}|{{.CreatedBy}}",
        "mine:v1",
    ]);
    let first = hist.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("a message|sh -c echo committed"),
        "{hist}"
    );
    let v = b.inspect("mine:v1");
    assert_eq!(v["Author"], "Jane <jane@example.com>");
    assert_eq!(v["Comment"], "a message");
    assert_eq!(v["RootFS"]["Layers"].as_array().map(Vec::len), Some(2));
    // A running container: paused while committed (default), running after.
    b.ok(&["run", "-d", "--name", "live", "busybox", "sleep", "300"]);
    b.ok(&["exec", "live", "touch", "/live-file"]);
    let live = b.ok(&["commit", "live"]).trim().to_string();
    assert!(live.starts_with("sha256:"));
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "live"]).trim(),
        "running"
    );
    b.ok(&["commit", "--pause=false", "live", "live:nopause"]);
    assert_eq!(
        b.ok(&["run", "--rm", "live:nopause", "ls", "/live-file"]),
        "/live-file\n"
    );
    // No changes: no new layer, an empty_layer history step.
    b.ok(&["create", "--name", "fresh", "busybox", "true"]);
    b.ok(&["commit", "fresh", "same:1"]);
    assert_eq!(
        b.inspect("same:1")["RootFS"]["Layers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // A container that ran but changed nothing: the runtime's mount-point
    // stubs (/etc/hosts …) are not a change either (Docker's init layer).
    b.ok(&["run", "--name", "ran", "busybox", "true"]);
    b.ok(&["commit", "ran", "ran:1"]);
    assert_eq!(
        b.inspect("ran:1")["RootFS"]["Layers"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let hist = b.ok(&["history", "--format", "{{.Size}}", "ran:1"]);
    assert_eq!(hist.lines().next(), Some("0B"), "{hist}");
    let err = b.fails(&["commit", "src", "Bad:Ref:x"], 1);
    assert!(!err.is_empty());
    let err = b.fails(&["commit", "nosuch"], 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let out = b.run(&["images", "-q"]);
    assert!(stdout(&out).lines().count() >= 4);
}
