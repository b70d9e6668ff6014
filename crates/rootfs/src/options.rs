//! Mount options of a spec mount (fstab style strings) turned into what the
//! syscalls take: mount(2) flags, propagation changes, mount_setattr(2)
//! attributes for the recursive `r*` options, and the filesystem data string.
//! Pure: no I/O, so every option is unit tested.

use nix::mount::MsFlags;

/// MS_NOSYMFOLLOW (Linux 5.10); nix does not name it.
pub(crate) const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// The atime-related flags: setting one of them replaces the others.
pub(crate) const ATIME_FLAGS: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME)
    .union(MsFlags::MS_NODIRATIME);

/// Recursive attributes for mount_setattr(2) (`rro`, `rnosuid`, …).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecursiveAttrs {
    pub set: u64,
    pub clear: u64,
}

impl RecursiveAttrs {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

/// A spec mount's options, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountOptions {
    /// Flags for mount(2), including MS_BIND / MS_REC for `bind` / `rbind`.
    pub flags: MsFlags,
    /// True when an atime option was given (so the source's must not be kept).
    pub atime_given: bool,
    /// Propagation changes, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    pub recursive: RecursiveAttrs,
    /// `idmap` / `ridmap` were asked for.
    pub idmap: bool,
    /// Everything mount(2) does not know as a flag, comma-joined, for the filesystem.
    pub data: String,
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// Flags beyond those a plain bind uses: those need a remount after a bind.
    pub fn needs_bind_remount(&self) -> bool {
        !(self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)).is_empty()
    }
}

enum Effect {
    Set(MsFlags),
    Clear(MsFlags),
    Atime(MsFlags),
    Propagation(MsFlags),
    RecursiveSet(u64),
    RecursiveClear(u64),
    /// Sets one atime mode recursively (the attribute is a field, not a bit).
    RecursiveAtime(u64),
    Idmap,
    Ignore,
}

