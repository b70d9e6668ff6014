//! Building the filter with libseccomp and exporting it as classic BPF.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::sys::memfd::{memfd_create, MFdFlags};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator, LinuxSyscall,
};

use crate::{enosys, kernel};
use crate::{SeccompError, SeccompProgram};

/// The kernel refuses longer programs (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;
/// Filters with more rules than this are compiled to a binary tree.
const BINARY_TREE_MIN_RULES: usize = 32;
/// Syscalls take at most six arguments.
const MAX_ARGS: usize = 6;

/// Syscalls the runtime needs after the filter is loaded to hand the notify
/// fd over and exec the process; a NOTIFY rule on them would block the
/// container's init on an agent that has not got the fd yet (runc refuses
/// `write` for the same reason).
const NOTIFY_FORBIDDEN: [&str; 2] = ["write", "sendmsg"];

pub(crate) fn compile(spec: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    let mut warnings = Vec::new();
    let default_action = action(
        spec.default_action(),
        spec.default_errno_ret(),
        "defaultAction",
        "defaultErrnoRet",
        &mut warnings,
    )?;
    if spec.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(invalid(
            "defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let mut filter = ScmpFilterContext::new(default_action)
        .map_err(libseccomp_error("defaultAction", "creating the filter"))?;

    for (i, arch) in spec.architectures().iter().flatten().enumerate() {
        let field = format!("architectures[{i}]");
        filter
            .add_arch(scmp_arch(*arch))
            .map_err(|source| SeccompError::Libseccomp {
                field: format!("{field} ({arch})"),
                operation: "adding the architecture",
                source,
            })?;
    }
    let mut uses_notify = false;
    let mut rules = 0;
    for (i, rule) in spec.syscalls().iter().flatten().enumerate() {
        let added = add_rule(&mut filter, default_action, i, rule, &mut warnings)?;
        rules += added.rules;
        uses_notify |= added.notify;
    }
    // A binary tree of syscall numbers instead of a linear list keeps the
    // per-syscall cost low for allowlists of hundreds of syscalls (Docker's
    // default profile); the filter's meaning does not change. Like runc, only
    // for more than 32 rules: libseccomp <= 2.5.4 generates broken trees for
    // filters with no rules.
    if rules > BINARY_TREE_MIN_RULES {
        filter.set_ctl_optimize(2).map_err(libseccomp_error(
            "linux.seccomp",
            "enabling the binary-tree optimisation",
        ))?;
    }

    match (uses_notify, spec.listener_path()) {
        (true, None) => {
            return Err(invalid(
                "listenerPath",
                "must be set when a rule uses SCMP_ACT_NOTIFY",
            ))
        }
        (false, Some(_)) => warnings.push(
            "seccomp: listenerPath: no rule uses SCMP_ACT_NOTIFY, so nothing is sent to the agent"
                .to_string(),
        ),
        _ => {}
    }
    let flags = filter_flags(spec, uses_notify, &mut warnings)?;
    let mut instructions = enosys::stub(spec)?;
    instructions.extend(export(&filter)?);
    if instructions.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLong {
            instructions: instructions.len(),
            max: MAX_INSTRUCTIONS,
        });
    }
    Ok(SeccompProgram {
        instructions,
        flags,
        uses_notify,
        warnings,
    })
}

/// What one `syscalls[i]` entry added to the filter.
struct AddedRules {
    /// libseccomp rules (one per syscall name and argument alternative).
    rules: usize,
    /// Whether any of them uses SCMP_ACT_NOTIFY.
    notify: bool,
}

