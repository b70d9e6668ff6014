//! Manifests, tags and the catalog through the HTTP API.

mod common;

use common::*;

#[test]
fn manifest_by_tag_and_digest_head_and_delete() {
    let reg = Reg::start("reg-manifest");
    let (m, d) = reg.push_image("library/busybox", "1.36", &[b"layer one", b"layer two"]);
    for reference in ["1.36", d.as_str()] {
        let path = format!("/v2/library/busybox/manifests/{reference}");
        let r = reg.head(&path);
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "Content-Type"), OCI_MANIFEST);
        assert_eq!(header(&r, "Docker-Content-Digest"), d);
        assert_eq!(header(&r, "Content-Length"), m.len().to_string());
        let r = reg.get(&path);
        assert_eq!(r.status(), 200);
        assert_eq!(body_bytes(r), m);
    }
    // The same manifest pushed again by digest, with Docker's media type kept as sent.
    let r = reg.put_manifest(
        "other",
        "v1",
        &m,
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(r.status(), 400, "blobs are per repository");
    assert_eq!(error_code(r), "MANIFEST_BLOB_UNKNOWN");

    let r = reg.delete("/v2/library/busybox/manifests/1.36");
    assert_eq!(r.status(), 202);
    assert_eq!(reg.get("/v2/library/busybox/manifests/1.36").status(), 404);
    assert_eq!(
        reg.get(&format!("/v2/library/busybox/manifests/{d}"))
            .status(),
        200
    );
    let r = reg.put_manifest("library/busybox", "again", &m, OCI_MANIFEST);
    assert_eq!(r.status(), 201);
    let r = reg.delete(&format!("/v2/library/busybox/manifests/{d}"));
    assert_eq!(r.status(), 202);
    let r = reg.get(&format!("/v2/library/busybox/manifests/{d}"));
    assert_eq!(r.status(), 404);
    assert_eq!(error_code(r), "MANIFEST_UNKNOWN");
    // Deleting the manifest removed the tags pointing at it.
    assert_eq!(reg.get("/v2/library/busybox/manifests/again").status(), 404);
}

#[test]
fn content_type_is_kept_and_checked() {
    let reg = Reg::start("reg-ctype");
    let cd = reg.push_blob("r", b"{}");
    let ld = reg.push_blob("r", b"layer");
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": docker,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": cd, "size": 2},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": ld, "size": 5}],
    }))
    .unwrap();
    let r = reg.put_manifest("r", "d", &m, docker);
    assert_eq!(r.status(), 201);
    assert_eq!(
        header(&reg.get("/v2/r/manifests/d"), "Content-Type"),
        docker
    );
    // A Content-Type that contradicts the manifest's mediaType.
    let r = reg.put_manifest("r", "e", &m, OCI_MANIFEST);
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "MANIFEST_INVALID");
    // Not JSON, schema 1, by-digest push with the wrong digest.
    assert_eq!(
        error_code(reg.put_manifest("r", "f", b"{not json", OCI_MANIFEST)),
        "MANIFEST_INVALID"
    );
    assert_eq!(
        error_code(reg.put_manifest("r", "f", br#"{"schemaVersion":1}"#, OCI_MANIFEST)),
        "MANIFEST_INVALID"
    );
    let r = reg.put_manifest("r", &digest(b"other"), &m, docker);
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "DIGEST_INVALID");
    let r = reg.put_manifest("r", &digest(&m), &m, docker);
    assert_eq!(r.status(), 201);
    assert_eq!(
        error_code(reg.put_manifest("r", "-bad", &m, docker)),
        "TAG_INVALID"
    );
}

#[test]
fn index_needs_its_manifests() {
    let reg = Reg::start("reg-index");
    let (m, d) = reg.push_image("multi", "amd64", &[b"x"]);
    let index = |d: &str| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": m.len(),
                           "platform": {"architecture": "amd64", "os": "linux"}}],
        }))
        .unwrap()
    };
    let r = reg.put_manifest("multi", "latest", &index(&digest(b"missing")), OCI_INDEX);
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "MANIFEST_BLOB_UNKNOWN");
    let r = reg.put_manifest("multi", "latest", &index(&d), OCI_INDEX);
    assert_eq!(r.status(), 201);
    assert_eq!(
        header(&reg.get("/v2/multi/manifests/latest"), "Content-Type"),
        OCI_INDEX
    );
}

#[test]
fn oversized_manifest_is_refused() {
    let reg = Reg::start("reg-big-manifest");
    let big = vec![b' '; 5 << 20];
    let r = reg.put_manifest("r", "x", &big, OCI_MANIFEST);
    assert_eq!(r.status(), 413);
}

#[test]
fn tags_list_and_catalog_paginate() {
    let reg = Reg::start("reg-pages");
    for repo in ["a", "b/c", "d/e/f"] {
        for tag in ["t1", "t2", "t3", "t4", "t5"] {
            reg.push_image(repo, tag, &[b"same layer"]);
        }
    }
    let list = |r: Resp| -> (Vec<String>, String) {
        let link = header(&r, "Link");
        let v: serde_json::Value = serde_json::from_slice(&body_bytes(r)).unwrap();
        let items = v
            .get("tags")
            .or_else(|| v.get("repositories"))
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        (items, link)
    };
    let (repos, link) = list(reg.get("/v2/_catalog"));
    assert_eq!(repos, ["a", "b/c", "d/e/f"]);
    assert_eq!(link, "");
    let (repos, link) = list(reg.get("/v2/_catalog?n=2"));
    assert_eq!(repos, ["a", "b/c"]);
    assert_eq!(link, "</v2/_catalog?last=b/c&n=2>; rel=\"next\"");
    let (repos, link) = list(reg.get("/v2/_catalog?last=b/c&n=2"));
    assert_eq!((repos, link), (vec!["d/e/f".to_string()], String::new()));

    let (tags, _) = list(reg.get("/v2/d/e/f/tags/list"));
    assert_eq!(tags, ["t1", "t2", "t3", "t4", "t5"]);
    let mut seen = Vec::new();
    let mut next = "/v2/d/e/f/tags/list?n=2".to_string();
    loop {
        let (tags, link) = list(reg.get(&next));
        seen.extend(tags);
        if link.is_empty() {
            break;
        }
        next = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_string();
    }
    assert_eq!(seen, ["t1", "t2", "t3", "t4", "t5"]);
    let r = reg.get("/v2/a/tags/list?n=x");
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(r), "PAGINATION_NUMBER_INVALID");
}
