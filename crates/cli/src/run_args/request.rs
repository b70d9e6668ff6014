//! The translation of all flags into the engine's create request (Docker's
//! `parse()` in cli/command/container/opts.go); each family's details live
//! in the sibling modules.

use std::collections::BTreeMap;

use berth_engine::containers::model::{
    ContainerConfig, CreateRequest, HealthConfig, HostConfig, LogConfig,
};

use super::{container_ref, int_flag, mounts, ports, size_flag, values, CreateArgs, FlagError};

impl CreateArgs {
    /// The engine's create request for these flags. Pure except for reading
    /// `--env-file`, `--label-file` and `seccomp=FILE`, looking up the host
    /// environment for `-e NAME`, and the working directory for `./` sources.
    pub fn to_request(&self) -> Result<CreateRequest, FlagError> {
        self.refuse_windows_only_flags()?;
        self.pull_policy()?;
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut config = ContainerConfig {
            image: self.image().to_string(),
            hostname: self.hostname.clone().unwrap_or_default(),
            domainname: self.domainname.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            tty: self.tty,
            open_stdin: self.interactive,
            ..Default::default()
        };
        let mut host = HostConfig {
            container_id_file: self.cidfile.clone().unwrap_or_default(),
            auto_remove: self.rm,
            privileged: self.privileged,
            publish_all_ports: self.publish_all,
            readonly_rootfs: self.read_only,
            volume_driver: self.volume_driver.clone().unwrap_or_default(),
            cgroup_parent: self.cgroup_parent.clone().unwrap_or_default(),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            runtime: self.runtime.clone().unwrap_or_default(),
            isolation: self.isolation.clone().unwrap_or_default(),
            oom_kill_disable: Some(self.oom_kill_disable),
            init: self.init,
            ..Default::default()
        };

        self.apply_attach(&mut config)?;
        self.apply_command(&mut config)?;
        self.apply_environment(&mut config)?;
        self.apply_ports(&mut config, &mut host)?;
        self.apply_storage(&mut config, &mut host, &cwd)?;
        self.apply_network(&mut config, &mut host)?;
        self.apply_namespaces(&mut host)?;
        self.apply_security(&mut host)?;
        self.apply_resources(&mut host)?;
        self.apply_devices(&mut host)?;
        self.apply_logging(&mut host)?;
        self.apply_lifecycle(&mut config, &mut host)?;
        config.healthcheck = self.healthcheck()?;

        // When stdin is attached, close it when the client disconnects.
        config.stdin_once = config.open_stdin && config.attach_stdin;

        let name = match &self.name {
            Some(name) if !name.is_empty() => Some(
                values::container_name(name).map_err(|m| FlagError::invalid_value("--name", m))?,
            ),
            _ => None,
        };
        let endpoints = self
            .networks()?
            .into_iter()
            .map(|n| berth_engine::networks::EndpointRequest {
                network: n.network,
                aliases: n.aliases,
                links: n.links,
                ipv4_address: n.ipv4_address,
                ipv6_address: n.ipv6_address,
                mac_address: n.mac_address,
            })
            .collect();
        Ok(CreateRequest {
            name,
            config,
            host_config: host,
            endpoints,
        })
    }

    /// Docker's CLI refuses flags annotated `ostype=windows` when the daemon
    /// runs Linux, as berth always does.
    fn refuse_windows_only_flags(&self) -> Result<(), FlagError> {
        let given = [
            ("--cpu-count", self.cpu_count.is_some()),
            ("--cpu-percent", self.cpu_percent.is_some()),
            ("--io-maxbandwidth", self.io_maxbandwidth.is_some()),
            ("--io-maxiops", self.io_maxiops.is_some()),
        ];
        let messages: Vec<String> = given
            .iter()
            .filter(|(_, set)| *set)
            .map(|(flag, _)| {
                format!("\"{flag}\" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux")
            })
            .collect();
        match given.iter().find(|(_, set)| *set) {
            Some((flag, _)) => Err(FlagError::Unsupported {
                flag,
                message: messages.join("\n"),
            }),
            None => Ok(()),
        }
    }

    fn apply_attach(&self, config: &mut ContainerConfig) -> Result<(), FlagError> {
        for stream in &self.attach {
            match stream.to_ascii_lowercase().as_str() {
                "stdin" => config.attach_stdin = true,
                "stdout" => config.attach_stdout = true,
                "stderr" => config.attach_stderr = true,
                _ => {
                    return Err(FlagError::invalid_argument(
                        "-a, --attach",
                        stream,
                        "valid streams are STDIN, STDOUT and STDERR",
                    ))
                }
            }
        }
        if self.interactive {
            config.attach_stdin = true;
        }
        if self.attach.is_empty() {
            config.attach_stdout = true;
            config.attach_stderr = true;
        }
        Ok(())
    }

