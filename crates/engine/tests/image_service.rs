//! The image service through the engine's API, on private state roots.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_engine::{
    Engine, EngineConfig, ErrorKind, ImageFilters, ImportOptions, ImportSource, RemoveEvent,
};
use berth_image::Digest;
use berth_testutil::TempDir;

struct Env {
    dir: TempDir,
}

impl Env {
    fn new(name: &str) -> Self {
        Self {
            dir: TempDir::new(&format!("engine-{name}-{}", std::process::id())).unwrap(),
        }
    }

    fn config(&self) -> EngineConfig {
        EngineConfig {
            root: self.dir.join("root"),
            runroot: self.dir.join("run"),
        }
    }

    fn engine(&self) -> Engine {
        Engine::open(self.config()).unwrap()
    }

    fn rootfs_tar(&self) -> PathBuf {
        let tar = self.dir.join("rootfs.tar");
        if !tar.exists() {
            let rootfs = self.dir.join("rootfs");
            berth_testutil::busybox_rootfs(&rootfs).unwrap();
            let st = Command::new("tar")
                .arg("-C")
                .arg(&rootfs)
                .arg("-cf")
                .arg(&tar)
                .arg(".")
                .status()
                .unwrap();
            assert!(st.success());
        }
        tar
    }

    fn import(&self, engine: &Engine, name: &str, message: &str) -> Digest {
        engine
            .images()
            .import(ImportOptions {
                source: ImportSource::Path(self.rootfs_tar()),
                changes: vec!["CMD [\"sh\"]".into()],
                message: Some(message.into()),
                reference: Some(name.into()),
            })
            .unwrap()
    }

    /// Records a container using `image` (the containers table is filled by
    /// container lifecycle code; here the row is written directly).
    fn add_container(&self, id: &str, image: &Digest, state: &str) {
        let db = rusqlite::Connection::open(self.dir.join("root/berth.db")).unwrap();
        db.execute(
            "INSERT INTO containers (id, name, image_id, created, state) VALUES (?1, ?2, ?3, '2024-01-01T00:00:00Z', ?4)",
            rusqlite::params![id, format!("c-{id}"), image.to_string(), state],
        )
        .unwrap();
    }
}

fn container_id(n: u8) -> String {
    format!("{:0>64}", format!("{n:x}abc"))
}

#[test]
fn rmi_respects_containers() {
    let env = Env::new("rmi-containers");
    let engine = env.engine();
    let id = env.import(&engine, "used:1", "one");
    env.add_container(&container_id(1), &id, "exited");

    let err = engine.images().remove("used:1", false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.to_string().contains("must force")
            && err.to_string().contains("is using its referenced image"),
        "{err}"
    );
    let err = engine.images().remove(&id.to_string(), false).unwrap_err();
    assert!(
        err.to_string()
            .contains("image is being used by stopped container"),
        "{err}"
    );

    // Forced: the name goes, the image stays (dangling) for its container.
    let events = engine.images().remove("used:1", true).unwrap();
    assert_eq!(events, vec![RemoveEvent::Untagged("used:1".into())]);
    let dangling = engine
        .images()
        .list(
            false,
            &ImageFilters {
                dangling: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(dangling.len(), 1);
    assert_eq!(dangling[0].id, id);
    assert_eq!(dangling[0].containers, 1);
    // Prune keeps it too.
    let report = engine.images().prune(true, &Default::default()).unwrap();
    assert!(report.events.is_empty(), "{:?}", report.events);
    let usage = engine.disk_usage().unwrap();
    assert_eq!(
        (
            usage.images.total,
            usage.images.active,
            usage.images.reclaimable
        ),
        (1, 1, 0)
    );
    assert_eq!(usage.containers.total, 1);

    // A running container: even -f refuses.
    let id2 = env.import(&engine, "running:1", "two");
    env.add_container(&container_id(2), &id2, "running");
    let err = engine.images().remove(&id2.to_string(), true).unwrap_err();
    assert!(
        err.to_string()
            .contains("(cannot be forced) - image is being used by running container"),
        "{err}"
    );
}

#[test]
fn tags_move_and_resolve() {
    let env = Env::new("tags");
    let engine = env.engine();
    let a = env.import(&engine, "app", "a");
    engine.images().tag("app", "app:stable").unwrap();
    let b = env.import(&engine, "app", "b");
    assert_ne!(a, b);
    let all = engine
        .images()
        .list(false, &ImageFilters::default())
        .unwrap();
    assert_eq!(all.len(), 2);
    let old = all.iter().find(|s| s.id == a).unwrap();
    assert_eq!(old.repo_tags, vec!["app:stable"]);
    // Every way to name an image.
    for name in [
        "app:stable",
        "docker.io/library/app:stable",
        &a.hex()[..5],
        &format!("sha256:{}", &a.hex()[..10]),
        &a.to_string(),
    ] {
        assert_eq!(
            engine.images().inspect(name).unwrap()["Id"],
            a.to_string(),
            "{name}"
        );
    }
    let err = engine.images().inspect("app:nope").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.to_string(), "No such image: app:nope");
    let err = engine.images().tag("app", "Bad/Name").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    // A moved tag left nothing dangling here: `a` still has app:stable.
    engine.images().remove("app:stable", false).unwrap();
    let all = engine
        .images()
        .list(true, &ImageFilters::default())
        .unwrap();
    assert_eq!(all.len(), 1);
}

#[test]
fn history_of_an_import() {
    let env = Env::new("history");
    let engine = env.engine();
    let id = env.import(&engine, "h:1", "imported for history");
    let h = engine.images().history("h:1").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].id, Some(id));
    assert_eq!(h[0].comment, "imported for history");
    assert!(h[0].size > 1_000_000);
    assert_eq!(h[0].tags, vec!["h:1"]);
}

