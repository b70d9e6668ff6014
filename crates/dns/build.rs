//! Links `berth-dns` as a static PIE in the ordinary `cargo build` (how:
//! build-support/static_pie.rs).
//!
//! Why static: berth-dns runs for as long as any user network has a
//! container; without ld.so and the shared libc mapped it touches fewer
//! pages (numbers in README.md). It needs nothing from glibc that a static
//! glibc lacks: no NSS (it reads resolv.conf itself, never getaddrinfo).

include!("../../build-support/static_pie.rs");

fn main() {
    link_static_pie(
        "berth-dns",
        &["berth-dns"],
        "berth-dns is linked dynamically",
    );
}
