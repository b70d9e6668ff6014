//! Lays out the functions that a container's create, start and delete
//! execute together in `cargo dist`'s `berth-runtime` (why and how:
//! build-support/symbol_order.rs).

include!("../../build-support/symbol_order.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    order_symbols("berth-runtime");
}
