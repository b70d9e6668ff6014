//! Links `berth-init` (and `berth-monitor`) as static PIEs in the ordinary
//! `cargo build` (how: build-support/static_pie.rs), and in `cargo dist` lays
//! out the functions a monitor executes together (build-support/symbol_order.rs).
//!
//! `berth-init` runs as PID 1 inside containers that have no libc, so it must
//! be static. `berth-monitor` is static for its memory: without ld.so and the
//! shared libc mapped, a monitor of an idle container touches fewer pages
//! (numbers in the crate docs).

include!("../../build-support/static_pie.rs");
include!("../../build-support/symbol_order.rs");

fn main() {
    link_static_pie(
        "berth-monitor",
        &["berth-init", "berth-monitor"],
        "berth-init and berth-monitor are linked dynamically",
    );
    order_symbols("berth-monitor");
}
