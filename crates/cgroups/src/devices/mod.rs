//! Device access rules (OCI `linux.resources.devices`), shared by the v1
//! `devices` controller and the v2 eBPF device program.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::CgroupError;

pub(crate) mod bpf;
pub(crate) mod v1_state;

/// Which devices a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    All,
    Block,
    Char,
}

/// Access bits, numbered as the kernel's `BPF_DEVCG_ACC_*`.
pub(crate) const ACC_MKNOD: u32 = 1;
pub(crate) const ACC_READ: u32 = 2;
pub(crate) const ACC_WRITE: u32 = 4;
pub(crate) const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One normalised device rule; `None` major/minor is the wildcard `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

impl DeviceRule {
    /// The line the v1 `devices.allow`/`devices.deny` files take:
    /// `c 1:3 rwm`, `a *:* rwm`.
    pub(crate) fn v1_line(&self) -> String {
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Block => 'b',
            DeviceKind::Char => 'c',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

fn device_number(field: &'static str, n: Option<i64>) -> Result<Option<u32>, CgroupError> {
    match n {
        None | Some(-1) => Ok(None),
        Some(v) => u32::try_from(v)
            .map(Some)
            .map_err(|_| CgroupError::InvalidResource {
                field,
                value: v.to_string(),
                reason: "a device number is 0..=4294967295 or -1 for any".to_string(),
            }),
    }
}

/// Normalises the OCI rules. FIFO (`p`) rules are dropped: the device
/// cgroup only governs block and character devices.
pub(crate) fn rules_from_spec(list: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, CgroupError> {
    let mut rules = Vec::with_capacity(list.len());
    for d in list {
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => DeviceKind::All,
            Some(LinuxDeviceType::B) => DeviceKind::Block,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DeviceKind::Char,
            Some(LinuxDeviceType::P) => continue,
        };
        let access = match d.access().as_deref() {
            None | Some("") => ACC_ALL,
            Some(s) => {
                let mut bits = 0;
                for c in s.chars() {
                    bits |= match c {
                        'r' => ACC_READ,
                        'w' => ACC_WRITE,
                        'm' => ACC_MKNOD,
                        _ => {
                            return Err(CgroupError::InvalidResource {
                                field: "devices.access",
                                value: s.to_string(),
                                reason: "only the letters r, w and m are allowed".to_string(),
                            })
                        }
                    };
                }
                bits
            }
        };
        rules.push(DeviceRule {
            allow: d.allow(),
            kind,
            major: device_number("devices.major", d.major())?,
            minor: device_number("devices.minor", d.minor())?,
            access,
        });
    }
    Ok(rules)
}

/// Shorthand for the unit tests of the v1 replay and the eBPF program.
#[cfg(test)]
pub(crate) fn rule(
    allow: bool,
    kind: DeviceKind,
    major: Option<u32>,
    minor: Option<u32>,
    access: u32,
) -> DeviceRule {
    DeviceRule {
        allow,
        kind,
        major,
        minor,
        access,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn oci_rules_become_v1_lines() {
        let spec = vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .access("rw")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::U)
                .major(136)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::P)
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .typ(LinuxDeviceType::B)
                .major(8)
                .minor(-1)
                .access("m")
                .build()
                .unwrap(),
        ];
        let lines: Vec<String> = rules_from_spec(&spec)
            .unwrap()
            .iter()
            .map(DeviceRule::v1_line)
            .collect();
        assert_eq!(
            lines,
            vec!["a *:* rwm", "c 1:3 rw", "c 136:* rwm", "b 8:* m"]
        );
    }

    #[test]
    fn bad_access_letters_and_numbers_are_refused() {
        let bad = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rx")
            .build()
            .unwrap();
        let err = rules_from_spec(&[bad]).unwrap_err();
        assert!(err.to_string().contains("\"rx\""), "{err}");
        let bad = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .major(-5)
            .build()
            .unwrap();
        assert!(rules_from_spec(&[bad]).is_err());
    }
}