fn save(engine: &Engine, names: &[&str], path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    engine
        .images()
        .save(
            &names,
            std::io::BufWriter::new(f),
            berth_engine::ArchiveFormat::DockerArchive,
        )
        .unwrap();
}

#[test]
fn concurrent_loads_in_threads_store_shared_layers_once() {
    let env = Env::new("threads");
    let src_env = Env::new("threads-src");
    let src = src_env.engine();
    src_env.import(&src, "one:1", "one");
    src_env.import(&src, "two:1", "two");
    let a = env.dir.join("a.tar");
    let b = env.dir.join("b.tar");
    save(&src, &["one:1"], &a);
    save(&src, &["two:1"], &b);

    // Both engines are opened before either loads: opening a layer store
    // sweeps unlocked staging dirs, which can race with an apply that has
    // created its staging dir but not yet locked it (see the report).
    let engines: Vec<Engine> = (0..2).map(|_| env.engine()).collect();
    let handles: Vec<_> = engines
        .into_iter()
        .zip([a, b])
        .map(|(engine, p)| std::thread::spawn(move || engine.images().load_path(&p).unwrap()))
        .collect();
    for h in handles {
        let report = h.join().unwrap();
        assert_eq!(report.images.len(), 1);
    }
    let engine = env.engine();
    assert_eq!(
        engine
            .images()
            .list(false, &ImageFilters::default())
            .unwrap()
            .len(),
        2
    );
    let layers: Vec<_> = std::fs::read_dir(env.dir.join("root/layers"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().len() == 64)
        .collect();
    assert_eq!(layers.len(), 1, "the shared layer is stored once");
    // Removing one image keeps the layer for the other; removing both frees it.
    engine.images().remove("one:1", false).unwrap();
    assert!(engine.images().inspect("two:1").is_ok());
    let events = engine.images().remove("two:1", false).unwrap();
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, RemoveEvent::Deleted(_)))
            .count()
            == 2,
        "{events:?}"
    );
}

#[test]
fn import_failure_leaves_nothing() {
    let env = Env::new("import-fail");
    let engine = env.engine();
    let tar = std::fs::read(env.rootfs_tar()).unwrap();
    let truncated = tar[..tar.len() / 2].to_vec();
    let err = engine
        .images()
        .import(ImportOptions {
            source: ImportSource::Reader(Box::new(std::io::Cursor::new(truncated))),
            changes: vec![],
            message: None,
            reference: Some("broken:1".into()),
        })
        .unwrap_err();
    assert!(!err.to_string().is_empty());
    assert!(engine
        .images()
        .list(true, &ImageFilters::default())
        .unwrap()
        .is_empty());
    let blobs = std::fs::read_dir(env.dir.join("root/content/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
}

/// One layer tar: `(path, content)` regular files, `(path, None)` entries
/// that hardlink `path` to the target named in `links`.
fn layer_tar(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, path, *content).unwrap();
    }
    for (path, target) in links {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, path, target).unwrap();
    }
    b.into_inner().unwrap()
}

