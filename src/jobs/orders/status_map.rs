//! The status map: CRM status ↔ WMS status/stage, built in or from TOML.

use super::*;

// ---------------------------------------------------------------------------
// Status map
// ---------------------------------------------------------------------------

/// Why a status map could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StatusMapError {
    /// The file could not be read.
    #[error("cannot read the status map {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("the status map {origin} is not valid TOML: {message}")]
    Syntax {
        /// Which map.
        origin: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// An entry is wrong or missing.
    #[error("the status map {origin}: `{key}`: {message}")]
    Entry {
        /// Which map.
        origin: String,
        /// Dotted key, e.g. `imsklad.9`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// WMS status → common stage, and stage → the CRM status code it should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMap {
    /// IMSKLAD statuses 0–11.
    pub imsklad: BTreeMap<i64, Stage>,
    /// EGON's documented statuses.
    pub egon: BTreeMap<i64, Stage>,
    /// The CRM status per stage (stages left out are not compared).
    pub crm: BTreeMap<Stage, String>,
}

impl StatusMap {
    /// The built-in map ([`BUILTIN_STATUS_MAP`]).
    pub fn builtin() -> Result<StatusMap, StatusMapError> {
        StatusMap::parse(BUILTIN_STATUS_MAP, "built-in jobs/maps/status_map.toml")
    }

    /// The map at `path`, or the built-in one when `None`.
    pub fn load(path: Option<&Path>) -> Result<StatusMap, StatusMapError> {
        let Some(path) = path else {
            return StatusMap::builtin();
        };
        let text = std::fs::read_to_string(path).map_err(|source| StatusMapError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        StatusMap::parse(&text, &path.display().to_string())
    }

    /// Parses a map; `origin` names it in errors. Every documented status of
    /// both warehouses must have a stage.
    pub fn parse(text: &str, origin: &str) -> Result<StatusMap, StatusMapError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| StatusMapError::Syntax {
                    origin: origin.to_owned(),
                    message: e.to_string(),
                })?;
        let entry = |key: String, message: &str| StatusMapError::Entry {
            origin: origin.to_owned(),
            key,
            message: message.to_owned(),
        };
        let mut map = StatusMap {
            imsklad: BTreeMap::new(),
            egon: BTreeMap::new(),
            crm: BTreeMap::new(),
        };
        for (section, value) in &table {
            let toml::Value::Table(entries) = value else {
                return Err(entry(section.clone(), "must be a table"));
            };
            match section.as_str() {
                "crm" => {
                    for (stage, code) in entries {
                        let key = format!("crm.{stage}");
                        let stage = Stage::parse(stage).ok_or_else(|| {
                            entry(key.clone(), "unknown stage (new, picking, packed, shipped, delivered, cancelled)")
                        })?;
                        let code = code
                            .as_str()
                            .map(str::trim)
                            .filter(|c| !c.is_empty())
                            .ok_or_else(|| {
                                entry(key, "must be a CRM status code (a non-empty string)")
                            })?;
                        map.crm.insert(stage, code.to_owned());
                    }
                }
                "imsklad" | "egon" => {
                    for (status, stage) in entries {
                        let key = format!("{section}.{status}");
                        let status: i64 = status
                            .trim()
                            .parse()
                            .map_err(|_| entry(key.clone(), "the key must be a status number"))?;
                        let stage = stage.as_str().and_then(Stage::parse).ok_or_else(|| {
                            entry(key, "must be a stage (new, picking, packed, shipped, delivered, cancelled)")
                        })?;
                        let target = if section == "imsklad" {
                            &mut map.imsklad
                        } else {
                            &mut map.egon
                        };
                        target.insert(status, stage);
                    }
                }
                other => {
                    return Err(entry(
                        other.to_owned(),
                        "unknown section (expected crm, imsklad, egon)",
                    ))
                }
            }
        }
        for status in 0..=11 {
            if !map.imsklad.contains_key(&status) {
                return Err(entry(
                    format!("imsklad.{status}"),
                    "missing: every documented IMSKLAD status (0–11) needs a stage",
                ));
            }
        }
        for (status, _) in egon::ORDER_STATUSES {
            if !map.egon.contains_key(status) {
                return Err(entry(
                    format!("egon.{status}"),
                    "missing: every documented EGON status needs a stage",
                ));
            }
        }
        Ok(map)
    }

    /// The stage of a WMS status, if mapped.
    pub fn stage(&self, kind: WmsKind, status: i64) -> Option<Stage> {
        match kind {
            WmsKind::Imsklad => self.imsklad.get(&status).copied(),
            WmsKind::Egon => self.egon.get(&status).copied(),
        }
    }
}
