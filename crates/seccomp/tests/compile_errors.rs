//! Compile-time checks of the OCI seccomp object: no root needed, nothing is loaded.

use berth_seccomp::{compile, features, parse_spec, SeccompError};
use serde_json::{json, Value};

fn compile_json(value: Value) -> Result<berth_seccomp::SeccompProgram, SeccompError> {
    compile(&parse_spec(&value)?)
}

fn error_text(value: Value) -> String {
    match compile_json(value) {
        Ok(program) => panic!("expected an error, compiled {program:?}"),
        Err(err) => err.to_string(),
    }
}

fn mkdir_rule(action: &str) -> Value {
    json!({"names": ["mkdir"], "action": action})
}

#[test]
fn unknown_operator_names_rule_and_argument() {
    let text = error_text(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            mkdir_rule("SCMP_ACT_ERRNO"), mkdir_rule("SCMP_ACT_LOG"), mkdir_rule("SCMP_ACT_TRAP"),
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_FOO"}]}
        ]
    }));
    assert_eq!(
        text,
        "seccomp: syscalls[3].args[0]: unknown operator SCMP_CMP_FOO"
    );
}

#[test]
fn unknown_action_arch_and_flag_are_named() {
    let text = error_text(json!({"defaultAction": "SCMP_ACT_MAYBE"}));
    assert_eq!(
        text,
        "seccomp: defaultAction: unknown action SCMP_ACT_MAYBE"
    );

    let text = error_text(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [mkdir_rule("SCMP_ACT_DENY")]}),
    );
    assert_eq!(text, "seccomp: syscalls[0]: unknown action SCMP_ACT_DENY");

    let text = error_text(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]}),
    );
    assert_eq!(
        text,
        "seccomp: architectures[1]: unknown architecture SCMP_ARCH_VAX"
    );

    let text = error_text(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FAST"]}),
    );
    assert_eq!(
        text,
        "seccomp: flags[1]: unknown flag SECCOMP_FILTER_FLAG_FAST"
    );
}

#[test]
fn malformed_values_are_named() {
    let text = error_text(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0, "op": 4}]}]}),
    );
    assert_eq!(text, "seccomp: syscalls[0].args[0]: expected a string");
    let text =
        error_text(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {"names": ["kill"]}}));
    assert_eq!(text, "seccomp: syscalls: expected an array");
    // Shape errors beyond the enums still say where they come from.
    let text = error_text(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "kill", "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert_eq!(text, "seccomp: linux.seccomp: malformed");
}

#[test]
fn argument_index_out_of_range_is_refused() {
    let text = error_text(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]
    }));
    assert_eq!(
        text,
        "seccomp: syscalls[0].args[1]: index 6 out of range: syscalls have arguments 0 to 5"
    );
}

#[test]
fn errno_ret_out_of_range_is_refused() {
    let text = error_text(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}));
    assert_eq!(
        text,
        "seccomp: defaultErrnoRet: 70000 out of range (0 to 65535)"
    );
    let text = error_text(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 65536}]}),
    );
    assert_eq!(
        text,
        "seccomp: syscalls[0].errnoRet: 65536 out of range (0 to 65535)"
    );
}

#[test]
fn notify_cannot_be_default_or_cover_the_handover_syscalls() {
    let text = error_text(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert_eq!(
        text,
        "seccomp: defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
    );
    let text = error_text(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert_eq!(
        text,
        "seccomp: syscalls[0]: SCMP_ACT_NOTIFY cannot be used for write: the runtime needs it to hand the notify fd over"
    );
    // Like runc: a notify filter needs an agent to send the fd to.
    let text = error_text(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert_eq!(
        text,
        "seccomp: listenerPath: must be set when a rule uses SCMP_ACT_NOTIFY"
    );
    // A listener without notify rules gets nothing, which is worth a warning.
    let program =
        compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}))
            .expect("compiles");
    assert_eq!(
        program.warnings(),
        ["seccomp: listenerPath: no rule uses SCMP_ACT_NOTIFY, so nothing is sent to the agent"]
    );
}

