//! Platforms (`linux/amd64`, `linux/arm/v7`) and choosing a manifest from an index.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::config::null_default;
use super::{Descriptor, Index};
use crate::error::ImageError;

/// The platform an image or index entry is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        default,
        rename = "os.features",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub features: Vec<String>,
}

impl Platform {
    /// The platform of this machine, e.g. `linux/amd64`, `linux/arm64/v8`.
    pub fn host() -> Self {
        let (architecture, variant) = normalize_arch(std::env::consts::ARCH, None);
        Self {
            os: std::env::consts::OS.to_string(),
            architecture,
            variant,
            ..Self::default()
        }
    }

    /// Parses `os/arch[/variant]` (as `--platform` takes), normalising
    /// architecture aliases (`x86_64` → `amd64`, `aarch64` → `arm64`).
    pub fn parse(s: &str) -> Result<Self, ImageError> {
        let parts: Vec<&str> = s.split('/').collect();
        let invalid = |reason| ImageError::InvalidPlatform {
            platform: s.to_string(),
            reason,
        };
        if parts.iter().any(|p| p.is_empty()) {
            return Err(invalid("empty component; expected os/arch[/variant]"));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            [_] => return Err(invalid("missing architecture; expected os/arch[/variant]")),
            _ => return Err(invalid("too many components; expected os/arch[/variant]")),
        };
        if !os.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid("invalid os"));
        }
        let (architecture, variant) = normalize_arch(&arch.to_ascii_lowercase(), variant);
        Ok(Self {
            os: os.to_ascii_lowercase(),
            architecture,
            variant,
            ..Self::default()
        })
    }

    /// True when an index entry for `candidate` can run where `self` was asked for.
    /// A request without variant accepts the architecture's default variant or none.
    pub fn matches(&self, candidate: &Platform) -> bool {
        let (arch, variant) = normalize_arch(&candidate.architecture, candidate.variant.as_deref());
        if candidate.os != self.os || arch != self.architecture {
            return false;
        }
        match (&self.variant, &variant) {
            (Some(want), Some(have)) => want == have,
            (Some(want), None) => Some(want.as_str()) == default_variant(&self.architecture),
            (None, Some(have)) => Some(have.as_str()) == default_variant(&self.architecture),
            (None, None) => true,
        }
    }
}

fn default_variant(arch: &str) -> Option<&'static str> {
    match arch {
        "arm64" => Some("v8"),
        "arm" => Some("v7"),
        _ => None,
    }
}

/// Normalises architecture names the way containerd's `platforms` package does.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.map(str::to_ascii_lowercase);
    match arch {
        "i386" | "386" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => (
            "arm64".into(),
            variant.filter(|v| v != "8" && v != "v8").or(None),
        ),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => (
            "arm".into(),
            Some(match variant.as_deref() {
                None | Some("7") => "v7".into(),
                Some("5") => "v5".into(),
                Some("6") => "v6".into(),
                Some("8") => "v8".into(),
                Some(v) => v.to_string(),
            }),
        ),
        other => (other.to_string(), variant),
    }
}

impl FromStr for Platform {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Picks the manifest for `platform` (`"linux/amd64"`, `"linux/arm/v7"`) from an
/// index. Attestation entries (`unknown/unknown`) never match. Among several
/// matches, an exact variant match wins, then the first in index order.
pub fn select_platform<'a>(index: &'a Index, platform: &str) -> Result<&'a Descriptor, ImageError> {
    let want = Platform::parse(platform)?;
    let mut best: Option<&Descriptor> = None;
    for d in &index.manifests {
        let Some(p) = &d.platform else { continue };
        if !want.matches(p) {
            continue;
        }
        let exact = p.variant == want.variant;
        match best {
            None => best = Some(d),
            Some(b)
                if exact && b.platform.as_ref().map(|bp| &bp.variant) != Some(&want.variant) =>
            {
                best = Some(d)
            }
            Some(_) => {}
        }
    }
    best.ok_or_else(|| ImageError::NoMatchingPlatform {
        platform: want.to_string(),
        available: index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref())
            .filter(|p| p.os != "unknown")
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}
