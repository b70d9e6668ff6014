//! Links `berth-dns` as a static PIE in the ordinary `cargo build`, the
//! way crates/monitor/build.rs links berth-monitor (see there for the
//! linker-script trick that lets `-static-pie` work without `--target`).
//!
//! Why static: berth-dns runs for as long as any user network has a
//! container; without ld.so and the shared libc mapped it touches fewer
//! pages (numbers in README.md). It needs nothing from glibc that a static
//! glibc lacks: no NSS (it reads resolv.conf itself, never getaddrinfo).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-gnu") {
        return;
    }
    if let Some(missing) = ["libc.a", "libgcc_eh.a"]
        .into_iter()
        .find(|lib| !static_lib_available(lib))
    {
        // Without glibc's static archives (Debian: libc6-dev; Fedora:
        // glibc-static) berth-dns is linked dynamically, which works too.
        println!("cargo:warning=berth-dns: {missing} not found, berth-dns is linked dynamically");
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let dir = out.join("static-libs");
    if let Err(e) = write_scripts(&dir) {
        println!("cargo:warning=berth-dns: cannot write linker scripts: {e}");
        return;
    }
    println!("cargo:rustc-link-arg-bin=berth-dns=-L{}", dir.display());
    println!("cargo:rustc-link-arg-bin=berth-dns=-static-pie");
}

/// Whether the C compiler finds `lib` (it echoes the bare name otherwise).
fn static_lib_available(lib: &str) -> bool {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    std::process::Command::new(cc)
        .arg(format!("-print-file-name={lib}"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .is_some_and(|p| p.starts_with('/') && std::path::Path::new(&p).exists())
}

/// Linker scripts named like the shared system libraries that rustc asks
/// for, pointing at the static archives.
fn write_scripts(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n")?;
    for lib in ["c", "util", "rt", "pthread", "m", "dl"] {
        std::fs::write(
            dir.join(format!("lib{lib}.so")),
            format!("INPUT(-l:lib{lib}.a)\n"),
        )?;
    }
    Ok(())
}
