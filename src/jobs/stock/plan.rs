//! Phase 2 of the stock run, pure: the classification and every correction
//! the apply step takes, the WMS registrations of unmapped SKUs included.

use anyhow::Result;
use polars::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::super::stock_upload::shop_costs;
use super::super::Context;
use super::guard::GuardInput;
use super::read::{CrmRead, Sources, WmsLookup};
use super::report::ClassifiedRows;
use crate::config::{LookupUnmapped, StockSection, WmsKind};
use crate::connectors::imsklad::Good;
use crate::reconcile::cost::{self as rcost, COST_MISMATCH_CRM};
use crate::reconcile::stock::{self as rs, class};

/// Everything the run will do, decided from what it read.
pub(super) struct Plan<'a> {
    /// The classified frame as plain columns.
    pub(super) rows: ClassifiedRows,
    /// Discrepancies per class (`ok`, `cost_mismatch_crm` and
    /// `wms_unreadable` included).
    pub(super) counts: BTreeMap<String, u64>,
    /// The shop quantity updates and the SKUs missing in the WMS.
    pub(super) stock: rs::StockPlan,
    /// The CRM uploads: one fix per offer (quantity, cost or both).
    pub(super) fixes: Vec<rcost::OfferFix>,
    /// The cost mismatches (each also in `fixes`).
    pub(super) cost_plan: Vec<rcost::CostUpdate>,
    /// The CRM's purchase price per SKU.
    pub(super) crm_costs: HashMap<&'a str, rcost::CrmCost>,
    /// What the WMS step does for each SKU missing in the WMS.
    pub(super) registrations: Vec<Registration>,
    /// CRM (offer id, quantity) of the SKUs with unreadable WMS figures.
    pub(super) unreadable_crm: HashMap<&'a str, (i64, i64)>,
    /// Shop quantity of the SKUs with unreadable WMS figures.
    pub(super) unreadable_shop: HashMap<&'a str, i64>,
    /// What the guards look at.
    pub(super) guard: GuardInput,
    /// Whether cost prices are compared.
    cost_synced: bool,
}

/// The WMS step for one SKU missing in the WMS.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Registration {
    /// The shop SKU.
    pub(super) sku: String,
    /// What is done for it.
    pub(super) step: WmsStep,
}

/// What the WMS step does for a SKU missing in the WMS.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum WmsStep {
    /// Nothing sent: reported with this note.
    Report(WmsNote),
    /// IMSKLAD `update_good` with the shop's full record (it replaces the
    /// WMS copy); when the WMS does not know the SKU, `add_good` if `create`,
    /// else the SKU is marked absent.
    LookUp {
        /// The record sent.
        good: Box<Good>,
        /// `[stock] create_missing_in_wms`.
        create: bool,
    },
    /// IMSKLAD `add_good` without a look-up (`lookup_unmapped = "report"`
    /// with `create_missing_in_wms`).
    Add(Box<Good>),
}

/// Why nothing is sent to the WMS for a SKU missing in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WmsNote {
    /// Unknown at the last look-up, less than `recheck_missing_hours` ago.
    RecheckLater,
    /// The shop catalogue has no record to send.
    NotInCatalogue,
    /// `lookup_unmapped = "report"` without `create_missing_in_wms`.
    LookupReportOnly,
    /// EGON registers nothing.
    UnknownToEgon,
}

impl WmsNote {
    /// The report's note.
    pub(super) fn text(self) -> &'static str {
        match self {
            WmsNote::RecheckLater => "unknown to the WMS at the last look-up; asked again after [stock] recheck_missing_hours",
            WmsNote::NotInCatalogue => "not in the shop catalogue (products_select.sql)",
            WmsNote::LookupReportOnly => "no WMS goods id mapped; [stock] lookup_unmapped = \"report\": map it with `sverka map import`",
            WmsNote::UnknownToEgon => "unknown to EGON (no inventory card with this ITEM_ID)",
        }
    }
}

