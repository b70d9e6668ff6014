//! The clap structs for `create` and `run`, flag for flag as in
//! `docker run --help` (Docker 28). Boolean flags take `--flag=false` like
//! pflag's; value flags take values that start with `-` (`--memory-swap -1`).
//! `-h` is `--hostname` here, so only `--help` prints help.

use clap::{ArgAction, Args};

use super::values::go_bool;

#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub add_host: Vec<String>,
    /// Add an annotation to the container (passed through to the OCI runtime)
    #[arg(long, value_name = "map", allow_hyphen_values = true)]
    pub annotation: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long, value_name = "list", allow_hyphen_values = true)]
    pub attach: Vec<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long, value_name = "uint16", allow_hyphen_values = true)]
    pub blkio_weight: Option<String>,
    /// Block IO weight (relative device weight)
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub blkio_weight_device: Vec<String>,
    /// Add Linux capabilities
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub cap_drop: Vec<String>,
    /// Optional parent cgroup for the container
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub cgroup_parent: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub cidfile: Option<String>,
    /// CPU count (Windows only; refused)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub cpu_count: Option<String>,
    /// CPU percent (Windows only; refused)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub cpu_percent: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// Limit CPU real-time period in microseconds
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub cpu_rt_period: Option<String>,
    /// Limit CPU real-time runtime in microseconds
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long, value_name = "int", allow_hyphen_values = true)]
    pub cpu_shares: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub cpuset_mems: Option<String>,
    /// Add a host device to the container
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub device: Vec<String>,
    /// Add a rule to the cgroup allowed devices list
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub device_cgroup_rule: Vec<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub device_read_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub device_write_bps: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub device_write_iops: Vec<String>,
    /// Skip image verification (berth has no content trust; accepted for compatibility)
    #[arg(long, hide = true, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true", value_parser = go_bool)]
    pub disable_content_trust: bool,
    /// Set custom DNS servers
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub dns: Vec<String>,
    /// Set DNS options
    #[arg(
        long,
        alias = "dns-opt",
        value_name = "list",
        allow_hyphen_values = true
    )]
    pub dns_option: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub dns_search: Vec<String>,
    /// Container NIS domain name
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub domainname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long, value_name = "list", allow_hyphen_values = true)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub expose: Vec<String>,
    /// GPU devices to add to the container ('all' to pass all GPUs)
    #[arg(long, value_name = "gpu-request", allow_hyphen_values = true)]
    pub gpus: Option<String>,
    /// Add additional groups to join
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub group_add: Vec<String>,
    /// Command to run to check health
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub health_retries: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_start_interval: Option<String>,
    /// Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 0s)
    #[arg(long, value_name = "duration", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string", allow_hyphen_values = true)]
    pub hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = go_bool)]
    pub init: Option<bool>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub interactive: bool,
    /// Maximum IO bandwidth limit for the system drive (Windows only; refused)
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    pub io_maxbandwidth: Option<String>,
    /// Maximum IOps limit for the system drive (Windows only; refused)
    #[arg(long, value_name = "uint", allow_hyphen_values = true)]
    pub io_maxiops: Option<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub ip6: Option<String>,
    /// IPC mode to use
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub ipc: Option<String>,
    /// Container isolation technology
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub isolation: Option<String>,
    /// Kernel memory limit (ignored: kernels no longer support it)
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long, value_name = "list", allow_hyphen_values = true)]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub label_file: Vec<String>,
    /// Add link to another container
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub link: Vec<String>,
    /// Container IPv4/IPv6 link-local addresses
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub link_local_ip: Vec<String>,
    /// Logging driver for the container
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub log_driver: Option<String>,
    /// Log driver options
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub log_opt: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub mac_address: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Tune container memory swappiness (0 to 100) (default -1)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub memory_swappiness: Option<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "mount", allow_hyphen_values = true)]
    pub mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub name: Option<String>,
    /// Connect a container to a network
    #[arg(
        long,
        alias = "net",
        value_name = "network",
        allow_hyphen_values = true
    )]
    pub network: Vec<String>,
    /// Add network-scoped alias for the container
    #[arg(
        long,
        alias = "net-alias",
        value_name = "list",
        allow_hyphen_values = true
    )]
    pub network_alias: Vec<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub no_healthcheck: bool,
    /// Disable OOM Killer
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
    /// PID namespace to use
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub pid: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long, value_name = "list", allow_hyphen_values = true)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub publish_all: bool,
    /// Pull image before running ("always", "missing", "never")
    #[arg(
        long,
        value_name = "string",
        default_value = "missing",
        allow_hyphen_values = true
    )]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short = 'q', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub quiet: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub read_only: bool,
    /// Restart policy to apply when a container exits
    #[arg(
        long,
        value_name = "string",
        default_value = "no",
        allow_hyphen_values = true
    )]
    pub restart: String,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub rm: bool,
    /// Runtime to use for this container
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub runtime: Option<String>,
    /// Security Options
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long, value_name = "bytes", allow_hyphen_values = true)]
    pub shm_size: Option<String>,
    /// Signal to stop the container
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long, value_name = "int", allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// Storage driver options for the container
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub storage_opt: Vec<String>,
    /// Sysctl options
    #[arg(long, value_name = "map", allow_hyphen_values = true)]
    pub sysctl: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub tty: bool,
    /// Ulimit options
    #[arg(long, value_name = "ulimit", allow_hyphen_values = true)]
    pub ulimit: Vec<String>,
    /// Bind mount Docker API socket and required auth (not supported)
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub use_api_socket: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string", allow_hyphen_values = true)]
    pub user: Option<String>,
    /// User namespace to use
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub userns: Option<String>,
    /// UTS namespace to use
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub uts: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long, value_name = "list", allow_hyphen_values = true)]
    pub volume: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub volume_driver: Option<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long, value_name = "list", allow_hyphen_values = true)]
    pub volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string", allow_hyphen_values = true)]
    pub workdir: Option<String>,
    /// The image, then the command and its arguments. Parsing of flags stops
    /// at the image, as in Docker (`run IMAGE ls -l`).
    #[arg(value_name = "IMAGE [COMMAND] [ARG...]", required = true, num_args = 1..,
          trailing_var_arg = true)]
    pub image_and_command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Run container in background and print container ID
    #[arg(short = 'd', long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true", value_parser = go_bool)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true", value_parser = go_bool)]
    pub sig_proxy: bool,
}