/// A docker-archive of one image with these layers (base first).
fn docker_archive(path: &Path, tag: &str, layers: &[Vec<u8>]) {
    let diff_ids: Vec<Digest> = layers.iter().map(|l| Digest::of_bytes(l)).collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    })
    .to_string();
    let config_digest = Digest::of_bytes(config.as_bytes());
    let manifest = serde_json::json!([{
        "Config": format!("{}.json", config_digest.hex()),
        "RepoTags": [tag],
        "Layers": diff_ids.iter().map(|d| format!("{}/layer.tar", d.hex())).collect::<Vec<_>>(),
    }])
    .to_string();
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut add = |name: String, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    for (d, l) in diff_ids.iter().zip(layers) {
        add(format!("{}/layer.tar", d.hex()), l);
    }
    add(format!("{}.json", config_digest.hex()), config.as_bytes());
    add("manifest.json".into(), manifest.as_bytes());
    b.into_inner().unwrap();
}

/// Layers are unpacked side by side; one that hardlinks to a file of a lower
/// layer cannot be until the layers below are stored, and is applied again
/// in order (copying the file up), with whiteouts of lower files in place.
#[test]
fn load_applies_layers_side_by_side_and_links_to_lower_files() {
    let env = Env::new("side-by-side");
    let engine = env.engine();
    let base = layer_tar(&[("a/file", b"one"), ("b/keep", b"k")], &[]);
    let middle = layer_tar(
        &[("b/.wh.keep", b""), ("m/x", b"x")],
        &[("c/link", "a/file")],
    );
    let top = layer_tar(&[("d/top", b"top")], &[]);
    let diff_ids: Vec<Digest> = [&base, &middle, &top]
        .iter()
        .map(|l| Digest::of_bytes(l))
        .collect();
    let archive = env.dir.join("layers.tar");
    docker_archive(&archive, "stack:1", &[base, middle, top]);
    let report = engine.images().load_path(&archive).unwrap();
    assert_eq!(report.images.len(), 1);
    let layers = env.dir.join("root/layers");
    let chain = |n: usize| berth_image::chain_id(&diff_ids[..n]);
    let diff = |n: usize| layers.join(chain(n).hex()).join("diff");
    assert_eq!(std::fs::read(diff(1).join("a/file")).unwrap(), b"one");
    assert_eq!(std::fs::read(diff(2).join("c/link")).unwrap(), b"one");
    let wh = std::fs::symlink_metadata(diff(2).join("b/keep")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(wh.file_type().is_char_device(), "whiteout: {wh:?}");
    assert_eq!(std::fs::read(diff(3).join("d/top")).unwrap(), b"top");
    // Every stored layer names its parent, and the chain is whole.
    for n in 2..=3 {
        let parent = layers.join(chain(n).hex()).join("parent");
        assert_eq!(
            std::fs::read_to_string(parent).unwrap(),
            chain(n - 1).to_string()
        );
    }
}

/// A hardlink to a file that exists in no layer fails the load (after the
/// retry in order) and leaves no layers behind.
#[test]
fn load_with_a_dangling_hardlink_fails_and_leaves_nothing() {
    let env = Env::new("dangling-link");
    let engine = env.engine();
    let base = layer_tar(&[("a/file", b"one")], &[]);
    let bad = layer_tar(&[], &[("c/link", "no/such")]);
    let top = layer_tar(&[("d/top", b"top")], &[]);
    let archive = env.dir.join("bad.tar");
    docker_archive(&archive, "bad:1", &[base, bad, top]);
    let err = engine.images().load_path(&archive).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(engine
        .images()
        .list(true, &ImageFilters::default())
        .unwrap()
        .is_empty());
    let left: Vec<_> = std::fs::read_dir(env.dir.join("root/layers"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().len() == 64)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
