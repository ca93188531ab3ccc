//! Cost prices in the stock job: the shop's `cost_kop` against the store's
//! `purchasePrice` in RetailCRM, uploaded in the same offer as a quantity fix.

use serde_json::Value;
use sverka::config::WmsKind;
use sverka::listener::ListenerSettings;
use sverka::sandbox::world::{StockDrift, WorldSpec};

use crate::stock::{fixture, report, run_stock};
use crate::support;

/// The `offers` JSON of every upload request, in order.
pub(crate) fn uploads(set: &sverka::sandbox::SandboxSet) -> Vec<Vec<Value>> {
    set.retailcrm
        .control
        .requests_to("/store/inventories/upload")
        .iter()
        .map(|r| {
            let form: Vec<(String, String)> =
                serde_urlencoded::from_str(&r.body_text()).expect("form");
            let offers = form
                .iter()
                .find(|(k, _)| k == "offers")
                .map(|(_, v)| v.clone())
                .expect("offers field");
            serde_json::from_str::<Vec<Value>>(&offers).expect("offers JSON")
        })
        .collect()
}

/// The store entry an upload sent for `sku`, if any.
pub(crate) fn sent(uploads: &[Vec<Value>], sku: &str) -> Option<(usize, Value)> {
    uploads.iter().enumerate().find_map(|(i, offers)| {
        offers
            .iter()
            .find(|o| o["externalId"] == sku)
            .map(|o| (i, o["stores"][0].clone()))
    })
}

#[tokio::test]
async fn a_cost_mismatch_is_uploaded_with_the_quantity_fix_on_every_shop_engine() {
    for shop_db in support::engines("stock_cost").await {
        let engine = shop_db.engine();
        let f = fixture(
            shop_db,
            WorldSpec {
                skus: 400,
                seed: 17,
                ..WorldSpec::default()
            },
            WmsKind::Imsklad,
        )
        .await;
        let store = f.set.keys.retailcrm_store.clone();
        // Two SKUs with both mismatches, three with the cost alone (one
        // kopeck under, off by roubles, and a CRM price of zero).
        let both: Vec<_> = f
            .world
            .skus
            .iter()
            .filter(|s| s.drift == StockDrift::CrmQuantity)
            .take(2)
            .cloned()
            .collect();
        let cost_only: Vec<_> = f
            .world
            .skus
            .iter()
            .filter(|s| s.drift == StockDrift::None && s.crm_quantity.is_some())
            .take(3)
            .cloned()
            .collect();
        assert_eq!((both.len(), cost_only.len()), (2, 3));
        {
            let mut crm = f.set.retailcrm.lock();
            for s in &both {
                crm.set_purchase_price(&s.sku, &store, s.cost_kop + 1)
                    .unwrap();
            }
            crm.set_purchase_price(&cost_only[0].sku, &store, cost_only[0].cost_kop - 1)
                .unwrap();
            crm.set_purchase_price(&cost_only[1].sku, &store, cost_only[1].cost_kop + 12_345)
                .unwrap();
            crm.set_purchase_price(&cost_only[2].sku, &store, 0)
                .unwrap();
        }

        let first = run_stock(&f.config, false, false).await;
        assert!(first.error.is_none(), "{engine}: {:?}", first.error);
        assert_eq!(
            first.counts.get("cost_mismatch_crm").copied(),
            Some(5),
            "{engine}: {:?}",
            first.counts
        );
        assert_eq!(first.extra["cost_synced"], true);
        let rows = report(&first);
        for s in both.iter().chain(&cost_only) {
            assert_eq!(
                rows[&(s.sku.clone(), "cost_mismatch_crm".to_string())],
                ("crm_upload".to_string(), "applied".to_string()),
                "{engine}: {}",
                s.sku
            );
        }
        // One offer slot per SKU: the uploads hold every offer once, in
        // ceil(offers / 250) requests.
        let ups = uploads(&f.set);
        let qty = first.counts["qty_mismatch_crm"] as usize;
        let offers: usize = ups.iter().map(Vec::len).sum();
        assert_eq!(offers, qty + cost_only.len(), "{engine}");
        assert_eq!(ups.len(), offers.div_ceil(250), "{engine}");
        for s in &both {
            let (_, entry) = sent(&ups, &s.sku).expect("sent");
            assert_eq!(
                entry["purchasePrice"].as_f64(),
                Some(s.cost_kop as f64 / 100.0)
            );
            assert!(entry.get("available").is_some(), "{engine}: {entry}");
        }
        for s in &cost_only {
            let (_, entry) = sent(&ups, &s.sku).expect("sent");
            assert!(
                entry.get("available").is_none(),
                "{engine}: cost-only sends no available: {entry}"
            );
        }
        // Read back equal, in kopecks.
        {
            let crm = f.set.retailcrm.lock();
            for s in both.iter().chain(&cost_only) {
                assert_eq!(
                    crm.purchase_price(&s.sku, &store),
                    Some(s.cost_kop),
                    "{engine}: {}",
                    s.sku
                );
            }
        }
        // The report carries both costs.
        let path = first.reports.first().expect("report");
        let mut rdr = csv::Reader::from_path(path).expect("report");
        let headers = rdr.headers().expect("headers").clone();
        assert_eq!(&headers[12], "shop_cost");
        assert_eq!(&headers[13], "crm_cost");
        let line = rdr
            .records()
            .map(|r| r.expect("row"))
            .find(|r| &r[0] == cost_only[1].sku.as_str() && &r[8] == "cost_mismatch_crm")
            .expect("cost row");
        let rub = |kop: i64| format!("{}.{:02}", kop / 100, kop % 100);
        assert_eq!(&line[12], rub(cost_only[1].cost_kop).as_str());
        assert_eq!(&line[13], rub(cost_only[1].cost_kop + 12_345).as_str());

        // A second run finds nothing and sends nothing.
        let before = ups.len();
        let second = run_stock(&f.config, false, false).await;
        assert!(second.error.is_none(), "{engine}: {:?}", second.error);
        assert_eq!(second.counts.get("cost_mismatch_crm"), None, "{engine}");
        assert_eq!(uploads(&f.set).len(), before, "{engine}");

        // `inventoriesUpload` answers the cost next to `available`.
        let listener = crate::atomic::Listener::start_with(
            f.config.state.database_url.expose(),
            ListenerSettings {
                retailcrm_store: store.clone(),
                ..crate::atomic::settings()
            },
        )
        .await;
        let answer: Value = listener
            .http
            .get(format!("{}/retailcrm/inventories", listener.server.url))
            .query(&[("clientId", crate::atomic::CRM_CLIENT)])
            .send()
            .await
            .expect("inventories")
            .json()
            .await
            .expect("json");
        let s = &cost_only[1];
        let offer = answer["offers"]
            .as_array()
            .expect("offers")
            .iter()
            .find(|o| o["externalId"] == s.sku.as_str())
            .expect("the SKU is answered")
            .clone();
        assert_eq!(
            offer["stores"][0]["purchasePrice"].as_f64(),
            Some(s.cost_kop as f64 / 100.0),
            "{engine}: {offer}"
        );
        assert!(offer["stores"][0]["available"].is_number());
        listener.stop().await;
        f.set.stop().await;
        f.shop_db.drop_db().await;
    }
}

