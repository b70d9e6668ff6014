//! Reading and writing cgroupfs files with the path and value in every
//! error.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::CgroupError;

/// Writes `value` to `dir/file` in one `write(2)`, as cgroupfs expects.
/// The file is opened for appending (like `echo … >>`): cgroupfs ignores
/// the offset, and a fake cgroupfs in tests keeps every write in order.
pub(crate) fn write(dir: &Path, file: &str, value: impl ToString) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let value = value.to_string();
    write_path(&path, &value)
}

pub(crate) fn write_path(path: &Path, value: &str) -> Result<(), CgroupError> {
    let result = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    result.map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// Like [`write`], but a file the kernel does not have is skipped, the way
/// runc skips optional knobs (kernel memory, burst, idle).
pub(crate) fn write_if_exists(
    dir: &Path,
    file: &str,
    value: impl ToString,
) -> Result<bool, CgroupError> {
    let path = dir.join(file);
    if !path.exists() {
        return Ok(false);
    }
    write(dir, file, value)?;
    Ok(true)
}

pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a file that may legitimately be absent (an optional counter).
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn parse_u64(path: &Path, raw: &str) -> Result<u64, CgroupError> {
    let s = raw.trim();
    if s == "max" {
        return Ok(u64::MAX);
    }
    // v1 reports "unlimited" for some counters as -1.
    if s == "-1" {
        return Ok(u64::MAX);
    }
    s.parse()
        .map_err(|e: std::num::ParseIntError| CgroupError::Parse {
            path: path.to_path_buf(),
            value: s.to_string(),
            reason: e.to_string(),
        })
}

/// Reads a single number; "max" reads as `u64::MAX`.
pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    parse_u64(path, &read(path)?)
}

/// Reads a single number from an optional file; absent reads as 0.
pub(crate) fn read_u64_or_zero(path: &Path) -> Result<u64, CgroupError> {
    match read_optional(path)? {
        Some(s) => parse_u64(path, &s),
        None => Ok(0),
    }
}

/// Reads a space separated list of numbers (`cpuacct.usage_percpu`).
pub(crate) fn read_u64_list(path: &Path) -> Result<Vec<u64>, CgroupError> {
    match read_optional(path)? {
        Some(s) => s.split_whitespace().map(|v| parse_u64(path, v)).collect(),
        None => Ok(Vec::new()),
    }
}

/// Reads a flat keyed file of `key value` lines (`memory.stat`,
/// `cpu.stat`, `memory.events`); an absent file reads as empty.
pub(crate) fn read_keyed(path: &Path) -> Result<BTreeMap<String, u64>, CgroupError> {
    let mut map = BTreeMap::new();
    let Some(text) = read_optional(path)? else {
        return Ok(map);
    };
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        map.insert(key.to_string(), parse_u64(path, value)?);
    }
    Ok(map)
}

/// Parses `MAJ:MIN` from a blkio/io line.
pub(crate) fn parse_dev(path: &Path, s: &str) -> Result<(u64, u64), CgroupError> {
    let err = || CgroupError::Parse {
        path: path.to_path_buf(),
        value: s.to_string(),
        reason: "expected MAJOR:MINOR".to_string(),
    };
    let (major, minor) = s.split_once(':').ok_or_else(err)?;
    Ok((
        major.parse().map_err(|_| err())?,
        minor.parse().map_err(|_| err())?,
    ))
}

/// Reads the pids in `cgroup.procs` of `dir` and of every cgroup below it.
pub(crate) fn pids_recursive(dir: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let procs = d.join("cgroup.procs");
        let text = match fs::read_to_string(&procs) {
            Ok(t) => t,
            // A child cgroup removed while we walk is not an error.
            Err(e) if e.kind() == io::ErrorKind::NotFound && d != dir => continue,
            Err(source) => {
                return Err(CgroupError::Read {
                    path: procs,
                    source,
                })
            }
        };
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            pids.push(line.parse().map_err(|_| CgroupError::Parse {
                path: procs.clone(),
                value: line.to_string(),
                reason: "expected a pid".to_string(),
            })?);
        }
        stack.extend(child_cgroups(&d)?);
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// The child cgroup directories of `dir`.
pub(crate) fn child_cgroups(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| CgroupError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Creates `dir` and any missing parents; an existing directory is fine.
pub(crate) fn mkdir_all(dir: &Path) -> Result<(), CgroupError> {
    fs::create_dir_all(dir).map_err(|source| CgroupError::Mkdir {
        path: dir.to_path_buf(),
        source,
    })
}

/// How long one `destroy` keeps retrying `EBUSY`, over all hierarchies.
pub(crate) const REMOVE_PATIENCE: Duration = Duration::from_millis(500);

/// Removes the cgroup at `dir` and the cgroups below it, deepest first.
///
/// The usual cgroup has no children, so its `rmdir` is tried first and the
/// directory is listed only when that fails: a listing costs an open, a
/// stat and two getdents per hierarchy, a quarter of a millisecond of each
/// container's exit on a v1 host.
///
/// A cgroup's `rmdir` fails with `EBUSY` for a moment after its last
/// process exited (the kernel frees it asynchronously), and for as long as
/// it has children, so removal is retried until `deadline`, the children
/// removed first; one deadline is shared by all the hierarchies of a
/// destroy, so that a cgroup that still has processes fails in bounded
/// time. A directory that is already gone is fine.
pub(crate) fn remove_cgroup_tree(dir: &Path, deadline: Instant) -> Result<(), CgroupError> {
    match fs::remove_dir(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) => {}
    }
    for child in child_cgroups(dir)? {
        remove_cgroup_tree(&child, deadline)?;
    }
    let mut delay = Duration::from_millis(1);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}
