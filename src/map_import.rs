//! `sverka map import FILE.csv`: load `sku,wms_id` pairs into the goods id
//! mapping, for a shop that already runs on IMSKLAD (its SKUs then need no
//! `update_good` look-up, which writes the WMS catalogue).
//!
//! The file has one `sku,wms_id` pair a line (`,` or `;`, a header line
//! optional, blank lines ignored). Every line is checked before anything is
//! written: a bad line names its number and nothing is imported (exit 2).
//! `--dry-run` checks and counts without writing.

use anyhow::{Context as _, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

use crate::db::mapping::{self, MapKind};
use crate::db::Db;
use crate::exit::Exit;
use crate::options::RunOptions;

/// `sverka map`
#[derive(Debug, clap::Args)]
pub struct MapArgs {
    /// What to do with the mapping.
    #[command(subcommand)]
    pub action: MapAction,
}

/// `sverka map …`
#[derive(Debug, clap::Subcommand)]
pub enum MapAction {
    /// Import `sku,wms_id` pairs from a CSV file (header optional), for a shop
    /// that already runs on IMSKLAD: no `update_good` look-up is needed for them.
    Import {
        /// The CSV file: `sku,wms_id` per line (`,` or `;`).
        file: std::path::PathBuf,
    },
}

/// Runs `sverka map …`; returns the exit code.
pub async fn run(args: &MapArgs, global: &RunOptions) -> Result<Exit> {
    match &args.action {
        MapAction::Import { file } => import(file, global).await,
    }
}

/// Why a mapping file cannot be imported.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    /// A line is not `sku,wms_id` with an integer WMS id.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Parses the file's text into SKU → WMS goods id (the last line of a SKU wins).
pub fn parse(text: &str) -> Result<BTreeMap<String, i64>, Vec<ImportError>> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, raw) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let sep = if line.contains(';') && !line.contains(',') {
            ';'
        } else {
            ','
        };
        let fields: Vec<&str> = line
            .split(sep)
            .map(|f| f.trim().trim_matches('"').trim())
            .collect();
        let bad = |message: String| ImportError::Line {
            line: i + 1,
            message,
        };
        if fields.len() != 2 {
            errors.push(bad(format!(
                "expected `sku,wms_id`, got {} fields",
                fields.len()
            )));
            continue;
        }
        let (sku, wms) = (fields[0], fields[1]);
        if i == 0 && sku.eq_ignore_ascii_case("sku") {
            continue;
        }
        if sku.is_empty() {
            errors.push(bad("the SKU is empty".into()));
            continue;
        }
        match wms.parse::<i64>() {
            Ok(id) if id > 0 => {
                out.insert(sku.to_owned(), id);
            }
            _ => errors.push(bad(format!(
                "the WMS goods id `{wms}` is not a positive integer"
            ))),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

async fn import(file: &Path, global: &RunOptions) -> Result<Exit> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the mapping file {}", file.display()))?;
    let pairs = match parse(&text) {
        Ok(p) => p,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {}: {e}", file.display());
            }
            if global.json {
                let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                println!("{}", json!({"ok": false, "imported": 0, "errors": list}));
            }
            return Ok(Exit::Failed);
        }
    };
    let config = global.load_config()?;
    let db = Db::connect_state(config.state.database_url.expose())
        .await
        .context("opening the state database")?;
    if !global.dry_run {
        for (sku, wms_id) in &pairs {
            mapping::put(&db, MapKind::Good, sku, &wms_id.to_string()).await?;
            mapping::remove(&db, MapKind::AbsentGood, sku).await?;
        }
    }
    let verb = if global.dry_run {
        "would import"
    } else {
        "imported"
    };
    if global.json {
        println!(
            "{}",
            json!({"ok": true, "imported": if global.dry_run { 0 } else { pairs.len() }, "checked": pairs.len()})
        );
    } else {
        println!(
            "{verb} {} SKU → WMS goods id mappings from {}",
            pairs.len(),
            file.display()
        );
    }
    Ok(Exit::Clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_with_or_without_header_and_either_separator() {
        let m = parse("sku,wms_id\nA-1,124323\n\n007;55\n\"B\", 9\n").unwrap();
        assert_eq!(m.get("A-1"), Some(&124_323));
        assert_eq!(m.get("007"), Some(&55));
        assert_eq!(m.get("B"), Some(&9));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn bad_lines_are_named_and_nothing_is_taken() {
        let e = parse("A,1\nB,x\n,3\nC\n").unwrap_err();
        let lines: Vec<String> = e.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("line 2:"), "{lines:?}");
        assert!(lines[1].starts_with("line 3:"), "{lines:?}");
        assert!(lines[2].starts_with("line 4:"), "{lines:?}");
    }
}
