//! `sverka check`: validate the configuration and reach the databases.

use anyhow::Result;
use serde_json::json;

use crate::app::load_config;
use crate::cli::GlobalArgs;
use crate::db::Db;
use crate::shop::{Queries, Shop};

/// Runs the checks; exit code 0 when everything needed is in place, 2 otherwise.
pub async fn run(global: &GlobalArgs) -> Result<u8> {
    let mut lines: Vec<(String, bool, String)> = Vec::new();
    let config = match load_config(global) {
        Ok(c) => {
            lines.push(("configuration".into(), true, "valid".into()));
            c
        }
        Err(e) => {
            lines.push(("configuration".into(), false, format!("{e:#}")));
            return finish(lines, global.json);
        }
    };
    match Db::connect_state(config.state.database_url.expose()).await {
        Ok(db) => lines.push((
            "state database".into(),
            true,
            format!("{} (migrated)", db.redacted_url()),
        )),
        Err(e) => lines.push(("state database".into(), false, e.to_string())),
    }
    match Db::connect(config.shop.database_url.expose()).await {
        Ok(db) => match Queries::load(config.shop.queries_dir.as_deref()) {
            Ok(q) => {
                let shop = Shop::new(db.clone(), q);
                match shop.stock().await {
                    Ok(rows) => lines.push((
                        "shop database".into(),
                        true,
                        format!(
                            "{}: stock_select.sql returned {} SKUs",
                            db.redacted_url(),
                            rows.len()
                        ),
                    )),
                    Err(e) => lines.push(("shop database".into(), false, e.to_string())),
                }
            }
            Err(e) => lines.push(("shop queries".into(), false, e.to_string())),
        },
        Err(e) => lines.push(("shop database".into(), false, e.to_string())),
    }
    match config.require_remote() {
        Ok(()) => lines.push((
            "remote systems".into(),
            true,
            format!("{:?} WMS and RetailCRM configured", config.wms.kind),
        )),
        Err(e) => lines.push(("remote systems".into(), false, e.to_string())),
    }
    finish(lines, global.json)
}

fn finish(lines: Vec<(String, bool, String)>, json: bool) -> Result<u8> {
    let ok = lines.iter().all(|(_, ok, _)| *ok);
    if json {
        let checks: Vec<_> = lines
            .iter()
            .map(|(what, ok, detail)| json!({"check": what, "ok": ok, "detail": detail}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"ok": ok, "checks": checks}))?
        );
    } else {
        for (what, good, detail) in &lines {
            println!("{} {what}: {detail}", if *good { "ok  " } else { "FAIL" });
        }
    }
    Ok(if ok { 0 } else { crate::app::EXIT_FAILED })
}
