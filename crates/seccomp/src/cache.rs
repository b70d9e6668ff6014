//! An on-disk cache of compiled programs.
//!
//! libseccomp needs tens of milliseconds for a Docker-sized profile on three
//! architectures (rule database plus BPF generation), more than the rest of
//! a container start. Engines pass the same profile to every container, so
//! the compiled program is kept in a file named by a hash of everything the
//! result depends on: the spec, this crate's version, the libseccomp version
//! and the kernel (which decides what actions and flags are available).
//! crun keeps a similar cache.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use crate::{compile, SeccompError, SeccompProgram};

const MAGIC: &[u8; 8] = b"BSECCMP1";
const INSN: usize = 8;

/// Like [`compile`], but reuses a program compiled earlier for the same
/// spec on the same kernel and libseccomp from `cache_dir` (created when
/// missing). A missing or damaged entry is compiled again and rewritten;
/// when the entry cannot be written the program is still returned, with a
/// warning saying why.
pub fn compile_cached(
    spec: &LinuxSeccomp,
    cache_dir: &Path,
) -> Result<SeccompProgram, SeccompError> {
    let path = entry_path(spec, cache_dir)?;
    if let Some(program) = fs::read(&path).ok().and_then(|bytes| decode(&bytes)) {
        return Ok(program);
    }
    let mut program = compile(spec)?;
    if let Err(err) = store(&path, &encode(&program)) {
        program.warnings.push(format!(
            "seccomp: cache {}: not written: {err}",
            path.display()
        ));
    }
    Ok(program)
}

fn entry_path(spec: &LinuxSeccomp, cache_dir: &Path) -> Result<PathBuf, SeccompError> {
    let spec_json = serde_json::to_vec(spec).map_err(|source| SeccompError::Malformed {
        field: "linux.seccomp".to_string(),
        source,
    })?;
    let libseccomp = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let kernel = nix::sys::utsname::uname()
        .map(|u| {
            format!(
                "{} {}",
                u.release().to_string_lossy(),
                u.version().to_string_lossy()
            )
        })
        .unwrap_or_default();
    let mut hash = Sha256::new();
    for part in [
        env!("CARGO_PKG_VERSION").as_bytes(),
        libseccomp.as_bytes(),
        kernel.as_bytes(),
        &spec_json,
    ] {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    Ok(cache_dir.join(format!("{}.bpf", hex::encode(hash.finalize()))))
}

/// MAGIC, flags (u32), uses_notify (u8), instruction count (u32), the
/// instructions (code u16, jt u8, jf u8, k u32), then the warnings as JSON.
fn encode(program: &SeccompProgram) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + program.instructions.len() * INSN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&program.flags.to_le_bytes());
    out.push(u8::from(program.uses_notify));
    // compile() caps programs at 4096 instructions.
    out.extend_from_slice(&(program.instructions.len() as u32).to_le_bytes());
    for insn in &program.instructions {
        out.extend_from_slice(&insn.code.to_le_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_le_bytes());
    }
    // A Vec<String> always serialises.
    out.extend_from_slice(&serde_json::to_vec(&program.warnings).unwrap_or_default());
    out
}

fn decode(bytes: &[u8]) -> Option<SeccompProgram> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (flags, rest) = rest.split_first_chunk::<4>()?;
    let (uses_notify, rest) = rest.split_first()?;
    let (count, rest) = rest.split_first_chunk::<4>()?;
    let count = usize::try_from(u32::from_le_bytes(*count)).ok()?;
    if count == 0 || count > 4096 || rest.len() < count * INSN {
        return None;
    }
    let (code, warnings) = rest.split_at(count * INSN);
    let instructions = code
        .chunks_exact(INSN)
        .map(|b| libc::sock_filter {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect();
    Some(SeccompProgram {
        instructions,
        flags: u32::from_le_bytes(*flags),
        uses_notify: *uses_notify != 0,
        warnings: serde_json::from_slice(warnings).ok()?,
    })
}

/// Writes the entry atomically: concurrent container starts either see the
/// whole file or none.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut file = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.persist(path).map_err(|err| err.error)?;
    Ok(())
}
