//! Content store: verification, mismatch, concurrent writers, gc.

mod common;

use std::collections::HashSet;
use std::fs;
use std::io::Write;

use berth_image::{ContentStore, Digest, ErrorKind, ImageError};
use berth_testutil::TempDir;

fn ingest_files(root: &std::path::Path) -> usize {
    fs::read_dir(root.join("content/ingest")).unwrap().count()
}

#[test]
fn write_read_verify_and_mismatch() {
    let tmp = TempDir::new("content").unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let d = store.write_bytes(b"hello").unwrap();
    assert_eq!(d, Digest::of_bytes(b"hello"));
    assert!(store.contains(&d));
    assert_eq!(store.read(&d).unwrap(), b"hello");
    assert_eq!(store.size(&d).unwrap(), 5);
    assert_eq!(
        tmp.path().join("content/sha256").join(d.hex()),
        store.blob_path(&d)
    );
    store.verify(&d).unwrap();

    let wrong = Digest::of_bytes(b"something else");
    let err = store.write(&b"hello world"[..], Some(&wrong)).unwrap_err();
    match &err {
        ImageError::DigestMismatch { expected, actual } => {
            assert_eq!(*expected, wrong);
            assert_eq!(*actual, Digest::of_bytes(b"hello world"));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(err.kind(), ErrorKind::Corrupt);
    assert!(!store.contains(&Digest::of_bytes(b"hello world")));
    assert!(!store.contains(&wrong));
    assert_eq!(
        ingest_files(tmp.path()),
        0,
        "a failed write leaves no ingest file"
    );
    assert_eq!(store.list().unwrap(), vec![d]);

    // A blob corrupted on disk is detected on read.
    fs::write(store.blob_path(&d), b"HELLO").unwrap();
    assert!(matches!(
        store.read(&d),
        Err(ImageError::DigestMismatch { .. })
    ));
    assert!(store.verify(&d).is_err());

    let missing = Digest::of_bytes(b"missing");
    let err = store.read(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    store.remove(&d).unwrap();
    assert_eq!(store.remove(&d).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn incremental_writer() {
    let tmp = TempDir::new("content-writer").unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let mut w = store.writer().unwrap();
    w.write_all(b"part one, ").unwrap();
    w.write_all(b"part two").unwrap();
    let (d, n) = w
        .commit(Some(&Digest::of_bytes(b"part one, part two")))
        .unwrap();
    assert_eq!(n, 18);
    assert_eq!(store.read(&d).unwrap(), b"part one, part two");
    // Dropping an unfinished writer removes its ingest file.
    let mut w = store.writer().unwrap();
    w.write_all(b"abandoned").unwrap();
    drop(w);
    assert_eq!(ingest_files(tmp.path()), 0);
}

#[test]
fn concurrent_same_blob_threads() {
    let tmp = TempDir::new("content-threads").unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let blob: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let expected = Digest::of_bytes(&blob);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let blob = &blob;
                s.spawn(move || {
                    // Half the writers announce the digest, half do not.
                    let exp = if i % 2 == 0 { Some(&expected) } else { None };
                    store.write(&blob[..], exp).unwrap()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), (expected, blob.len() as u64));
        }
    });
    assert_eq!(store.list().unwrap(), vec![expected]);
    assert_eq!(store.read(&expected).unwrap(), blob);
    assert_eq!(ingest_files(tmp.path()), 0);
}

#[test]
fn concurrent_same_blob_processes() {
    let blob: Vec<u8> = (0..2_000_000u32).map(|i| (i * 13 % 241) as u8).collect();
    if let Some(root) = common::child_role() {
        let store = ContentStore::open(std::path::Path::new(&root)).unwrap();
        let (d, _) = store.write(&blob[..], None).unwrap();
        println!("RESULT {d}");
        std::process::exit(0);
    }
    let tmp = TempDir::new("content-procs").unwrap();
    let root = tmp.path().to_str().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            common::spawn_self("concurrent_same_blob_processes", root)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let expected = Digest::of_bytes(&blob);
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("RESULT {expected}")));
    }
    let store = ContentStore::open(tmp.path()).unwrap();
    assert_eq!(store.list().unwrap(), vec![expected]);
    store.verify(&expected).unwrap();
    assert_eq!(ingest_files(tmp.path()), 0);
}

#[test]
fn gc_sweeps_unmarked_blobs_and_stale_ingest() {
    let tmp = TempDir::new("content-gc").unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    let keep = store.write_bytes(b"keep me").unwrap();
    let drop1 = store.write_bytes(b"drop one").unwrap();
    let drop2 = store.write_bytes(b"drop two!").unwrap();
    // A stale ingest file (writer killed) and a live one (writer still running).
    fs::write(tmp.path().join("content/ingest/dead-writer"), b"partial").unwrap();
    let mut live = store.writer().unwrap();
    live.write_all(b"in progress").unwrap();

    let stats = store.gc(&HashSet::from([keep])).unwrap();
    assert_eq!(stats.blobs_removed, 2);
    assert_eq!(
        stats.bytes_freed,
        ("drop one".len() + "drop two!".len()) as u64
    );
    assert_eq!(stats.ingest_removed, 1);
    assert_eq!(store.list().unwrap(), vec![keep]);
    assert!(!store.contains(&drop1) && !store.contains(&drop2));
    // The live writer was spared and can still finish.
    let (d, _) = live.commit(None).unwrap();
    assert_eq!(store.read(&d).unwrap(), b"in progress");
}
