//! Crash safety of volume operations: copy-up, export, import and
//! snapshot create/restore killed half-way (SIGKILL through the test-only
//! `BERTH_FAULT_INJECT` hook) leave every volume readable and whole, the
//! listings truthful, and the operation re-runnable to the full result.
//! Also `ps`'s `{{.Mounts}}`/`{{.LocalVolumes}}` and xattrs on symlinks.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{berth, Berth};

/// Runs berth with a fault injected at `point` after `n` items.
fn crash(b: &Berth, point: &str, n: u32, args: &[&str]) -> Output {
    let out = b
        .command()
        .env("BERTH_FAULT_INJECT", format!("{point}:after={n}"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(9),
        "berth {args:?} was to be killed at {point}:after={n}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mountpoint(b: &Berth, name: &str) -> PathBuf {
    let out = b.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", name]);
    PathBuf::from(out.trim())
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|rd| rd.count()).unwrap_or(0)
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

/// Detaches what a failed test left mounted under its root (a killed
/// berth's volume mounts are not a container's, so no `rm -f` finds them).
struct Unmounts(PathBuf);

impl Drop for Unmounts {
    fn drop(&mut self) {
        for m in mounts_under(&self.0).iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Entries of busybox's /bin (several hundred: enough to die half-way).
fn bin_entries(b: &Berth) -> usize {
    let n: usize = b
        .ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "ls -A /bin | wc -l",
        ])
        .trim()
        .parse()
        .unwrap();
    assert!(n > 100, "busybox /bin has {n} entries");
    n
}

#[test]
fn copy_up_killed_half_way_is_redone_whole() {
    berth_testutil::require_root!();
    let b = berth("volcrash-copyup");
    let _u = Unmounts(b.root());
    let n = bin_entries(&b);
    crash(
        &b,
        "volume-copy-up",
        40,
        &[
            "run",
            "--name",
            "c1",
            "--network",
            "none",
            "-v",
            "cu:/bin",
            "busybox",
            "true",
        ],
    );
    // The container never ran; the volume exists and holds no partial copy.
    assert_eq!(
        b.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "c1 created\n"
    );
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "cu\n");
    let data = mountpoint(&b, "cu");
    assert_eq!(
        count(&data),
        0,
        "a half copy-up shows in {}",
        data.display()
    );
    assert!(b.root().join("volumes/cu/_copyup").exists());

    // `rm -f` cleans the container, its rootfs mount included.
    b.ok(&["rm", "-f", "c1"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new());

    // Run again: the whole copy, no leftovers.
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "cu:/bin",
        "busybox",
        "sh",
        "-c",
        "ls -A /bin | wc -l",
    ]);
    assert_eq!(out.trim(), n.to_string());
    assert_eq!(count(&data), n);
    assert!(!b.root().join("volumes/cu/_copyup").exists());

    // A volume with files gets no copy-up at all: what the user wrote stays.
    std::fs::write(data.join("mine"), "user data\n").unwrap();
    let out = b
        .command()
        .env("BERTH_FAULT_INJECT", "volume-copy-up:after=1")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "cu:/bin",
            "busybox",
            "true",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "a non-empty volume gets no copy-up: {out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("mine")).unwrap(),
        "user data\n"
    );
    assert_eq!(count(&data), n + 1);
}

#[test]
fn copy_up_into_a_mounted_volume_killed_half_way_is_redone_at_restart() {
    berth_testutil::require_root!();
    let b = berth("volcrash-copyup-tmpfs");
    let _u = Unmounts(b.root());
    let n = bin_entries(&b);
    b.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=64m",
        "tv",
    ]);
    crash(
        &b,
        "volume-copy-up",
        40,
        &[
            "run",
            "--name",
            "c2",
            "--network",
            "none",
            "-v",
            "tv:/bin",
            "busybox",
            "sh",
            "-c",
            "ls -A /bin | wc -l",
        ],
    );
    // The tmpfs holds a partial copy, marked as such.
    let data = mountpoint(&b, "tv");
    assert_eq!(mounts_under(&data), [data.display().to_string()]);
    let partial = count(&data);
    assert!(partial > 0 && partial < n, "{partial} of {n}");
    assert!(b.root().join("volumes/tv/copyup.partial").exists());
    assert_eq!(
        b.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "c2 created\n"
    );
    // What a user writes there meanwhile is kept: starting the container
    // again resumes the copy, filling in what is missing.
    std::fs::write(data.join("user-file"), "mine\n").unwrap();
    // (n + 1: the whole image directory, the user's file, no temporary
    // file of the killed copy; the tmpfs goes when the container exits.)
    assert_eq!(b.ok(&["start", "-a", "c2"]).trim(), (n + 1).to_string());
    assert!(!b.root().join("volumes/tv/copyup.partial").exists());
    assert_eq!(
        b.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]),
        "c2 exited\n"
    );
    b.ok(&["rm", "c2"]);
    b.ok(&["volume", "rm", "tv"]);
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new());
}

