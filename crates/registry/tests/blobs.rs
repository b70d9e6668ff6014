//! Blobs and uploads through the HTTP API: monolithic and chunked uploads,
//! ranges, digests, mounts, concurrency and sessions that survive a restart.

mod common;

use common::*;

#[test]
fn base_endpoint_and_unknown_things() {
    let reg = Reg::start("reg-base");
    let r = reg.get("/v2/");
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "Docker-Distribution-API-Version"),
        "registry/2.0"
    );
    assert_eq!(body_string(r), "{}");
    let unknown = digest(b"nothing");
    let r = reg.get(&format!("/v2/a/b/blobs/{unknown}"));
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r), "BLOB_UNKNOWN");
    let r = reg.get("/v2/Bad_Name/manifests/latest");
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "NAME_INVALID");
    let r = reg.get("/v2/x/blobs/sha256:abc");
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "DIGEST_INVALID");
    let r = reg.get("/v2/x/tags/list");
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r), "NAME_UNKNOWN");
    let r = reg.get("/v2/x/blobs/uploads/0123456789abcdef0123456789abcdef");
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r), "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn monolithic_upload_then_head_get_range_delete() {
    let reg = Reg::start("reg-mono");
    let data = noise(100_000, 1);
    let d = digest(&data);
    let r = reg.post(
        &format!(
            "/v2/library/busybox/blobs/uploads/?digest={}",
            d.replace(':', "%3A")
        ),
        &data,
    );
    assert_eq!(r.status(), 201);
    assert_eq!(
        header(&r, "Location"),
        format!("/v2/library/busybox/blobs/{d}")
    );
    assert_eq!(header(&r, "Docker-Content-Digest"), d);

    let path = format!("/v2/library/busybox/blobs/{d}");
    let r = reg.head(&path);
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "Content-Length"), "100000");
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    assert_eq!(body_bytes(reg.get(&path)), data);

    let ranged = |spec: &str| {
        reg.agent
            .get(reg.url(&path))
            .header("Range", spec)
            .call()
            .unwrap()
    };
    let r = ranged("bytes=1000-1999");
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "Content-Range"), "bytes 1000-1999/100000");
    assert_eq!(body_bytes(r), &data[1000..2000]);
    let r = ranged("bytes=99990-");
    assert_eq!(r.status(), 206);
    assert_eq!(body_bytes(r), &data[99990..]);
    let r = ranged("bytes=-7");
    assert_eq!(body_bytes(r), &data[99993..]);
    let r = ranged("bytes=100000-");
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "Content-Range"), "bytes */100000");

    // The blob belongs to the repository it was pushed to only.
    assert_eq!(reg.head(&format!("/v2/other/blobs/{d}")).status(), 404);

    let r = reg.delete(&path);
    assert_eq!(r.status(), 202);
    assert_eq!(reg.head(&path).status(), 404);
    assert_eq!(reg.delete(&path).status(), 404);
}

