//! The v1 device controller's state, emulated, so that an update writes
//! only the difference instead of resetting to "deny all" first.
//!
//! Resetting (`a` into devices.deny) is refused by the kernel once the
//! cgroup has child cgroups (EINVAL), and on a running container it opens
//! a window in which every device open fails. runc emulates the kernel's
//! state for the same reason.

use super::{DeviceKind, DeviceRule};

/// One entry of the kernel's exception list: exact match on kind and
/// numbers, `None` being the `*` wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Exception {
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

impl Exception {
    fn same_device(&self, other: &Exception) -> bool {
        self.kind == other.kind && self.major == other.major && self.minor == other.minor
    }

    fn line(&self, access: u32) -> String {
        DeviceRule {
            allow: true,
            kind: self.kind,
            major: self.major,
            minor: self.minor,
            access,
        }
        .v1_line()
    }
}

/// The default behaviour plus exceptions, as the kernel keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceState {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

impl DeviceState {
    /// The state the OCI rules produce when replayed onto "deny all".
    pub(crate) fn from_rules(rules: &[DeviceRule]) -> DeviceState {
        let mut state = DeviceState {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for rule in rules {
            state.apply(rule);
        }
        state
    }

    /// What the kernel does for one write (devcgroup_update_access): `a`
    /// resets the default and drops all exceptions; a rule agreeing with
    /// the default removes access from an exception, one disagreeing adds
    /// an exception.
    fn apply(&mut self, rule: &DeviceRule) {
        if rule.kind == DeviceKind::All {
            self.default_allow = rule.allow;
            self.exceptions.clear();
            return;
        }
        let ex = Exception {
            kind: rule.kind,
            major: rule.major,
            minor: rule.minor,
            access: rule.access,
        };
        if rule.allow == self.default_allow {
            for e in self.exceptions.iter_mut().filter(|e| e.same_device(&ex)) {
                e.access &= !ex.access;
            }
            self.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = self.exceptions.iter_mut().find(|e| e.same_device(&ex)) {
            e.access |= ex.access;
        } else {
            self.exceptions.push(ex);
        }
    }

    /// Parses `devices.list`. In allow-by-default mode the kernel shows
    /// only `a *:* rwm` and hides the deny exceptions, so that state is
    /// not fully known: `None`.
    pub(crate) fn parse_list(text: &str) -> Option<DeviceState> {
        let mut exceptions = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let mut fields = line.split_whitespace();
            let (Some(kind), Some(numbers), Some(access)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return None;
            };
            let kind = match kind {
                "a" => return None,
                "b" => DeviceKind::Block,
                "c" => DeviceKind::Char,
                _ => return None,
            };
            let (major, minor) = numbers.split_once(':')?;
            let number = |s: &str| -> Option<Option<u32>> {
                if s == "*" {
                    Some(None)
                } else {
                    s.parse().ok().map(Some)
                }
            };
            let mut bits = 0;
            for c in access.chars() {
                bits |= match c {
                    'r' => super::ACC_READ,
                    'w' => super::ACC_WRITE,
                    'm' => super::ACC_MKNOD,
                    _ => return None,
                };
            }
            exceptions.push(Exception {
                kind,
                major: number(major)?,
                minor: number(minor)?,
                access: bits,
            });
        }
        Some(DeviceState {
            default_allow: false,
            exceptions,
        })
    }

    /// The writes, as (file, line), that take the kernel from `current`
    /// (`None`: unknown) to `self`. Access the target grants is added
    /// before access it drops is removed, so nothing the container keeps
    /// is ever briefly denied.
    pub(crate) fn writes_from(&self, current: Option<&DeviceState>) -> Vec<(&'static str, String)> {
        let (grant_file, revoke_file) = if self.default_allow {
            ("devices.deny", "devices.allow")
        } else {
            ("devices.allow", "devices.deny")
        };
        let mut writes = Vec::new();
        let current = match current {
            Some(c) if c.default_allow == self.default_allow && !c.default_allow => c,
            _ => {
                // Reset to the target default, then add its exceptions.
                let reset = if self.default_allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                writes.push((reset, "a".to_string()));
                for e in &self.exceptions {
                    writes.push((grant_file, e.line(e.access)));
                }
                return writes;
            }
        };
        for want in &self.exceptions {
            let have = current
                .exceptions
                .iter()
                .find(|e| e.same_device(want))
                .map_or(0, |e| e.access);
            let missing = want.access & !have;
            if missing != 0 {
                writes.push((grant_file, want.line(missing)));
            }
        }
        for have in &current.exceptions {
            let keep = self
                .exceptions
                .iter()
                .find(|e| e.same_device(have))
                .map_or(0, |e| e.access);
            let extra = have.access & !keep;
            if extra != 0 {
                writes.push((revoke_file, have.line(extra)));
            }
        }
        writes
    }
}

#[cfg(test)]
mod tests {
    use super::super::{rule, ACC_ALL, ACC_MKNOD, ACC_READ, ACC_WRITE};
    use super::*;

