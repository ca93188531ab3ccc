//! A stateful RetailCRM v5 stand-in: stores, statuses, catalogue with
//! per-store stock, orders with delivery data, order history, warehouse
//! integration modules.
//!
//! It speaks the wire format of the RetailCRM API v5 documentation: `X-API-KEY`
//! (or `apiKey` in the query), GET filters as `filter[x][]` or `filter[x][0]`,
//! POST forms whose nested data is one JSON field, `{"success": …}` answers
//! with PHP's habits (`[]` for empty maps, floats for quantities and money),
//! and the documented refusals: 403 wrong key, 400 missing parameter or bad
//! input, 404 unknown entity, 460 partly applied upload, 503 over the rate
//! limit, an HTML page when the account does not exist.

use crate::sandbox::common::{instrument, RateWindow, SandboxControl};
use crate::secret::Secret;
use crate::server::{spawn, RunningServer};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Requests per second the sandbox allows by default (RetailCRM's documented limit).
pub const DEFAULT_RATE_LIMIT: usize = 10;
/// Most offers one upload may carry.
pub const MAX_UPLOAD: usize = 250;
/// Page sizes every list method accepts (as the official PHP client validates).
pub const LIMITS: [usize; 3] = [20, 50, 100];
/// The larger page size `/store/inventories` accepts unless
/// [`RetailCrmStrictness::inventory_limit_250`] is off (UNVERIFIED).
pub const INVENTORY_LIMIT_250: usize = 250;

/// Readings of the real CRM's behaviour that nothing public settles, or rules
/// the real CRM may apply that the lenient sandbox does not: one switch each.
/// The defaults are the readings sverka tries first (so the bench keeps its
/// figures); tests switch the strict ones on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetailCrmStrictness {
    /// `/store/inventories` also accepts `limit=250` (UNVERIFIED; default
    /// on). Off: 20/50/100 only, like every other list method, and 250 is
    /// refused with `400 {"errors": {"limit": "This value is not valid."}}`.
    pub inventory_limit_250: bool,
    /// Module registrations follow the RetailCRM integration documentation strictly: `integrationCode`
    /// required (and a prefix of `code`), every action with a known code and
    /// a non-empty `callPoints`, `baseUrl` https unless its host is loopback.
    /// Default off: `name`, `baseUrl` and `clientId` are required.
    pub strict_modules: bool,
    /// How `/store/inventories` takes `filter[offerExternalId]` and
    /// `filter[offerXmlId]` (UNVERIFIED: the official PHP client types them
    /// as lists, the Go client as one string). Default: lists.
    pub inventory_sku_filter: SkuFilter,
    /// `/store/inventories` accepts `filter[ids][]` (default on). Off: a 400
    /// naming the filter.
    pub inventory_ids_filter: bool,
    /// A store entry of an upload must carry `available` (UNVERIFIED whether
    /// the CRM accepts `purchasePrice` alone). Default off.
    pub upload_requires_available: bool,
}

/// How the sandbox reads the inventory SKU filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SkuFilter {
    /// `filter[offerExternalId][]=A&filter[offerExternalId][]=B` (and one string).
    #[default]
    List,
    /// One string only, `filter[offerExternalId]=A`; a list is refused with a 400.
    OneString,
}

impl Default for RetailCrmStrictness {
    fn default() -> Self {
        RetailCrmStrictness {
            inventory_limit_250: true,
            strict_modules: false,
            inventory_sku_filter: SkuFilter::List,
            inventory_ids_filter: true,
            upload_requires_available: false,
        }
    }
}

impl RetailCrmStrictness {
    /// Every switch on its strict reading.
    pub fn strict() -> Self {
        RetailCrmStrictness {
            inventory_limit_250: false,
            strict_modules: true,
            inventory_sku_filter: SkuFilter::OneString,
            inventory_ids_filter: true,
            upload_requires_available: true,
        }
    }
}

mod model;
pub use model::*;
mod http;
use crate::money::money_to_kop;
mod orders;
mod state;
mod stock;
use http::*;
mod server;
pub use server::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(q.as_bytes())
    }

    #[test]
    fn php_and_bracket_lists_are_both_read() {
        let p = params("filter%5BexternalIds%5D%5B%5D=a&filter[externalIds][0]=b&filter[externalIds][x]=c&limit=20");
        assert_eq!(p.list("filter[externalIds]"), vec!["a", "b"]);
        assert_eq!(p.get("limit"), Some("20"));
    }

    #[test]
    fn pagination_counts_pages() {
        let items: Vec<i32> = (0..501).collect();
        let (page, meta) = paginate(&items, 3, 250);
        assert_eq!(page, vec![500]);
        assert_eq!(meta["totalPageCount"], 3);
        let (empty, meta) = paginate(&items, 9, 250);
        assert!(empty.is_empty());
        assert_eq!(meta["currentPage"], 9);
        assert!(page_params(&params("limit=30")).is_err());
        assert!(page_params(&params("page=0")).is_err());
        assert!(page_params(&params("limit=250&page=2")).is_err());
        assert_eq!(
            page_params_with(&params("limit=250&page=2"), &[100, 250]).ok(),
            Some((2, 250))
        );
    }

    #[test]
    fn seeding_and_inspection() {
        let mut s = RetailCrmState::new("key", "shop");
        let id = s.add_offer(
            Some("A-1"),
            Some("x-1"),
            "Thing",
            10_000,
            &[("main", 3.0), ("spb", 1.0)],
        );
        assert!(id > 0);
        assert_eq!(s.quantity("A-1", "main"), Some(3.0));
        assert_eq!(s.quantity("x-1", "spb"), Some(1.0));
        assert_eq!(s.quantity("nope", "main"), None);
        let order = NewOrder {
            external_id: "S-1".into(),
            status: "new".into(),
            items: vec![NewOrderItem {
                sku: "A-1".into(),
                quantity: 2.0,
                price_kop: 10_000,
            }],
            delivery_code: Some("courier".into()),
            delivery_cost_kop: 30_000,
            shipment_store: None,
        };
        s.add_order(order.clone()).unwrap();
        assert_eq!(
            s.add_order(order.clone()),
            Err(SeedError::DuplicateOrder("S-1".into()))
        );
        let mut bad = order;
        bad.external_id = "S-2".into();
        bad.items[0].sku = "missing".into();
        assert_eq!(
            s.add_order(bad),
            Err(SeedError::UnknownOffer("missing".into()))
        );
        assert_eq!(s.order("S-1").map(SandboxOrder::total_kop), Some(50_000));
        assert_eq!(s.history_len(), 1);
        assert!(!s.has_warehouse_module());
        s.register_module(json!({"code": "m", "integrations": {"store": {"actions": []}}}))
            .unwrap();
        assert!(s.has_warehouse_module());
        s.register_module(json!({"code": "m", "active": false, "integrations": {"store": {}}}))
            .unwrap();
        assert!(!s.has_warehouse_module());
    }
}
