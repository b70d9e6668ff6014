//! `berth create` and `berth run` flags (Docker 28's names, short forms,
//! value syntax and defaults) and their translation into the engine's
//! [`CreateRequest`], with Docker's error messages.
//!
//! Flag values are kept as the strings the user typed and parsed in
//! [`CreateArgs::to_request`]: Docker reports a bad value as
//! `invalid argument "x" for "-m, --memory" flag: invalid size: 'x'`, which
//! clap's own value parsers cannot produce.

mod flags;
mod mounts;
mod network;
mod ports;
mod values;

#[cfg(test)]
mod docker_reference_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use berth_engine::containers::model::{
    ContainerConfig, CreateRequest, HealthConfig, HostConfig, LogConfig,
};

pub use flags::{CreateArgs, RunArgs};
pub use network::NetworkAttachment;
pub use values::KvFileError;

/// A flag value Docker would refuse, with Docker's message.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// The value does not parse (pflag's message for a failed `Set`; the
    /// value quoted like Go's `%q`).
    #[error("invalid argument {value:?} for \"{flag}\" flag: {reason}")]
    InvalidArgument {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// The value parses but Docker's CLI or daemon rejects it.
    #[error("{message}")]
    InvalidValue { flag: &'static str, message: String },
    /// Two flags that cannot be used together.
    #[error("{message}")]
    Conflict { message: String },
    /// `--env-file` or `--label-file` could not be read or parsed.
    #[error("{source}")]
    KeyValueFile {
        flag: &'static str,
        #[source]
        source: KvFileError,
    },
    /// `--security-opt seccomp=FILE` could not be read.
    #[error(
        "opening seccomp profile ({path}) failed: open {path}: {}",
        values::go_io_error(source)
    )]
    SeccompProfileRead {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `--security-opt seccomp=FILE` is not JSON.
    #[error("compacting json for seccomp profile ({path}) failed: {source}")]
    SeccompProfileJson {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// A Docker feature berth does not have on this platform.
    #[error("{message}")]
    Unsupported { flag: &'static str, message: String },
}

impl FlagError {
    /// How Docker reports a bad flag: `berth: <message>` and a pointer to
    /// the command's help, exit status 125.
    pub fn to_cli_error(&self, command: &str) -> crate::output::CliError {
        crate::output::CliError::usage(format!("berth: {self}\nSee 'berth {command} --help'."))
    }

    fn invalid_argument(flag: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            flag,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    fn invalid_value(flag: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidValue {
            flag,
            message: message.into(),
        }
    }

    fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
        }
    }
}

/// `--pull`: when to pull the image before creating the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull only when the image is not present (Docker's default).
    Missing,
    Always,
    Never,
}

impl CreateArgs {
    /// The image reference (the first positional argument).
    pub fn image(&self) -> &str {
        self.image_and_command
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The command and its arguments after the image (empty: the image's).
    pub fn command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or_default()
    }

    /// `--pull`, validated.
    pub fn pull_policy(&self) -> Result<PullPolicy, FlagError> {
        match self.pull.as_str() {
            "missing" | "" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(FlagError::invalid_value(
                "--pull",
                format!(
                    "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
                ),
            )),
        }
    }

    /// Warnings Docker prints (`WARNING: …`) for accepted but ineffective
    /// flags.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self
            .kernel_memory
            .as_deref()
            .is_some_and(|v| crate::units::ram_in_bytes(v).is_ok_and(|b| b > 0))
        {
            // Kernel memory accounting limits are gone from cgroup v2 and
            // deprecated in v1 since Linux 5.4; Docker drops the limit too.
            out.push("Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.".to_string());
        }
        let memory_set = self
            .memory
            .as_deref()
            .is_some_and(|v| crate::units::ram_in_bytes(v).is_ok_and(|b| b > 0));
        if self.oom_kill_disable && !memory_set {
            out.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".to_string());
        }
        out
    }