    #[test]
    fn rules_replay_like_the_kernel() {
        let s = DeviceState::from_rules(&[
            rule(false, DeviceKind::All, None, None, ACC_ALL),
            rule(true, DeviceKind::Char, Some(1), Some(3), ACC_ALL),
            rule(false, DeviceKind::Char, Some(1), Some(3), ACC_MKNOD),
            rule(true, DeviceKind::Char, Some(1), Some(5), ACC_READ),
            rule(true, DeviceKind::Char, Some(1), Some(5), ACC_WRITE),
        ]);
        assert!(!s.default_allow);
        let lines: Vec<String> = s.exceptions.iter().map(|e| e.line(e.access)).collect();
        assert_eq!(lines, vec!["c 1:3 rw", "c 1:5 rw"]);
        let privileged =
            DeviceState::from_rules(&[rule(true, DeviceKind::All, None, None, ACC_ALL)]);
        assert!(privileged.default_allow && privileged.exceptions.is_empty());
    }

    #[test]
    fn updates_write_only_the_difference() {
        let current = DeviceState::parse_list("c 1:3 rwm\nc 1:5 rwm\nb 8:* r\n").unwrap();
        let target = DeviceState::from_rules(&[
            rule(false, DeviceKind::All, None, None, ACC_ALL),
            rule(
                true,
                DeviceKind::Char,
                Some(1),
                Some(3),
                ACC_READ | ACC_WRITE,
            ),
            rule(true, DeviceKind::Char, Some(1), Some(8), ACC_ALL),
            rule(true, DeviceKind::Block, Some(8), None, ACC_READ),
        ]);
        let writes = target.writes_from(Some(&current));
        assert_eq!(
            writes,
            vec![
                ("devices.allow", "c 1:8 rwm".to_string()),
                ("devices.deny", "c 1:3 m".to_string()),
                ("devices.deny", "c 1:5 rwm".to_string()),
            ]
        );
        assert!(
            target.writes_from(Some(&target)).is_empty(),
            "no change, no writes"
        );
    }

    #[test]
    fn unknown_or_other_default_resets_first() {
        let target = DeviceState::from_rules(&[
            rule(false, DeviceKind::All, None, None, ACC_ALL),
            rule(true, DeviceKind::Char, Some(1), Some(3), ACC_ALL),
        ]);
        assert_eq!(DeviceState::parse_list("a *:* rwm\n"), None);
        assert_eq!(
            target.writes_from(None),
            vec![
                ("devices.deny", "a".to_string()),
                ("devices.allow", "c 1:3 rwm".to_string())
            ]
        );
        let allow_all = DeviceState::from_rules(&[
            rule(true, DeviceKind::All, None, None, ACC_ALL),
            rule(false, DeviceKind::Block, Some(8), Some(0), ACC_WRITE),
        ]);
        assert_eq!(
            allow_all.writes_from(Some(&target)),
            vec![
                ("devices.allow", "a".to_string()),
                ("devices.deny", "b 8:0 w".to_string())
            ]
        );
    }
}