fn effect(option: &str) -> Option<Effect> {
    use libc::{
        MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
        MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_RELATIME,
        MOUNT_ATTR_STRICTATIME,
    };
    use Effect::*;
    Some(match option {
        "defaults" => Ignore,
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "nodev" => Set(MsFlags::MS_NODEV),
        "dev" => Clear(MsFlags::MS_NODEV),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "remount" => Set(MsFlags::MS_REMOUNT),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "silent" => Set(MsFlags::MS_SILENT),
        "loud" => Clear(MsFlags::MS_SILENT),
        "acl" => Set(MsFlags::MS_POSIXACL),
        "noacl" => Clear(MsFlags::MS_POSIXACL),
        "iversion" => Set(MsFlags::MS_I_VERSION),
        "noiversion" => Clear(MsFlags::MS_I_VERSION),
        "lazytime" => Set(MsFlags::MS_LAZYTIME),
        "nolazytime" => Clear(MsFlags::MS_LAZYTIME),
        "nosymfollow" => Set(MS_NOSYMFOLLOW),
        "symfollow" => Clear(MS_NOSYMFOLLOW),
        "bind" => Set(MsFlags::MS_BIND),
        "rbind" => Set(MsFlags::MS_BIND | MsFlags::MS_REC),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "noatime" => Atime(MsFlags::MS_NOATIME),
        "relatime" => Atime(MsFlags::MS_RELATIME),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "strictatime" => Atime(MsFlags::MS_STRICTATIME),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "private" => Propagation(MsFlags::MS_PRIVATE),
        "rprivate" => Propagation(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
        "shared" => Propagation(MsFlags::MS_SHARED),
        "rshared" => Propagation(MsFlags::MS_SHARED | MsFlags::MS_REC),
        "slave" => Propagation(MsFlags::MS_SLAVE),
        "rslave" => Propagation(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        "unbindable" => Propagation(MsFlags::MS_UNBINDABLE),
        "runbindable" => Propagation(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
        "rro" => RecursiveSet(MOUNT_ATTR_RDONLY),
        "rrw" => RecursiveClear(MOUNT_ATTR_RDONLY),
        "rnosuid" => RecursiveSet(MOUNT_ATTR_NOSUID),
        "rsuid" => RecursiveClear(MOUNT_ATTR_NOSUID),
        "rnodev" => RecursiveSet(MOUNT_ATTR_NODEV),
        "rdev" => RecursiveClear(MOUNT_ATTR_NODEV),
        "rnoexec" => RecursiveSet(MOUNT_ATTR_NOEXEC),
        "rexec" => RecursiveClear(MOUNT_ATTR_NOEXEC),
        "rnodiratime" => RecursiveSet(MOUNT_ATTR_NODIRATIME),
        "rdiratime" => RecursiveClear(MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => RecursiveSet(MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => RecursiveClear(MOUNT_ATTR_NOSYMFOLLOW),
        "rrelatime" => RecursiveAtime(MOUNT_ATTR_RELATIME),
        "rnoatime" => RecursiveAtime(MOUNT_ATTR_NOATIME),
        "rstrictatime" => RecursiveAtime(MOUNT_ATTR_STRICTATIME),
        // runc: "ratime" / "rnorelatime" / "rnostrictatime" reset to the default, relatime
        "ratime" | "rnorelatime" | "rnostrictatime" => RecursiveAtime(MOUNT_ATTR_RELATIME),
        "idmap" | "ridmap" => Idmap,
        // crun's and podman's extensions that are not mount options at all
        "tmpcopyup" | "notmpcopyup" | "copy-symlink" | "z" | "Z" | "U" => Ignore,
        _ => return None,
    })
}

/// Parses a spec mount's options. Unknown options go to the filesystem as data.
pub(crate) fn parse(options: &[String]) -> MountOptions {
    let mut parsed = MountOptions {
        flags: MsFlags::empty(),
        atime_given: false,
        propagation: Vec::new(),
        recursive: RecursiveAttrs::default(),
        idmap: false,
        data: String::new(),
    };
    let mut data: Vec<&str> = Vec::new();
    for option in options {
        match effect(option) {
            Some(Effect::Set(f)) => parsed.flags |= f,
            // remove(), not `&= !f`: bitflags' complement drops bits nix does not name (MS_NOSYMFOLLOW)
            Some(Effect::Clear(f)) => parsed.flags.remove(f),
            Some(Effect::Atime(f)) => {
                parsed.flags.remove(ATIME_FLAGS - MsFlags::MS_NODIRATIME);
                parsed.flags |= f;
                parsed.atime_given = true;
            }
            Some(Effect::Propagation(f)) => parsed.propagation.push(f),
            Some(Effect::RecursiveSet(a)) => {
                parsed.recursive.set |= a;
                parsed.recursive.clear &= !a;
            }
            Some(Effect::RecursiveClear(a)) => {
                parsed.recursive.clear |= a;
                parsed.recursive.set &= !a;
            }
            Some(Effect::RecursiveAtime(a)) => {
                // the kernel wants the whole atime field cleared before one mode is set
                parsed.recursive.clear |= libc::MOUNT_ATTR__ATIME;
                parsed.recursive.set = (parsed.recursive.set & !libc::MOUNT_ATTR__ATIME) | a;
            }
            Some(Effect::Idmap) => parsed.idmap = true,
            Some(Effect::Ignore) => {}
            None => data.push(option),
        }
        if matches!(option.as_str(), "atime" | "norelatime" | "nostrictatime") {
            parsed.atime_given = true;
        }
    }
    parsed.data = data.join(",");
    parsed
}

/// The propagation flag of `linux.rootfsPropagation`.
pub(crate) fn propagation(name: &str) -> Option<MsFlags> {
    match effect(name) {
        Some(Effect::Propagation(f)) => Some(f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_set_and_clear_in_order() {
        let o = opts(&[
            "nosuid", "noexec", "nodev", "ro", "rw", "exec", "sync", "dirsync", "mand",
        ]);
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_SYNCHRONOUS
                | MsFlags::MS_DIRSYNC
                | MsFlags::MS_MANDLOCK
        );
        assert!(o.data.is_empty());
        assert_eq!(
            opts(&["sync", "async", "suid", "dev"]).flags,
            MsFlags::empty()
        );
    }

    #[test]
    fn bind_rbind_and_remount_need() {
        let o = opts(&["rbind"]);
        assert!(o.is_bind());
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(!o.needs_bind_remount());
        assert!(opts(&["bind", "ro"]).needs_bind_remount());
        assert!(!opts(&["bind", "remount"]).needs_bind_remount());
        assert!(opts(&["remount", "ro"]).flags.contains(MsFlags::MS_REMOUNT));
    }

    #[test]
    fn atime_modes_replace_each_other() {
        let o = opts(&["noatime", "strictatime"]);
        assert_eq!(o.flags, MsFlags::MS_STRICTATIME);
        assert!(o.atime_given);
        let o = opts(&["relatime", "nodiratime"]);
        assert_eq!(o.flags, MsFlags::MS_RELATIME | MsFlags::MS_NODIRATIME);
        let o = opts(&["noatime", "atime"]);
        assert_eq!(o.flags, MsFlags::empty());
        assert!(o.atime_given);
        assert!(!opts(&["ro"]).atime_given);
    }

    #[test]
    fn propagation_in_order() {
        let o = opts(&[
            "rbind",
            "rprivate",
            "shared",
            "slave",
            "unbindable",
            "rslave",
            "rshared",
            "runbindable",
            "private",
        ]);
        assert_eq!(
            o.propagation,
            vec![
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                MsFlags::MS_SHARED,
                MsFlags::MS_SLAVE,
                MsFlags::MS_UNBINDABLE,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                MsFlags::MS_SHARED | MsFlags::MS_REC,
                MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
                MsFlags::MS_PRIVATE,
            ]
        );
        assert_eq!(
            propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("ro"), None);
    }

    #[test]
    fn recursive_attributes() {
        let o = opts(&[
            "rro",
            "rnosuid",
            "rnodev",
            "rnoexec",
            "rnosymfollow",
            "rnoatime",
        ]);
        assert_eq!(
            o.recursive.set,
            libc::MOUNT_ATTR_RDONLY
                | libc::MOUNT_ATTR_NOSUID
                | libc::MOUNT_ATTR_NODEV
                | libc::MOUNT_ATTR_NOEXEC
                | libc::MOUNT_ATTR_NOSYMFOLLOW
                | libc::MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.recursive.clear, libc::MOUNT_ATTR__ATIME);
        let o = opts(&["rro", "rrw", "rexec"]);
        assert_eq!(o.recursive.set, 0);
        assert_eq!(
            o.recursive.clear,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOEXEC
        );
        assert!(opts(&["ro"]).recursive.is_empty());
    }

    #[test]
    fn unknown_options_become_data() {
        let o = opts(&[
            "nosuid",
            "size=65536k",
            "mode=755",
            "uid=1000",
            "gid=5",
            "tmpcopyup",
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID);
        assert_eq!(o.data, "size=65536k,mode=755,uid=1000,gid=5");
        let o = opts(&["newinstance", "ptmxmode=0666", "mode=0620"]);
        assert_eq!(o.data, "newinstance,ptmxmode=0666,mode=0620");
        assert!(opts(&["idmap"]).idmap);
    }
}