#[tokio::test]
async fn a_cost_only_fix_sends_available_when_the_crm_requires_it() {
    let mut f = fixture(
        support::sqlite(),
        WorldSpec {
            skus: 120,
            seed: 5,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    )
    .await;
    let store = f.set.keys.retailcrm_store.clone();
    let s = f
        .world
        .skus
        .iter()
        .find(|s| s.drift == StockDrift::None && s.crm_quantity.is_some())
        .cloned()
        .expect("a SKU without drift");
    {
        let mut crm = f.set.retailcrm.lock();
        crm.strict.upload_requires_available = true;
        crm.set_purchase_price(&s.sku, &store, s.cost_kop + 1)
            .unwrap();
    }
    // Without the switch the CRM refuses the cost-only entry.
    let refused = run_stock(&f.config, false, false).await;
    assert!(refused.error.is_none(), "{:?}", refused.error);
    assert_eq!(
        report(&refused)[&(s.sku.clone(), "cost_mismatch_crm".to_string())].1,
        "failed"
    );
    f.config.stock.cost_with_available = true;
    let sent_both = run_stock(&f.config, false, false).await;
    assert!(sent_both.error.is_none(), "{:?}", sent_both.error);
    assert_eq!(
        report(&sent_both)[&(s.sku.clone(), "cost_mismatch_crm".to_string())].1,
        "applied"
    );
    let mut all = uploads(&f.set);
    all.reverse();
    let (_, entry) = sent(&all, &s.sku).expect("sent");
    assert_eq!(entry["available"].as_i64(), Some(s.sellable()));
    assert_eq!(
        f.set.retailcrm.lock().purchase_price(&s.sku, &store),
        Some(s.cost_kop)
    );
    // `[stock] sync_cost = false`: nothing compared.
    f.set
        .retailcrm
        .lock()
        .set_purchase_price(&s.sku, &store, 1)
        .unwrap();
    f.config.stock.sync_cost = Some(false);
    let off = run_stock(&f.config, false, false).await;
    assert_eq!(off.counts.get("cost_mismatch_crm"), None);
    assert_eq!(off.extra["cost_synced"], false);
    f.set.stop().await;
}