/// Adds the rules of one `syscalls[i]` entry.
fn add_rule(
    filter: &mut ScmpFilterContext,
    default_action: ScmpAction,
    i: usize,
    rule: &LinuxSyscall,
    warnings: &mut Vec<String>,
) -> Result<AddedRules, SeccompError> {
    let field = format!("syscalls[{i}]");
    let errno_field = format!("{field}.errnoRet");
    let rule_action = action(
        rule.action(),
        rule.errno_ret(),
        &field,
        &errno_field,
        warnings,
    )?;
    let conditions = conditions(rule.args().as_deref().unwrap_or_default(), &field, warnings)?;
    if rule.names().is_empty() {
        warnings.push(format!(
            "seccomp: {field}: the rule names no syscalls and matches nothing"
        ));
        return Ok(AddedRules {
            rules: 0,
            notify: false,
        });
    }
    let notify = rule.action() == LinuxSeccompAction::ScmpActNotify;
    if notify {
        if let Some(name) = rule
            .names()
            .iter()
            .find(|n| NOTIFY_FORBIDDEN.contains(&n.as_str()))
        {
            return Err(invalid(
                &field,
                &format!("SCMP_ACT_NOTIFY cannot be used for {name}: the runtime needs it to hand the notify fd over"),
            ));
        }
    }
    // libseccomp refuses rules whose action equals the default action; they
    // would not change the filter anyway (runc skips them too).
    if rule_action == default_action {
        return Ok(AddedRules {
            rules: 0,
            notify: false,
        });
    }
    let mut rules = 0;
    for (j, name) in rule.names().iter().enumerate() {
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            // Profiles list syscalls of newer kernels; like runc, skip the ones
            // this libseccomp does not know instead of failing the container.
            warnings.push(format!(
                "seccomp: {field}.names[{j}]: unknown syscall {name:?} skipped"
            ));
            continue;
        };
        let rule_field = format!("{field}.names[{j}] ({name})");
        // Several conditions on one argument cannot be ANDed by libseccomp;
        // like runc, such a rule means "any of the conditions" and becomes one
        // rule per condition.
        if has_repeated_index(rule.args().as_deref().unwrap_or_default()) {
            for condition in &conditions {
                filter
                    .add_rule_conditional(rule_action, syscall, std::slice::from_ref(condition))
                    .map_err(libseccomp_error(&rule_field, "adding the rule"))?;
                rules += 1;
            }
        } else {
            filter
                .add_rule_conditional(rule_action, syscall, &conditions)
                .map_err(libseccomp_error(&rule_field, "adding the rule"))?;
            rules += 1;
        }
    }
    Ok(AddedRules {
        rules,
        notify: notify && rules > 0,
    })
}

fn conditions(
    args: &[LinuxSeccompArg],
    field: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<ScmpArgCompare>, SeccompError> {
    let mut out = Vec::with_capacity(args.len());
    for (j, arg) in args.iter().enumerate() {
        let field = format!("{field}.args[{j}]");
        if arg.index() >= MAX_ARGS {
            return Err(invalid(
                &field,
                &format!(
                    "index {} out of range: syscalls have arguments 0 to 5",
                    arg.index()
                ),
            ));
        }
        let index = arg.index() as u32; // < 6, checked above
        let condition = match arg.op() {
            LinuxSeccompOperator::ScmpCmpMaskedEq => {
                // OCI: `value` is the mask, `valueTwo` what the masked argument must equal.
                ScmpArgCompare::new(
                    index,
                    ScmpCompareOp::MaskedEqual(arg.value()),
                    arg.value_two().unwrap_or(0),
                )
            }
            op => {
                // Profiles generated by Docker and containerd carry `"valueTwo": 0`
                // on every argument; only a real value is worth a warning.
                if arg.value_two().is_some_and(|v| v != 0) {
                    warnings.push(format!("seccomp: {field}: valueTwo is only used by SCMP_CMP_MASKED_EQ and is ignored with {op}"));
                }
                ScmpArgCompare::new(index, compare_op(op), arg.value())
            }
        };
        out.push(condition);
    }
    Ok(out)
}

fn has_repeated_index(args: &[LinuxSeccompArg]) -> bool {
    let mut seen = [false; MAX_ARGS];
    for arg in args {
        if let Some(slot) = seen.get_mut(arg.index()) {
            if *slot {
                return true;
            }
            *slot = true;
        }
    }
    false
}

fn compare_op(op: LinuxSeccompOperator) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // Handled by the caller, which also has the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(u64::MAX),
    }
}

