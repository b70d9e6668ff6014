//! `system df`: space used by images, containers, volumes and build cache.

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use crate::error::EngineError;
use crate::images::ImageSummary;
use crate::Engine;

/// One row of `system df`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageRow {
    pub total: u64,
    pub active: u64,
    /// Bytes on disk, shared layers counted once.
    pub size: u64,
    pub reclaimable: u64,
}

#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    pub images: UsageRow,
    pub containers: UsageRow,
    pub volumes: UsageRow,
    pub build_cache: UsageRow,
    /// Per-image detail for `-v`, newest first.
    pub image_details: Vec<ImageSummary>,
    /// Per-volume detail for `-v`, by name.
    pub volume_details: Vec<crate::volumes::VolumeUsage>,
}

impl Engine {
    /// Docker's `system df` numbers.
    pub fn disk_usage(&self) -> Result<DiskUsage, EngineError> {
        let summaries = self.images().list(true, &Default::default())?;
        let records = self.images().records()?;
        let mut layer_size: HashMap<_, u64> = HashMap::new();
        let mut active_layers = HashSet::new();
        let active_ids: HashSet<_> = summaries
            .iter()
            .filter(|s| s.containers > 0)
            .map(|s| s.id)
            .collect();
        for img in &records {
            for l in &img.layers {
                layer_size.insert(l.chain_id, l.size);
                if active_ids.contains(&img.id) {
                    active_layers.insert(l.chain_id);
                }
            }
        }
        let images_size: u64 = layer_size.values().sum();
        let active_size: u64 = active_layers.iter().filter_map(|c| layer_size.get(c)).sum();
        let images = UsageRow {
            total: summaries.len() as u64,
            active: active_ids.len() as u64,
            size: images_size,
            reclaimable: images_size.saturating_sub(active_size),
        };
        let db = self.db();
        let q = |e| EngineError::db("reading disk usage", e);
        let row = |sql: &str| -> Result<UsageRow, EngineError> {
            db.conn()
                .query_row(sql, params![], |r| {
                    let n = |i| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                    Ok(UsageRow {
                        total: n(0)?,
                        active: n(1)?,
                        size: n(2)?,
                        reclaimable: n(3)?,
                    })
                })
                .map_err(q)
        };
        let containers = row(
            "SELECT COUNT(*), COALESCE(SUM(state IN ('running','paused','restarting')), 0), COALESCE(SUM(size), 0),
                    COALESCE(SUM(CASE WHEN state IN ('running','paused','restarting') THEN 0 ELSE size END), 0)
             FROM containers",
        )?;

        let build_cache = row(
            "SELECT COUNT(*), COALESCE(SUM(in_use != 0), 0), COALESCE(SUM(size), 0),
                    COALESCE(SUM(CASE WHEN in_use != 0 THEN 0 ELSE size END), 0) FROM build_cache",
        )?;
        drop(db);
        let volume_details = self.volumes().usage()?;
        let volumes = UsageRow {
            total: volume_details.len() as u64,
            active: volume_details.iter().filter(|v| v.links > 0).count() as u64,
            size: volume_details.iter().map(|v| v.size).sum(),
            reclaimable: volume_details
                .iter()
                .filter(|v| v.links == 0)
                .map(|v| v.size)
                .sum(),
        };
        Ok(DiskUsage {
            images,
            containers,
            volumes,
            volume_details,
            build_cache,
            image_details: summaries,
        })
    }
}
