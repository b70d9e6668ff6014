//! `pull`, `push`, `login`, `logout`, and the auto-pull of `run`/`create`.

use std::io::{self, BufRead, IsTerminal, Read, Write};

use berth_engine::{Engine, EngineError, NoProgress, TransferProgress};
use berth_image::registry::{
    auth::auth_key, Credentials, DockerConfigFile, RegistryClient, RegistryConfig,
};
use berth_image::{Reference, DEFAULT_DOMAIN};
use clap::Args;

use crate::output::{error_chain, CliError};
use crate::progress::{ProgressPrinter, Stream};

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Skip image verification (accepted for compatibility; berth always verifies digests)
    #[arg(long, hide = true)]
    pub disable_content_trust: bool,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Skip image signing (accepted for compatibility)
    #[arg(long, hide = true)]
    pub disable_content_trust: bool,
    /// NAME[:TAG]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry server (default: Docker Hub)
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry server (default: Docker Hub)
    pub server: Option<String>,
}

/// Errors of pull/push/login: Docker's "Error response from daemon:", exit 1.
fn daemon_error(e: &EngineError) -> anyhow::Error {
    CliError::new(format!("Error response from daemon: {}", error_chain(e))).into()
}

fn parse_reference(name: &str) -> anyhow::Result<Reference> {
    Reference::parse(name).map_err(|e| CliError::new(e.to_string()).into())
}

pub fn pull(engine: &Engine, a: PullArgs) -> anyhow::Result<()> {
    let reference = parse_reference(&a.name)?;
    let printer = ProgressPrinter::new(Stream::Stdout);
    let progress: &dyn TransferProgress = if a.quiet { &NoProgress } else { &printer };
    let images = engine.images();
    if !a.all_tags {
        let report = images
            .pull(&reference, a.platform.as_deref(), progress)
            .map_err(|e| daemon_error(&e))?;
        if !a.quiet {
            printer.line(&format!("Digest: {}", report.digest));
            printer.line(&status_line(report.up_to_date, &reference.familiar()));
        }
        println!("{reference}");
        return Ok(());
    }
    let explicit = Reference::parse_name_only(&a.name)
        .map(|r| r.tag().is_some() || r.digest().is_some())
        .unwrap_or(false);
    if explicit {
        return Err(CliError::new("tag can't be used with --all-tags/-a").into());
    }
    let tags = images
        .remote_tags(&reference)
        .map_err(|e| daemon_error(&e))?;
    let mut all_up_to_date = true;
    for tag in tags {
        let r = reference
            .with_tag(&tag)
            .map_err(|e| CliError::new(e.to_string()))?;
        let report = images
            .pull(&r, a.platform.as_deref(), progress)
            .map_err(|e| daemon_error(&e))?;
        all_up_to_date &= report.up_to_date;
        if !a.quiet {
            printer.line(&format!("Digest: {}", report.digest));
        }
    }
    let repo = reference.familiar_repository();
    if !a.quiet {
        printer.line(&status_line(all_up_to_date, &repo));
    }
    println!("{}", reference.repository());
    Ok(())
}

fn status_line(up_to_date: bool, name: &str) -> String {
    if up_to_date {
        format!("Status: Image is up to date for {name}")
    } else {
        format!("Status: Downloaded newer image for {name}")
    }
}

/// The auto-pull of `run`/`create` (`--pull missing` found no image, or
/// `--pull always`): progress on stderr, as Docker prints it.
pub fn pull_for_run(engine: &Engine, image: &str, quiet: bool) -> Result<(), EngineError> {
    let reference = Reference::parse(image)
        .map_err(|e| EngineError::Image(berth_image::ImageError::Reference(e)))?;
    let printer = ProgressPrinter::new(Stream::Stderr);
    let progress: &dyn TransferProgress = if quiet { &NoProgress } else { &printer };
    let report = engine.images().pull(&reference, None, progress)?;
    if !quiet {
        printer.line(&format!("Digest: {}", report.digest));
        printer.line(&status_line(report.up_to_date, &reference.familiar()));
    }
    Ok(())
}

/// `create` with Docker's `--pull` policy: `missing` pulls when the image
/// is not stored ("Unable to find image … locally" first), `always` pulls
/// before creating, `never` reports the missing image.
pub fn create_pulling(
    engine: &Engine,
    a: &crate::run_args::CreateArgs,
    req: berth_engine::containers::model::CreateRequest,
) -> Result<berth_engine::containers::ContainerRecord, EngineError> {
    use crate::run_args::PullPolicy;
    let policy = a.pull_policy().unwrap_or(PullPolicy::Missing);
    if policy == PullPolicy::Always {
        pull_for_run(engine, a.image(), a.quiet)?;
    }
    match engine.containers().create(req.clone()) {
        Err(EngineError::ImageNotFoundLocally(name)) if policy == PullPolicy::Missing => {
            eprintln!("Unable to find image '{name}' locally");
            pull_for_run(engine, a.image(), a.quiet)?;
            engine.containers().create(req)
        }
        Err(EngineError::ImageNotFoundLocally(name)) => Err(EngineError::NoSuchImage(name)),
        other => other,
    }
}

