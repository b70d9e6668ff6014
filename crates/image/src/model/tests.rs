use super::*;

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn docker_manifest() -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
        "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1469,"digest":"{DIGEST_A}"}},
        "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2479,"digest":"{DIGEST_B}"}}]}}"#
    )
}

#[test]
fn parses_docker_and_oci_manifests() {
    let Document::Manifest(m) = parse_document(docker_manifest().as_bytes(), None).unwrap() else {
        panic!("expected a manifest")
    };
    assert!(m.is_docker());
    assert_eq!(m.config.digest.to_string(), DIGEST_A);
    assert_eq!(m.layers.len(), 1);
    assert_eq!(
        layer_compression(&m.layers[0].media_type),
        Some(Compression::Gzip)
    );

    // OCI manifests may omit mediaType; the shape decides.
    let oci = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","size":2,"digest":"{DIGEST_A}"}},"layers":[],
        "annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}"#,
        media_types::OCI_CONFIG
    );
    let m = parse_manifest(oci.as_bytes()).unwrap();
    assert_eq!(m.media_type.as_deref(), Some(media_types::OCI_MANIFEST));
    assert_eq!(m.annotations["org.opencontainers.image.ref.name"], "v1");
    // Round trip through JSON keeps everything.
    let again = parse_manifest(&m.to_json().unwrap()).unwrap();
    assert_eq!(again, m);
}

#[test]
fn rejects_schema1_and_garbage() {
    let s1 = r#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","name":"x"}"#;
    let err = parse_document(s1.as_bytes(), None).unwrap_err();
    assert!(
        matches!(err, ImageError::UnsupportedMediaType { .. }),
        "{err}"
    );
    assert!(parse_document(b"{}", None).is_err());
    assert!(parse_document(b"not json", None).is_err());
    let bad_digest = docker_manifest().replace("aaaa", "AAAA");
    assert!(parse_document(bad_digest.as_bytes(), None).is_err());
}

fn index() -> Index {
    let json = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
        {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"{DIGEST_A}","platform":{{"architecture":"amd64","os":"linux"}}}},
        {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":2,"digest":"{DIGEST_B}","platform":{{"architecture":"arm","os":"linux","variant":"v6"}}}},
        {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":3,"digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}},
        {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":4,"digest":"sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd","platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
        {{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":5,"digest":"sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee","platform":{{"architecture":"unknown","os":"unknown"}}}}
        ]}}"#
    );
    match parse_document(json.as_bytes(), None).unwrap() {
        Document::Index(i) => i,
        Document::Manifest(_) => panic!("expected an index"),
    }
}

#[test]
fn selects_platforms() {
    let i = index();
    assert!(i.is_docker());
    assert_eq!(select_platform(&i, "linux/amd64").unwrap().size, 1);
    assert_eq!(select_platform(&i, "linux/x86_64").unwrap().size, 1);
    assert_eq!(select_platform(&i, "linux/arm/v6").unwrap().size, 2);
    assert_eq!(
        select_platform(&i, "linux/arm").unwrap().size,
        3,
        "arm defaults to v7"
    );
    assert_eq!(
        select_platform(&i, "linux/arm64").unwrap().size,
        4,
        "arm64 matches v8"
    );
    assert_eq!(select_platform(&i, "linux/aarch64/v8").unwrap().size, 4);
    let err = select_platform(&i, "linux/s390x").unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::NotFound);
    let msg = err.to_string();
    assert!(
        msg.contains("linux/s390x") && msg.contains("linux/arm/v7") && !msg.contains("unknown"),
        "{msg}"
    );
    assert!(select_platform(&i, "linux").is_err());
    assert!(select_platform(&i, "linux//v7").is_err());
}

#[test]
fn image_config_with_docker_fields() {
    let json = format!(
        r#"{{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05.123456789Z","author":"me",
        "docker_version":"24.0.0",
        "config":{{"Cmd":["sh"],"Entrypoint":null,"Env":["PATH=/bin"],"ExposedPorts":{{"80/tcp":{{}}}},
          "WorkingDir":"/srv","User":"1000:1000","Labels":{{"a":"b"}},"Volumes":{{"/data":{{}}}},"StopSignal":"SIGINT",
          "Healthcheck":{{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":3}},"OnBuild":null}},
        "rootfs":{{"type":"layers","diff_ids":["{DIGEST_A}","{DIGEST_B}"]}},
        "history":[{{"created":"2024-01-02T03:04:05Z","created_by":"ADD x /"}},{{"created_by":"CMD [\"sh\"]","empty_layer":true}},{{"created_by":"RUN y"}}]}}"#
    );
    let c = ImageConfig::from_json(json.as_bytes()).unwrap();
    let cc = c.config.as_ref().unwrap();
    assert_eq!(cc.cmd.as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(cc.entrypoint, None);
    assert!(cc.exposed_ports.contains_key("80/tcp"));
    assert_eq!(cc.healthcheck.as_ref().unwrap().interval, 30_000_000_000);
    assert_eq!(cc.working_dir, "/srv");
    assert_eq!(
        c.history.iter().filter(|h| !h.empty_layer).count(),
        c.rootfs.diff_ids.len()
    );
    assert_eq!(c.platform().to_string(), "linux/amd64");
    let chains = c.chain_ids();
    assert_eq!(chains[0], c.rootfs.diff_ids[0]);
    assert_eq!(chains[1], crate::chain_id(&c.rootfs.diff_ids));
    // Unknown fields survive a rewrite.
    let again = ImageConfig::from_json(&c.to_json().unwrap()).unwrap();
    assert_eq!(again, c);
    assert_eq!(again.extra["docker_version"], "24.0.0");
    assert!(ImageConfig::from_json(br#"{"rootfs":{"type":"foo","diff_ids":[]}}"#).is_err());
}