    fn apply_command(&self, config: &mut ContainerConfig) -> Result<(), FlagError> {
        if !self.command().is_empty() {
            config.cmd = Some(self.command().to_vec());
        }
        // `--entrypoint ""` resets the image's entrypoint: Docker sends [""].
        config.entrypoint = self.entrypoint.as_ref().map(|e| vec![e.clone()]);
        if let Some(dir) = self.workdir.as_deref().filter(|d| !d.is_empty()) {
            if !dir.starts_with('/') {
                return Err(FlagError::invalid_value(
                    "-w, --workdir",
                    format!(
                        "the working directory '{dir}' is invalid, it needs to be an absolute path"
                    ),
                ));
            }
            config.working_dir = dir.to_string();
        }
        Ok(())
    }

    fn apply_environment(&self, config: &mut ContainerConfig) -> Result<(), FlagError> {
        let host_env =
            |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        for file in &self.env_file {
            config
                .env
                .extend(
                    values::kv_file(file.as_ref(), Some(&host_env)).map_err(|source| {
                        FlagError::KeyValueFile {
                            flag: "--env-file",
                            source,
                        }
                    })?,
                );
        }
        // Docker's CLI passes the -e list through a map (to merge proxy
        // settings), so a variable given twice is sent once, last value.
        let mut from_flags: Vec<String> = Vec::new();
        for entry in &self.env {
            let resolved = values::env_entry(entry)
                .map_err(|r| FlagError::invalid_argument("-e, --env", entry, r))?;
            let key = values::cut(&resolved, '=').0.to_string();
            from_flags.retain(|earlier| values::cut(earlier, '=').0 != key);
            from_flags.push(resolved);
        }
        config.env.extend(from_flags);

        let mut labels = Vec::new();
        for file in &self.label_file {
            labels.extend(values::kv_file(file.as_ref(), None).map_err(|source| {
                FlagError::KeyValueFile {
                    flag: "--label-file",
                    source,
                }
            })?);
        }
        for label in &self.label {
            values::label(label)
                .map_err(|r| FlagError::invalid_argument("-l, --label", label, r))?;
            labels.push(label.clone());
        }
        config.labels = values::kv_map(&labels);
        Ok(())
    }

    fn apply_ports(
        &self,
        config: &mut ContainerConfig,
        host: &mut HostConfig,
    ) -> Result<(), FlagError> {
        let mut collected = ports::Ports::default();
        ports::publish(&mut collected, &self.publish)
            .map_err(|m| FlagError::invalid_value("-p, --publish", m))?;
        ports::expose(&mut collected, &self.expose)
            .map_err(|m| FlagError::invalid_value("--expose", m))?;
        if !collected.exposed.is_empty() {
            config.exposed_ports = Some(collected.exposed);
        }
        host.port_bindings = collected.bindings;
        Ok(())
    }

    fn apply_storage(
        &self,
        config: &mut ContainerConfig,
        host: &mut HostConfig,
        cwd: &std::path::Path,
    ) -> Result<(), FlagError> {
        let volumes = mounts::volumes(&self.volume, &host.volume_driver, cwd)
            .map_err(|m| FlagError::invalid_value("-v, --volume", m))?;
        if !volumes.binds.is_empty() {
            host.binds = Some(volumes.binds);
        }
        if !volumes.anonymous.is_empty() {
            config.volumes = Some(volumes.anonymous);
        }

        let mut specs = Vec::new();
        for value in &self.mount {
            match mounts::mount(value, &host.volume_driver, cwd) {
                Ok(spec) => specs.push(spec),
                Err(mounts::MountError::Flag(reason)) => {
                    return Err(FlagError::invalid_argument("--mount", value, reason))
                }
                Err(mounts::MountError::Config(message)) => {
                    return Err(FlagError::invalid_value("--mount", message))
                }
            }
        }
        if !specs.is_empty() {
            host.mounts = Some(specs);
        }

        let mut tmpfs = BTreeMap::new();
        for spec in &self.tmpfs {
            let (dest, options) =
                mounts::tmpfs(spec).map_err(|m| FlagError::invalid_value("--tmpfs", m))?;
            tmpfs.insert(dest, options);
        }
        if !tmpfs.is_empty() {
            host.tmpfs = Some(tmpfs);
        }

        for spec in &self.volumes_from {
            mounts::volumes_from(spec)
                .map_err(|m| FlagError::invalid_value("--volumes-from", m))?;
        }
        if !self.volumes_from.is_empty() {
            host.volumes_from = Some(self.volumes_from.clone());
        }

        let mut storage = BTreeMap::new();
        for option in &self.storage_opt {
            let (k, v, ok) = values::cut(option, '=');
            if !ok {
                return Err(FlagError::invalid_value(
                    "--storage-opt",
                    "invalid storage option",
                ));
            }
            storage.insert(k.to_string(), v.to_string());
        }
        if !storage.is_empty() {
            host.storage_opt = Some(storage);
        }
        if let Some(size) = &self.shm_size {
            host.shm_size = size_flag("--shm-size", size)?;
        }
        Ok(())
    }