#[test]
fn chunked_upload_with_status_and_out_of_order_chunk() {
    let reg = Reg::start("reg-chunks");
    let data = noise(3 * 65536 + 123, 2);
    let (a, rest) = data.split_at(65536);
    let (b, c) = rest.split_at(2 * 65536);
    let r = reg.post("/v2/a/b/c/blobs/uploads/", b"");
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "Range"), "0-0");
    let loc = header(&r, "Location");
    let uuid = header(&r, "Docker-Upload-UUID");
    assert_eq!(loc, format!("/v2/a/b/c/blobs/uploads/{uuid}"));

    let patch = |chunk: &[u8], range: Option<String>| {
        let mut req = reg
            .agent
            .patch(reg.url(&loc))
            .header("Content-Type", "application/octet-stream");
        if let Some(range) = range {
            req = req.header("Content-Range", &range);
        }
        req.send(chunk).unwrap()
    };
    let r = patch(a, Some("0-65535".into()));
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "Range"), "0-65535");

    // A chunk that does not start where the upload ends.
    let r = patch(b, Some(format!("70000-{}", 70000 + b.len() - 1)));
    assert_eq!(r.status(), 416);
    assert_eq!(header(&r, "Range"), "0-65535");
    assert_eq!(error_code(r), "RANGE_INVALID");

    // Streamed, without Content-Range (what docker and containerd send).
    let r = patch(b, None);
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "Range"), format!("0-{}", 3 * 65536 - 1));

    let r = reg.get(&loc);
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "Range"), format!("0-{}", 3 * 65536 - 1));

    let d = digest(&data);
    let r = reg
        .agent
        .put(reg.url(&format!("{loc}?digest={d}")))
        .send(c)
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "Docker-Content-Digest"), d);
    assert_eq!(body_bytes(reg.get(&format!("/v2/a/b/c/blobs/{d}"))), data);
    // The session is gone once completed.
    assert_eq!(reg.get(&loc).status(), 404);
    assert!(std::fs::read_dir(reg.dir.join("root/_uploads"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn wrong_digest_is_refused_and_stores_nothing() {
    let reg = Reg::start("reg-digest");
    let data = noise(5000, 3);
    let wrong = digest(b"something else");
    let r = reg.post(&format!("/v2/x/blobs/uploads/?digest={wrong}"), &data);
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "DIGEST_INVALID");
    assert_eq!(reg.head(&format!("/v2/x/blobs/{wrong}")).status(), 404);
    assert_eq!(
        reg.head(&format!("/v2/x/blobs/{}", digest(&data))).status(),
        404
    );

    let r = reg.post("/v2/x/blobs/uploads/", b"");
    let loc = header(&r, "Location");
    assert_eq!(
        reg.agent
            .patch(reg.url(&loc))
            .send(&data[..])
            .unwrap()
            .status(),
        202
    );
    let r = reg
        .agent
        .put(reg.url(&format!("{loc}?digest={wrong}")))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "DIGEST_INVALID");
    let r = reg.agent.put(reg.url(&loc)).send_empty().unwrap();
    assert_eq!(r.status(), 404, "the session ended with the mismatch");
    let blobs = reg.dir.join("root/blobs/sha256");
    assert!(
        std::fs::read_dir(blobs).unwrap().next().is_none(),
        "no blob stored"
    );
}

#[test]
fn cancelled_upload_is_gone() {
    let reg = Reg::start("reg-cancel");
    let loc = header(&reg.post("/v2/x/blobs/uploads/", b""), "Location");
    assert_eq!(
        reg.agent
            .patch(reg.url(&loc))
            .send(&b"abc"[..])
            .unwrap()
            .status(),
        202
    );
    assert_eq!(reg.delete(&loc).status(), 204);
    assert_eq!(reg.get(&loc).status(), 404);
    assert_eq!(reg.delete(&loc).status(), 404);
    // A session is bound to the repository it was started in.
    let loc = header(&reg.post("/v2/x/blobs/uploads/", b""), "Location");
    let other = loc.replace("/v2/x/", "/v2/y/");
    assert_eq!(reg.get(&other).status(), 404);
}

#[test]
fn cross_repository_mount() {
    let reg = Reg::start("reg-mount");
    let data = noise(10_000, 4);
    let d = reg.push_blob("src/repo", &data);
    let r = reg.post(
        &format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo"),
        b"",
    );
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "Location"), format!("/v2/dst/blobs/{d}"));
    assert_eq!(body_bytes(reg.get(&format!("/v2/dst/blobs/{d}"))), data);

    // Not in the source repository: the client gets an upload session instead.
    let missing = digest(b"not here");
    let r = reg.post(
        &format!("/v2/dst/blobs/uploads/?mount={missing}&from=src/repo"),
        b"",
    );
    assert_eq!(r.status(), 202);
    assert!(header(&r, "Location").starts_with("/v2/dst/blobs/uploads/"));
    let r = reg.post(
        &format!("/v2/dst2/blobs/uploads/?mount={d}&from=other"),
        b"",
    );
    assert_eq!(r.status(), 202);
}

