//! The cgroup v2 device controller: an eBPF program of type
//! `BPF_PROG_TYPE_CGROUP_DEVICE` attached to the cgroup directory.
//!
//! The program is assembled by hand and loaded with the raw `bpf(2)`
//! syscall. It is a straight list of compare-and-jump blocks, about ten
//! instructions per rule, with no maps, helpers or BTF; an eBPF toolkit
//! (aya, libbpf) would bring an ELF loader, BTF handling and a large build
//! for that, which is what runc and crun avoid too.
//!
//! The kernel calls the program with a `struct bpf_cgroup_dev_ctx`:
//! `access_type` (device kind in the low 16 bits, access bits in the high
//! 16), `major`, `minor`. It returns 1 to allow and 0 to deny.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::{DeviceKind, DeviceRule, ACC_ALL};
use crate::CgroupError;

/// `BPF_DEVCG_DEV_BLOCK` and `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One eBPF instruction as the kernel lays it out (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u8,
    /// dst register in the low nibble, src register in the high nibble.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes used (class | op | source).
pub(crate) const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
pub(crate) const ALU32_AND_K: u8 = 0x54; // dst = (u32)(dst & imm)
pub(crate) const ALU32_RSH_K: u8 = 0x74; // dst = (u32)(dst >> imm)
pub(crate) const ALU64_MOV_K: u8 = 0xb7; // dst = imm
pub(crate) const ALU64_MOV_X: u8 = 0xbf; // dst = src
pub(crate) const JMP_JNE_K: u8 = 0x55; // if dst != imm: pc += off
pub(crate) const JMP_JEQ_K: u8 = 0x15; // if dst == imm: pc += off
pub(crate) const JMP_EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

// Registers: r1 = ctx on entry, then scratch; r2 = kind, r3 = access,
// r4 = major, r5 = minor; r0 = result.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// Whether a rule matches every request, so that rules before it (and the
/// default) can never be reached.
fn matches_everything(rule: &DeviceRule) -> bool {
    rule.kind == DeviceKind::All
        && rule.major.is_none()
        && rule.minor.is_none()
        && rule.access == ACC_ALL
}

/// Assembles the program for `rules`. As in the OCI spec (and v1's
/// devices.allow/deny sequence), a later rule overrides an earlier one, so
/// rules are tested last to first and the first match decides; nothing
/// matching is denied. An allow rule matches when it grants every access
/// bit requested; a deny rule when it covers any of them.
pub(crate) fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    let mut default_allow = false;
    for rule in rules.iter().rev() {
        if matches_everything(rule) {
            default_allow = rule.allow;
            break;
        }
        // Jumps in a block all go to the next block; `off` is fixed below.
        let mut block: Vec<(Insn, bool)> = Vec::new();
        match rule.kind {
            DeviceKind::All => {}
            DeviceKind::Block => block.push((insn(JMP_JNE_K, R2, 0, 0, DEV_BLOCK), true)),
            DeviceKind::Char => block.push((insn(JMP_JNE_K, R2, 0, 0, DEV_CHAR), true)),
        }
        if rule.access != ACC_ALL || !rule.allow {
            block.push((insn(ALU64_MOV_X, R1, R3, 0, 0), false));
            if rule.allow {
                // Requested bits outside the rule's: not this rule.
                block.push((
                    insn(ALU32_AND_K, R1, 0, 0, !(rule.access as i32) & 0xffff),
                    false,
                ));
                block.push((insn(JMP_JNE_K, R1, 0, 0, 0), true));
            } else {
                block.push((insn(ALU32_AND_K, R1, 0, 0, rule.access as i32), false));
                block.push((insn(JMP_JEQ_K, R1, 0, 0, 0), true));
            }
        }
        if let Some(major) = rule.major {
            block.push((insn(JMP_JNE_K, R4, 0, 0, major as i32), true));
        }
        if let Some(minor) = rule.minor {
            block.push((insn(JMP_JNE_K, R5, 0, 0, minor as i32), true));
        }
        block.push((insn(ALU64_MOV_K, R0, 0, 0, i32::from(rule.allow)), false));
        block.push((insn(JMP_EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, to_next)) in block.into_iter().enumerate() {
            if to_next {
                // Blocks are a dozen instructions: the offset fits in i16.
                ins.off = (len - i - 1) as i16;
            }
            prog.push(ins);
        }
    }
    prog.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(default_allow)));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    prog
}

// bpf(2) commands and constants from <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr`, written field by field at the kernel's offsets. The
/// kernel requires the bytes it does not know to be zero, which a zeroed
/// buffer gives.
#[repr(C, align(8))]
struct BpfAttr([u8; 128]);