/// A volume `name` holding a copy of busybox's /bin, a file `f` and a
/// symlink and directory with `trusted.*` xattrs (root may set those on
/// symlinks; `user.*` is refused there).
fn filled_volume(b: &Berth, name: &str) -> PathBuf {
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{name}:/v"),
        "busybox",
        "sh",
        "-c",
        "cp -a /bin /v/bin && echo one > /v/f && ln -s f /v/link && mkdir /v/d",
    ]);
    let data = mountpoint(b, name);
    xattr::set(data.join("link"), "trusted.berth-link", b"on-the-link").unwrap();
    xattr::set(data.join("d"), "trusted.berth-dir", b"on-the-dir").unwrap();
    data
}

fn assert_xattrs(data: &Path) {
    assert_eq!(
        xattr::get(data.join("link"), "trusted.berth-link")
            .unwrap()
            .as_deref(),
        Some(&b"on-the-link"[..]),
        "symlink xattr in {}",
        data.display()
    );
    assert_eq!(
        xattr::get(data.join("d"), "trusted.berth-dir")
            .unwrap()
            .as_deref(),
        Some(&b"on-the-dir"[..]),
        "directory xattr in {}",
        data.display()
    );
}

#[test]
fn export_killed_half_way_leaves_no_file_and_the_old_archive_whole() {
    berth_testutil::require_root!();
    let b = berth("volcrash-export");
    let n = bin_entries(&b);
    let data = filled_volume(&b, "ex");
    let out_dir = b.dir.join("exports");
    std::fs::create_dir(&out_dir).unwrap();
    let file = out_dir.join("ex.tar.gz");
    let file_s = file.to_str().unwrap();
    b.ok(&["volume", "export", "ex", file_s]);
    let first = std::fs::read(&file).unwrap();

    std::fs::write(data.join("f"), "two\n").unwrap();
    crash(&b, "volume-export", 50, &["volume", "export", "ex", file_s]);
    // The archive from before, whole; nothing else beside it.
    assert_eq!(std::fs::read(&file).unwrap(), first);
    assert_eq!(count(&out_dir), 1);
    let fresh = out_dir.join("fresh.tar.gz");
    crash(
        &b,
        "volume-export",
        50,
        &["volume", "export", "ex", fresh.to_str().unwrap()],
    );
    assert!(!fresh.exists());
    assert_eq!(count(&out_dir), 1);
    // The volume is untouched and the export runs again to the end.
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "two\n");
    b.ok(&["volume", "export", "ex", file_s]);
    b.ok(&["volume", "import", file_s, "ex2"]);
    let copy = mountpoint(&b, "ex2");
    assert_eq!(std::fs::read_to_string(copy.join("f")).unwrap(), "two\n");
    assert_eq!(count(&copy.join("bin")), n);
    assert_eq!(
        std::fs::read_link(copy.join("link")).unwrap(),
        Path::new("f")
    );
    assert_xattrs(&copy);
}

#[test]
fn import_killed_half_way_makes_no_volume_and_keeps_the_old_one() {
    berth_testutil::require_root!();
    let b = berth("volcrash-import");
    let n = bin_entries(&b);
    filled_volume(&b, "src");
    let file = b.dir.join("src.tar.gz");
    let file_s = file.to_str().unwrap();
    b.ok(&["volume", "export", "src", file_s]);

    // A new volume: none, under any name, until the import is whole.
    crash(&b, "volume-import", 50, &["volume", "import", file_s, "im"]);
    assert_eq!(b.ok(&["volume", "ls", "-q"]), "src\n");
    assert!(!b.root().join("volumes/im").exists());
    let staging = b.root().join("volumes/.staging");
    assert!(count(&staging) > 0, "the killed import's staging dir");
    b.fails(&["volume", "inspect", "im"], 1);

    // Replacing a volume's files: the old files stay whole.
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "old:/v",
        "busybox",
        "sh",
        "-c",
        "echo mine > /v/mine",
    ]);
    crash(
        &b,
        "volume-import",
        50,
        &["volume", "import", "--force", file_s, "old"],
    );
    let old = mountpoint(&b, "old");
    assert_eq!(count(&old), 1);
    assert_eq!(std::fs::read_to_string(old.join("mine")).unwrap(), "mine\n");

    // Re-run: the whole import; the leftovers are gone.
    assert_eq!(b.ok(&["volume", "import", file_s, "im"]), "im\n");
    let im = mountpoint(&b, "im");
    assert_eq!(count(&im.join("bin")), n);
    assert_eq!(std::fs::read_to_string(im.join("f")).unwrap(), "one\n");
    assert_xattrs(&im);
    assert_eq!(count(&staging), 0);
    b.ok(&["volume", "import", "--force", file_s, "old"]);
    assert!(!old.join("mine").exists());
    assert_eq!(count(&old.join("bin")), n);

    // `volume prune` collects a killed import's leftovers too.
    crash(
        &b,
        "volume-import",
        50,
        &["volume", "import", file_s, "im3"],
    );
    assert!(count(&staging) > 0);
    b.ok(&["volume", "prune", "-f"]);
    assert_eq!(count(&staging), 0);
    let mut names: Vec<String> = b
        .ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    assert_eq!(names, ["im", "old", "src"]);
}

