//! `volume ls --filter` and `volume prune --filter`, with Docker's keys.

use super::{Volume, VolumeError};
use crate::filters::{label_matches, name_matches};

/// Values of one key are alternatives (OR), keys must all hold (AND);
/// labels must all hold, as in Docker.
#[derive(Debug, Clone, Default)]
pub struct VolumeFilters {
    /// `dangling=true|false`: referenced by no container, or by some.
    pub dangling: Option<bool>,
    pub name: Vec<String>,
    pub driver: Vec<String>,
    /// (`key` or `key=value`, whether it must match).
    pub label: Vec<(String, bool)>,
    /// `prune --filter all=true` (Docker's API form of `-a`).
    pub all: bool,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, VolumeError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(VolumeError::invalid(format!(
            "invalid filter '{key}={v}': use {key}=true or {key}=false"
        ))),
    }
}

impl VolumeFilters {
    /// `volume ls` filters: `dangling`, `name`, `label`, `label!`, `driver`.
    pub fn parse(args: &[String]) -> Result<Self, VolumeError> {
        Self::parse_keys(args, &["dangling", "name", "label", "label!", "driver"])
    }

    /// `volume prune` filters: `label`, `label!`, `all`.
    pub fn parse_prune(args: &[String]) -> Result<Self, VolumeError> {
        Self::parse_keys(args, &["label", "label!", "all"])
    }

    fn parse_keys(args: &[String], allowed: &[&str]) -> Result<Self, VolumeError> {
        let mut f = Self::default();
        for a in args {
            let (k, v) = a.split_once('=').ok_or_else(|| {
                VolumeError::invalid(format!("bad format of filter (expected name=value): {a}"))
            })?;
            if !allowed.contains(&k) {
                return Err(VolumeError::invalid(format!(
                    "invalid filter '{k}': use one of {}",
                    allowed.join(", ")
                )));
            }
            match k {
                "dangling" => f.dangling = Some(parse_bool(k, v)?),
                "all" => f.all = parse_bool(k, v)?,
                "name" => f.name.push(v.to_string()),
                "driver" => f.driver.push(v.to_string()),
                "label" => f.label.push((v.to_string(), true)),
                "label!" => f.label.push((v.to_string(), false)),
                _ => {}
            }
        }
        Ok(f)
    }

    pub fn matches(&self, v: &Volume) -> bool {
        if self.dangling.is_some_and(|d| d != (v.links == 0)) {
            return false;
        }
        if !self.name.is_empty() && !self.name.iter().any(|n| name_matches(n, &v.record.name)) {
            return false;
        }
        if !self.driver.is_empty() && !self.driver.contains(&v.record.driver) {
            return false;
        }
        self.label
            .iter()
            .all(|(l, want)| label_matches(&v.record.labels, l) == *want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::VolumeRecord;

    fn vol(name: &str, links: u64, labels: &[(&str, &str)]) -> Volume {
        Volume {
            record: VolumeRecord {
                name: name.into(),
                driver: "local".into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                options: Default::default(),
                created: chrono::Utc::now(),
            },
            mountpoint: Default::default(),
            links,
        }
    }

    #[test]
    fn filters_like_docker() {
        let f = VolumeFilters::parse(&["dangling=true".into(), "label=app".into()]).unwrap();
        assert!(f.matches(&vol("a1", 0, &[("app", "x")])));
        assert!(!f.matches(&vol("a1", 1, &[("app", "x")])));
        assert!(!f.matches(&vol("a1", 0, &[])));
        let f = VolumeFilters::parse(&["name=^data".into(), "label!=app=x".into()]).unwrap();
        assert!(f.matches(&vol("data1", 0, &[("app", "y")])));
        assert!(!f.matches(&vol("mydata", 0, &[])));
        assert!(!f.matches(&vol("data1", 0, &[("app", "x")])));
        assert!(VolumeFilters::parse(&["dangling=maybe".into()]).is_err());
        assert!(VolumeFilters::parse(&["bogus=1".into()]).is_err());
        assert!(VolumeFilters::parse_prune(&["name=x".into()]).is_err());
        assert!(
            VolumeFilters::parse_prune(&["all=true".into()])
                .unwrap()
                .all
        );
    }
}
