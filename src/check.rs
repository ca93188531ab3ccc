//! `sverka check`: validate the configuration, reach the databases, and check
//! what the outside systems must agree with: the WMS endpoint answers, the
//! RetailCRM store and every CRM status code of the status map exist in the
//! account (`/reference/stores`, `/reference/statuses`), and the warehouse
//! module can be registered (`client_id`, `call_points`, `listener_url`).

use anyhow::Result;
use serde_json::json;
use std::time::Duration;

use crate::config::{Config, WmsKind};
use crate::connectors::imsklad::quick_policy;
use crate::connectors::retailcrm::{OfferKey, RetailCrmClient, RetailCrmConfig};
use crate::db::Db;
use crate::exit::Exit;
use crate::jobs::orders::StatusMap;
use crate::options::RunOptions;
use crate::shop::{Queries, Shop};

/// Runs the checks; exit code 0 when everything needed is in place, 2 otherwise.
pub async fn run(global: &RunOptions) -> Result<Exit> {
    let mut lines: Vec<(String, bool, String)> = Vec::new();
    let config = match global.load_config() {
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
    protocol_settings(&config, &mut lines);
    match config.require_remote() {
        Ok(()) => {
            lines.push((
                "remote systems".into(),
                true,
                format!("{:?} WMS and RetailCRM configured", config.wms.kind),
            ));
            wms_endpoint(&config, &mut lines).await;
            retailcrm_references(&config, &mut lines).await;
        }
        Err(e) => lines.push(("remote systems".into(), false, e.to_string())),
    }
    finish(lines, global.json)
}

/// What the warehouse module registration needs: a client id, call points and
/// a usable `listener_url` (see [`crate::config::OrdersSection::module_base_url`]).
fn protocol_settings(config: &Config, lines: &mut Vec<(String, bool, String)>) {
    let crm = &config.retailcrm;
    lines.push(if crm.client_id.is_empty() {
        (
            "retailcrm.client_id".into(),
            false,
            "is empty: RetailCRM needs a clientId to register the warehouse module (and sends it back with inventoriesUpload callbacks)".into(),
        )
    } else {
        ("retailcrm.client_id".into(), true, "set".into())
    });
    let points: Vec<&str> = crm
        .call_points
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    lines.push(if points.is_empty() {
        (
            "retailcrm.call_points".into(),
            false,
            "is empty: RetailCRM needs callPoints to fire the inventoriesUpload callback".into(),
        )
    } else {
        (
            "retailcrm.call_points".into(),
            true,
            format!("{} (UNVERIFIED values)", points.join(", ")),
        )
    });
    lines.push(match config.orders.module_base_url() {
        Ok(Some(url)) => (
            "orders.listener_url".into(),
            true,
            format!("{url}{}", crate::jobs::orders::INVENTORIES_CALLBACK_PATH),
        ),
        Ok(None) => (
            "orders.listener_url".into(),
            true,
            "not set: the warehouse module is registered without the inventoriesUpload callback"
                .into(),
        ),
        Err(why) => ("orders.listener_url".into(), false, why),
    });
}

/// Whether the WMS endpoint's host resolves and accepts a connection (seed
/// 002 names both `client.imsklad.ru` and `clients.imsklad.ru`: UNVERIFIED).
async fn wms_endpoint(config: &Config, lines: &mut Vec<(String, bool, String)>) {
    let (key, url) = match config.wms.kind {
        WmsKind::Imsklad => ("imsklad.url", config.imsklad.url.as_str()),
        WmsKind::Egon => ("egon.url", config.egon.url.as_str()),
    };
    lines.push(match endpoint_answers(url, Duration::from_secs(5)).await {
        Ok(addr) => (key.into(), true, format!("{url} answers ({addr})")),
        Err(why) => (key.into(), false, why),
    });
}

/// Resolves the URL's host and opens a TCP connection to it.
pub async fn endpoint_answers(url: &str, timeout: Duration) -> Result<String, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not an absolute URL ({e})"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("`{url}` has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| format!("`{url}` has no port"))?;
    let addrs: Vec<std::net::SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await {
            Ok(Ok(found)) => found.collect(),
            Ok(Err(e)) => return Err(format!("the host `{host}` does not resolve ({e})")),
            Err(_) => return Err(format!("the host `{host}` does not resolve (timed out)")),
        };
    let Some(first) = addrs.first().copied() else {
        return Err(format!("the host `{host}` does not resolve (no address)"));
    };
    let mut last = String::new();
    for addr in &addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(addr.to_string()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".into(),
        }
    }
    Err(format!(
        "`{host}` resolves ({first}) but does not answer on port {port}: {last}"
    ))
}

