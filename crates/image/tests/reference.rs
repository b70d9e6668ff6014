//! Reference normalisation, following Docker's (distribution/reference) cases.

use berth_image::{Reference, ReferenceError};

const HEX: &str = "2bd3b1c9ee8e3b1a0a32e5b6c1eec5e78b8d9d1b38b3e2b6d6f5b0e4b2c3d4e5";

/// input, full normalised, familiar, repository, familiar repository, tag
type Case = (
    String,
    String,
    String,
    &'static str,
    &'static str,
    Option<&'static str>,
);

#[test]
fn normalises_like_docker() {
    let d = format!("sha256:{HEX}");
    // input, full normalised, familiar, repository, familiar repository, tag
    let cases: Vec<Case> = vec![
        (
            "busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
            "docker.io/library/busybox",
            "busybox",
            Some("latest"),
        ),
        (
            "busybox:1.36".into(),
            "docker.io/library/busybox:1.36".into(),
            "busybox:1.36".into(),
            "docker.io/library/busybox",
            "busybox",
            Some("1.36"),
        ),
        (
            "library/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
            "docker.io/library/busybox",
            "busybox",
            Some("latest"),
        ),
        (
            "docker.io/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
            "docker.io/library/busybox",
            "busybox",
            Some("latest"),
        ),
        (
            "index.docker.io/busybox".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
            "docker.io/library/busybox",
            "busybox",
            Some("latest"),
        ),
        (
            "docker.io/library/busybox:latest".into(),
            "docker.io/library/busybox:latest".into(),
            "busybox:latest".into(),
            "docker.io/library/busybox",
            "busybox",
            Some("latest"),
        ),
        (
            "user/repo".into(),
            "docker.io/user/repo:latest".into(),
            "user/repo:latest".into(),
            "docker.io/user/repo",
            "user/repo",
            Some("latest"),
        ),
        (
            "docker.io/library/a/b".into(),
            "docker.io/library/a/b:latest".into(),
            "library/a/b:latest".into(),
            "docker.io/library/a/b",
            "library/a/b",
            Some("latest"),
        ),
        (
            "localhost/foo".into(),
            "localhost/foo:latest".into(),
            "localhost/foo:latest".into(),
            "localhost/foo",
            "localhost/foo",
            Some("latest"),
        ),
        (
            "localhost:5000/a/b:t".into(),
            "localhost:5000/a/b:t".into(),
            "localhost:5000/a/b:t".into(),
            "localhost:5000/a/b",
            "localhost:5000/a/b",
            Some("t"),
        ),
        (
            "example.com/a/b/c:v1.0-rc_1".into(),
            "example.com/a/b/c:v1.0-rc_1".into(),
            "example.com/a/b/c:v1.0-rc_1".into(),
            "example.com/a/b/c",
            "example.com/a/b/c",
            Some("v1.0-rc_1"),
        ),
        (
            "Foo.com/bar".into(),
            "Foo.com/bar:latest".into(),
            "Foo.com/bar:latest".into(),
            "Foo.com/bar",
            "Foo.com/bar",
            Some("latest"),
        ),
        (
            "[::1]:5000/img:x".into(),
            "[::1]:5000/img:x".into(),
            "[::1]:5000/img:x".into(),
            "[::1]:5000/img",
            "[::1]:5000/img",
            Some("x"),
        ),
        (
            "a__b/c-d.e---f".into(),
            "docker.io/a__b/c-d.e---f:latest".into(),
            "a__b/c-d.e---f:latest".into(),
            "docker.io/a__b/c-d.e---f",
            "a__b/c-d.e---f",
            Some("latest"),
        ),
        (
            format!("busybox@{d}"),
            format!("docker.io/library/busybox@{d}"),
            format!("busybox@{d}"),
            "docker.io/library/busybox",
            "busybox",
            None,
        ),
        (
            format!("busybox:1@{d}"),
            format!("docker.io/library/busybox:1@{d}"),
            format!("busybox:1@{d}"),
            "docker.io/library/busybox",
            "busybox",
            Some("1"),
        ),
        (
            format!("localhost:5000/x@{d}"),
            format!("localhost:5000/x@{d}"),
            format!("localhost:5000/x@{d}"),
            "localhost:5000/x",
            "localhost:5000/x",
            None,
        ),
    ];
    for (input, full, familiar, repo, frepo, tag) in cases {
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.to_string(), full, "{input}");
        assert_eq!(r.familiar(), familiar, "{input}");
        assert_eq!(r.repository(), repo, "{input}");
        assert_eq!(r.familiar_repository(), frepo, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        // Parsing the normalised form gives the same reference back.
        assert_eq!(Reference::parse(&full).unwrap(), r, "{full}");
        assert_eq!(Reference::parse(&familiar).unwrap(), r, "{familiar}");
    }
    let r = Reference::parse(&format!("busybox@sha256:{HEX}")).unwrap();
    assert_eq!(r.digest().unwrap().hex(), HEX);
    assert_eq!(r.domain(), "docker.io");
    assert_eq!(r.path(), "library/busybox");
}

#[test]
fn rejects_invalid_references_clearly() {
    let err = Reference::parse("Busybox").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid reference format: repository name (library/Busybox) must be lowercase"
    );
    let err = Reference::parse("user/Repo:tag").unwrap_err();
    assert!(matches!(err, ReferenceError::Uppercase { .. }), "{err}");
    let err = Reference::parse(HEX).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot specify 64-byte hexadecimal strings"),
        "{err}"
    );
    for bad in [
        "",
        ":tag",
        "busybox:",
        "busybox:-tag",
        "busybox:tag with space",
        "-busybox",
        "busybox-",
        "a:b:c",
        "bus..ybox",
        "foo_bar.com:8080/x",
        "localhost:port/x",
        "busybox@sha256:abc",
        "busybox@md5:0123",
        "a//b",
        "/busybox",
    ] {
        let err = Reference::parse(bad).expect_err(bad);
        assert!(
            err.to_string().starts_with("invalid reference format"),
            "{bad}: {err}"
        );
        assert!(
            err.to_string().contains(bad)
                || bad.is_empty()
                || matches!(err, ReferenceError::Uppercase { .. }),
            "{bad}: error does not name the input: {err}"
        );
    }
    let long = format!("example.com/{}", "a".repeat(250));
    assert!(matches!(
        Reference::parse(&long),
        Err(ReferenceError::NameTooLong { .. })
    ));
    let long_tag = format!("busybox:{}", "t".repeat(129));
    assert!(matches!(
        Reference::parse(&long_tag),
        Err(ReferenceError::InvalidTag { .. })
    ));
}

#[test]
fn retagging_and_serde() {
    let r = Reference::parse("busybox").unwrap();
    assert_eq!(r.with_tag("musl").unwrap().familiar(), "busybox:musl");
    assert!(r.with_tag("bad tag").is_err());
    let d: berth_image::Digest = format!("sha256:{HEX}").parse().unwrap();
    assert_eq!(
        r.with_digest(d).to_string(),
        format!("docker.io/library/busybox@sha256:{HEX}")
    );
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, "\"docker.io/library/busybox:latest\"");
    assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
    assert_eq!(Reference::parse_name_only("busybox").unwrap().tag(), None);
}