#[test]
fn snapshot_create_and_restore_killed_half_way_change_nothing() {
    berth_testutil::require_root!();
    let b = berth("volcrash-snap");
    let n = bin_entries(&b);
    let data = filled_volume(&b, "sv");

    crash(
        &b,
        "volume-snapshot-create",
        50,
        &["volume", "snapshot", "create", "sv", "s1"],
    );
    assert_eq!(b.ok(&["volume", "snapshot", "ls", "-q", "sv"]), "");
    assert_eq!(b.ok(&["volume", "snapshot", "create", "sv", "s1"]), "s1\n");
    assert_eq!(b.ok(&["volume", "snapshot", "ls", "-q", "sv"]), "s1\n");
    let snaps = b.root().join("volumes/sv/snapshots");
    assert_eq!(count(&snaps), 1, "the killed snapshot's copy is gone");

    // Changed since the snapshot.
    std::fs::write(data.join("f"), "two\n").unwrap();
    std::fs::remove_dir_all(data.join("bin")).unwrap();
    crash(
        &b,
        "volume-snapshot-restore",
        50,
        &["volume", "snapshot", "restore", "sv", "s1"],
    );
    // Not half-restored: exactly as before the restore.
    let data = mountpoint(&b, "sv");
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "two\n");
    assert!(!data.join("bin").exists());
    assert_eq!(
        b.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "sv:/v",
            "busybox",
            "cat",
            "/v/f"
        ]),
        "two\n"
    );
    // `run` left no user behind that would make the restore "in use".
    b.ok(&["volume", "snapshot", "restore", "sv", "s1"]);
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "one\n");
    assert_eq!(count(&data.join("bin")), n);
    assert_xattrs(&data);
    assert!(!b.root().join("volumes/sv/_restore").exists());
}

#[test]
fn restore_after_a_killed_start_is_not_refused_as_in_use() {
    berth_testutil::require_root!();
    let b = berth("volcrash-users");
    b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "uv:/v",
        "busybox",
        "sh",
        "-c",
        "echo one > /v/f",
    ]);
    b.ok(&["volume", "snapshot", "create", "uv", "s1"]);
    // Killed while copying up another mount: `uv` was already prepared
    // and lists the container as a user.
    crash(
        &b,
        "volume-copy-up",
        20,
        &[
            "run",
            "--name",
            "killed",
            "--network",
            "none",
            "-v",
            "uv:/a",
            "-v",
            "other:/bin",
            "busybox",
            "true",
        ],
    );
    let users = b.dir.join("run/volumes/uv/users");
    assert_eq!(count(&users), 1, "the killed run holds uv");
    b.ok(&["volume", "snapshot", "restore", "uv", "s1"]);
    assert_eq!(count(&users), 0, "the stale user is dropped");
    b.ok(&["rm", "-f", "killed"]);
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new());
}

#[test]
fn ps_prints_mounts_and_local_volumes() {
    berth_testutil::require_root!();
    let b = berth("volcrash-ps");
    let bind = b.dir.join("bind-source-dir");
    std::fs::create_dir(&bind).unwrap();
    let bind_s = bind.to_str().unwrap();
    b.ok(&[
        "create",
        "--name",
        "pm",
        "--network",
        "none",
        "-v",
        "pmvol:/data",
        "-v",
        &format!("{bind_s}:/b"),
        "-v",
        "/anon",
        "busybox",
        "true",
    ]);
    b.ok(&[
        "create",
        "--name",
        "plain",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let anon = b
        .ok(&[
            "volume",
            "ls",
            "-q",
            "--filter",
            "label=com.docker.volume.anonymous",
        ])
        .trim()
        .to_string();
    assert_eq!(anon.len(), 64);
    let cut = |s: &str| {
        if s.chars().count() <= 15 {
            s.to_string()
        } else {
            format!("{}…", s.chars().take(14).collect::<String>())
        }
    };
    let out = b.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=pm",
        "--format",
        "{{.Mounts}}|{{.LocalVolumes}}",
    ]);
    let (mounts, local) = out.trim_end().split_once('|').unwrap();
    let mut got: Vec<&str> = mounts.split(',').collect();
    got.sort();
    let mut want = vec![cut(&anon), cut(bind_s), "pmvol".to_string()];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(local, "2");
    let out = b.ok(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        "name=pm",
        "--format",
        "{{.Mounts}}",
    ]);
    let mut got: Vec<&str> = out.trim_end().split(',').collect();
    got.sort();
    let mut want = vec![anon.as_str(), bind_s, "pmvol"];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        b.ok(&[
            "ps",
            "-a",
            "--filter",
            "name=plain",
            "--format",
            "[{{.Mounts}}] {{.LocalVolumes}}"
        ]),
        "[] 0\n"
    );
    let table = b.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=pm",
        "--format",
        "table {{.Names}}\t{{.LocalVolumes}}",
    ]);
    assert!(table.starts_with("NAMES"), "{table}");
    assert!(table.contains("LOCAL VOLUMES"), "{table}");
}