/// The configured store and the status map's CRM status codes against the
/// account's reference books.
async fn retailcrm_references(config: &Config, lines: &mut Vec<(String, bool, String)>) {
    let c = &config.retailcrm;
    let client = match RetailCrmClient::new(RetailCrmConfig {
        url: c.url.clone(),
        api_key: c.api_key.clone(),
        site: c.site.clone(),
        store: c.store.clone(),
        offer_key: OfferKey::ExternalId,
        rate_per_sec: c.rate_per_sec,
        policy: quick_policy(Duration::from_secs(10), 2),
    }) {
        Ok(client) => client,
        Err(e) => {
            lines.push(("retailcrm".into(), false, e.to_string()));
            return;
        }
    };
    lines.push(store_check(&client, &c.store).await);
    let map = match StatusMap::load(config.orders.status_map.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            lines.push(("status map".into(), false, e.to_string()));
            return;
        }
    };
    lines.push(status_map_check(&client, &map).await);
}

/// The configured store against /reference/stores: known and active.
async fn store_check(client: &RetailCrmClient, store: &str) -> (String, bool, String) {
    match client.stores().await {
        Ok(stores) => {
            let known: Vec<&str> = stores.iter().map(|s| s.code.as_str()).collect();
            match stores.iter().find(|s| s.code == store) {
                Some(s) if s.active => (
                    "retailcrm.store".into(),
                    true,
                    format!("`{}` ({})", s.code, s.name),
                ),
                Some(s) => (
                    "retailcrm.store".into(),
                    false,
                    format!("`{}` is a store of the account but not active", s.code),
                ),
                None => (
                    "retailcrm.store".into(),
                    false,
                    format!(
                        "`{}` is not a store of the account (/reference/stores has: {})",
                        store,
                        known.join(", ")
                    ),
                ),
            }
        }
        Err(e) => (
            "retailcrm.store".into(),
            false,
            format!("cannot read /reference/stores: {e}"),
        ),
    }
}

/// The status map's CRM status codes against /reference/statuses.
async fn status_map_check(client: &RetailCrmClient, map: &StatusMap) -> (String, bool, String) {
    match client.statuses().await {
        Ok(statuses) => {
            let known: std::collections::BTreeSet<&str> =
                statuses.iter().map(|s| s.code.as_str()).collect();
            let unknown: Vec<String> = map
                .crm
                .iter()
                .filter(|(_, code)| !known.contains(code.as_str()))
                .map(|(stage, code)| format!("`{code}` (stage {})", stage.as_str()))
                .collect();
            if unknown.is_empty() {
                (
                    "status map".into(),
                    true,
                    format!("{} CRM status codes known to the account", map.crm.len()),
                )
            } else {
                (
                    "status map".into(),
                    false,
                    format!(
                        "CRM status codes unknown to the account (/reference/statuses): {}",
                        unknown.join(", ")
                    ),
                )
            }
        }
        Err(e) => (
            "status map".into(),
            false,
            format!("cannot read /reference/statuses: {e}"),
        ),
    }
}

fn finish(lines: Vec<(String, bool, String)>, json: bool) -> Result<Exit> {
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
    Ok(if ok { Exit::Clean } else { Exit::Failed })
}