    /// The engine's create request for these flags. Pure except for reading
    /// `--env-file`, `--label-file` and `seccomp=FILE`, looking up the host
    /// environment for `-e NAME`, and the working directory for `./` sources.
    pub fn to_request(&self) -> Result<CreateRequest, FlagError> {
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
        Ok(CreateRequest {
            name,
            config,
            host_config: host,
        })
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
        for entry in &self.env {
            let resolved = values::env_entry(entry)
                .map_err(|r| FlagError::invalid_argument("-e, --env", entry, r))?;
            config.env.extend(resolved);
        }

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
            match mounts::mount(value, cwd) {
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

    fn apply_network(
        &self,
        config: &mut ContainerConfig,
        host: &mut HostConfig,
    ) -> Result<(), FlagError> {
        let attachments = self.networks()?;
        if !self.network.is_empty() {
            host.network_mode = attachments
                .first()
                .map(|a| a.network.clone())
                .unwrap_or_default();
        }
        if let Some(mac) = &self.mac_address {
            config.mac_address = mac.clone();
        }
        let mut dns = Vec::new();
        for server in &self.dns {
            dns.push(
                values::ip_address(server)
                    .map_err(|r| FlagError::invalid_argument("--dns", server, r))?,
            );
        }
        host.dns = dns;
        let mut search = Vec::new();
        for domain in &self.dns_search {
            search.push(
                values::dns_search(domain)
                    .map_err(|r| FlagError::invalid_argument("--dns-search", domain, r))?,
            );
        }
        host.dns_search = search;
        host.dns_options = self.dns_option.clone();
        let mut extra_hosts = Vec::new();
        for entry in &self.add_host {
            extra_hosts.push(
                values::extra_host(entry)
                    .map_err(|r| FlagError::invalid_argument("--add-host", entry, r))?,
            );
        }
        if !extra_hosts.is_empty() {
            host.extra_hosts = Some(extra_hosts);
        }
        for link in &self.link {
            values::link(link).map_err(|r| FlagError::invalid_argument("--link", link, r))?;
        }
        if !self.link.is_empty() {
            host.links = Some(self.link.clone());
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

    fn apply_security(&self, host: &mut HostConfig) -> Result<(), FlagError> {
        for cap in self.cap_add.iter().chain(&self.cap_drop) {
            let flag = if self.cap_add.contains(cap) {
                "--cap-add"
            } else {
                "--cap-drop"
            };
            values::capability(cap).map_err(|m| FlagError::invalid_value(flag, m))?;
        }
        if !self.cap_add.is_empty() {
            host.cap_add = Some(self.cap_add.clone());
        }
        if !self.cap_drop.is_empty() {
            host.cap_drop = Some(self.cap_drop.clone());
        }
        if !self.group_add.is_empty() {
            host.group_add = Some(self.group_add.clone());
        }
        let (options, unconfined_paths) = security_options(&self.security_opt)?;
        if !options.is_empty() {
            host.security_opt = Some(options);
        }
        if unconfined_paths {
            host.masked_paths = Some(Vec::new());
            host.readonly_paths = Some(Vec::new());
        }
        let mut sysctls = BTreeMap::new();
        for entry in &self.sysctl {
            values::sysctl(entry).map_err(|r| FlagError::invalid_argument("--sysctl", entry, r))?;
            let (k, v, _) = values::cut(entry, '=');
            sysctls.insert(k.to_string(), v.to_string());
        }
        if !sysctls.is_empty() {
            host.sysctls = Some(sysctls);
        }
        let annotations = values::kv_map(&self.annotation);
        if !annotations.is_empty() {
            host.annotations = Some(annotations);
        }
        if self.use_api_socket {
            return Err(FlagError::Unsupported {
                flag: "--use-api-socket",
                message: "--use-api-socket is not supported by berth: bind-mount the API socket with -v instead".into(),
            });
        }
        Ok(())
    }

    fn apply_resources(&self, host: &mut HostConfig) -> Result<(), FlagError> {
        if let Some(v) = &self.memory {
            host.memory = size_flag("-m, --memory", v)?;
        }
        if let Some(v) = &self.memory_reservation {
            host.memory_reservation = size_flag("--memory-reservation", v)?;
        }
        if let Some(v) = &self.memory_swap {
            host.memory_swap = if v == "-1" {
                -1
            } else {
                size_flag("--memory-swap", v)?
            };
        }
        if let Some(v) = &self.kernel_memory {
            // Parsed so that typos fail like Docker's; the limit itself is
            // dropped (see `warnings`).
            size_flag("--kernel-memory", v)?;
        }
        if let Some(v) = &self.memory_swappiness {
            let swappiness = int_flag("--memory-swappiness", v, 64)?;
            if swappiness != -1 && !(0..=100).contains(&swappiness) {
                return Err(FlagError::invalid_value(
                    "--memory-swappiness",
                    format!("invalid value: {swappiness}. Valid memory swappiness range is 0-100"),
                ));
            }
            host.memory_swappiness = (swappiness != -1).then_some(swappiness);
        }
        if let Some(v) = &self.oom_score_adj {
            host.oom_score_adj = int_flag("--oom-score-adj", v, 64)?;
        }
        if let Some(v) = &self.cpu_shares {
            host.cpu_shares = int_flag("-c, --cpu-shares", v, 64)?;
        }
        if let Some(v) = &self.cpus {
            host.nano_cpus =
                values::nano_cpus(v).map_err(|r| FlagError::invalid_argument("--cpus", v, r))?;
        }
        if let Some(v) = &self.cpu_period {
            host.cpu_period = int_flag("--cpu-period", v, 64)?;
        }
        if let Some(v) = &self.cpu_quota {
            host.cpu_quota = int_flag("--cpu-quota", v, 64)?;
        }
        if let Some(v) = &self.cpu_rt_period {
            host.cpu_realtime_period = int_flag("--cpu-rt-period", v, 64)?;
        }
        if let Some(v) = &self.cpu_rt_runtime {
            host.cpu_realtime_runtime = int_flag("--cpu-rt-runtime", v, 64)?;
        }
        if let Some(v) = &self.cpu_count {
            host.cpu_count = int_flag("--cpu-count", v, 64)?;
        }
        if let Some(v) = &self.cpu_percent {
            host.cpu_percent = int_flag("--cpu-percent", v, 64)?;
        }
        if let Some(v) = &self.io_maxbandwidth {
            host.io_maximum_bandwidth = size_flag("--io-maxbandwidth", v)? as u64;
        }
        if let Some(v) = &self.io_maxiops {
            host.io_maximum_iops = values::go_uint(v, 64)
                .map_err(|r| FlagError::invalid_argument("--io-maxiops", v, r))?;
        }
        if let Some(v) = &self.pids_limit {
            host.pids_limit = Some(int_flag("--pids-limit", v, 64)?);
        }
        if let Some(v) = &self.blkio_weight {
            host.blkio_weight = values::go_uint(v, 16)
                .map_err(|r| FlagError::invalid_argument("--blkio-weight", v, r))?
                as u16;
        }
        for v in &self.blkio_weight_device {
            host.blkio_weight_device.push(
                values::weight_device(v)
                    .map_err(|r| FlagError::invalid_argument("--blkio-weight-device", v, r))?,
            );
        }
        let throttles = [
            (
                &self.device_read_bps,
                "--device-read-bps",
                &mut host.blkio_device_read_bps,
                true,
            ),
            (
                &self.device_write_bps,
                "--device-write-bps",
                &mut host.blkio_device_write_bps,
                true,
            ),
            (
                &self.device_read_iops,
                "--device-read-iops",
                &mut host.blkio_device_read_iops,
                false,
            ),
            (
                &self.device_write_iops,
                "--device-write-iops",
                &mut host.blkio_device_write_iops,
                false,
            ),
        ];
        for (specs, flag, target, bytes) in throttles {
            for v in specs {
                let parsed = if bytes {
                    values::throttle_bps_device(v)
                } else {
                    values::throttle_iops_device(v)
                };
                target.push(parsed.map_err(|r| FlagError::invalid_argument(flag, v, r))?);
            }
        }
        let mut ulimits: BTreeMap<String, _> = BTreeMap::new();
        for v in &self.ulimit {
            let parsed =
                values::ulimit(v).map_err(|r| FlagError::invalid_argument("--ulimit", v, r))?;
            // A later --ulimit of the same name replaces the earlier one.
            ulimits.insert(parsed.name.clone(), parsed);
        }
        if !ulimits.is_empty() {
            host.ulimits = Some(ulimits.into_values().collect());
        }
        Ok(())
    }

    fn apply_devices(&self, host: &mut HostConfig) -> Result<(), FlagError> {
        for device in &self.device {
            if values::is_cdi_name(device) {
                return Err(FlagError::Unsupported {
                    flag: "--device",
                    message: format!("CDI device injection is not supported by berth: {device}"),
                });
            }
            host.devices
                .push(values::device(device).map_err(|m| FlagError::invalid_value("--device", m))?);
        }
        for rule in &self.device_cgroup_rule {
            values::device_cgroup_rule(rule)
                .map_err(|r| FlagError::invalid_argument("--device-cgroup-rule", rule, r))?;
        }
        if !self.device_cgroup_rule.is_empty() {
            host.device_cgroup_rules = Some(self.device_cgroup_rule.clone());
        }
        if self.gpus.is_some() {
            // Docker's answer when no GPU driver is installed: berth has none.
            return Err(FlagError::Unsupported {
                flag: "--gpus",
                message: "could not select device driver \"\" with capabilities: [[gpu]]".into(),
            });
        }
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

impl RunArgs {
    /// The create request for `run`: as for `create`, and with `-d` nothing
    /// is attached.
    pub fn to_request(&self) -> Result<CreateRequest, FlagError> {
        let mut request = self.create.to_request()?;
        if self.detach {
            if !self.create.attach.is_empty() {
                return Err(FlagError::conflict(
                    "conflicting options: cannot specify both --attach and --detach",
                ));
            }
            let config = &mut request.config;
            config.attach_stdin = false;
            config.attach_stdout = false;
            config.attach_stderr = false;
            config.stdin_once = false;
        }
        Ok(request)
    }

    /// `--detach-keys` as bytes (moby/term's `ToBytes`: `ctrl-p,ctrl-q`,
    /// single characters, `ctrl-@` … `ctrl-_`); `None` when not given.
    pub fn detach_keys(&self) -> Result<Option<Vec<u8>>, FlagError> {
        let Some(keys) = &self.detach_keys else {
            return Ok(None);
        };
        let mut codes = Vec::new();
        for key in keys.split(',') {
            if key.len() == 1 {
                codes.push(key.as_bytes()[0]);
                continue;
            }
            let code = key
                .strip_prefix("ctrl-")
                .filter(|c| c.len() == 1)
                .map(|c| c.as_bytes()[0])
                .and_then(|c| match c {
                    b'@' => Some(0),
                    b'a'..=b'z' => Some(c - b'a' + 1),
                    b'[' => Some(27),
                    b'\\' => Some(28),
                    b']' => Some(29),
                    b'^' => Some(30),
                    b'_' => Some(31),
                    _ => None,
                });
            match code {
                Some(code) => codes.push(code),
                None => {
                    return Err(FlagError::invalid_value(
                        "--detach-keys",
                        format!("Invalid detach keys ({keys}) provided"),
                    ))
                }
            }
        }
        Ok(Some(codes))
    }
}

/// `container:<name|id>` → the name or id.
fn container_ref(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

/// An integer flag (pflag's `strconv.ParseInt(s, 0, bits)`).
fn int_flag(flag: &'static str, value: &str, bits: u32) -> Result<i64, FlagError> {
    values::go_int(value, bits).map_err(|r| FlagError::invalid_argument(flag, value, r))
}

/// A size flag (`opts.MemBytes`: go-units `RAMInBytes`).
fn size_flag(flag: &'static str, value: &str) -> Result<i64, FlagError> {
    crate::units::ram_in_bytes(value).map_err(|r| FlagError::invalid_argument(flag, value, r))
}

/// `--security-opt` values: Docker's CLI syntax check, the seccomp file read
/// into the option, the daemon's key check, and `systempaths=unconfined`
/// (handled by the client, as Docker does). Returns the options to send and
/// whether system paths are unconfined.
fn security_options(raw: &[String]) -> Result<(Vec<String>, bool), FlagError> {
    let mut out = Vec::new();
    let mut unconfined_paths = false;
    for opt in raw {
        if opt == "systempaths=unconfined" {
            unconfined_paths = true;
            continue;
        }
        let (mut key, mut value, mut ok) = values::cut(opt, '=');
        if !ok && key != "no-new-privileges" {
            (key, value, ok) = values::cut(opt, ':');
        }
        if (!ok || value.is_empty()) && key != "no-new-privileges" {
            return Err(FlagError::invalid_value(
                "--security-opt",
                format!("Invalid --security-opt: {opt:?}"),
            ));
        }
        let daemon_invalid = || {
            FlagError::invalid_value(
                "--security-opt",
                format!("invalid --security-opt 2: {opt:?}"),
            )
        };
        match key {
            "no-new-privileges" | "writable-cgroups" => {
                if ok {
                    values::go_bool(value).map_err(|_| daemon_invalid())?;
                }
                out.push(opt.clone());
            }
            "seccomp" => match value {
                "unconfined" | "builtin" => out.push(opt.clone()),
                path => {
                    let content =
                        std::fs::read(path).map_err(|source| FlagError::SeccompProfileRead {
                            path: path.to_string(),
                            source,
                        })?;
                    let profile: serde_json::Value =
                        serde_json::from_slice(&content).map_err(|source| {
                            FlagError::SeccompProfileJson {
                                path: path.to_string(),
                                source,
                            }
                        })?;
                    // Docker sends the compacted profile itself, so the
                    // container does not depend on the file later.
                    out.push(format!("seccomp={profile}"));
                }
            },
            "apparmor" => out.push(opt.clone()),
            "label" => {
                let (label_key, _, has_value) = values::cut(value, ':');
                let valid = matches!(value, "disable" | "nested")
                    || (has_value
                        && ["user", "role", "type", "level", "filetype"].contains(&label_key));
                if !valid {
                    return Err(FlagError::invalid_value(
                        "--security-opt",
                        format!("bad label option {value:?}, valid options 'disable' or \n'user, role, level, type, filetype' followed by ':' and a value"),
                    ));
                }
                out.push(opt.clone());
            }
            _ => return Err(daemon_invalid()),
        }
    }
    Ok((out, unconfined_paths))
}
