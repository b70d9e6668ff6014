//! The -ENOSYS stub runc prepends to deny-by-default filters.
//!
//! A profile lists the syscalls its author knew. When the kernel is newer
//! (6.x here, libseccomp 2.5), a program that tries a newer syscall such as
//! `clone3` or `fchmodat2` must see ENOSYS to fall back to the old one; the
//! profile's default action (usually EPERM) would make it fail instead. So,
//! for every architecture in the filter, syscall numbers above the largest
//! number the profile names return ENOSYS before libseccomp's program runs.
//! libseccomp cannot express this, hence the hand-assembled BPF.

use libseccomp::{ScmpArch, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction};

use crate::compile::scmp_arch;
use crate::SeccompError;

/// x32 syscalls are x86-64 syscalls with this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// On s390/s390x, syscall 0 multiplexes numbers the kernel does not know.
const S390_MULTIPLEX_SYSCALL: u32 = 0;
const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
const AUDIT_ARCH_X86_64: u32 = Arch::ScmpArchX86_64 as u32;

/// Builds the stub for `spec`, empty where runc adds none: when the default
/// action lets unknown syscalls through (ALLOW, LOG, TRACE) or already
/// returns ENOSYS.
pub(crate) fn stub(spec: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let permissive = matches!(
        spec.default_action(),
        LinuxSeccompAction::ScmpActAllow
            | LinuxSeccompAction::ScmpActLog
            | LinuxSeccompAction::ScmpActTrace
    );
    let enosys_default = spec.default_action() == LinuxSeccompAction::ScmpActErrno
        && spec.default_errno_ret() == Some(libc::ENOSYS as u32);
    if permissive || enosys_default {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = spec
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|rule| rule.names())
        .map(String::as_str)
        .collect();
    let mut archs = vec![ScmpArch::native()];
    archs.extend(
        spec.architectures()
            .iter()
            .flatten()
            .map(|arch| scmp_arch(*arch)),
    );

    // Largest syscall number per kernel architecture, x32 kept apart
    // because it shares x86-64's AUDIT_ARCH value.
    let mut sections: Vec<Section> = Vec::new();
    for arch in archs {
        let arch = if arch == ScmpArch::Native {
            ScmpArch::native()
        } else {
            arch
        };
        let Some(audit) = audit_arch(arch) else {
            continue;
        };
        let max = names
            .iter()
            .filter_map(|name| ScmpSyscall::from_name_by_arch(name, arch).ok())
            .filter_map(|syscall| u32::try_from(syscall.as_raw_syscall()).ok())
            .max();
        let Some(max) = max.filter(|m| *m > 0) else {
            continue;
        };
        let section = match sections.iter_mut().find(|s| s.audit == audit) {
            Some(section) => section,
            None => {
                sections.push(Section {
                    audit,
                    max: None,
                    max_x32: None,
                    s390: matches!(arch, ScmpArch::S390 | ScmpArch::S390X),
                });
                sections.last_mut().ok_or_else(internal)?
            }
        };
        if arch == ScmpArch::X32 {
            section.max_x32 = Some(max);
        } else {
            section.max = Some(max);
        }
    }
    if sections.is_empty() {
        return Ok(Vec::new());
    }
    assemble(&sections)
}

struct Section {
    audit: u32,
    /// Largest syscall of the architecture (x86-64 for AUDIT_ARCH_X86_64).
    max: Option<u32>,
    /// Largest x32 syscall, bit 30 included, when x32 is in the filter.
    max_x32: Option<u32>,
    s390: bool,
}

#[derive(Clone, Copy)]
enum Target {
    Next,
    Section(usize),
    At(usize),
    Enosys,
    Filter,
}

enum Insn {
    LoadArch,
    LoadNr,
    JumpIfEqual(u32, Target, Target),
    JumpIfGreater(u32, Target, Target),
    JumpIfBitsSet(u32, Target, Target),
    Jump(Target),
    ReturnEnosys,
}

