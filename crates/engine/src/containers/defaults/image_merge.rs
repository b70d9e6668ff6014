//! How an image's config fills in what `create`/`run` leave out, by
//! Docker's rules (moby `daemon/commit.go` `merge` and
//! `mergeAndVerifyConfig`):
//!
//! | user Entrypoint          | user Cmd | result Entrypoint | result Cmd      |
//! |--------------------------|----------|-------------------|-----------------|
//! | `None` (not given)       | none     | image's           | image's         |
//! | `None`                   | given    | image's           | user's          |
//! | `Some([])` (API `[]`)    | none     | none              | image's         |
//! | `Some([])`               | given    | none              | user's          |
//! | `Some([""])` (CLI `""`)  | none     | none              | none → error    |
//! | `Some([""])`             | given    | none              | user's          |
//! | `Some([e, …])`           | none     | user's            | none            |
//! | `Some([e, …])`           | given    | user's            | user's          |
//!
//! A container needs an entrypoint or a command: "no command specified".
//! `Shell`, `OnBuild`, `StopTimeout` and `Hostname` stay build-time or
//! per-container settings and are not inherited, as in Docker.

use berth_image::model::{
    ContainerConfig as ImageContainerConfig, HealthConfig as ImageHealthConfig, ImageConfig,
};

use crate::containers::model::{ContainerConfig, Empty, HealthConfig};

/// Docker's smallest healthcheck duration (1 ms), in nanoseconds.
pub const MIN_HEALTHCHECK_DURATION_NS: i64 = 1_000_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageMergeError {
    /// Neither the user nor the image gives something to run.
    #[error("no command specified")]
    NoCommand,
    /// A healthcheck duration below 1 ms (0 means "inherit/default").
    #[error("{field} in Healthcheck cannot be less than 1ms")]
    HealthcheckDuration { field: &'static str },
    #[error("Retries in Healthcheck cannot be negative")]
    HealthcheckRetries,
}

/// Fills `user` from the image's config and checks that the result has
/// something to run and a valid healthcheck.
pub fn merge_image_config(
    user: &mut ContainerConfig,
    image: &ImageConfig,
) -> Result<(), ImageMergeError> {
    if let Some(img) = &image.config {
        merge(user, img);
    }
    // The CLI sends `--entrypoint ""` as `[""]`: it blocks the image's
    // entrypoint and command above, then means "no entrypoint".
    if user.entrypoint.as_deref() == Some(&[String::new()][..]) {
        user.entrypoint = Some(Vec::new());
    }
    let has_entrypoint = user.entrypoint.as_ref().is_some_and(|e| !e.is_empty());
    let has_cmd = user.cmd.as_ref().is_some_and(|c| !c.is_empty());
    if !has_entrypoint && !has_cmd {
        return Err(ImageMergeError::NoCommand);
    }
    if let Some(h) = &user.healthcheck {
        validate_healthcheck(h)?;
    }
    Ok(())
}

fn merge(user: &mut ContainerConfig, img: &ImageContainerConfig) {
    if user.user.is_empty() {
        user.user.clone_from(&img.user);
    }
    if !img.exposed_ports.is_empty() {
        let ports = user.exposed_ports.get_or_insert_with(Default::default);
        for port in img.exposed_ports.keys() {
            ports.entry(port.clone()).or_insert(Empty {});
        }
    }
    merge_env(&mut user.env, &img.env);
    for (key, value) in &img.labels {
        user.labels
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }

    let user_entrypoint_empty = user.entrypoint.as_ref().is_none_or(Vec::is_empty);
    if user_entrypoint_empty {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd.clone_from(&img.cmd);
        }
        if user.entrypoint.is_none() {
            user.entrypoint.clone_from(&img.entrypoint);
        }
    }

    if let Some(img_health) = &img.healthcheck {
        match &mut user.healthcheck {
            None => user.healthcheck = Some(health_from_image(img_health)),
            Some(h) => inherit_health(h, img_health),
        }
    }
    if user.working_dir.is_empty() {
        user.working_dir.clone_from(&img.working_dir);
    }
    if !img.volumes.is_empty() {
        let volumes = user.volumes.get_or_insert_with(Default::default);
        for path in img.volumes.keys() {
            volumes.entry(path.clone()).or_insert(Empty {});
        }
    }
    if user.stop_signal.is_empty() {
        if let Some(signal) = &img.stop_signal {
            user.stop_signal.clone_from(signal);
        }
    }
}