/// Maps an OCI action to libseccomp's, checking that the kernel implements it.
fn action(
    oci: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
    warnings: &mut Vec<String>,
) -> Result<ScmpAction, SeccompError> {
    let code = || -> Result<u16, SeccompError> {
        let errno = errno_ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(errno)
            .map_err(|_| invalid(errno_field, &format!("{errno} out of range (0 to 65535)")))
    };
    let action = match oci {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(code()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(code()?),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    };
    if errno_ret.is_some()
        && !matches!(
            oci,
            LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
        )
    {
        warnings.push(format!(
            "seccomp: {errno_field}: only used by SCMP_ACT_ERRNO and SCMP_ACT_TRACE, ignored with {oci}"
        ));
    }
    let kernel_action = match oci {
        LinuxSeccompAction::ScmpActKillProcess => {
            Some(("SCMP_ACT_KILL_PROCESS", libc::SECCOMP_RET_KILL_PROCESS))
        }
        LinuxSeccompAction::ScmpActLog => Some(("SCMP_ACT_LOG", libc::SECCOMP_RET_LOG)),
        LinuxSeccompAction::ScmpActNotify => {
            Some(("SCMP_ACT_NOTIFY", libc::SECCOMP_RET_USER_NOTIF))
        }
        _ => None,
    };
    if let Some((name, ret)) = kernel_action {
        if !kernel::action_supported(ret) {
            return Err(SeccompError::UnsupportedAction {
                field: field.to_string(),
                action: name,
            });
        }
    }
    Ok(action)
}

pub(crate) fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

/// The flags passed to seccomp(2): the spec's, NEW_LISTENER for notify
/// filters, and TSYNC_ESRCH where TSYNC and NEW_LISTENER meet (the kernel
/// cannot report a thread id and return a listener fd at once).
fn filter_flags(
    spec: &LinuxSeccomp,
    uses_notify: bool,
    warnings: &mut Vec<String>,
) -> Result<u32, SeccompError> {
    let mut flags = 0;
    for (i, flag) in spec.flags().iter().flatten().enumerate() {
        let field = format!("flags[{i}]");
        let name = flag.to_string();
        let Some(&(name, value)) = kernel::FILTER_FLAGS
            .iter()
            .find(|(known, _)| *known == name)
        else {
            return Err(SeccompError::UnknownValue {
                field,
                kind: "flag",
                value: name,
            });
        };
        if value == kernel::WAIT_KILLABLE_RECV && !uses_notify {
            warnings.push(format!(
                "seccomp: {field}: {name} only affects SCMP_ACT_NOTIFY filters and is ignored"
            ));
            continue;
        }
        if !kernel::filter_flags_supported(value) {
            return Err(SeccompError::UnsupportedFlag { field, flag: name });
        }
        flags |= value;
    }
    if uses_notify {
        flags |= kernel::NEW_LISTENER;
        if flags & kernel::TSYNC != 0 {
            flags |= kernel::TSYNC_ESRCH;
        }
        if !kernel::filter_flags_supported(flags) {
            return Err(invalid("flags", &format!("the kernel does not accept the flag combination {flags:#x} a notify filter needs")));
        }
    }
    Ok(flags)
}

/// Reads libseccomp's BPF program back through a memfd (libseccomp 2.5 can
/// only export to a file descriptor).
fn export(filter: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let export_error = |operation| move |source| SeccompError::Export { operation, source };
    let memfd = memfd_create(c"berth-seccomp-bpf", MFdFlags::MFD_CLOEXEC)
        .map_err(|errno| export_error("memfd_create")(errno.into()))?;
    let mut file = File::from(memfd);
    filter
        .export_bpf(&file)
        .map_err(|source| SeccompError::Libseccomp {
            field: "linux.seccomp".to_string(),
            operation: "exporting the BPF program",
            source,
        })?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .map_err(export_error("seeking the memfd"))?;
    file.read_to_end(&mut bytes)
        .map_err(export_error("reading the memfd"))?;
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    if bytes.len() % INSN != 0 {
        return Err(export_error("parsing the program")(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} bytes is not a whole number of {INSN}-byte instructions",
                bytes.len()
            ),
        )));
    }
    Ok(bytes
        .chunks_exact(INSN)
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

fn invalid(field: &str, reason: &str) -> SeccompError {
    SeccompError::InvalidValue {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

fn libseccomp_error<'a>(
    field: &'a str,
    operation: &'static str,
) -> impl FnOnce(libseccomp::error::SeccompError) -> SeccompError + 'a {
    move |source| SeccompError::Libseccomp {
        field: field.to_string(),
        operation,
        source,
    }
}
