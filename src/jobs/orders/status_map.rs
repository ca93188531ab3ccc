//! The status map: CRM status ↔ WMS status/stage, built in or from TOML.

use super::*;

// ---------------------------------------------------------------------------
// Status map
// ---------------------------------------------------------------------------

/// Why a status map could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StatusMapError {
    /// The file could not be read.
    #[error("cannot read the status map {path}")]
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
        let origin = Origin(origin);
        let mut map = StatusMap {
            imsklad: BTreeMap::new(),
            egon: BTreeMap::new(),
            crm: BTreeMap::new(),
        };
        for (section, value) in &table {
            let toml::Value::Table(entries) = value else {
                return Err(origin.entry(section.clone(), "must be a table"));
            };
            match section.as_str() {
                "crm" => map.crm = crm_section(entries, origin)?,
                "imsklad" => map.imsklad = status_section(section, entries, origin)?,
                "egon" => map.egon = status_section(section, entries, origin)?,
                other => {
                    return Err(origin.entry(
                        other.to_owned(),
                        "unknown section (expected crm, imsklad, egon)",
                    ))
                }
            }
        }
        map.check_documented(origin)?;
        Ok(map)
    }

    /// Fails naming the first documented status of either warehouse without a stage.
    fn check_documented(&self, origin: Origin<'_>) -> Result<(), StatusMapError> {
        if let Some(status) = (0..=11).find(|s| !self.imsklad.contains_key(s)) {
            return Err(origin.entry(
                format!("imsklad.{status}"),
                "missing: every documented IMSKLAD status (0–11) needs a stage",
            ));
        }
        if let Some((status, _)) = egon::ORDER_STATUSES
            .iter()
            .find(|(s, _)| !self.egon.contains_key(s))
        {
            return Err(origin.entry(
                format!("egon.{status}"),
                "missing: every documented EGON status needs a stage",
            ));
        }
        Ok(())
    }

    /// The stage of a WMS status, if mapped.
    pub fn stage(&self, kind: WmsKind, status: i64) -> Option<Stage> {
        match kind {
            WmsKind::Imsklad => self.imsklad.get(&status).copied(),
            WmsKind::Egon => self.egon.get(&status).copied(),
        }
    }
}

/// The map being parsed, for its errors.
#[derive(Debug, Clone, Copy)]
struct Origin<'a>(&'a str);

impl Origin<'_> {
    fn entry(self, key: String, message: &str) -> StatusMapError {
        StatusMapError::Entry {
            origin: self.0.to_owned(),
            key,
            message: message.to_owned(),
        }
    }
}

/// The `[crm]` section: stage → CRM status code.
fn crm_section(
    entries: &toml::Table,
    origin: Origin<'_>,
) -> Result<BTreeMap<Stage, String>, StatusMapError> {
    let mut out = BTreeMap::new();
    for (stage, code) in entries {
        let key = format!("crm.{stage}");
        let stage = Stage::parse(stage).ok_or_else(|| {
            origin.entry(
                key.clone(),
                "unknown stage (new, picking, packed, shipped, delivered, cancelled)",
            )
        })?;
        let code = code
            .as_str()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| origin.entry(key, "must be a CRM status code (a non-empty string)"))?;
        out.insert(stage, code.to_owned());
    }
    Ok(out)
}

/// A warehouse's section (`[imsklad]`, `[egon]`): status number → stage.
fn status_section(
    section: &str,
    entries: &toml::Table,
    origin: Origin<'_>,
) -> Result<BTreeMap<i64, Stage>, StatusMapError> {
    let mut out = BTreeMap::new();
    for (status, stage) in entries {
        let key = format!("{section}.{status}");
        let status: i64 = status
            .trim()
            .parse()
            .map_err(|_| origin.entry(key.clone(), "the key must be a status number"))?;
        let stage = stage.as_str().and_then(Stage::parse).ok_or_else(|| {
            origin.entry(
                key,
                "must be a stage (new, picking, packed, shipped, delivered, cancelled)",
            )
        })?;
        out.insert(status, stage);
    }
    Ok(out)
}
