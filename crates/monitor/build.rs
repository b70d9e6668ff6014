//! Links `berth-init` (and `berth-monitor`) as static PIEs in the ordinary
//! `cargo build`.
//!
//! `berth-init` runs as PID 1 inside containers that have no libc, so it must
//! be static. The usual way (`-C target-feature=+crt-static`) cannot be used
//! here: without `--target`, rustflags also reach proc-macros, which cannot be
//! built with crt-static (see `.cargo/config.toml`). Instead this script
//! passes `-static-pie` to the linker for these binaries only.
//!
//! rustc still names the dynamic system libraries after `-Wl,-Bdynamic`
//! (`-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc`), and such a `-l` would pick
//! the shared object. A private search directory, searched before the system
//! ones (`-L` applies to every `-l` regardless of its position), holds linker
//! scripts under those `.so` names that point at the static archives
//! (`libgcc_eh.a` provides the unwinder that `libgcc_s` would).
//!
//! `berth-monitor` is static for its memory: without ld.so and the shared
//! libc mapped, a monitor of an idle container touches fewer pages (numbers
//! in the crate docs).

use std::path::PathBuf;

const STATIC_BINS: &[&str] = &["berth-init", "berth-monitor"];

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
        // glibc-static) the binaries are linked dynamically; berth-init then
        // only works in containers that have a glibc.
        println!(
            "cargo:warning=berth-monitor: {missing} not found, berth-init and berth-monitor are linked dynamically"
        );
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let dir = out.join("static-libs");
    if let Err(e) = write_scripts(&dir) {
        println!("cargo:warning=berth-monitor: cannot write linker scripts: {e}");
        return;
    }
    for bin in STATIC_BINS {
        println!("cargo:rustc-link-arg-bin={bin}=-L{}", dir.display());
        println!("cargo:rustc-link-arg-bin={bin}=-static-pie");
    }
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
