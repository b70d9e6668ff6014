//! `berth-monitor <monitor.json>`, with fd 3 the write end of the ready
//! pipe: see the `berth_monitor` crate docs.

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(config), None) = (args.next(), args.next()) else {
        eprintln!(
            "usage: berth-monitor <monitor.json>   (fd 3: ready pipe)\n       \
             berth-monitor --standby         (fd 3: ready pipe, fd 4: config path)"
        );
        std::process::exit(2);
    };
    if config == "--standby" {
        std::process::exit(berth_monitor::supervisor::standby_main());
    }
    std::process::exit(berth_monitor::supervisor::main(std::path::Path::new(
        &config,
    )));
}
