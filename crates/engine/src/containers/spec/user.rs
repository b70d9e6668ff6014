//! `--user name|uid[:group|gid]` and `--group-add`, resolved against the
//! container's own /etc/passwd and /etc/group like Docker (moby/sys/user's
//! `GetExecUser` and `GetAdditionalGroups`).

use std::io::Read;
use std::path::Path;

use oci_spec::runtime::User;

use super::SpecError;

/// The highest uid/gid Docker accepts (moby/sys/user's `maxID`).
const MAX_ID: i64 = i32::MAX as i64;

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// The two files, read from the rootfs (`None` where the image has none).
#[derive(Debug, Default)]
pub(crate) struct UserDb {
    passwd: Option<String>,
    group: Option<String>,
}

impl UserDb {
    /// Reads `/etc/passwd` and `/etc/group` inside `rootfs`, resolving
    /// symlinks as the container would see them: an image cannot make berth
    /// read a host file by linking to it.
    pub(crate) fn read(rootfs: &Path) -> Result<Self, SpecError> {
        Ok(Self {
            passwd: read_in_root(rootfs, "etc/passwd")?,
            group: read_in_root(rootfs, "etc/group")?,
        })
    }

    #[cfg(test)]
    pub(crate) fn from_strings(passwd: Option<&str>, group: Option<&str>) -> Self {
        Self {
            passwd: passwd.map(str::to_string),
            group: group.map(str::to_string),
        }
    }

    fn users(&self) -> impl Iterator<Item = PasswdEntry> + '_ {
        lines(self.passwd.as_deref()).filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
    }

    fn groups(&self) -> impl Iterator<Item = GroupEntry> + '_ {
        lines(self.group.as_deref()).filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|l| {
                        l.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
    }

    /// The process user for `spec` (`""` = root) plus `group_add`: uid,
    /// primary gid, and additional gids (the primary first, then the
    /// groups that list the user, then `--group-add`), as Docker sets them.
    pub(crate) fn resolve(&self, spec: &str, group_add: &[String]) -> Result<User, SpecError> {
        let (user_arg, group_arg) = match spec.split_once(':') {
            Some((u, g)) => (u.trim(), Some(g.trim())),
            None => (spec.trim(), None),
        };
        let group_arg = group_arg.filter(|g| !g.is_empty());
        let uid_num = user_arg.parse::<i64>().ok();
        let found = self.users().find(|u| match (user_arg, uid_num) {
            ("", _) => u.uid == 0,
            (_, Some(n)) => i64::from(u.uid) == n,
            (name, None) => u.name == name,
        });
        let (mut uid, mut gid, matched_name) = (0u32, 0u32, found.as_ref().map(|u| u.name.clone()));
        match (&found, uid_num) {
            (Some(u), _) => {
                uid = u.uid;
                gid = u.gid;
            }
            (None, _) if user_arg.is_empty() => {}
            (None, Some(n)) => uid = id_in_range(n, "--user")?,
            (None, None) => {
                return Err(SpecError::UserNotFound {
                    user: user_arg.to_string(),
                })
            }
        }
        let mut supplementary = Vec::new();
        match group_arg {
            Some(g) => {
                let gid_num = g.parse::<i64>().ok();
                let hit = self.groups().find(|e| match gid_num {
                    Some(n) => i64::from(e.gid) == n,
                    None => e.name == g,
                });
                gid = match (hit, gid_num) {
                    (Some(e), _) => e.gid,
                    (None, Some(n)) => id_in_range(n, "--user")?,
                    (None, None) => {
                        return Err(SpecError::GroupNotFound {
                            group: g.to_string(),
                        })
                    }
                };
            }
            // Membership only counts in the implicit form (no `:group`).
            None => {
                if let Some(name) = &matched_name {
                    supplementary = self
                        .groups()
                        .filter(|e| e.members.iter().any(|m| m == name))
                        .map(|e| e.gid)
                        .collect();
                }
            }
        }
        let mut additional = vec![gid];
        additional.extend(supplementary);
        additional.extend(self.additional_groups(group_add)?);
        let mut user = User::default();
        user.set_uid(uid)
            .set_gid(gid)
            .set_additional_gids(Some(additional));
        Ok(user)
    }

    /// `--group-add` names or gids; a numeric gid need not exist.
    fn additional_groups(&self, group_add: &[String]) -> Result<Vec<u32>, SpecError> {
        let mut out: Vec<u32> = Vec::new();
        for want in group_add {
            let want = want.trim();
            let hit = self
                .groups()
                .find(|g| (g.name == want || g.gid.to_string() == want) && !out.contains(&g.gid));
            let gid = match hit {
                Some(g) => g.gid,
                None => match want.parse::<i64>() {
                    Ok(n) => id_in_range(n, "--group-add")?,
                    Err(_) => {
                        return Err(SpecError::GroupNotFound {
                            group: want.to_string(),
                        })
                    }
                },
            };
            if !out.contains(&gid) {
                out.push(gid);
            }
        }
        Ok(out)
    }
}

