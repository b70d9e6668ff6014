//! Applies layer tars into a layer store, one on top of the other, for
//! `scripts/bench-unpack.sh`: `unpack [--durable] <root> <layer.tar>...`.

use std::error::Error;
use std::fs::File;
use std::path::Path;

use berth_image::{Digest, LayerStore};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--hash-only") {
        // Measures sha256 throughput alone, for comparison with apply.
        let start = std::time::Instant::now();
        let mut total = 0u64;
        for f in &args[1..] {
            let (_, n) = berth_image::HashingReader::new(File::open(f)?).finish_draining()?;
            total += n;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "hashed {total} bytes in {secs:.3}s: {:.0} MB/s",
            total as f64 / secs / 1e6
        );
        return Ok(());
    }
    let durable = args.first().is_some_and(|a| a == "--durable");
    if durable {
        args.remove(0);
    }
    let Some((root, tars)) = args.split_first() else {
        return Err("usage: unpack [--durable] <root> <layer.tar>...".into());
    };
    let mut layers = LayerStore::open(Path::new(root))?;
    layers.set_durable(durable);
    let mut parent: Option<Digest> = None;
    for tar in tars {
        let info = layers.apply(parent.as_ref(), File::open(tar)?, None)?;
        parent = Some(info.chain_id);
    }
    if let Some(p) = parent {
        println!("{p}");
    }
    Ok(())
}