impl WmsStep {
    /// Whether the step looks the SKU up in the WMS or registers it, as the
    /// `max_registrations` guard counts (a SKU missing from the catalogue
    /// counts: it would be looked up if it were there).
    fn counts_as_registration(&self) -> bool {
        !matches!(
            self,
            WmsStep::Report(WmsNote::RecheckLater | WmsNote::UnknownToEgon)
        )
    }
}

/// The WMS step of each SKU missing in the WMS, from the catalogue and the
/// absent marks the run read at `now` (Unix ms).
pub(super) fn plan_registrations(
    stock: &StockSection,
    wms: WmsKind,
    wms_missing: &[String],
    lookup: &WmsLookup,
    now: i64,
) -> Vec<Registration> {
    let create = stock.create_missing_in_wms;
    let recheck_ms = stock.recheck_missing_hours.saturating_mul(3_600_000);
    let step = |sku: &str| {
        if wms == WmsKind::Egon {
            return WmsStep::Report(WmsNote::UnknownToEgon);
        }
        let checked_at = lookup.absent.get(sku).and_then(|t| t.parse::<i64>().ok());
        if checked_at.is_some_and(|at| !create && now - at < recheck_ms) {
            return WmsStep::Report(WmsNote::RecheckLater);
        }
        let Some(product) = lookup.catalogue.get(sku) else {
            return WmsStep::Report(WmsNote::NotInCatalogue);
        };
        // The full record: update_good replaces the WMS copy.
        let good = Box::new(product.to_imsklad_good());
        match (stock.lookup_unmapped, create) {
            (LookupUnmapped::Report, false) => WmsStep::Report(WmsNote::LookupReportOnly),
            (LookupUnmapped::Report, true) => WmsStep::Add(good),
            _ => WmsStep::LookUp { good, create },
        }
    };
    wms_missing
        .iter()
        .map(|sku| Registration {
            sku: sku.clone(),
            step: step(sku),
        })
        .collect()
}

/// The CRM rows split for the classification: the frame's columns and the
/// cost per SKU, and apart the rows of SKUs with unreadable WMS figures.
struct CrmSide<'a> {
    skus: Vec<&'a str>,
    offer_ids: Vec<i64>,
    quantities: Vec<i64>,
    costs: HashMap<&'a str, rcost::CrmCost>,
    unreadable: HashMap<&'a str, (i64, i64)>,
}

fn split_crm<'a>(sources: &'a Sources, unreadable: &BTreeSet<&str>) -> CrmSide<'a> {
    let rows = &sources.crm_rows;
    let mut side = CrmSide {
        skus: Vec::with_capacity(rows.len()),
        offer_ids: Vec::with_capacity(rows.len()),
        quantities: Vec::with_capacity(rows.len()),
        costs: HashMap::with_capacity(rows.len()),
        unreadable: HashMap::new(),
    };
    for row in rows {
        let sku = row.sku.as_str();
        if unreadable.contains(sku) {
            side.unreadable.insert(sku, (row.offer_id, row.quantity));
            continue;
        }
        side.skus.push(sku);
        side.offer_ids.push(row.offer_id);
        side.quantities.push(row.quantity);
        let cost = rcost::CrmCost {
            offer_id: row.offer_id,
            cost_kop: row.cost_kop,
        };
        side.costs.insert(sku, cost);
    }
    side
}

/// The shop frame (SKUs with unreadable WMS figures left out) and, apart,
/// the quantities of those.
fn split_shop<'a>(
    sources: &'a Sources,
    unreadable: &BTreeSet<&str>,
) -> Result<(DataFrame, HashMap<&'a str, i64>)> {
    let mut skus = Vec::with_capacity(sources.shop_stock.len());
    let mut quantities = Vec::with_capacity(sources.shop_stock.len());
    let mut left_out = HashMap::new();
    for s in &sources.shop_stock {
        if unreadable.contains(s.sku.as_str()) {
            left_out.insert(s.sku.as_str(), s.quantity);
        } else {
            skus.push(s.sku.as_str());
            quantities.push(s.quantity);
        }
    }
    Ok((df!("sku" => skus, "quantity" => quantities)?, left_out))
}

