//! Lays out the functions that the common commands execute together in
//! `cargo dist`'s `berth` (why and how: build-support/symbol_order.rs).

include!("../../build-support/symbol_order.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    order_symbols("berth");
}
