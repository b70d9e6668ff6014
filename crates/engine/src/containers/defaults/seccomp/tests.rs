use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall,
};

use super::*;

/// Docker's default capability set (`oci.DefaultCapabilities`).
const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn caps(extra: &[&str]) -> Vec<String> {
    DOCKER_CAPS
        .iter()
        .chain(extra)
        .map(|c| c.to_string())
        .collect()
}

fn resolve(extra_caps: &[&str], arch: &str, kernel: (u32, u32)) -> LinuxSeccomp {
    let profile = default_profile().unwrap();
    to_oci(&profile, &caps(extra_caps), arch, kernel)
        .unwrap()
        .expect("the default profile is a filter")
}

fn rules_for<'a>(seccomp: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
    seccomp
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names().iter().any(|n| n == name))
        .collect()
}

/// Allowed without any argument condition.
fn allowed(seccomp: &LinuxSeccomp, name: &str) -> bool {
    rules_for(seccomp, name).iter().any(|r| {
        r.action() == LinuxSeccompAction::ScmpActAllow
            && r.args().as_ref().is_none_or(Vec::is_empty)
    })
}

#[test]
fn default_profile_denies_by_default_with_eperm() {
    let p = default_profile().unwrap();
    assert_eq!(p.default_action, Some(LinuxSeccompAction::ScmpActErrno));
    assert_eq!(p.default_errno_ret, Some(libc::EPERM as u32));
    let unconditional: usize = p
        .syscalls
        .iter()
        .filter(|r| r.includes.is_none() && r.excludes.is_none() && r.args.is_empty())
        .map(|r| r.names.len())
        .sum();
    assert!(
        unconditional >= 350,
        "{unconditional} unconditional syscalls"
    );
    for name in [
        "read",
        "write",
        "openat",
        "execve",
        "futex",
        "rseq",
        "statx",
        "io_uring_setup",
    ] {
        let s = resolve(&[], "amd64", (6, 1));
        // io_uring is deliberately not in Docker's list.
        assert_eq!(allowed(&s, name), name != "io_uring_setup", "{name}");
    }
}

#[test]
fn default_profile_compiles_with_berth_seccomp() {
    for extra in [&[][..], &["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF"][..]] {
        let s = resolve(extra, host_arch(), host_kernel_version().unwrap());
        let program = berth_seccomp::compile(&s).unwrap();
        assert!(program.instruction_count() > 100, "{program:?}");
        // Only unknown (newer) syscall names may be skipped, nothing else.
        for w in program.warnings() {
            assert!(w.contains("unknown syscall"), "{w}");
        }
    }
}

#[test]
fn sys_admin_syscalls_only_with_cap_sys_admin() {
    let without = resolve(&[], "amd64", (6, 1));
    let with = resolve(&["CAP_SYS_ADMIN"], "amd64", (6, 1));
    for name in [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "sethostname",
        "fsopen",
    ] {
        assert!(
            rules_for(&without, name).is_empty(),
            "{name} without CAP_SYS_ADMIN"
        );
        assert!(allowed(&with, name), "{name} with CAP_SYS_ADMIN");
    }
    // Per-capability groups.
    for (name, cap) in [
        ("reboot", "CAP_SYS_BOOT"),
        ("init_module", "CAP_SYS_MODULE"),
        ("settimeofday", "CAP_SYS_TIME"),
        ("clock_settime", "CAP_SYS_TIME"),
        ("mbind", "CAP_SYS_NICE"),
        ("syslog", "CAP_SYSLOG"),
        ("iopl", "CAP_SYS_RAWIO"),
        ("acct", "CAP_SYS_PACCT"),
        ("bpf", "CAP_BPF"),
        ("perf_event_open", "CAP_PERFMON"),
        ("open_by_handle_at", "CAP_DAC_READ_SEARCH"),
        ("kcmp", "CAP_SYS_PTRACE"),
        ("vhangup", "CAP_SYS_TTY_CONFIG"),
    ] {
        assert!(!allowed(&without, name), "{name} without {cap}");
        assert!(
            allowed(&resolve(&[cap], "amd64", (6, 1)), name),
            "{name} with {cap}"
        );
    }
    // CAP_SYS_CHROOT is in Docker's default set.
    assert!(allowed(&without, "chroot"));
    // Capability names are accepted without prefix and in any case.
    let short = to_oci(
        &default_profile().unwrap(),
        &["sys_admin".to_string()],
        "amd64",
        (6, 1),
    )
    .unwrap()
    .unwrap();
    assert!(allowed(&short, "mount"));
}