fn id_in_range(n: i64, flag: &str) -> Result<u32, SpecError> {
    if (0..=MAX_ID).contains(&n) {
        // The range check above makes the conversion lossless.
        Ok(n as u32)
    } else {
        Err(SpecError::invalid(format!(
            "uids and gids must be in range 0-{MAX_ID}: {flag} has {n}"
        )))
    }
}

/// The colon-separated fields of each non-empty, non-comment line.
fn lines(content: Option<&str>) -> impl Iterator<Item = Vec<&str>> {
    content
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::trim).collect())
}

/// The content of `relative` inside `root`, or `None` when it does not exist.
pub(crate) fn read_in_root(root: &Path, relative: &str) -> Result<Option<String>, SpecError> {
    let display = root.join(relative);
    let fd = match berth_rootfs::open_in_root(root, Path::new(relative), None) {
        Ok(fd) => fd,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => {
            let source = match e.errno() {
                Some(errno) => std::io::Error::from(errno),
                None => std::io::Error::other(e.to_string()),
            };
            return Err(SpecError::io(
                "opening inside the container's root",
                display,
                source,
            ));
        }
    };
    // The fd is O_PATH: reopen it through /proc for reading.
    use std::os::fd::AsRawFd;
    let mut file = std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| SpecError::io("reading", &display, e))?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| SpecError::io("reading", &display, e))?;
    Ok(Some(text))
}

fn is_not_found(e: &berth_rootfs::RootfsError) -> bool {
    matches!(
        e.errno(),
        Some(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1::/:/bin/false\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
        \n\
        bob:x:1001:100::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        users:x:100:\n\
        alice:x:1000:\n\
        audio:x:29:alice,bob\n\
        video:x:44: bob \n\
        staff:x:50:\n";

    fn db() -> UserDb {
        UserDb::from_strings(Some(PASSWD), Some(GROUP))
    }

    fn resolve(spec: &str, add: &[&str]) -> Result<(u32, u32, Vec<u32>), SpecError> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        let u = db().resolve(spec, &add)?;
        Ok((
            u.uid(),
            u.gid(),
            u.additional_gids().clone().unwrap_or_default(),
        ))
    }

    #[test]
    fn default_is_root() {
        assert_eq!(resolve("", &[]).unwrap(), (0, 0, vec![0]));
        let empty = UserDb::default().resolve("", &[]).unwrap();
        assert_eq!((empty.uid(), empty.gid()), (0, 0));
    }

    #[test]
    fn by_name_with_memberships() {
        assert_eq!(resolve("alice", &[]).unwrap(), (1000, 1000, vec![1000, 29]));
        assert_eq!(resolve("bob", &[]).unwrap(), (1001, 100, vec![100, 29, 44]));
    }

    #[test]
    fn numeric_forms() {
        assert_eq!(resolve("1000", &[]).unwrap(), (1000, 1000, vec![1000, 29]));
        // Unknown numeric uid: root's group, no memberships.
        assert_eq!(resolve("4242", &[]).unwrap(), (4242, 0, vec![0]));
        assert_eq!(resolve("4242:4343", &[]).unwrap(), (4242, 4343, vec![4343]));
    }

    #[test]
    fn explicit_group_drops_memberships() {
        assert_eq!(resolve("alice:staff", &[]).unwrap(), (1000, 50, vec![50]));
        assert_eq!(resolve("bob:44", &[]).unwrap(), (1001, 44, vec![44]));
    }

    #[test]
    fn group_add() {
        assert_eq!(
            resolve("alice", &["staff", "7777", "50"]).unwrap(),
            (1000, 1000, vec![1000, 29, 50, 7777])
        );
        let e = resolve("alice", &["nosuch"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group nosuch: no matching entries in group file"
        );
    }

    #[test]
    fn unknown_names() {
        let e = resolve("mallory", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find user mallory: no matching entries in passwd file"
        );
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
        let e = resolve("alice:wheel", &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find group wheel: no matching entries in group file"
        );
        // No passwd file at all: names cannot resolve, numbers can.
        let none = UserDb::default();
        assert!(matches!(
            none.resolve("alice", &[]),
            Err(SpecError::UserNotFound { .. })
        ));
        assert_eq!(none.resolve("5:6", &[]).unwrap().uid(), 5);
        assert!(resolve("-1", &[]).is_err());
        assert!(resolve("1:99999999999", &[]).is_err());
    }

    #[test]
    fn reads_inside_root_only() {
        let tmp = berth_testutil::TempDir::new("spec-user").unwrap();
        let root = tmp.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let outside = tmp.join("secret");
        std::fs::write(&outside, "evil:x:0:0::/:/bin/sh\n").unwrap();
        // An absolute link resolves inside the root, where nothing is.
        std::os::unix::fs::symlink(&outside, root.join("etc/passwd")).unwrap();
        assert_eq!(read_in_root(&root, "etc/passwd").unwrap(), None);
        std::fs::write(root.join("etc/group"), "g:x:5:\n").unwrap();
        assert_eq!(
            read_in_root(&root, "etc/group").unwrap().as_deref(),
            Some("g:x:5:\n")
        );
        let db = UserDb::read(&root).unwrap();
        assert!(db.resolve("evil", &[]).is_err());
    }
}