/// The image's variables are added after the user's, unless the user set
/// the same name (`PATH` from `-e PATH=…` replaces the image's `PATH`).
fn merge_env(user: &mut Vec<String>, image: &[String]) {
    let key = |v: &str| v.split_once('=').map_or(v, |(k, _)| k).to_string();
    let user_keys: std::collections::HashSet<String> = user.iter().map(|v| key(v)).collect();
    for var in image {
        if !user_keys.contains(&key(var)) {
            user.push(var.clone());
        }
    }
}

fn health_from_image(h: &ImageHealthConfig) -> HealthConfig {
    HealthConfig {
        test: h.test.clone(),
        interval: h.interval,
        timeout: h.timeout,
        start_period: h.start_period,
        start_interval: h.start_interval,
        retries: h.retries,
    }
}

/// Zero/empty fields of the user's healthcheck come from the image's; a
/// user `--no-healthcheck` (`["NONE"]`) keeps its test and so disables it.
fn inherit_health(user: &mut HealthConfig, img: &ImageHealthConfig) {
    if user.test.is_empty() {
        user.test.clone_from(&img.test);
    }
    for (mine, theirs) in [
        (&mut user.interval, img.interval),
        (&mut user.timeout, img.timeout),
        (&mut user.start_period, img.start_period),
        (&mut user.start_interval, img.start_interval),
        (&mut user.retries, img.retries),
    ] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
}