#[test]
fn clone_namespace_flags_need_cap_sys_admin() {
    let without = resolve(&[], "amd64", (6, 1));
    let clone = rules_for(&without, "clone");
    assert_eq!(clone.len(), 1, "{clone:?}");
    let args = clone[0].args().clone().unwrap();
    assert_eq!(args.len(), 1);
    assert_eq!(args[0].index(), 0);
    assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    let ns_flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWCGROUP
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET;
    assert_eq!(args[0].value(), ns_flags as u64);
    assert_eq!(args[0].value_two().unwrap_or(0), 0);

    let clone3 = rules_for(&without, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));

    let with = resolve(&["CAP_SYS_ADMIN"], "amd64", (6, 1));
    assert!(allowed(&with, "clone") && allowed(&with, "clone3"));
    assert!(rules_for(&with, "clone").iter().all(|r| r.args().is_none()));
    assert!(rules_for(&with, "clone3")
        .iter()
        .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));

    // s390 passes clone's flags second.
    let s390 = resolve(&[], "s390x", (6, 1));
    let clone = rules_for(&s390, "clone");
    assert_eq!(clone.len(), 1);
    assert_eq!(clone[0].args().as_ref().unwrap()[0].index(), 1);
}

#[test]
fn arches_and_kernel_versions_select_rules() {
    let amd64 = resolve(&[], "amd64", (6, 1));
    assert_eq!(
        amd64.architectures().clone().unwrap(),
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    );
    assert!(allowed(&amd64, "arch_prctl") && allowed(&amd64, "modify_ldt"));
    assert!(!allowed(&amd64, "set_tls"));
    // Rust's spelling of the same architecture.
    assert_eq!(resolve(&[], "x86_64", (6, 1)), amd64);

    let arm64 = resolve(&[], "arm64", (6, 1));
    assert_eq!(
        arm64.architectures().clone().unwrap(),
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    );
    assert!(allowed(&arm64, "set_tls") && !allowed(&arm64, "arch_prctl"));
    let riscv = resolve(&[], "riscv64", (6, 1));
    assert_eq!(
        riscv.architectures().clone().unwrap(),
        vec![Arch::ScmpArchRiscv64]
    );

    // ptrace is safe from 4.8 on; before, only with CAP_SYS_PTRACE.
    assert!(allowed(&amd64, "ptrace"));
    assert!(!allowed(&resolve(&[], "amd64", (4, 4)), "ptrace"));
    assert!(allowed(
        &resolve(&["CAP_SYS_PTRACE"], "amd64", (4, 4)),
        "ptrace"
    ));
    assert!(allowed(&resolve(&[], "amd64", (4, 8)), "process_vm_readv"));

    let err = to_oci(&default_profile().unwrap(), &[], "vax", (6, 1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "seccomp profile: unknown architecture \"vax\""
    );
}

#[test]
fn socket_and_personality_have_argument_rules() {
    let s = resolve(&[], "amd64", (6, 1));
    let socket = rules_for(&s, "socket");
    assert_eq!(socket.len(), 3);
    assert!(!allowed(&s, "socket"));
    let personas: Vec<u64> = rules_for(&s, "personality")
        .iter()
        .map(|r| r.args().as_ref().unwrap()[0].value())
        .collect();
    assert_eq!(personas, vec![0, 8, 0x20000, 0x20008, 0xffff_ffff]);
}

#[test]
fn profile_json_round_trip() {
    let p = default_profile().unwrap();
    let json = serde_json::to_string_pretty(&p).unwrap();
    assert_eq!(parse_profile(&json).unwrap(), p);

    // Docker-era spellings: `name`, nulls, `architectures`, flags, listener.
    let custom = r#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/agent.sock",
        "syscalls": [
            {"name": "chmod", "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": null},
            {"names": ["mkdir"], "action": "SCMP_ACT_LOG",
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}, "includes": {"minKernel": "5.4", "arches": null}}
        ]
    }"#;
    let p = parse_profile(custom).unwrap();
    assert_eq!(p.syscalls[0].syscall_names(), vec!["chmod"]);
    assert_eq!(
        p.syscalls[1].includes.as_ref().unwrap().min_kernel,
        Some(KernelVersion { major: 5, minor: 4 })
    );
    let back = parse_profile(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    let s = to_oci(&p, &[], "amd64", (6, 1)).unwrap().unwrap();
    assert_eq!(
        s.architectures().clone().unwrap(),
        vec![Arch::ScmpArchX86_64]
    );
    assert_eq!(s.syscalls().as_ref().unwrap().len(), 2);
    assert_eq!(
        s.syscalls().as_ref().unwrap()[0].names(),
        &["chmod".to_string()]
    );
    assert_eq!(
        s.listener_path().as_deref(),
        Some(std::path::Path::new("/run/agent.sock"))
    );
    // Excluded by the capability, then by the kernel version.
    let admin = to_oci(&p, &["CAP_SYS_ADMIN".into()], "amd64", (6, 1))
        .unwrap()
        .unwrap();
    assert_eq!(admin.syscalls().as_ref().unwrap().len(), 1);
    let old = to_oci(&p, &[], "amd64", (5, 3)).unwrap().unwrap();
    assert_eq!(old.syscalls().as_ref().unwrap().len(), 1);
}