#[test]
fn unknown_syscall_names_are_skipped_with_a_warning() {
    let program = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "berth_no_such_syscall", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    }))
    .expect("an unknown name is not an error");
    assert_eq!(
        program.warnings(),
        ["seccomp: syscalls[0].names[1]: unknown syscall \"berth_no_such_syscall\" skipped"]
    );
    assert!(!program.uses_notify());
    assert!(program.instruction_count() > 4, "{program:?}");
}

#[test]
fn ignored_fields_are_reported_as_warnings() {
    let program = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 1},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 9, "valueTwo": 3, "op": "SCMP_CMP_EQ"}]},
            {"names": [], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}
        ],
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    }))
    .expect("compiles");
    let warnings = program.warnings();
    assert_eq!(
        warnings,
        [
            "seccomp: syscalls[0].errnoRet: only used by SCMP_ACT_ERRNO and SCMP_ACT_TRACE, ignored with SCMP_ACT_KILL_PROCESS",
            "seccomp: syscalls[1].args[0]: valueTwo is only used by SCMP_CMP_MASKED_EQ and is ignored with SCMP_CMP_EQ",
            "seccomp: syscalls[2]: the rule names no syscalls and matches nothing",
        ]
    );
    assert!(program.uses_notify());
    let wait_killable = libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV as u32;
    assert_eq!(
        program.flags(),
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32 | wait_killable
    );
}

#[test]
fn wait_killable_without_notify_is_ignored_with_a_warning() {
    let program = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", "SECCOMP_FILTER_FLAG_LOG"]}))
        .expect("compiles");
    assert_eq!(
        program.warnings(),
        ["seccomp: flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV only affects SCMP_ACT_NOTIFY filters and is ignored"]
    );
    assert_eq!(program.flags(), libc::SECCOMP_FILTER_FLAG_LOG as u32);
}

#[test]
fn tsync_with_notify_adds_tsync_esrch() {
    let program = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    }))
    .expect("compiles");
    let expected = libc::SECCOMP_FILTER_FLAG_TSYNC
        | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
        | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    assert_eq!(u64::from(program.flags()), expected);
}

#[test]
fn rules_with_the_default_action_are_dropped() {
    // Default ERRNO(ENOSYS) keeps runc's -ENOSYS stub out of the comparison.
    let enosys = libc::ENOSYS as u32;
    let with = compile_json(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": enosys,
        "syscalls": [{"names": ["mkdir", "rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": enosys}]}))
    .expect("compiles");
    let without =
        compile_json(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": enosys}))
            .expect("compiles");
    assert_eq!(with.instruction_count(), without.instruction_count());
    // A different errno is a different action and stays.
    let other = compile_json(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": enosys,
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
    )
    .expect("compiles");
    assert!(other.instruction_count() > without.instruction_count());
}

#[test]
fn every_action_operator_and_repeated_argument_compiles() {
    let actions = [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    ];
    let syscalls = [
        "mkdir", "rmdir", "unlink", "rename", "link", "symlink", "chmod", "chown",
    ];
    let operators = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let mut rules: Vec<Value> = actions
        .iter()
        .zip(syscalls)
        .map(|(action, name)| json!({"names": [name], "action": action}))
        .collect();
    for (i, op) in operators.iter().enumerate() {
        rules.push(json!({"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": i + 1, "valueTwo": if *op == "SCMP_CMP_MASKED_EQ" { 1 } else { 0 }, "op": op}]}));
    }
    // Two conditions on the same argument become two rules (either matches).
    rules.push(json!({"names": ["tkill"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]}));
    let program = compile_json(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "listenerPath": "/run/agent.sock",
        "syscalls": rules
    }))
    .expect("compiles");
    assert!(program.warnings().is_empty(), "{:?}", program.warnings());
    assert!(program.uses_notify());
}

#[test]
fn architecture_unknown_to_libseccomp_is_an_error_naming_it() {
    // libseccomp 2.5 predates LoongArch; 2.6 knows it. Either compiles or names the field.
    match compile_json(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_LOONGARCH64"]}),
    ) {
        Ok(_) => assert!(features()
            .archs
            .iter()
            .any(|a| a == "SCMP_ARCH_LOONGARCH64")),
        Err(err) => {
            assert!(err.to_string().starts_with("seccomp: architectures[0] (SCMP_ARCH_LOONGARCH64): adding the architecture failed"), "{err}");
            assert!(!features()
                .archs
                .iter()
                .any(|a| a == "SCMP_ARCH_LOONGARCH64"));
        }
    }
}