impl BpfAttr {
    fn new() -> Self {
        BpfAttr([0; 128])
    }
    fn u32_at(&mut self, offset: usize, v: u32) -> &mut Self {
        self.0[offset..offset + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64_at(&mut self, offset: usize, v: u64) -> &mut Self {
        self.0[offset..offset + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn read_u32(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[offset..offset + 4]);
        u32::from_ne_bytes(b)
    }
}

fn bpf(cmd: libc::c_int, attr: &mut BpfAttr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, writable 128-byte bpf_attr for the whole
    // call; every pointer stored in it (instructions, license, log, id
    // array) points at memory the caller keeps alive across this call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.0.as_mut_ptr(),
            std::mem::size_of::<BpfAttr>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `bpf(2)` for the commands that return a new descriptor
/// (`BPF_PROG_LOAD`, `BPF_PROG_GET_FD_BY_ID`).
fn bpf_fd(cmd: libc::c_int, attr: &mut BpfAttr) -> io::Result<OwnedFd> {
    debug_assert!(cmd == BPF_PROG_LOAD || cmd == BPF_PROG_GET_FD_BY_ID);
    let raw =
        RawFd::try_from(bpf(cmd, attr)?).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: for these commands a successful bpf(2) returns a descriptor
    // the kernel just created for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Loads the program. The verifier's log is only asked for when a load
/// fails: with logging on, a long rule list can overflow any fixed log
/// buffer (ENOSPC) and fail a load that would have succeeded.
fn load(prog: &[Insn], cgroup: &Path) -> Result<OwnedFd, CgroupError> {
    let license = c"Apache-2.0";
    let attr_for = |log: Option<&mut Vec<u8>>| {
        let mut attr = BpfAttr::new();
        attr.u32_at(0, BPF_PROG_TYPE_CGROUP_DEVICE)
            .u32_at(4, prog.len() as u32)
            .u64_at(8, prog.as_ptr() as u64)
            .u64_at(16, license.as_ptr() as u64);
        if let Some(log) = log {
            attr.u32_at(24, 1)
                .u32_at(28, log.len() as u32)
                .u64_at(32, log.as_mut_ptr() as u64);
        }
        attr.0[48..56].copy_from_slice(b"berthdev");
        attr
    };
    let source = match bpf_fd(BPF_PROG_LOAD, &mut attr_for(None)) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; 256 * 1024];
    let verifier_log = match bpf_fd(BPF_PROG_LOAD, &mut attr_for(Some(&mut log))) {
        // Loaded the second time after all (a transient failure).
        Ok(fd) => return Ok(fd),
        Err(_) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            String::from_utf8_lossy(&log[..end]).trim().to_string()
        }
    };
    Err(CgroupError::BpfLoad {
        path: cgroup.to_path_buf(),
        verifier_log,
        source,
    })
}

/// Ids and attach flags of the device programs on the cgroup itself.
fn query(cgroup_fd: RawFd, cgroup: &Path) -> Result<(Vec<u32>, u32), CgroupError> {
    let mut ids = vec![0u32; 64];
    let mut attr = BpfAttr::new();
    attr.u32_at(0, cgroup_fd as u32)
        .u32_at(4, BPF_CGROUP_DEVICE)
        .u64_at(16, ids.as_mut_ptr() as u64)
        .u32_at(24, ids.len() as u32);
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|source| CgroupError::Bpf {
        syscall: "bpf(BPF_PROG_QUERY)",
        path: cgroup.to_path_buf(),
        source,
    })?;
    let flags = attr.read_u32(12);
    let count = (attr.read_u32(24) as usize).min(ids.len());
    ids.truncate(count);
    Ok((ids, flags))
}

/// Loads the device program for `rules` and attaches it to the cgroup at
/// `dir`, replacing the one a previous call attached, so that `update`
/// never leaves a window with no device filter.
pub(crate) fn attach(dir: &Path, rules: &[DeviceRule]) -> Result<(), CgroupError> {
    let cgroup = File::open(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let prog_fd = load(&program(rules), dir)?;
    let (old_ids, old_flags) = query(cgroup.as_raw_fd(), dir)?;
    let bpf_err = |syscall, source| CgroupError::Bpf {
        syscall,
        path: dir.to_path_buf(),
        source,
    };
    // A program attached without BPF_F_ALLOW_MULTI (by another manager)
    // is replaced by attaching with the same flags; otherwise the new
    // program goes next to the old ones, which are then detached.
    let flags = if old_ids.is_empty() || old_flags & BPF_F_ALLOW_MULTI != 0 {
        BPF_F_ALLOW_MULTI
    } else {
        old_flags
    };
    let mut attr = BpfAttr::new();
    attr.u32_at(0, cgroup.as_raw_fd() as u32)
        .u32_at(4, prog_fd.as_raw_fd() as u32)
        .u32_at(8, BPF_CGROUP_DEVICE)
        .u32_at(12, flags);
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| bpf_err("bpf(BPF_PROG_ATTACH)", e))?;
    if flags != BPF_F_ALLOW_MULTI {
        return Ok(());
    }
    for id in old_ids {
        let mut attr = BpfAttr::new();
        attr.u32_at(0, id);
        let old = match bpf_fd(BPF_PROG_GET_FD_BY_ID, &mut attr) {
            Ok(fd) => fd,
            // Detached by someone else meanwhile.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(bpf_err("bpf(BPF_PROG_GET_FD_BY_ID)", e)),
        };
        let mut attr = BpfAttr::new();
        attr.u32_at(0, cgroup.as_raw_fd() as u32)
            .u32_at(4, old.as_raw_fd() as u32)
            .u32_at(8, BPF_CGROUP_DEVICE);
        match bpf(BPF_PROG_DETACH, &mut attr) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(bpf_err("bpf(BPF_PROG_DETACH)", e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{rule, ACC_MKNOD, ACC_READ, ACC_WRITE};
    use super::*;

    /// Runs the program the way the kernel would, for the instructions the
    /// assembler emits, and returns r0.
    fn run(prog: &[Insn], kind: i32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            assert!(dst <= 10 && src <= 10);
            let mut next = pc + 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & (i.imm as u32)),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                ALU64_MOV_X => r[dst] = r[src],
                JMP_JNE_K | JMP_JEQ_K => {
                    let eq = r[dst] == i.imm as i64 as u64;
                    if eq == (i.code == JMP_JEQ_K) {
                        next = (pc as i64 + 1 + i64::from(i.off)) as usize;
                    }
                }
                JMP_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc = next;
            assert!(pc < prog.len(), "ran off the end");
        }
        panic!("no exit");
    }

    #[test]
    fn default_container_rules_allow_null_and_deny_disks() {
        let rules = vec![
            rule(false, DeviceKind::All, None, None, ACC_ALL),
            rule(true, DeviceKind::Char, Some(1), Some(3), ACC_ALL),
            rule(
                true,
                DeviceKind::Char,
                Some(136),
                None,
                ACC_READ | ACC_WRITE,
            ),
            rule(true, DeviceKind::Char, Some(1), Some(5), ACC_READ),
        ];
        let p = program(&rules);
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&p, DEV_CHAR, rw, 1, 3), 1, "/dev/null rw");
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 1, 3), 1, "mknod /dev/null");
        assert_eq!(run(&p, DEV_CHAR, rw, 136, 7), 1, "a pty");
        assert_eq!(run(&p, DEV_CHAR, ACC_MKNOD, 136, 7), 0, "no mknod of ptys");
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 5), 1, "read /dev/zero");
        assert_eq!(run(&p, DEV_CHAR, rw, 1, 5), 0, "write /dev/zero");
        assert_eq!(
            run(&p, DEV_BLOCK, ACC_READ, 1, 3),
            0,
            "block 1:3 is another device"
        );
        assert_eq!(run(&p, DEV_BLOCK, ACC_READ, 8, 0), 0, "a disk");
    }

    #[test]
    fn later_rules_override_earlier_ones() {
        let rules = vec![
            rule(true, DeviceKind::All, None, None, ACC_ALL),
            rule(false, DeviceKind::Char, Some(1), Some(3), ACC_WRITE),
        ];
        let p = program(&rules);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1, "read still allowed");
        assert_eq!(
            run(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3),
            0,
            "write denied"
        );
        assert_eq!(
            run(&p, DEV_BLOCK, ACC_WRITE, 8, 0),
            1,
            "everything else allowed"
        );
        // Nothing at all: deny everything.
        assert_eq!(run(&program(&[]), DEV_CHAR, ACC_READ, 1, 3), 0);
        // A trailing allow-all makes the rules before it unreachable.
        let p = program(&[
            rule(false, DeviceKind::Char, Some(1), Some(3), ACC_ALL),
            rule(true, DeviceKind::All, None, None, ACC_ALL),
        ]);
        assert_eq!(p.len(), 8);
        assert_eq!(run(&p, DEV_CHAR, ACC_READ, 1, 3), 1);
    }

    #[test]
    fn instructions_have_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let i = insn(LDX_MEM_W, R4, R1, 4, 0);
        assert_eq!((i.code, i.regs, i.off), (0x61, 0x14, 4));
    }
}
