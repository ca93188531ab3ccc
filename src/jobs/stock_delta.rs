//! The stock job's RetailCRM side: a full read of every inventory page, or
//! a delta read of only the offers that moved.
//!
//! A **delta** run reads the WMS and the shop in full (the guards need them)
//! and keeps what the CRM is known to hold per offer ([`known_stock`]: the
//! last full read plus every upload the CRM acknowledged since). The offers
//! whose WMS sellable or shop cost differs from that known state are *moved*;
//! only their current CRM figures are read, by filter, in batches no larger
//! than the accepted page size with a URL under 8 KB: `filter[ids][]` with
//! the offer ids of the last full read, or the configured key's list
//! (`[stock] delta_read` picks the first, the other is the fallback). Where
//! no filtered read is accepted the moved offers are uploaded without reading
//! (absolute values: sending them twice is harmless). Every other offer is
//! taken as the known state says, so the classification, the plan, the
//! guards and the report are those of a full run.
//!
//! A delta run runs as a full one, saying so, when the known state is
//! missing (or belongs to another store or key) or no full run succeeded
//! within `[stock] full_every_hours`. What a delta run cannot see: a change
//! made in the CRM itself to an offer whose WMS figure did not move; the next
//! full run finds it.

use anyhow::{Context as _, Result};
use std::collections::{HashMap, HashSet};

use super::Context;
use crate::config::{DeltaRead, StockMode};
use crate::connectors::retailcrm::{
    FilteredRead, InventoryFilter, InventoryOffer, RetailCrmClient,
};
use crate::db::known_stock::{self, KnownOffer, KnownStock};

/// What the CRM holds for one offer of the configured store, as the run sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmRow {
    /// The shop SKU under the configured key.
    pub sku: String,
    /// The CRM offer id.
    pub offer_id: i64,
    /// The store quantity (rounded).
    pub quantity: i64,
    /// The store purchase price, kopecks.
    pub cost_kop: Option<i64>,
}

impl CrmRow {
    fn from_offer(offer: &InventoryOffer, crm: &RetailCrmClient) -> Option<CrmRow> {
        let store = crm.store();
        Some(CrmRow {
            sku: offer.sku(crm.offer_key())?.to_string(),
            offer_id: offer.id,
            quantity: offer.store_quantity(store).unwrap_or(0.0).round() as i64,
            cost_kop: offer.store_purchase_kop(store),
        })
    }

    /// The known-state record of this row.
    pub fn known(&self) -> KnownOffer {
        KnownOffer {
            sku: self.sku.clone(),
            offer_id: self.offer_id,
            quantity: self.quantity,
            cost_kop: self.cost_kop,
        }
    }
}

/// How this run reads the CRM.
#[derive(Debug)]
pub enum Plan {
    /// Every inventory page; `fallback` says why a delta run runs as full.
    Full {
        /// Why a requested delta run is a full one.
        fallback: Option<String>,
    },
    /// Only the moved offers, over this known state.
    Delta(KnownStock),
}

/// Decides the run's mode from `[stock] mode` (already overridden by the
/// flag or the job option) and the known state's age.
pub async fn plan(ctx: &Context, crm: &RetailCrmClient) -> Result<Plan> {
    if ctx.config.stock.mode == StockMode::Full {
        return Ok(Plan::Full { fallback: None });
    }
    let key = crm.offer_key().field();
    let known = known_stock::load(&ctx.state, crm.store(), key)
        .await
        .context("reading what the CRM is known to hold")?;
    let hours = ctx.config.stock.full_every_hours;
    let fallback = match known {
        None => {
            "no known CRM state for this store (no full run yet, or another store or offer key)"
                .to_string()
        }
        Some(known) => {
            let age_ms = crate::db::now_ms() - known.full_at;
            if age_ms <= hours.saturating_mul(3_600_000) {
                return Ok(Plan::Delta(known));
            }
            format!(
                "the last full run is {:.1} h old, beyond [stock] full_every_hours = {hours}",
                age_ms as f64 / 3_600_000.0
            )
        }
    };
    tracing::warn!("delta stock run requested; running as full: {fallback}");
    Ok(Plan::Full {
        fallback: Some(fallback),
    })
}

/// The stored known state of the configured store (for a full run, which
/// writes only what differs from it), read while the CRM is read.
pub async fn stored(ctx: &Context, crm: &RetailCrmClient) -> Result<Option<KnownStock>> {
    known_stock::load(&ctx.state, crm.store(), crm.offer_key().field())
        .await
        .context("reading what the CRM is known to hold")
}

