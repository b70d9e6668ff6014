//! `system` commands.

use std::collections::BTreeMap;
use std::io::{self, Write};

use berth_engine::{Engine, UsageRow};
use serde_json::{json, Value};

use crate::args::DfArgs;
use crate::output::{image_id, Formatter};
use crate::template::align_table;
use crate::units::{human_size, since};

pub fn df(engine: &Engine, a: DfArgs) -> anyhow::Result<()> {
    let usage = engine.disk_usage()?;
    let mut out = io::stdout().lock();
    if a.verbose && a.format.is_none() {
        writeln!(out, "Images space usage:\n")?;
        let mut t = String::from(
            "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n",
        );
        for img in &usage.image_details {
            let names: Vec<(String, String)> = if img.repo_tags.is_empty() {
                vec![("<none>".into(), "<none>".into())]
            } else {
                img.repo_tags
                    .iter()
                    .filter_map(|t| {
                        t.rsplit_once(':')
                            .map(|(r, t)| (r.to_string(), t.to_string()))
                    })
                    .collect()
            };
            for (repo, tag) in names {
                t.push_str(&format!(
                    "{repo}\t{tag}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    image_id(&img.id, false),
                    since(img.created),
                    human_size(img.size),
                    human_size(img.shared_size),
                    human_size(img.size - img.shared_size.min(img.size)),
                    img.containers
                ));
            }
        }
        out.write_all(align_table(&t).as_bytes())?;
        writeln!(out, "\nContainers space usage:\n")?;
        out.write_all(
            align_table(
                "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n",
            )
            .as_bytes(),
        )?;
        writeln!(out, "\nLocal Volumes space usage:\n")?;
        let mut t = String::from("VOLUME NAME\tLINKS\tSIZE\n");
        for v in &usage.volume_details {
            t.push_str(&format!(
                "{}\t{}\t{}\n",
                v.name,
                v.links,
                human_size(v.size)
            ));
        }
        out.write_all(align_table(&t).as_bytes())?;
        writeln!(
            out,
            "\nBuild cache usage: {}\n",
            human_size(usage.build_cache.size)
        )?;
        out.write_all(
            align_table("CACHE ID\tCACHE TYPE\tSIZE\tCREATED\tLAST USED\tUSAGE\tSHARED\n")
                .as_bytes(),
        )?;
        return Ok(());
    }
    let row = |kind: &str, r: &UsageRow, percent: bool| -> Value {
        let reclaimable = if percent && r.size > 0 {
            format!(
                "{} ({}%)",
                human_size(r.reclaimable),
                r.reclaimable * 100 / r.size
            )
        } else {
            human_size(r.reclaimable)
        };
        json!({
            "Type": kind,
            "TotalCount": r.total.to_string(),
            "Active": r.active.to_string(),
            "Size": human_size(r.size),
            "Reclaimable": reclaimable,
        })
    };
    let rows = vec![
        row("Images", &usage.images, true),
        row("Containers", &usage.containers, true),
        row("Local Volumes", &usage.volumes, true),
        row("Build Cache", &usage.build_cache, false),
    ];
    let formatter = Formatter::new(
        a.format.as_deref(),
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
    )?;
    formatter.write(&mut out, &BTreeMap::from([("TotalCount", "TOTAL")]), &rows)
}