/// Docker's checks of a healthcheck's numbers.
pub fn validate_healthcheck(h: &HealthConfig) -> Result<(), ImageMergeError> {
    for (field, value) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if value != 0 && value < MIN_HEALTHCHECK_DURATION_NS {
            return Err(ImageMergeError::HealthcheckDuration { field });
        }
    }
    if h.retries < 0 {
        return Err(ImageMergeError::HealthcheckRetries);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> ImageConfig {
        ImageConfig {
            config: Some(ImageContainerConfig {
                entrypoint: entrypoint.map(v),
                cmd: cmd.map(v),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    type Argv = Option<Vec<String>>;
    type UserArgs<'a> = (Option<&'a [&'a str]>, Option<&'a [&'a str]>);

    /// (entrypoint, cmd) after merging a user's into an image's.
    fn run(
        user_entrypoint: Option<&[&str]>,
        user_cmd: Option<&[&str]>,
        img: &ImageConfig,
    ) -> Result<(Argv, Argv), ImageMergeError> {
        let mut user = ContainerConfig {
            entrypoint: user_entrypoint.map(v),
            cmd: user_cmd.map(v),
            ..Default::default()
        };
        merge_image_config(&mut user, img)?;
        Ok((user.entrypoint, user.cmd))
    }

    #[test]
    fn entrypoint_and_cmd_table() {
        let both = image(Some(&["/entry.sh"]), Some(&["serve"]));
        let cmd_only = image(None, Some(&["sh"]));
        let ep_only = image(Some(&["/entry.sh"]), None);
        let neither = image(None, None);
        let s = |x: &[&str]| Some(v(x));
        // (image, user entrypoint, user cmd) → (entrypoint, cmd)
        let ok_cases: Vec<(&ImageConfig, UserArgs, (Argv, Argv))> = vec![
            // Nothing given: both from the image.
            (&both, (None, None), (s(&["/entry.sh"]), s(&["serve"]))),
            (&cmd_only, (None, None), (None, s(&["sh"]))),
            (&ep_only, (None, None), (s(&["/entry.sh"]), None)),
            // A command replaces the image's command only.
            (
                &both,
                (None, Some(&["ls", "-l"])),
                (s(&["/entry.sh"]), s(&["ls", "-l"])),
            ),
            (&cmd_only, (None, Some(&["ls"])), (None, s(&["ls"]))),
            (&neither, (None, Some(&["ls"])), (None, s(&["ls"]))),
            (
                &ep_only,
                (None, Some(&["-v"])),
                (s(&["/entry.sh"]), s(&["-v"])),
            ),
            // An empty command counts as none.
            (&both, (None, Some(&[])), (s(&["/entry.sh"]), s(&["serve"]))),
            // An entrypoint resets the image's command too.
            (&both, (Some(&["/bin/sh"]), None), (s(&["/bin/sh"]), None)),
            (
                &both,
                (Some(&["/bin/sh"]), Some(&["-c", "id"])),
                (s(&["/bin/sh"]), s(&["-c", "id"])),
            ),
            (
                &neither,
                (Some(&["/bin/sh"]), None),
                (s(&["/bin/sh"]), None),
            ),
            // API `Entrypoint: []`: no entrypoint, the image's command stays.
            (&both, (Some(&[]), None), (Some(vec![]), s(&["serve"]))),
            (
                &both,
                (Some(&[]), Some(&["id"])),
                (Some(vec![]), s(&["id"])),
            ),
            // CLI `--entrypoint ""` with a command: no entrypoint.
            (
                &both,
                (Some(&[""]), Some(&["id"])),
                (Some(vec![]), s(&["id"])),
            ),
            (
                &ep_only,
                (Some(&[""]), Some(&["id"])),
                (Some(vec![]), s(&["id"])),
            ),
        ];
        for (img, (ep, cmd), want) in ok_cases {
            assert_eq!(
                run(ep, cmd, img).unwrap(),
                want,
                "user entrypoint {ep:?} cmd {cmd:?} image {:?}",
                img.config
            );
        }
        let no_command: Vec<(&ImageConfig, UserArgs)> = vec![
            (&neither, (None, None)),
            (&neither, (Some(&[]), None)),
            (&ep_only, (Some(&[]), None)),
            // `--entrypoint ""` blocks the image's command as well.
            (&both, (Some(&[""]), None)),
            (&cmd_only, (Some(&[""]), None)),
        ];
        for (img, (ep, cmd)) in no_command {
            assert_eq!(
                run(ep, cmd, img),
                Err(ImageMergeError::NoCommand),
                "user entrypoint {ep:?} cmd {cmd:?} image {:?}",
                img.config
            );
        }
        let no_config = ImageConfig::default();
        assert_eq!(
            run(None, Some(&["sh"]), &no_config).unwrap(),
            (None, s(&["sh"]))
        );
        assert_eq!(
            ImageMergeError::NoCommand.to_string(),
            "no command specified"
        );
    }

    #[test]
    fn env_labels_ports_and_volumes_merge_user_first() {
        let img = ImageConfig {
            config: Some(ImageContainerConfig {
                env: v(&["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "EMPTY"]),
                labels: BTreeMap::from([
                    ("maintainer".to_string(), "image".to_string()),
                    ("version".to_string(), "1".to_string()),
                ]),
                exposed_ports: BTreeMap::from([
                    ("80/tcp".to_string(), Default::default()),
                    ("443/tcp".to_string(), Default::default()),
                ]),
                volumes: BTreeMap::from([("/data".to_string(), Default::default())]),
                cmd: Some(v(&["sh"])),
                user: "app".into(),
                working_dir: "/srv".into(),
                stop_signal: Some("SIGQUIT".into()),
                shell: v(&["/bin/bash", "-c"]),
                stop_timeout: Some(30),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut user = ContainerConfig {
            env: v(&["PATH=/opt/bin", "DEBUG=1", "EMPTY=set"]),
            labels: BTreeMap::from([("version".to_string(), "2".to_string())]),
            exposed_ports: Some(BTreeMap::from([("8080/tcp".to_string(), Empty {})])),
            ..Default::default()
        };
        merge_image_config(&mut user, &img).unwrap();
        assert_eq!(
            user.env,
            v(&["PATH=/opt/bin", "DEBUG=1", "EMPTY=set", "LANG=C.UTF-8"])
        );
        assert_eq!(user.labels["version"], "2");
        assert_eq!(user.labels["maintainer"], "image");
        let ports: Vec<_> = user.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, v(&["443/tcp", "80/tcp", "8080/tcp"]));
        let volumes: Vec<_> = user.volumes.unwrap().into_keys().collect();
        assert_eq!(volumes, v(&["/data"]));
        assert_eq!(user.user, "app");
        assert_eq!(user.working_dir, "/srv");
        assert_eq!(user.stop_signal, "SIGQUIT");
        // Not inherited, as in Docker.
        assert_eq!(user.shell, None);
        assert_eq!(user.stop_timeout, None);

        // What the user set is kept.
        let mut user = ContainerConfig {
            user: "root".into(),
            working_dir: "/tmp".into(),
            stop_signal: "SIGTERM".into(),
            volumes: Some(BTreeMap::from([("/cache".to_string(), Empty {})])),
            ..Default::default()
        };
        merge_image_config(&mut user, &img).unwrap();
        assert_eq!(
            (
                user.user.as_str(),
                user.working_dir.as_str(),
                user.stop_signal.as_str()
            ),
            ("root", "/tmp", "SIGTERM")
        );
        assert_eq!(
            user.env,
            v(&["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "EMPTY"])
        );
        assert_eq!(user.volumes.unwrap().len(), 2);
    }

    fn image_health() -> ImageConfig {
        ImageConfig {
            config: Some(ImageContainerConfig {
                cmd: Some(v(&["sh"])),
                healthcheck: Some(ImageHealthConfig {
                    test: v(&["CMD-SHELL", "wget -q localhost"]),
                    interval: 30_000_000_000,
                    timeout: 5_000_000_000,
                    start_period: 0,
                    start_interval: 0,
                    retries: 3,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn healthcheck_inheritance() {
        // Inherited whole.
        let mut user = ContainerConfig::default();
        merge_image_config(&mut user, &image_health()).unwrap();
        let h = user.healthcheck.unwrap();
        assert_eq!(h.test, v(&["CMD-SHELL", "wget -q localhost"]));
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (30_000_000_000, 5_000_000_000, 3)
        );

        // `--health-interval 10s` only: the rest from the image.
        let mut user = ContainerConfig {
            healthcheck: Some(HealthConfig {
                interval: 10_000_000_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        merge_image_config(&mut user, &image_health()).unwrap();
        let h = user.healthcheck.unwrap();
        assert_eq!(h.test, v(&["CMD-SHELL", "wget -q localhost"]));
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (10_000_000_000, 5_000_000_000, 3)
        );

        // `--no-healthcheck` stays disabled.
        let mut user = ContainerConfig {
            healthcheck: Some(HealthConfig {
                test: v(&["NONE"]),
                ..Default::default()
            }),
            ..Default::default()
        };
        merge_image_config(&mut user, &image_health()).unwrap();
        assert_eq!(user.healthcheck.unwrap().test, v(&["NONE"]));

        // A user healthcheck on an image without one is kept as is.
        let mut user = ContainerConfig {
            cmd: Some(v(&["sh"])),
            healthcheck: Some(HealthConfig {
                test: v(&["CMD", "true"]),
                ..Default::default()
            }),
            ..Default::default()
        };
        merge_image_config(&mut user, &image(None, None)).unwrap();
        assert_eq!(user.healthcheck.unwrap().test, v(&["CMD", "true"]));
    }

    #[test]
    fn healthcheck_numbers_are_validated() {
        let with = |h: HealthConfig| {
            let mut user = ContainerConfig {
                cmd: Some(v(&["sh"])),
                healthcheck: Some(h),
                ..Default::default()
            };
            merge_image_config(&mut user, &ImageConfig::default())
        };
        let err = with(HealthConfig {
            interval: 999_999,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        let err = with(HealthConfig {
            start_interval: 5,
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "StartInterval in Healthcheck cannot be less than 1ms"
        );
        assert_eq!(
            with(HealthConfig {
                retries: -1,
                ..Default::default()
            }),
            Err(ImageMergeError::HealthcheckRetries)
        );
        with(HealthConfig {
            interval: MIN_HEALTHCHECK_DURATION_NS,
            ..Default::default()
        })
        .unwrap();
    }
}