/// The CRM rows of a full read (first offer of each SKU; offers without a
/// SKU under the configured key are left out).
pub fn full_rows(offers: &[InventoryOffer], crm: &RetailCrmClient) -> Vec<CrmRow> {
    let key = crm.offer_key();
    let mut seen: HashSet<&str> = HashSet::with_capacity(offers.len());
    let mut rows = Vec::with_capacity(offers.len());
    for offer in offers {
        let Some(sku) = offer.sku(key) else {
            continue;
        };
        if !seen.insert(sku) {
            tracing::warn!(
                sku,
                "RetailCRM has several offers with this SKU; using the first"
            );
            continue;
        }
        rows.extend(CrmRow::from_offer(offer, crm));
    }
    rows
}

/// What a delta read did.
#[derive(Debug, Default)]
pub struct DeltaOutcome {
    /// The CRM as the run sees it: the known state, with the moved offers'
    /// fresh figures (an offer the CRM no longer holds is left out).
    pub rows: Vec<CrmRow>,
    /// The fresh figures the CRM confirmed (recorded as known before any write).
    pub confirmed: Vec<KnownOffer>,
    /// Offers whose WMS sellable or shop cost moved from the known state.
    pub moved: usize,
    /// Filtered read requests made.
    pub reads: usize,
    /// The filter that was accepted, if any.
    pub filter: Option<InventoryFilter>,
    /// Moved offers uploaded without reading (no filtered read accepted).
    pub unread: usize,
    /// Why a filter was not used.
    pub refused: Vec<String>,
}

impl DeltaOutcome {
    /// The summary's `delta` object.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "moved": self.moved,
            "filtered_reads": self.reads,
            "filter": self.filter.map(InventoryFilter::as_str),
            "uploaded_unread": self.unread,
            "filters_refused": self.refused,
        })
    }
}

/// The SKUs whose WMS sellable (`wms`: SKU → sellable, readable figures
/// only) or shop cost (`costs`, when synced) differs from the known state,
/// sorted. A SKU the known state lacks is not in the CRM as of the last full
/// read: it stays `missing_in_crm` until the next full run.
pub fn moved(
    known: &KnownStock,
    wms: &[(&str, i64)],
    costs: Option<&HashMap<&str, i64>>,
) -> Vec<String> {
    let mut out: Vec<String> = wms
        .iter()
        .filter(|(sku, sellable)| {
            known.offers.get(*sku).is_some_and(|k| {
                k.quantity != *sellable
                    || costs
                        .and_then(|c| c.get(sku))
                        .is_some_and(|c| k.cost_kop != Some(*c))
            })
        })
        .map(|(sku, _)| (*sku).to_string())
        .collect();
    out.sort();
    out
}

/// Reads the current CRM figures of the `moved` SKUs by filter (falling back
/// from one filter to the other, then to no read) and returns the CRM as the
/// run sees it.
pub async fn read(
    ctx: &Context,
    crm: &RetailCrmClient,
    known: KnownStock,
    moved: Vec<String>,
) -> Result<DeltaOutcome> {
    let mut out = DeltaOutcome {
        moved: moved.len(),
        ..DeltaOutcome::default()
    };
    let mut filters = match ctx.config.stock.delta_read {
        DeltaRead::Ids => vec![InventoryFilter::Ids, InventoryFilter::OfferKey],
        DeltaRead::OfferKey => vec![InventoryFilter::OfferKey, InventoryFilter::Ids],
    };
    let mut fresh = Fresh::with_capacity(moved.len());
    let bar = crate::progress::Progress::counter(
        "RetailCRM reads of moved offers",
        moved.len() as u64,
        "offers",
    );
    // Moved SKUs not read yet.
    let mut pending: Vec<String> = moved;
    while !pending.is_empty() {
        let Some(&filter) = filters.first() else {
            break;
        };
        let batches = filter_batches(crm, filter, &pending, &known);
        let (mut not_read, refused) =
            read_by(crm, filter, batches, &mut out, &mut fresh, &bar).await?;
        if let Some(why) = refused {
            tracing::warn!("{why}; trying the next way to read moved offers");
            out.refused.push(why);
            filters.remove(0);
        }
        not_read.sort();
        pending = not_read;
    }
    drop(bar);
    if !pending.is_empty() {
        out.unread = pending.len();
        tracing::warn!(
            offers = pending.len(),
            "no filtered inventory read accepted: uploading the moved offers without reading them (absolute values)"
        );
    }
    out.confirmed = fresh.rows.values().map(CrmRow::known).collect();
    out.rows = fresh.over(known);
    Ok(out)
}

/// The offers a delta run read: each SKU's row, and every SKU asked for.
struct Fresh {
    rows: HashMap<String, CrmRow>,
    read: HashSet<String>,
}

impl Fresh {
    fn with_capacity(n: usize) -> Fresh {
        Fresh {
            rows: HashMap::with_capacity(n),
            read: HashSet::with_capacity(n),
        }
    }

