//! `ps`: which containers to show, with Docker's `--filter` keys.

use super::store::{ContainerRecord, Status};
use crate::error::EngineError;
use crate::filters::{label_matches, name_matches};

/// `ps --filter` conditions: values of one key are alternatives (OR),
/// different keys must all hold (AND), as in Docker.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilters {
    pub id: Vec<String>,
    pub name: Vec<String>,
    /// `key` or `key=value`.
    pub label: Vec<String>,
    pub exited: Vec<i32>,
    pub status: Vec<Status>,
    /// Image name or id the container was created from.
    pub ancestor: Vec<String>,
    pub before: Option<String>,
    pub since: Option<String>,
    /// `starting`, `healthy`, `unhealthy`, `none`.
    pub health: Vec<String>,
    /// A volume name or a mount destination the container has.
    pub volume: Vec<String>,
    /// Network names or ids (checked by the network service).
    pub network: Vec<String>,
    /// `80`, `80/tcp`: a published container port.
    pub publish: Vec<String>,
    /// `80`, `80/udp`: an exposed (or published) container port.
    pub expose: Vec<String>,
}

impl ContainerFilters {
    /// Parses `key=value` filter arguments; unknown keys are Docker's error.
    pub fn parse(args: &[String]) -> Result<Self, EngineError> {
        let mut f = Self::default();
        for a in args {
            let (k, v) = a.split_once('=').ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "bad format of filter (expected name=value): {a}"
                ))
            })?;
            let v = v.to_string();
            match k {
                "id" => f.id.push(v),
                "name" => f.name.push(v),
                "label" => f.label.push(v),
                "exited" => f.exited.push(v.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!("invalid filter 'exited={v}'"))
                })?),
                "status" => f.status.push(Status::parse(&v).ok_or_else(|| {
                    EngineError::InvalidArgument(format!(
                        "invalid filter 'status={v}': use one of created, restarting, running, removing, paused, exited, dead"
                    ))
                })?),
                "ancestor" => f.ancestor.push(v),
                "volume" => f.volume.push(v),
                "network" => f.network.push(v),
                "publish" => f.publish.push(port_key(&v)),
                "expose" => f.expose.push(port_key(&v)),
                "before" => f.before = Some(v),
                "since" => f.since = Some(v),
                "health" => {
                    if !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none") {
                        return Err(EngineError::InvalidArgument(format!(
                            "Unrecognised filter value for health: {v}"
                        )));
                    }
                    f.health.push(v)
                }
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{k}'"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// Whether `c` passes the filters that need only the record itself;
    /// `image_ids` maps ancestor words to the image ids they name,
    /// `health` is the container's health status (`none` without a check).
    pub(crate) fn matches(
        &self,
        c: &ContainerRecord,
        ancestor_ids: &[String],
        health: &str,
    ) -> bool {
        let any = |list: &[String], pred: &dyn Fn(&str) -> bool| {
            list.is_empty() || list.iter().any(|v| pred(v))
        };
        any(&self.id, &|v| c.id.starts_with(v))
            && any(&self.name, &|v| {
                let v = v.strip_prefix('/').unwrap_or(v);
                name_matches(v, &c.name)
            })
            && self
                .label
                .iter()
                .all(|l| label_matches(&c.config.labels, l))
            && (self.exited.is_empty()
                || (c.status == Status::Exited && self.exited.contains(&c.run.exit_code)))
            && (self.status.is_empty() || self.status.contains(&c.status))
            && (self.ancestor.is_empty() || ancestor_ids.contains(&c.image_id))
            && any(&self.health, &|v| v == health)
    }
}

/// `80` → `80/tcp`.
fn port_key(v: &str) -> String {
    if v.contains('/') {
        v.to_string()
    } else {
        format!("{v}/tcp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let f = ContainerFilters::parse(&[
            "status=exited".into(),
            "exited=1".into(),
            "label=a=b".into(),
        ])
        .unwrap();
        assert_eq!(f.status, vec![Status::Exited]);
        assert_eq!(f.exited, vec![1]);
        assert!(ContainerFilters::parse(&["bogus=1".into()]).is_err());
        assert!(ContainerFilters::parse(&["status=sleepy".into()]).is_err());
        assert!(ContainerFilters::parse(&["noequals".into()]).is_err());
    }

    #[test]
    fn names_match_like_docker_regexps() {
        assert!(name_matches("web", "my_web_1"));
        assert!(name_matches("^web", "web_1"));
        assert!(!name_matches("^web", "my_web"));
        assert!(name_matches("^/web$", "web"));
        assert!(!name_matches("web$", "web_1"));
    }
}
