//! `network create ls inspect rm prune connect disconnect`, with Docker's
//! flags, columns and messages.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use berth_engine::networks::{EndpointRequest, NetworkCreateRequest, NetworkRecord};
use berth_engine::Engine;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::output::{AlreadyReported, CliError, Formatter};

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
    /// Remove this state root's bridges, firewall table and name server
    /// from the host (tests, uninstall)
    #[command(hide = true)]
    Reset,
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network (bridge, macvlan)
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Enable manual container attachment (accepted; every berth network is)
    #[arg(long)]
    pub attachable: bool,
    /// Set metadata on a network
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics (accepted)
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub networks: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long)]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add link to another container
    #[arg(long)]
    pub link: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

pub fn run(engine: &Engine, cmd: NetworkCommand) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Create(a) => create(engine, a),
        NetworkCommand::Ls(a) => ls(engine, a),
        NetworkCommand::Inspect(a) => inspect(engine, a),
        NetworkCommand::Rm(a) => rm(engine, a),
        NetworkCommand::Prune(a) => prune(engine, a),
        NetworkCommand::Connect(a) => {
            let req = EndpointRequest {
                aliases: a.alias,
                links: a.link,
                ipv4_address: a.ip.unwrap_or_default(),
                ipv6_address: a.ip6.unwrap_or_default(),
                ..Default::default()
            };
            engine.networks().connect(&a.network, &a.container, req)?;
            Ok(())
        }
        NetworkCommand::Disconnect(a) => {
            engine.networks().disconnect(&a.network, &a.container)?;
            Ok(())
        }
        NetworkCommand::Reset => {
            engine.networks().reset_host()?;
            Ok(())
        }
    }
}

fn key_values(flag: &str, values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in values {
        let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
        if k.is_empty() {
            return Err(CliError::usage(format!(
                "invalid argument {v:?} for \"{flag}\" flag: key cannot be empty"
            ))
            .into());
        }
        out.insert(k.to_string(), val.to_string());
    }
    Ok(out)
}

/// The one IPv4 and the one IPv6 value of a repeatable flag (`--subnet
/// 172.30.0.0/16 --subnet 2001:db8:1::/64`), told apart by their family.
fn one_per_family(flag: &str, v: &[String]) -> anyhow::Result<(Option<String>, Option<String>)> {
    let (v6, v4): (Vec<&String>, Vec<&String>) = v.iter().partition(|s| s.contains(':'));
    let one = |family: &str, v: Vec<&String>| {
        match v.as_slice() {
        [] => Ok(None),
        [x] => Ok(Some((*x).clone())),
        _ => Err(CliError {
            message: format!(
                "Error response from daemon: berth networks take one {family} {flag} (several given): pass one IPv4 and one IPv6 value at most"
            ),
            code: 1,
        }),
    }
    };
    Ok((one("IPv4", v4)?, one("IPv6", v6)?))
}

fn create(engine: &Engine, a: NetworkCreateArgs) -> anyhow::Result<()> {
    let (subnet, subnet6) = one_per_family("--subnet", &a.subnet)?;
    let (gateway, gateway6) = one_per_family("--gateway", &a.gateway)?;
    let (ip_range, ip_range6) = one_per_family("--ip-range", &a.ip_range)?;
    let req = NetworkCreateRequest {
        name: a.name,
        driver: a.driver,
        subnet,
        gateway,
        ip_range,
        internal: a.internal,
        ipv6: a.ipv6,
        subnet6,
        gateway6,
        ip_range6,
        labels: key_values("--label", &a.label)?,
        options: key_values("--opt", &a.opt)?,
    };
    let rec = engine.networks().create(&req)?;
    println!("{}", rec.id);
    Ok(())
}