pub fn push(engine: &Engine, a: PushArgs) -> anyhow::Result<()> {
    let reference = parse_reference(&a.name)?;
    let images = engine.images();
    let explicit_tag = Reference::parse_name_only(&a.name)
        .map(|r| r.tag().is_some())
        .unwrap_or(false);
    let targets = if a.all_tags {
        if explicit_tag {
            return Err(CliError::new("tag can't be used with --all-tags/-a").into());
        }
        let tags = images
            .local_tags(&reference)
            .map_err(|e| daemon_error(&e))?;
        if tags.is_empty() {
            return Err(CliError::new(format!(
                "Error response from daemon: An image does not exist locally with the tag: {}",
                reference.familiar_repository()
            ))
            .into());
        }
        tags
    } else {
        vec![reference.clone()]
    };
    let printer = ProgressPrinter::new(Stream::Stdout);
    let progress: &dyn TransferProgress = if a.quiet { &NoProgress } else { &printer };
    if !a.quiet {
        printer.line(&format!(
            "The push refers to repository [{}]",
            reference.repository()
        ));
    }
    for target in targets {
        let report = images.push(&target, progress).map_err(|e| match e {
            EngineError::NoSuchImage(msg) => {
                CliError::new(format!("Error response from daemon: {msg}")).into()
            }
            other => daemon_error(&other),
        })?;
        let tag = target.tag().unwrap_or("latest");
        if a.quiet {
            println!("{target}");
        } else {
            printer.line(&format!(
                "{tag}: digest: {} size: {}",
                report.digest, report.size
            ));
        }
    }
    Ok(())
}

/// `localhost:5000`, `https://localhost:5000/v2/` → `localhost:5000`;
/// Docker Hub's names → `docker.io`.
fn registry_name(server: Option<&str>) -> String {
    let Some(s) = server.map(str::trim).filter(|s| !s.is_empty()) else {
        return DEFAULT_DOMAIN.to_string();
    };
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DEFAULT_DOMAIN.to_string(),
        h => h.to_string(),
    }
}

/// What Docker shows for a registry in login/logout messages.
fn display_server(registry: &str) -> String {
    if registry == DEFAULT_DOMAIN {
        auth_key(registry)
    } else {
        registry.to_string()
    }
}

pub fn login(a: LoginArgs) -> anyhow::Result<()> {
    let registry = registry_name(a.server.as_deref());
    if a.password.is_some() && a.password_stdin {
        return Err(CliError::new("--password and --password-stdin are mutually exclusive").into());
    }
    if a.password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let username = match a.username.filter(|u| !u.is_empty()) {
        Some(u) => u,
        None if a.password_stdin => {
            return Err(CliError::new("Must provide --username with --password-stdin").into())
        }
        None => prompt("Username: ", true)?,
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        io::stdin().read_to_string(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match a.password {
            Some(p) => p,
            None => prompt("Password: ", false)?,
        }
    };
    if username.is_empty() || password.is_empty() {
        return Err(CliError::new("Error: Username and password are required").into());
    }
    let creds = Credentials { username, password };
    let login_err = |e: berth_image::registry::RegistryError| -> anyhow::Error {
        CliError::new(format!("Error response from daemon: {}", error_chain(&e))).into()
    };
    let config = RegistryConfig::load().map_err(login_err)?;
    let client =
        RegistryClient::connect(&registry, &config, Some(creds.clone())).map_err(login_err)?;
    client.verify_login().map_err(login_err)?;
    let mut file = DockerConfigFile::load_default().map_err(login_err)?;
    file.set_credentials(&registry, &creds);
    file.save().map_err(login_err)?;
    eprintln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        file.path().display()
    );
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(a: LogoutArgs) -> anyhow::Result<()> {
    let registry = registry_name(a.server.as_deref());
    let shown = display_server(&registry);
    let err = |e: berth_image::registry::RegistryError| -> anyhow::Error {
        CliError::new(error_chain(&e)).into()
    };
    let mut file = DockerConfigFile::load_default().map_err(err)?;
    if !file.remove_credentials(&registry) {
        println!("Not logged in to {shown}");
        return Ok(());
    }
    println!("Removing login credentials for {shown}");
    file.save().map_err(err)?;
    Ok(())
}

/// Reads a line from the terminal; without `echo` the typing is hidden.
fn prompt(label: &str, echo: bool) -> anyhow::Result<String> {
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::new(format!(
            "Error: cannot perform an interactive login from a non TTY device: {}",
            label.trim_end_matches([':', ' '])
        ))
        .into());
    }
    print!("{label}");
    io::stdout().flush()?;
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let saved = if echo { None } else { tcgetattr(&stdin).ok() };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
        println!();
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names() {
        assert_eq!(registry_name(None), "docker.io");
        assert_eq!(
            registry_name(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(registry_name(Some("localhost:5000")), "localhost:5000");
        assert_eq!(
            registry_name(Some("http://localhost:5000/v2/")),
            "localhost:5000"
        );
        assert_eq!(display_server("docker.io"), "https://index.docker.io/v1/");
    }
}
