//! Cost prices: the shop's cost per SKU against the configured store's
//! `purchasePrice` in the CRM, and the one upload offer per SKU that carries
//! both a quantity fix and a cost fix.
//!
//! The shop is the master of its cost prices. Money stays in integer kopecks:
//! the CRM's floats are rounded half-up to kopecks when they are read
//! ([`crate::money::money_to_kop`]), so "a difference of one
//! kopeck or more" is plain integer inequality. A SKU without a shop cost is
//! not compared; a CRM offer without a purchase price differs from any shop
//! cost. Pure: no I/O.

use std::collections::{BTreeMap, HashMap};

use super::stock::CrmStockUpdate;

/// Class of a SKU whose CRM purchase price differs from the shop's cost.
pub const COST_MISMATCH_CRM: &str = "cost_mismatch_crm";

/// What the CRM holds for one offer, as far as cost goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrmCost {
    /// The CRM offer id.
    pub offer_id: i64,
    /// The store's purchase price in kopecks, if it has one.
    pub cost_kop: Option<i64>,
}

/// Set the CRM store purchase price of one offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostUpdate {
    /// The shop SKU.
    pub sku: String,
    /// The CRM offer id.
    pub crm_offer_id: i64,
    /// The CRM's current purchase price (kopecks), if any.
    pub from: Option<i64>,
    /// The shop's cost (kopecks).
    pub to: i64,
}

/// The `cost_mismatch_crm` corrections, sorted by SKU: every SKU with a shop
/// cost and a CRM offer whose purchase price is missing or different.
pub fn plan_costs(shop: &HashMap<&str, i64>, crm: &HashMap<&str, CrmCost>) -> Vec<CostUpdate> {
    let mut out: Vec<CostUpdate> = shop
        .iter()
        .filter_map(|(sku, &cost)| {
            let c = crm.get(sku)?;
            (c.cost_kop != Some(cost)).then(|| CostUpdate {
                sku: (*sku).to_string(),
                crm_offer_id: c.offer_id,
                from: c.cost_kop,
                to: cost,
            })
        })
        .collect();
    out.sort_by(|a, b| a.sku.cmp(&b.sku));
    out
}

/// One offer of an upload: a quantity fix, a cost fix, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferFix {
    /// The shop SKU.
    pub sku: String,
    /// The CRM offer id.
    pub crm_offer_id: i64,
    /// (CRM quantity, WMS sellable) when the quantity is corrected.
    pub quantity: Option<(i64, i64)>,
    /// (CRM price, shop cost) when the price is corrected.
    pub cost: Option<(Option<i64>, i64)>,
}

/// Merges the quantity and cost corrections into one fix per offer, sorted by
/// SKU: a SKU with both mismatches takes one offer slot.
pub fn merge(quantities: &[CrmStockUpdate], costs: &[CostUpdate]) -> Vec<OfferFix> {
    let mut fixes: BTreeMap<&str, OfferFix> = BTreeMap::new();
    for q in quantities {
        fixes.insert(
            &q.sku,
            OfferFix {
                sku: q.sku.clone(),
                crm_offer_id: q.crm_offer_id,
                quantity: Some((q.from, q.to)),
                cost: None,
            },
        );
    }
    for c in costs {
        fixes
            .entry(&c.sku)
            .or_insert_with(|| OfferFix {
                sku: c.sku.clone(),
                crm_offer_id: c.crm_offer_id,
                quantity: None,
                cost: None,
            })
            .cost = Some((c.from, c.to));
    }
    fixes.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kopeck_is_a_mismatch_and_a_missing_price_too() {
        let shop = HashMap::from([("A", 1000), ("B", 1000), ("C", 500), ("D", 7)]);
        let crm = HashMap::from([
            (
                "A",
                CrmCost {
                    offer_id: 1,
                    cost_kop: Some(1000),
                },
            ),
            (
                "B",
                CrmCost {
                    offer_id: 2,
                    cost_kop: Some(1001),
                },
            ),
            (
                "C",
                CrmCost {
                    offer_id: 3,
                    cost_kop: None,
                },
            ),
        ]);
        let plan = plan_costs(&shop, &crm);
        assert_eq!(
            plan,
            vec![
                CostUpdate {
                    sku: "B".into(),
                    crm_offer_id: 2,
                    from: Some(1001),
                    to: 1000
                },
                CostUpdate {
                    sku: "C".into(),
                    crm_offer_id: 3,
                    from: None,
                    to: 500
                },
            ]
        );
    }

    #[test]
    fn both_fixes_of_a_sku_share_one_offer() {
        let q = vec![
            CrmStockUpdate {
                sku: "A".into(),
                crm_offer_id: 1,
                from: 3,
                to: 5,
            },
            CrmStockUpdate {
                sku: "C".into(),
                crm_offer_id: 3,
                from: 0,
                to: 1,
            },
        ];
        let c = vec![
            CostUpdate {
                sku: "A".into(),
                crm_offer_id: 1,
                from: None,
                to: 10,
            },
            CostUpdate {
                sku: "B".into(),
                crm_offer_id: 2,
                from: Some(4),
                to: 9,
            },
        ];
        let fixes = merge(&q, &c);
        assert_eq!(fixes.len(), 3);
        assert_eq!(fixes[0].quantity, Some((3, 5)));
        assert_eq!(fixes[0].cost, Some((None, 10)));
        assert_eq!(fixes[1].sku, "B");
        assert_eq!(fixes[1].quantity, None);
        assert_eq!(fixes[2].cost, None);
    }
}