    /// The CRM as the run sees it, sorted by SKU: the known offers, each
    /// replaced by its fresh row; one asked for and not answered is gone.
    fn over(mut self, known: KnownStock) -> Vec<CrmRow> {
        let mut rows: Vec<CrmRow> = known
            .offers
            .into_values()
            .filter_map(|k| {
                if let Some(row) = self.rows.remove(&k.sku) {
                    return Some(row);
                }
                if self.read.contains(&k.sku) {
                    // Asked for and not answered: the CRM no longer holds it.
                    return None;
                }
                Some(CrmRow {
                    sku: k.sku,
                    offer_id: k.offer_id,
                    quantity: k.quantity,
                    cost_kop: k.cost_kop,
                })
            })
            .collect();
        rows.sort_by(|a, b| a.sku.cmp(&b.sku));
        rows
    }
}

/// The `pending` SKUs in batches for `filter`: (SKUs, filter values) per batch.
fn filter_batches(
    crm: &RetailCrmClient,
    filter: InventoryFilter,
    pending: &[String],
    known: &KnownStock,
) -> Vec<(Vec<String>, Vec<String>)> {
    let values: Vec<String> = match filter {
        InventoryFilter::OfferKey => pending.to_vec(),
        InventoryFilter::Ids => pending
            .iter()
            .map(|s| known.offers.get(s).map_or(0, |k| k.offer_id).to_string())
            .collect(),
    };
    let mut batches = Vec::new();
    let mut at = 0;
    for b in crm.filter_batches(filter, &values) {
        batches.push((pending[at..at + b.len()].to_vec(), b.to_vec()));
        at += b.len();
    }
    batches
}

/// Reads `batches` with `filter`: the first batch alone tells whether the CRM
/// accepts the filter; the others then go at once (the client's rate limiter
/// decides when each is sent). Returns the SKUs this filter did not read and
/// why the CRM refused it (if it did).
async fn read_by(
    crm: &RetailCrmClient,
    filter: InventoryFilter,
    mut batches: Vec<(Vec<String>, Vec<String>)>,
    out: &mut DeltaOutcome,
    fresh: &mut Fresh,
    bar: &crate::progress::Progress,
) -> Result<(Vec<String>, Option<String>)> {
    let mut rest = batches.split_off(1.min(batches.len()));
    let mut not_read: Vec<String> = Vec::new();
    let mut refused: Option<String> = None;
    let mut round = batches;
    loop {
        let mut tasks = tokio::task::JoinSet::new();
        for (skus, vals) in round {
            let client = crm.clone();
            tasks.spawn(async move {
                let answer = client.inventories_filtered(filter, &vals).await;
                (skus, answer)
            });
        }
        out.reads += tasks.len();
        while let Some(joined) = tasks.join_next().await {
            let (skus, answer) = match joined {
                Ok(done) => done,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => anyhow::bail!(
                    "reading moved offers from RetailCRM: {}",
                    crate::errors::Chain(&e)
                ),
            };
            match answer.context("reading moved offers from RetailCRM")? {
                FilteredRead::Offers(offers) => {
                    out.filter = Some(filter);
                    for offer in &offers {
                        if let Some(row) = CrmRow::from_offer(offer, crm) {
                            fresh.rows.entry(row.sku.clone()).or_insert(row);
                        }
                    }
                    bar.inc(skus.len() as u64);
                    fresh.read.extend(skus);
                }
                FilteredRead::NotAccepted(why) => {
                    refused.get_or_insert(why);
                    not_read.extend(skus);
                }
            }
        }
        if refused.is_some() || rest.is_empty() {
            break;
        }
        round = std::mem::take(&mut rest);
    }
    // What this filter did not read goes to the next way of reading.
    not_read.extend(rest.into_iter().flat_map(|(skus, _)| skus));
    Ok((not_read, refused))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownStock {
        let offer = |sku: &str, quantity, cost| KnownOffer {
            sku: sku.into(),
            offer_id: 1,
            quantity,
            cost_kop: cost,
        };
        KnownStock {
            full_at: 0,
            offers: [
                offer("A", 5, Some(100)),
                offer("B", 3, None),
                offer("C", 0, Some(7)),
            ]
            .into_iter()
            .map(|o| (o.sku.clone(), o))
            .collect(),
        }
    }

    #[test]
    fn moved_offers_are_those_whose_wms_figure_or_cost_moved() {
        let wms = [("A", 5), ("B", 4), ("C", 0), ("Z", 9)];
        assert_eq!(moved(&known(), &wms, None), vec!["B".to_string()]);
        let costs = HashMap::from([("A", 101), ("C", 7)]);
        assert_eq!(
            moved(&known(), &wms, Some(&costs)),
            vec!["A".to_string(), "B".to_string()]
        );
    }
}
