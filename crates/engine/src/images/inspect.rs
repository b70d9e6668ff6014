//! `image inspect` (Docker's JSON) and `history`.

use berth_image::Digest;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::resolve::resolve;
use super::{ImageRecord, ImageService};
use crate::error::EngineError;

/// One row of `docker history`, newest first.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    /// The image id for the top entry, `None` (`<missing>`) below it.
    pub id: Option<Digest>,
    pub created: Option<DateTime<Utc>>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
    /// Familiar tags of the image the entry is (top entry only).
    pub tags: Vec<String>,
}

/// Go's zero time, which Docker prints for unset times.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

impl ImageService<'_> {
    /// Docker's `image inspect` object for `name`.
    pub fn inspect(&self, name: &str) -> Result<Value, EngineError> {
        let images = self.records()?;
        let (i, _) = resolve(&images, name)?;
        self.inspect_record(&images[i])
    }

    fn inspect_record(&self, img: &ImageRecord) -> Result<Value, EngineError> {
        let raw: Value = serde_json::from_str(&img.config_json)
            .map_err(|e| EngineError::Corrupt(format!("config of image {}: {e}", img.id)))?;
        let str_field = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let container = raw.get("config").cloned().unwrap_or(Value::Null);
        Ok(json!({
            "Id": img.id.to_string(),
            "RepoTags": img.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
            "RepoDigests": img.digests.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
            "Parent": img.parent.map(|p| p.to_string()).unwrap_or_default(),
            "Comment": str_field("comment"),
            "Created": raw.get("created").and_then(Value::as_str).unwrap_or(ZERO_TIME),
            "DockerVersion": str_field("docker_version"),
            "Author": str_field("author"),
            "Config": docker_container_config(&container),
            "Architecture": img.config.architecture,
            "Variant": img.config.variant,
            "Os": img.config.os,
            "Size": img.size,
            "GraphDriver": self.graph_driver(img),
            "RootFS": {
                "Type": "layers",
                "Layers": img.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
            },
            "Metadata": {"LastTagTime": img.last_tag_time.as_deref().unwrap_or(ZERO_TIME)},
        }))
        .map(|mut v| {
            if img.config.variant.is_none() {
                if let Some(o) = v.as_object_mut() {
                    o.shift_remove("Variant");
                }
            }
            v
        })
    }

    fn graph_driver(&self, img: &ImageRecord) -> Value {
        let layers = &self.engine.layers;
        let Some(top) = img.layers.last() else {
            return json!({"Name": "overlay2", "Data": null});
        };
        let top_dir = layers.diff_dir(&top.chain_id);
        let layer_dir = top_dir
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| top_dir.clone());
        let mut data = Map::new();
        let lowers: Vec<String> = img
            .layers
            .iter()
            .rev()
            .skip(1)
            .map(|l| layers.diff_dir(&l.chain_id).display().to_string())
            .collect();
        if !lowers.is_empty() {
            data.insert("LowerDir".into(), Value::String(lowers.join(":")));
        }
        data.insert(
            "MergedDir".into(),
            Value::String(layer_dir.join("merged").display().to_string()),
        );
        data.insert(
            "UpperDir".into(),
            Value::String(top_dir.display().to_string()),
        );
        data.insert(
            "WorkDir".into(),
            Value::String(layer_dir.join("work").display().to_string()),
        );
        json!({"Name": "overlay2", "Data": data})
    }

    /// The build history of `name`, newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, EngineError> {
        let images = self.records()?;
        let (i, _) = resolve(&images, name)?;
        let img = &images[i];
        let mut layer_sizes = img.layers.iter().map(|l| l.size);
        let mut rows: Vec<HistoryEntry> = Vec::new();
        if img.config.history.is_empty() {
            // Configs without history (some OCI tools): one row per layer.
            for size in layer_sizes {
                rows.push(HistoryEntry {
                    id: None,
                    created: img.created,
                    created_by: String::new(),
                    size,
                    comment: String::new(),
                    tags: Vec::new(),
                });
            }
        } else {
            for h in &img.config.history {
                let size = if h.empty_layer {
                    0
                } else {
                    layer_sizes.next().unwrap_or(0)
                };
                rows.push(HistoryEntry {
                    id: None,
                    created: h.created,
                    created_by: h.created_by.clone().unwrap_or_default(),
                    size,
                    comment: h.comment.clone().unwrap_or_default(),
                    tags: Vec::new(),
                });
            }
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = Some(img.id);
            top.tags = img.tags.iter().map(|t| t.familiar()).collect();
        }
        Ok(rows)
    }
}

/// The `Config` object with every field Docker prints, in Docker's order.
fn docker_container_config(c: &Value) -> Value {
    let get = |k: &str| c.get(k).cloned().filter(|v| !v.is_null());
    let mut out = Map::new();
    out.insert("Hostname".into(), get("Hostname").unwrap_or(json!("")));
    out.insert("Domainname".into(), get("Domainname").unwrap_or(json!("")));
    out.insert("User".into(), get("User").unwrap_or(json!("")));
    for k in ["AttachStdin", "AttachStdout", "AttachStderr"] {
        out.insert(k.into(), get(k).unwrap_or(json!(false)));
    }
    if let Some(p) = get("ExposedPorts") {
        out.insert("ExposedPorts".into(), p);
    }
    for k in ["Tty", "OpenStdin", "StdinOnce"] {
        out.insert(k.into(), get(k).unwrap_or(json!(false)));
    }
    out.insert("Env".into(), get("Env").unwrap_or(Value::Null));
    out.insert("Cmd".into(), get("Cmd").unwrap_or(Value::Null));
    if let Some(h) = get("Healthcheck") {
        out.insert("Healthcheck".into(), h);
    }
    if let Some(a) = get("ArgsEscaped") {
        out.insert("ArgsEscaped".into(), a);
    }
    out.insert("Image".into(), get("Image").unwrap_or(json!("")));
    out.insert("Volumes".into(), get("Volumes").unwrap_or(Value::Null));
    out.insert("WorkingDir".into(), get("WorkingDir").unwrap_or(json!("")));
    out.insert(
        "Entrypoint".into(),
        get("Entrypoint").unwrap_or(Value::Null),
    );
    out.insert("OnBuild".into(), get("OnBuild").unwrap_or(Value::Null));
    out.insert("Labels".into(), get("Labels").unwrap_or(Value::Null));
    for k in ["StopSignal", "StopTimeout", "Shell"] {
        if let Some(v) = get(k) {
            out.insert(k.into(), v);
        }
    }
    Value::Object(out)
}
