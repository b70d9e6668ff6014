//! `berth-runtime`: runc's command line over the berth-runtime library.

fn main() {
    std::process::exit(berth_runtime::commands::main());
}