#[test]
fn empty_profile_means_no_filter() {
    let p = parse_profile("{}").unwrap();
    assert_eq!(to_oci(&p, &[], "amd64", (6, 1)).unwrap(), None);
}

#[test]
fn bad_profiles_name_the_field() {
    let cases = [
        (
            r#"{"defaultAction": "SCMP_ACT_NOPE"}"#,
            "seccomp profile: defaultAction: malformed",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW"}, {"names": ["b"], "action": 3}]}"#,
            "seccomp profile: syscalls[1].action: malformed",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}"#,
            "seccomp profile: syscalls[0].includes.minKernel: malformed",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}"#,
            "seccomp profile: syscalls[0].args[0].op: malformed",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "seccomp profile: syscalls[0].args[0].index: 6 out of range: syscalls have arguments 0 to 5",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}"#,
            "seccomp profile: syscalls[0]: both 'name' and 'names' are specified, use either 'name' or 'names'",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
            "seccomp profile: archMap: both 'architectures' and 'archMap' are specified, use either 'architectures' or 'archMap'",
        ),
        (
            r#"{"syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW"}]}"#,
            "seccomp profile: defaultAction: missing, but the profile has syscall rules",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["SYS_ADMIN"]}}]}"#,
            "seccomp profile: syscalls[0].includes.caps[0]: \"SYS_ADMIN\" is not a capability name like \"CAP_SYS_ADMIN\"",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO"} x"#,
            "seccomp profile: profile: malformed",
        ),
        (r#"[]"#, "seccomp profile: profile: not a JSON object"),
    ];
    for (json, want) in cases {
        let err = parse_profile(json).unwrap_err();
        assert_eq!(err.to_string(), want, "{json}");
    }
    let err = parse_profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "0.0"}}]}"#,
    )
    .unwrap_err();
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("invalid kernel version \"0.0\""), "{cause}");
}

#[test]
fn security_opt_chooses_the_profile() {
    let opts = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        SeccompChoice::from_security_opt(&[]).unwrap(),
        SeccompChoice::Default
    );
    assert_eq!(
        SeccompChoice::from_security_opt(&opts(&["no-new-privileges", "seccomp=unconfined"]))
            .unwrap(),
        SeccompChoice::Unconfined
    );
    assert_eq!(
        SeccompChoice::from_security_opt(&opts(&["seccomp:builtin"])).unwrap(),
        SeccompChoice::Default
    );
    let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let custom = SeccompChoice::from_security_opt(&opts(&[&format!("seccomp={json}")])).unwrap();
    assert_eq!(custom, SeccompChoice::Custom(json.to_string()));
    assert_eq!(
        SeccompChoice::from_security_opt(&opts(&["bogus"]))
            .unwrap_err()
            .to_string(),
        "invalid --security-opt 1: \"bogus\""
    );

    let c = caps(&[]);
    assert!(
        container_seccomp(&SeccompChoice::Default, true, &c, "amd64", (6, 1))
            .unwrap()
            .is_none()
    );
    assert!(
        container_seccomp(&SeccompChoice::Unconfined, false, &c, "amd64", (6, 1))
            .unwrap()
            .is_none()
    );
    let d = container_seccomp(&SeccompChoice::Default, false, &c, "amd64", (6, 1)).unwrap();
    assert_eq!(
        d.unwrap().default_action(),
        LinuxSeccompAction::ScmpActErrno
    );
    // A privileged container keeps an explicitly given profile, as in Docker.
    let p = container_seccomp(&custom, true, &c, "amd64", (6, 1))
        .unwrap()
        .unwrap();
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
}

mod container;
mod enforcement;

#[test]
fn kernel_releases_parse_like_docker() {
    for (release, want) in [
        ("6.1.0-13-amd64", Some((6, 1))),
        ("3.12-rc5", Some((3, 12))),
        ("3.12.25-gentoo", Some((3, 12))),
        ("6.18.0+", Some((6, 18))),
        ("6", None),
        ("abc", None),
    ] {
        assert_eq!(
            KernelVersion::from_release(release).map(|v| (v.major, v.minor)),
            want,
            "{release}"
        );
    }
    let (major, _) = host_kernel_version().unwrap();
    assert!(major >= 3);
}
