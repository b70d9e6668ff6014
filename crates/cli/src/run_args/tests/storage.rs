//! `-v`, `--mount`, `--tmpfs`, `--volumes-from`, `--storage-opt`.

use super::*;

#[test]
fn volumes_binds_and_anonymous() {
    let cwd = std::env::current_dir().unwrap();
    let h = run(&[
        "-v",
        "/data",
        "-v",
        "/srv:/srv:ro",
        "-v",
        "cache:/cache",
        "-v",
        "/a:/b:ro,Z,rshared",
        "-v",
        "./rel:/rel:ro",
        "-v",
        "data:/data2:nocopy",
        "-v",
        "/srv:/srv:ro",
    ]);
    assert_eq!(
        h.host_config.binds,
        Some(strings(&[
            "/srv:/srv:ro",
            "cache:/cache",
            "/a:/b:ro,Z,rshared",
            &format!("{}/rel:/rel:ro", cwd.display()),
            "data:/data2:nocopy",
        ]))
    );
    let volumes: Vec<&String> = h.config.volumes.as_ref().unwrap().keys().collect();
    assert_eq!(volumes, ["/data"]);
    assert_eq!(run(&[]).config.volumes, None);
    assert_eq!(run(&[]).host_config.binds, None);

    for (spec, message) in [
        ("", "invalid empty volume spec"),
        ("/a::/b", "invalid spec: /a::/b: empty section between colons"),
        ("/a:/b:ro:x", "invalid spec: /a:/b:ro:x: too many colons"),
        ("foo/bar:/x", "create foo/bar: \"foo/bar\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
        ("~/x:/x", "create ~/x: \"~/x\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
        ("/data:ro", "invalid volume specification: '/data:ro'"),
        ("/a:/b:bogus", "invalid mode: bogus"),
        ("/a:/b:ro,rw", "invalid mode: ro,rw"),
        ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
        ("/a:b", "invalid volume specification: '/a:b': invalid mount config for type \"bind\": invalid mount path: 'b' mount path must be absolute"),
        ("data", "invalid volume specification: 'data': invalid mount config for type \"volume\": invalid mount path: 'data' mount path must be absolute"),
        ("/a:/b:nocopy", "invalid volume specification: '/a:/b:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified"),
        ("vol:/b:rshared", "invalid volume specification: 'vol:/b:rshared': invalid mount config for type \"volume\": field BindOptions must not be specified"),
    ] {
        assert_eq!(run_err(&["-v", spec]), message, "-v {spec:?}");
    }
    // Another volume driver names its volumes its own way.
    let h = run(&["--volume-driver", "nfs", "-v", "share/x:/x"]).host_config;
    assert_eq!(h.volume_driver, "nfs");
    assert_eq!(h.binds, Some(strings(&["share/x:/x"])));
}

#[test]
fn mount_flag() {
    let cwd = std::env::current_dir().unwrap();
    let h = run(&[
        "--mount", "type=bind,src=/srv,dst=/srv,readonly,bind-propagation=rslave,bind-nonrecursive",
        "--mount", "type=volume,source=data,target=/data,volume-nocopy,volume-opt=type=tmpfs,volume-label=a=b,volume-driver=local,volume-subpath=sub",
        "--mount", "type=tmpfs,destination=/tmp,tmpfs-size=64m,tmpfs-mode=1777",
        "--mount", "target=/anon",
        "--mount", "type=bind,source=./rel,target=/rel,ro=false",
        "--mount", "\"type=bind\",\"src=/with,comma\",dst=/c",
    ])
    .host_config;
    let mounts = h.mounts.unwrap();
    assert_eq!(mounts.len(), 6);
    assert_eq!(mounts[0].kind, "bind");
    assert_eq!(
        (mounts[0].source.as_str(), mounts[0].target.as_str()),
        ("/srv", "/srv")
    );
    assert!(mounts[0].read_only);
    let bind = mounts[0].bind_options.as_ref().unwrap();
    assert_eq!(bind.propagation, "rslave");
    assert!(bind.non_recursive);
    assert_eq!(
        mounts[1],
        MountSpec {
            kind: "volume".into(),
            source: "data".into(),
            target: "/data".into(),
            volume_options: Some(VolumeOptions {
                no_copy: true,
                labels: [("a".to_string(), "b".to_string())].into(),
                driver_config: Some(VolumeDriverConfig {
                    name: "local".into(),
                    options: [("type".to_string(), "tmpfs".to_string())].into(),
                }),
                subpath: "sub".into(),
            }),
            ..Default::default()
        }
    );
    assert_eq!(mounts[2].kind, "tmpfs");
    assert_eq!(
        mounts[2].tmpfs_options,
        Some(TmpfsOptions {
            size_bytes: 64 << 20,
            mode: 0o1777
        })
    );
    assert_eq!(
        (mounts[3].kind.as_str(), mounts[3].source.as_str()),
        ("volume", "")
    );
    assert_eq!(mounts[4].source, format!("{}/rel", cwd.display()));
    assert!(!mounts[4].read_only);
    assert_eq!(mounts[5].source, "/with,comma");

    for (value, reason) in [
        ("type=bind", "target is required"),
        (
            "type=bind,target=/x,bogus=1",
            "unexpected key 'bogus' in 'bogus=1'",
        ),
        (
            "type=bind,target=/x,flag",
            "invalid field 'flag' must be a key=value pair",
        ),
        (
            "target=/x,tmpfs-size=1m",
            "cannot mix 'tmpfs-*' options with mount type 'volume'",
        ),
        (
            "type=tmpfs,target=/x,volume-nocopy",
            "cannot mix 'volume-*' options with mount type 'tmpfs'",
        ),
        (
            "type=volume,target=/x,bind-propagation=shared",
            "cannot mix 'bind-*' options with mount type 'volume'",
        ),
        (
            "type=tmpfs,target=/x,tmpfs-mode=9",
            "invalid value for tmpfs-mode: 9",
        ),
        (
            "type=tmpfs,target=/x,tmpfs-size=big",
            "invalid value for tmpfs-size: big",
        ),
        (
            "type=bind,target=/x,readonly=maybe",
            "invalid value for readonly: maybe",
        ),
        (
            "type=\"bind,target=/x",
            "parse error on line 1, column 6: bare \" in non-quoted-field",
        ),
    ] {
        assert_eq!(
            run_err(&["--mount", value]),
            format!("invalid argument {value:?} for \"--mount\" flag: {reason}"),
            "--mount {value}"
        );
    }
    for (value, message) in [
        ("type=bind,target=/x", "invalid mount config for type \"bind\": field Source must not be empty"),
        ("type=bind,src=rel,target=/x", "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
        ("type=bind,src=/a,target=x", "invalid mount config for type \"bind\": invalid mount path: 'x' mount path must be absolute"),
        ("type=bind,src=/a,target=/", "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
        ("type=bind,src=/a,target=/x,bind-propagation=sideways", "invalid mount config for type \"bind\": invalid propagation mode: sideways"),
        ("type=volume,target=/x,ro", "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"),
        ("type=tmpfs,src=/a,target=/x", "invalid mount config for type \"tmpfs\": field Source must not be specified"),
        ("type=floppy,target=/x", "invalid mount config for type \"floppy\": mount type unknown"),
        ("type=volume,src=./rel,target=/x", &format!("create {cwd}/rel: \"{cwd}/rel\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", cwd = cwd.display())),
    ] {
        assert_eq!(run_err(&["--mount", value]), message, "--mount {value}");
    }
}

#[test]
fn tmpfs_and_volumes_from() {
    let h = run(&[
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/tmp:rw,size=64m,mode=1777",
        "--volumes-from",
        "data:ro",
        "--volumes-from",
        "other",
    ])
    .host_config;
    let tmpfs = h.tmpfs.unwrap();
    assert_eq!(tmpfs["/run"], "");
    assert_eq!(tmpfs["/tmp"], "rw,size=64m,mode=1777");
    assert_eq!(h.volumes_from, Some(strings(&["data:ro", "other"])));
    assert_eq!(
        run_err(&["--tmpfs", "tmp"]),
        "invalid mount path: 'tmp' mount path must be absolute"
    );
    assert_eq!(
        run_err(&["--tmpfs", "/"]),
        "invalid specification: destination can't be '/'"
    );
    assert_eq!(
        run_err(&["--volumes-from", "data:rshared"]),
        "invalid mode: rshared"
    );
    assert_eq!(
        run_err(&["--volumes-from", "data:nocopy"]),
        "invalid mode: nocopy"
    );
    assert_eq!(
        run_err(&["--volumes-from", ""]),
        "volumes-from specification cannot be an empty string"
    );
    assert_eq!(
        run(&["--storage-opt", "size=10G"]).host_config.storage_opt,
        Some([("size".to_string(), "10G".to_string())].into())
    );
    assert_eq!(
        run_err(&["--storage-opt", "size"]),
        "invalid storage option"
    );
}