/// Plans the run. SKUs whose WMS figures cannot be read are left out of
/// every frame: no correction for them anywhere; they are reported
/// `wms_unreadable`.
pub(super) fn plan<'a>(ctx: &Context, sources: &'a Sources) -> Result<Plan<'a>> {
    let snap = &sources.snap;
    let unreadable: BTreeSet<&str> = snap.unreadable.iter().map(|u| u.sku.as_str()).collect();
    let crm = split_crm(sources, &unreadable);
    let (shop_df, unreadable_shop) = split_shop(sources, &unreadable)?;
    let shop_cost_map = shop_costs(ctx, &sources.shop_stock, snap);
    let cost_plan = shop_cost_map
        .as_ref()
        .map(|shop| rcost::plan_costs(shop, &crm.costs))
        .unwrap_or_default();
    let wms_df = snap.frame()?;
    let crm_df =
        df!("sku" => crm.skus, "crm_offer_id" => crm.offer_ids, "quantity" => crm.quantities)?;
    let classified = rs::classify_stock(&wms_df, &crm_df, &shop_df)?;
    let mut counts = rs::count_by_class(&classified)?;
    let stock = rs::plan_stock(&classified)?;
    let fixes = rcost::merge(&stock.crm_updates, &cost_plan);
    if !cost_plan.is_empty() {
        counts.insert(COST_MISMATCH_CRM.into(), cost_plan.len() as u64);
    }
    if !snap.unreadable.is_empty() {
        counts.insert(class::WMS_UNREADABLE.into(), snap.unreadable.len() as u64);
    }
    let registrations = plan_registrations(
        &ctx.config.stock,
        ctx.config.wms.kind,
        &stock.wms_missing,
        &sources.lookup,
        crate::db::now_ms(),
    );
    let guard = GuardInput {
        changed: changed_skus(&fixes, &stock),
        registrations: registrations
            .iter()
            .filter(|r| r.step.counts_as_registration())
            .count(),
        sellable_now: rs::total_sellable(&wms_df)?,
        sellable_before: sources.sellable_before,
    };
    Ok(Plan {
        rows: ClassifiedRows::read(&classified)?,
        counts,
        stock,
        fixes,
        cost_plan,
        crm_costs: crm.costs,
        registrations,
        unreadable_crm: crm.unreadable,
        unreadable_shop,
        guard,
        cost_synced: shop_cost_map.is_some(),
    })
}

/// SKUs whose CRM quantity or cost, or shop quantity, the plan would change.
fn changed_skus(fixes: &[rcost::OfferFix], stock: &rs::StockPlan) -> usize {
    fixes
        .iter()
        .map(|f| f.sku.as_str())
        .chain(stock.shop_updates.iter().map(|u| u.sku.as_str()))
        .collect::<BTreeSet<&str>>()
        .len()
}