#[test]
fn concurrent_pushes_of_one_blob() {
    let reg = Reg::start("reg-concurrent");
    let data = noise(2 << 20, 5);
    let d = digest(&data);
    std::thread::scope(|s| {
        for i in 0..6 {
            let (reg, data, d) = (&reg, &data, &d);
            s.spawn(move || {
                let repo = format!("r{}", i % 2);
                let loc = header(
                    &reg.post(&format!("/v2/{repo}/blobs/uploads/"), b""),
                    "Location",
                );
                let (a, b) = data.split_at(1 << 20);
                assert_eq!(
                    reg.agent.patch(reg.url(&loc)).send(a).unwrap().status(),
                    202
                );
                let r = reg
                    .agent
                    .put(reg.url(&format!("{loc}?digest={d}")))
                    .send(b)
                    .unwrap();
                assert_eq!(r.status(), 201);
            });
        }
    });
    for repo in ["r0", "r1"] {
        assert_eq!(body_bytes(reg.get(&format!("/v2/{repo}/blobs/{d}"))), data);
    }
}

#[test]
fn session_survives_a_restart() {
    let mut reg = Reg::start("reg-restart");
    let data = noise(300_000, 6);
    let loc = header(&reg.post("/v2/x/blobs/uploads/", b""), "Location");
    assert_eq!(
        reg.agent
            .patch(reg.url(&loc))
            .send(&data[..100_000])
            .unwrap()
            .status(),
        202
    );
    reg.restart();
    let r = reg.get(&loc);
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "Range"), "0-99999");
    let r = reg
        .agent
        .patch(reg.url(&loc))
        .header("Content-Range", "100000-299999")
        .send(&data[100_000..])
        .unwrap();
    assert_eq!(r.status(), 202);
    let d = digest(&data);
    let r = reg
        .agent
        .put(reg.url(&format!("{loc}?digest={d}")))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(body_bytes(reg.get(&format!("/v2/x/blobs/{d}"))), data);
}

#[test]
fn large_blob_streams_through() {
    let reg = Reg::start("reg-large");
    let data = noise(24 << 20, 7);
    let d = digest(&data);
    let loc = header(&reg.post("/v2/big/blobs/uploads/", b""), "Location");
    for chunk in data.chunks(10 << 20) {
        assert_eq!(
            reg.agent.patch(reg.url(&loc)).send(chunk).unwrap().status(),
            202
        );
    }
    let r = reg
        .agent
        .put(reg.url(&format!("{loc}?digest={d}")))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 201);
    let got = body_bytes(reg.get(&format!("/v2/big/blobs/{d}")));
    assert!(got == data, "blob read back differs");
}

#[test]
fn chunk_cut_off_mid_body_keeps_what_arrived() {
    use std::io::Write;
    let reg = Reg::start("reg-cut");
    let data = noise(400_000, 8);
    let loc = header(&reg.post("/v2/x/blobs/uploads/", b""), "Location");
    {
        let addr = reg.base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "PATCH {loc} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            data.len()
        )
        .unwrap();
        s.write_all(&data[..150_000]).unwrap();
        s.flush().unwrap();
        // The client dies: the connection closes with the body half sent.
    }
    // The server sees the cut and records how far the upload got.
    let mut got = 0;
    for _ in 0..100 {
        let r = reg.get(&loc);
        assert_eq!(r.status(), 204);
        got = header(&r, "Range")
            .split('-')
            .nth(1)
            .unwrap()
            .parse::<usize>()
            .unwrap()
            + 1;
        if got == 150_000 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(got, 150_000, "the bytes that arrived are kept");
    let r = reg
        .agent
        .patch(reg.url(&loc))
        .header("Content-Range", &format!("{got}-{}", data.len() - 1))
        .send(&data[got..])
        .unwrap();
    assert_eq!(r.status(), 202);
    let d = digest(&data);
    let r = reg
        .agent
        .put(reg.url(&format!("{loc}?digest={d}")))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(body_bytes(reg.get(&format!("/v2/x/blobs/{d}"))), data);
}