/// `network ls` filters: driver, id, label, name, scope, type, dangling.
fn matches(
    engine: &Engine,
    n: &NetworkRecord,
    filters: &HashMap<String, Vec<String>>,
) -> anyhow::Result<bool> {
    for (key, values) in filters {
        let ok = match key.as_str() {
            "driver" => values.contains(&n.config.driver),
            "id" => values.iter().any(|v| n.id.starts_with(v.as_str())),
            "name" => values.iter().any(|v| n.name.contains(v.as_str())),
            "scope" => values.iter().any(|v| v == "local"),
            "type" => values.iter().any(|v| {
                let builtin = matches!(n.name.as_str(), "bridge" | "host" | "none");
                (v == "builtin" && builtin) || (v == "custom" && !builtin)
            }),
            "label" => values.iter().all(|v| match v.split_once('=') {
                Some((k, val)) => n.config.labels.get(k).is_some_and(|x| x == val),
                None => n.config.labels.contains_key(v),
            }),
            "dangling" => {
                let used = !engine.networks().inspect_json(n)?["Containers"]
                    .as_object()
                    .is_some_and(|m| m.is_empty());
                let builtin = matches!(n.name.as_str(), "bridge" | "host" | "none");
                values.iter().any(|v| (v == "true") == (!used && !builtin))
            }
            other => {
                return Err(CliError::new(format!(
                    "Error response from daemon: invalid filter '{other}'"
                ))
                .into())
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn ls(engine: &Engine, a: NetworkLsArgs) -> anyhow::Result<()> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for f in &a.filter {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            CliError::usage(format!("invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"))
        })?;
        filters
            .entry(k.to_string())
            .or_default()
            .push(v.to_string());
    }
    let mut list = Vec::new();
    for n in engine.networks().list()? {
        if matches(engine, &n, &filters)? {
            list.push(n);
        }
    }
    // Docker sorts by name.
    list.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = io::stdout().lock();
    let id_of = |n: &NetworkRecord| {
        if a.no_trunc {
            n.id.clone()
        } else {
            n.id[..12].to_string()
        }
    };
    if a.quiet && a.format.is_none() {
        for n in &list {
            writeln!(out, "{}", id_of(n))?;
        }
        return Ok(());
    }
    let formatter = Formatter::new(
        a.format.as_deref(),
        "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
    )?;
    let rows: Vec<Value> = list
        .iter()
        .map(|n| {
            json!({
                "ID": id_of(n),
                "Name": n.name,
                "Driver": n.config.driver,
                "Scope": "local",
                "IPv6": n.config.enable_ipv6.to_string(),
                "Internal": n.config.internal.to_string(),
                "Labels": n.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "CreatedAt": n.created.format("%Y-%m-%d %H:%M:%S%.f %z UTC").to_string(),
            })
        })
        .collect();
    let headers = BTreeMap::from([
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ]);
    formatter.write(&mut out, &headers, &rows)
}

fn inspect(engine: &Engine, a: NetworkInspectArgs) -> anyhow::Result<()> {
    inspect_words(engine, &a.networks, a.format.as_deref())
}

/// `network inspect` / `inspect --type network`.
pub fn inspect_words(
    engine: &Engine,
    words: &[String],
    format: Option<&str>,
) -> anyhow::Result<()> {
    let svc = engine.networks();
    let mut found = Vec::new();
    let mut failed = false;
    for word in words {
        match svc.get(word).and_then(|n| svc.inspect_json(&n)) {
            Ok(v) => found.push(v),
            Err(e) => {
                failed = true;
                eprintln!("Error response from daemon: {e}");
            }
        }
    }
    crate::output::print_inspect(&found, format)?;
    if failed {
        return Err(AlreadyReported.into());
    }
    Ok(())
}

fn rm(engine: &Engine, a: NetworkRmArgs) -> anyhow::Result<()> {
    let mut failed = false;
    for word in &a.networks {
        match engine.networks().remove(word) {
            Ok(_) => println!("{word}"),
            Err(berth_engine::EngineError::NoSuchNetwork(_)) if a.force => {}
            Err(e) => {
                failed = true;
                eprintln!("Error response from daemon: {e}");
            }
        }
    }
    if failed {
        return Err(AlreadyReported.into());
    }
    Ok(())
}

fn prune(engine: &Engine, a: NetworkPruneArgs) -> anyhow::Result<()> {
    if !a.force {
        eprint!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let labels = prune_labels(&a.filter)?;
    let removed = engine.networks().prune(&labels)?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in removed {
            println!("{n}");
        }
    }
    Ok(())
}

fn prune_labels(filters: &[String]) -> anyhow::Result<Vec<(String, bool)>> {
    let mut labels = Vec::new();
    for f in filters {
        match f.split_once('=') {
            Some(("label", v)) => labels.push((v.to_string(), true)),
            Some(("label!", v)) => labels.push((v.to_string(), false)),
            _ => {
                return Err(CliError::new(format!(
                    "Error response from daemon: invalid filter '{f}': network prune takes label= and label!="
                ))
                .into())
            }
        }
    }
    Ok(labels)
}

/// `system prune`'s network step: user networks no container uses (the
/// label filters of `filters` apply; others are the other steps').
pub fn system_prune_networks(
    engine: &Engine,
    filters: &[String],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let labels: Vec<String> = filters
        .iter()
        .filter(|f| f.starts_with("label=") || f.starts_with("label!="))
        .cloned()
        .collect();
    let removed = engine.networks().prune(&prune_labels(&labels)?)?;
    if !removed.is_empty() {
        writeln!(out, "Deleted Networks:")?;
        for n in removed {
            writeln!(out, "{n}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
