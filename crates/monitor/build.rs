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
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-gnu") {
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