/// Lays the stub out as: load arch; one `jeq` per architecture into its
/// section; `ja` to the filter for the rest (libseccomp applies its bad-arch
/// action); the sections; `ret ENOSYS`; then libseccomp's program.
fn assemble(sections: &[Section]) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let mut code = vec![Insn::LoadArch];
    for (i, section) in sections.iter().enumerate() {
        code.push(Insn::JumpIfEqual(
            section.audit,
            Target::Section(i),
            Target::Next,
        ));
    }
    code.push(Insn::Jump(Target::Filter));
    let mut section_start = Vec::with_capacity(sections.len());
    for section in sections {
        section_start.push(code.len());
        code.push(Insn::LoadNr);
        if section.s390 {
            code.push(Insn::JumpIfEqual(
                S390_MULTIPLEX_SYSCALL,
                Target::Enosys,
                Target::Next,
            ));
        }
        match (section.max, section.max_x32) {
            (Some(max), Some(max_x32)) => {
                // Bit 30 set: x32 (compare below), else x86-64.
                let x32_check = code.len() + 2;
                code.push(Insn::JumpIfBitsSet(
                    X32_SYSCALL_BIT,
                    Target::At(x32_check),
                    Target::Next,
                ));
                code.push(Insn::JumpIfGreater(max, Target::Enosys, Target::Filter));
                code.push(Insn::JumpIfGreater(max_x32, Target::Enosys, Target::Filter));
            }
            (Some(max), None) => {
                if section.audit == AUDIT_ARCH_X86_64 {
                    // x32 calls are not x86-64's to judge: leave them to the filter.
                    code.push(Insn::JumpIfBitsSet(
                        X32_SYSCALL_BIT,
                        Target::Filter,
                        Target::Next,
                    ));
                }
                code.push(Insn::JumpIfGreater(max, Target::Enosys, Target::Filter));
            }
            (None, Some(max_x32)) => {
                code.push(Insn::JumpIfBitsSet(
                    X32_SYSCALL_BIT,
                    Target::Next,
                    Target::Filter,
                ));
                code.push(Insn::JumpIfGreater(max_x32, Target::Enosys, Target::Filter));
            }
            (None, None) => code.push(Insn::Jump(Target::Filter)),
        }
    }
    let enosys = code.len();
    code.push(Insn::ReturnEnosys);
    let filter = code.len();

    let resolve = |at: usize, target: Target| -> Result<usize, SeccompError> {
        let to = match target {
            Target::Next => at + 1,
            Target::At(position) => position,
            Target::Section(i) => *section_start.get(i).ok_or_else(internal)?,
            Target::Enosys => enosys,
            Target::Filter => filter,
        };
        to.checked_sub(at + 1).ok_or_else(internal)
    };
    let short = |at: usize, target: Target| -> Result<u8, SeccompError> {
        u8::try_from(resolve(at, target)?).map_err(|_| internal())
    };
    let jump = |op: u32,
                k: u32,
                at: usize,
                jt: Target,
                jf: Target|
     -> Result<libc::sock_filter, SeccompError> {
        Ok(insn(
            libc::BPF_JMP | op | libc::BPF_K,
            short(at, jt)?,
            short(at, jf)?,
            k,
        ))
    };
    code.iter()
        .enumerate()
        .map(|(at, op)| match *op {
            Insn::LoadArch => Ok(insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 4)),
            Insn::LoadNr => Ok(insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0)),
            Insn::JumpIfEqual(k, jt, jf) => jump(libc::BPF_JEQ, k, at, jt, jf),
            Insn::JumpIfGreater(k, jt, jf) => jump(libc::BPF_JGT, k, at, jt, jf),
            Insn::JumpIfBitsSet(k, jt, jf) => jump(libc::BPF_JSET, k, at, jt, jf),
            Insn::Jump(target) => {
                let offset = u32::try_from(resolve(at, target)?).map_err(|_| internal())?;
                Ok(insn(libc::BPF_JMP | libc::BPF_JA, 0, 0, offset))
            }
            Insn::ReturnEnosys => Ok(insn(libc::BPF_RET | libc::BPF_K, 0, 0, RET_ENOSYS)),
        })
        .collect()
}

fn insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    // BPF opcodes are 16 bits wide; the constants combined here all fit.
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The kernel's AUDIT_ARCH value, which oci-spec's `Arch` discriminants
/// carry (SCMP_ARCH_* equals AUDIT_ARCH_* except for x32).
fn audit_arch(arch: ScmpArch) -> Option<u32> {
    let oci = match arch {
        ScmpArch::X86 => Arch::ScmpArchX86,
        ScmpArch::X8664 | ScmpArch::X32 => Arch::ScmpArchX86_64,
        ScmpArch::Arm => Arch::ScmpArchArm,
        ScmpArch::Aarch64 => Arch::ScmpArchAarch64,
        ScmpArch::Loongarch64 => Arch::ScmpArchLoongarch64,
        ScmpArch::M68k => Arch::ScmpArchM68k,
        ScmpArch::Mips => Arch::ScmpArchMips,
        ScmpArch::Mips64 => Arch::ScmpArchMips64,
        ScmpArch::Mips64N32 => Arch::ScmpArchMips64n32,
        ScmpArch::Mipsel => Arch::ScmpArchMipsel,
        ScmpArch::Mipsel64 => Arch::ScmpArchMipsel64,
        ScmpArch::Mipsel64N32 => Arch::ScmpArchMipsel64n32,
        ScmpArch::Ppc => Arch::ScmpArchPpc,
        ScmpArch::Ppc64 => Arch::ScmpArchPpc64,
        ScmpArch::Ppc64Le => Arch::ScmpArchPpc64le,
        ScmpArch::S390 => Arch::ScmpArchS390,
        ScmpArch::S390X => Arch::ScmpArchS390x,
        ScmpArch::Parisc => Arch::ScmpArchParisc,
        ScmpArch::Parisc64 => Arch::ScmpArchParisc64,
        ScmpArch::Riscv64 => Arch::ScmpArchRiscv64,
        ScmpArch::Sh => Arch::ScmpArchSh,
        ScmpArch::Sheb => Arch::ScmpArchSheb,
        _ => return None,
    };
    Some(oci as u32)
}

fn internal() -> SeccompError {
    SeccompError::InvalidValue {
        field: "linux.seccomp".to_string(),
        reason: "the -ENOSYS stub does not fit short BPF jumps".to_string(),
    }
}