#[test]
fn features_lists_runc_shaped_values() {
    let features = features();
    assert!(features.actions.iter().any(|a| a == "SCMP_ACT_NOTIFY"));
    assert_eq!(features.operators.len(), 7);
    assert!(
        features.archs.iter().any(|a| a == "SCMP_ARCH_X86_64"),
        "{:?}",
        features.archs
    );
    assert!(features.archs.iter().any(|a| a == "SCMP_ARCH_AARCH64"));
    assert_eq!(features.known_flags.len(), 4);
    // Kernel 6.x implements all four.
    assert_eq!(features.supported_flags, features.known_flags);
}

#[test]
fn deny_by_default_filters_get_the_enosys_stub() {
    let rules = json!([{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]);
    let count = |default: Value, errno: u32| {
        compile_json(json!({"defaultAction": default, "defaultErrnoRet": errno, "syscalls": rules}))
            .expect("compiles")
            .instruction_count()
    };
    let with_stub = count(json!("SCMP_ACT_ERRNO"), libc::EPERM as u32);
    let without_stub = count(json!("SCMP_ACT_ERRNO"), libc::ENOSYS as u32);
    // load arch, jeq, ja, load nr, jset x32, jgt, ret ENOSYS
    assert_eq!(with_stub, without_stub + 7);
    let kill = count(json!("SCMP_ACT_KILL_PROCESS"), 0);
    let allow_rules = json!([{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]);
    let allow = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": allow_rules}))
        .expect("compiles");
    assert_eq!(kill, with_stub, "kill-by-default gets the stub too");
    // Permissive defaults get no stub: one rule, a handful of instructions.
    assert!(allow.instruction_count() < 12, "{allow:?}");
}

#[test]
fn compile_cached_reuses_entries_and_recovers_from_damage() {
    use berth_seccomp::compile_cached;
    let dir = berth_testutil::TempDir::new("seccomp-cache").expect("tempdir");
    let cache = dir.join("cache");
    let small = parse_spec(
        &json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [mkdir_rule("SCMP_ACT_ERRNO")]}),
    )
    .expect("spec");
    let big = parse_spec(&json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["read", "write", "exit_group", "berth_unknown"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
    }))
    .expect("spec");

    let fresh = compile(&big).expect("compiles");
    let first = compile_cached(&big, &cache).expect("compiles");
    let second = compile_cached(&big, &cache).expect("from the cache");
    for program in [&first, &second] {
        assert_eq!(program.instruction_count(), fresh.instruction_count());
        assert_eq!(program.flags(), fresh.flags());
        assert_eq!(program.uses_notify(), fresh.uses_notify());
        assert_eq!(program.warnings(), fresh.warnings());
    }
    compile_cached(&small, &cache).expect("compiles");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(
        entries.len(),
        2,
        "one entry per spec, no temp files left: {entries:?}"
    );

    // The entry really is what gets loaded: swap the small spec's entry for the big one's.
    let mut by_size = entries.clone();
    by_size.sort_by_key(|p| std::fs::metadata(p).expect("entry").len());
    let (small_entry, big_entry) = (by_size[0].clone(), by_size[1].clone());
    std::fs::copy(&big_entry, &small_entry).expect("copy");
    assert_eq!(
        compile_cached(&small, &cache)
            .expect("cached")
            .instruction_count(),
        fresh.instruction_count()
    );

    // A damaged entry is compiled again and rewritten.
    std::fs::write(&small_entry, b"BSECCMP1 truncated").expect("damage");
    let recompiled = compile_cached(&small, &cache).expect("recompiles");
    assert_eq!(
        recompiled.instruction_count(),
        compile(&small).expect("compiles").instruction_count()
    );
    assert!(std::fs::metadata(&small_entry).expect("rewritten").len() > 32);

    // An unusable cache directory costs a warning, not the container.
    let not_a_dir = dir.join("file");
    std::fs::write(&not_a_dir, b"").expect("file");
    let program = compile_cached(&small, &not_a_dir).expect("still compiles");
    assert!(
        program.warnings().iter().any(|w| w
            .starts_with(&format!("seccomp: cache {}/", not_a_dir.display()))
            && w.contains("not written")),
        "{:?}",
        program.warnings()
    );
}
