// Shared by the build scripts of crates whose binaries are linked as static
// PIEs in the ordinary `cargo build` (crates/monitor, crates/dns), through
// `include!`: build scripts cannot depend on a workspace crate without
// building it for the host first, and this is all they share.
//
// The usual way (`-C target-feature=+crt-static`) cannot be used: without
// `--target`, rustflags also reach proc-macros, which cannot be built with
// crt-static (see `.cargo/config.toml`). Instead `-static-pie` is passed to
// the linker for the given binaries only.
//
// rustc still names the dynamic system libraries after `-Wl,-Bdynamic`
// (`-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc`), and such a `-l` would pick
// the shared object. A private search directory, searched before the system
// ones (`-L` applies to every `-l` regardless of its position), holds linker
// scripts under those `.so` names that point at the static archives
// (`libgcc_eh.a` provides the unwinder that `libgcc_s` would).

/// Links `bins` as static PIEs where glibc's static archives exist (else
/// warns with `fallback` and leaves them dynamic).
fn link_static_pie(label: &str, bins: &[&str], fallback: &str) {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build-support/static_pie.rs");
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
        // glibc-static) the binaries are linked dynamically.
        println!("cargo:warning={label}: {missing} not found, {fallback}");
        return;
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let dir = out.join("static-libs");
    if let Err(e) = write_scripts(&dir) {
        println!("cargo:warning={label}: cannot write linker scripts: {e}");
        return;
    }
    for bin in bins {
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