    fn apply_namespaces(&self, host: &mut HostConfig) -> Result<(), FlagError> {
        let pid = self.pid.clone().unwrap_or_default();
        if !(pid.is_empty() || pid == "host" || container_ref(&pid).is_some_and(|c| !c.is_empty()))
        {
            return Err(FlagError::invalid_value("--pid", "--pid: invalid PID mode"));
        }
        host.pid_mode = pid;
        let uts = self.uts.clone().unwrap_or_default();
        if !(uts.is_empty() || uts == "host") {
            return Err(FlagError::invalid_value("--uts", "--uts: invalid UTS mode"));
        }
        host.uts_mode = uts;
        let userns = self.userns.clone().unwrap_or_default();
        if !(userns.is_empty() || userns == "host") {
            return Err(FlagError::invalid_value(
                "--userns",
                "--userns: invalid USER mode",
            ));
        }
        host.userns_mode = userns;
        let cgroupns = self.cgroupns.clone().unwrap_or_default();
        if !matches!(cgroupns.as_str(), "" | "host" | "private") {
            return Err(FlagError::invalid_value(
                "--cgroupns",
                "--cgroupns: invalid CGROUP mode",
            ));
        }
        host.cgroupns_mode = cgroupns;
        let ipc = self.ipc.clone().unwrap_or_default();
        let ipc_valid = matches!(ipc.as_str(), "" | "none" | "private" | "host" | "shareable")
            || container_ref(&ipc).is_some();
        if !ipc_valid {
            return Err(FlagError::invalid_value(
                "--ipc",
                format!("invalid IPC mode: {ipc}"),
            ));
        }
        host.ipc_mode = ipc;
        Ok(())
    }

    fn apply_logging(&self, host: &mut HostConfig) -> Result<(), FlagError> {
        let driver = self.log_driver.clone().unwrap_or_default();
        if driver == "none" && !self.log_opt.is_empty() {
            return Err(FlagError::invalid_value(
                "--log-opt",
                "invalid logging opts for driver none",
            ));
        }
        host.log_config = LogConfig {
            kind: driver,
            config: values::kv_map(&self.log_opt),
        };
        Ok(())
    }

    fn apply_lifecycle(
        &self,
        config: &mut ContainerConfig,
        host: &mut HostConfig,
    ) -> Result<(), FlagError> {
        host.restart_policy = values::restart_policy(&self.restart)
            .map_err(|m| FlagError::invalid_value("--restart", m))?;
        let restarts = !matches!(host.restart_policy.name.as_str(), "" | "no");
        if self.rm && restarts {
            return Err(FlagError::conflict(
                "conflicting options: cannot specify both --restart and --rm",
            ));
        }
        if let Some(signal) = self.stop_signal.as_deref().filter(|s| !s.is_empty()) {
            values::signal(signal).map_err(|m| FlagError::invalid_value("--stop-signal", m))?;
            config.stop_signal = signal.to_string();
        }
        if let Some(v) = &self.stop_timeout {
            config.stop_timeout = Some(int_flag("--stop-timeout", v, 64)?);
        }
        Ok(())
    }

    fn healthcheck(&self) -> Result<Option<HealthConfig>, FlagError> {
        let duration = |flag: &'static str, v: &Option<String>| -> Result<i64, FlagError> {
            match v {
                Some(v) => {
                    values::go_duration(v).map_err(|r| FlagError::invalid_argument(flag, v, r))
                }
                None => Ok(0),
            }
        };
        let interval = duration("--health-interval", &self.health_interval)?;
        let timeout = duration("--health-timeout", &self.health_timeout)?;
        let start_period = duration("--health-start-period", &self.health_start_period)?;
        let start_interval = duration("--health-start-interval", &self.health_start_interval)?;
        let retries = match &self.health_retries {
            Some(v) => int_flag("--health-retries", v, 64)?,
            None => 0,
        };
        let command = self.health_cmd.clone().unwrap_or_default();
        let any_setting = !command.is_empty()
            || interval != 0
            || timeout != 0
            || start_period != 0
            || retries != 0
            || start_interval != 0;
        if self.no_healthcheck {
            if any_setting {
                return Err(FlagError::conflict(
                    "--no-healthcheck conflicts with --health-* options",
                ));
            }
            return Ok(Some(HealthConfig {
                test: vec!["NONE".to_string()],
                ..Default::default()
            }));
        }
        if !any_setting {
            return Ok(None);
        }
        for (flag, value) in [
            ("--health-interval", interval),
            ("--health-timeout", timeout),
            ("--health-retries", retries),
            ("--health-start-period", start_period),
            ("--health-start-interval", start_interval),
        ] {
            if value < 0 {
                return Err(FlagError::invalid_value(
                    flag,
                    format!("{flag} cannot be negative"),
                ));
            }
        }
        Ok(Some(HealthConfig {
            test: if command.is_empty() {
                Vec::new()
            } else {
                vec!["CMD-SHELL".to_string(), command]
            },
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        }))
    }
}