impl Plan<'_> {
    /// The corrections planned: CRM offers, shop quantities, WMS registrations.
    pub(super) fn planned(&self) -> u64 {
        (self.fixes.len() + self.stock.shop_updates.len() + self.stock.wms_missing.len()) as u64
    }

    /// The run summary's job figures.
    pub(super) fn summary(&self, sources: &Sources) -> Value {
        let snap = &sources.snap;
        let share = if snap.expected == 0 {
            0.0
        } else {
            self.guard.changed as f64 / snap.expected as f64
        };
        let mut extra = json!({
            "skus": self.rows.distinct_skus(),
            "wms_expected": snap.expected,
            "wms_reported": snap.reported,
            "wms_coverage": snap.coverage(),
            "change_share": share,
            "changed_skus": self.guard.changed,
            "wms_registrations": self.guard.registrations,
            "total_sellable": self.guard.sellable_now,
            "crm_offers": sources.crm_rows.len(),
            "shop_skus": sources.shop_stock.len(),
            "wms_unreadable": snap.unreadable.len(),
            "mode": sources.crm_read.mode(),
            "cost_synced": self.cost_synced,
        });
        match &sources.crm_read {
            CrmRead::Full {
                fallback: Some(reason),
                ..
            } => extra["mode_fallback"] = json!(reason),
            CrmRead::Delta(d) => extra["delta"] = d.summary(),
            CrmRead::Full { fallback: None, .. } => {}
        }
        extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shop::Product;

    fn product(sku: &str) -> Product {
        Product {
            sku: sku.into(),
            name: format!("Product {sku}"),
            description: Some("from the catalogue read".into()),
            price_kop: 1990,
            cost_kop: 990,
            weight_g: Some(250),
            ean: None,
            supplier_id: None,
            width_mm: None,
            height_mm: None,
            length_mm: None,
            color_id: None,
            size: None,
            image_url: None,
        }
    }

    const NOW: i64 = 1_000 * 3_600_000;

    fn lookup() -> WmsLookup {
        WmsLookup {
            catalogue: [product("A"), product("B")]
                .into_iter()
                .map(|p| (p.sku.clone(), p))
                .collect(),
            // B was found unknown an hour ago.
            absent: [("B".to_string(), (NOW - 3_600_000).to_string())].into(),
        }
    }

    fn steps(stock: &StockSection, wms: WmsKind) -> Vec<(String, WmsStep)> {
        let missing = ["A", "B", "C"].map(String::from);
        plan_registrations(stock, wms, &missing, &lookup(), NOW)
            .into_iter()
            .map(|r| (r.sku, r.step))
            .collect()
    }

    #[test]
    fn the_plan_carries_the_catalogue_record_each_wms_registration_sends() {
        let stock = StockSection {
            recheck_missing_hours: 24,
            ..StockSection::default()
        };
        let good = |sku| Box::new(product(sku).to_imsklad_good());
        let looked_up = steps(&stock, WmsKind::Imsklad);
        assert_eq!(
            looked_up,
            [
                (
                    "A".into(),
                    WmsStep::LookUp {
                        good: good("A"),
                        create: false
                    }
                ),
                ("B".into(), WmsStep::Report(WmsNote::RecheckLater)),
                ("C".into(), WmsStep::Report(WmsNote::NotInCatalogue)),
            ]
        );
        // With create_missing_in_wms the last look-up does not hold B back.
        let create = StockSection {
            create_missing_in_wms: true,
            ..stock.clone()
        };
        let created = steps(&create, WmsKind::Imsklad);
        assert_eq!(
            created[1].1,
            WmsStep::LookUp {
                good: good("B"),
                create: true
            }
        );
        // lookup_unmapped = "report": add_good only with create_missing_in_wms.
        let report = StockSection {
            lookup_unmapped: LookupUnmapped::Report,
            ..create.clone()
        };
        assert_eq!(
            steps(&report, WmsKind::Imsklad)[0].1,
            WmsStep::Add(good("A"))
        );
        let report_only = StockSection {
            create_missing_in_wms: false,
            ..report
        };
        assert_eq!(
            steps(&report_only, WmsKind::Imsklad)[0].1,
            WmsStep::Report(WmsNote::LookupReportOnly)
        );
        // EGON registers nothing.
        assert!(steps(&stock, WmsKind::Egon)
            .iter()
            .all(|(_, s)| *s == WmsStep::Report(WmsNote::UnknownToEgon)));
    }

    #[test]
    fn the_registration_guard_counts_what_would_reach_the_wms() {
        let stock = StockSection {
            recheck_missing_hours: 24,
            ..StockSection::default()
        };
        let counted = |wms| {
            steps(&stock, wms)
                .iter()
                .filter(|(_, s)| s.counts_as_registration())
                .count()
        };
        // A and C (missing from the catalogue, still a look-up the guard counts); not B.
        assert_eq!(counted(WmsKind::Imsklad), 2);
        assert_eq!(counted(WmsKind::Egon), 0);
    }
}
