//! The stock job's RetailCRM upload: one offer per SKU carrying its quantity
//! fix, its cost fix or both, in chunks of at most 250, each journaled before
//! it is sent and settled after; what the CRM acknowledged is recorded as
//! what it is known to hold ([`crate::db::known_stock`]).

use anyhow::{Context as _, Result};
use serde_json::{json, Value};
use std::collections::HashMap;

use super::stock::{Action, ClassifiedRows, Fate, FateResult, Ledger, WmsSnapshot, JOB};
use super::Context;
use crate::connectors::retailcrm::{
    OfferStock, RetailCrmClient, RetailCrmError, UploadResult, MAX_OFFERS_PER_UPLOAD,
};
use crate::db::journal::{CorrectionStatus, Target};
use crate::db::known_stock::{self, KnownOffer};
use crate::progress::Progress;
use crate::reconcile::cost::{self as rcost, COST_MISMATCH_CRM};
use crate::reconcile::stock::class;

/// The cost prices this run compares: the shop's cost per SKU (SKUs with
/// unreadable WMS figures left out), or `None` when cost prices are not
/// synced (`[stock] sync_cost = false`, or the query returns no cost).
pub(super) fn shop_costs<'a>(
    ctx: &Context,
    shop_stock: &'a [crate::shop::ShopStock],
    snap: &WmsSnapshot,
) -> Option<HashMap<&'a str, i64>> {
    let wanted = ctx.config.stock.sync_cost.unwrap_or(true);
    if !wanted || shop_stock.iter().all(|s| s.cost_kop.is_none()) {
        return None;
    }
    let unreadable: std::collections::HashSet<&str> =
        snap.unreadable.iter().map(|u| u.sku.as_str()).collect();
    Some(
        shop_stock
            .iter()
            .filter(|s| !unreadable.contains(s.sku.as_str()))
            .filter_map(|s| Some((s.sku.as_str(), s.cost_kop?)))
            .collect(),
    )
}

/// Formats kopecks as roubles for a note (`1029` → `10.29`).
fn roubles(kop: Option<i64>) -> String {
    match kop {
        Some(k) => format!(
            "{}{}.{:02}",
            if k < 0 { "-" } else { "" },
            (k / 100).abs(),
            (k % 100).abs()
        ),
        None => "none".into(),
    }
}

/// Records the upload's `result` with `note` for every class `f` corrects.
fn set_fates(ledger: &mut Ledger, f: &rcost::OfferFix, result: FateResult, note: &str) {
    for (class_name, _) in fix_notes(f) {
        ledger.set(
            &f.sku,
            class_name,
            Fate::new(Action::CrmUpload, result, note),
        );
    }
}

/// The report classes a fix corrects, each with its note.
pub(super) fn fix_notes(f: &rcost::OfferFix) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(2);
    if let Some((from, to)) = f.quantity {
        out.push((class::QTY_MISMATCH_CRM, format!("{from} → {to}")));
    }
    if let Some((from, to)) = f.cost {
        out.push((
            COST_MISMATCH_CRM,
            format!("purchasePrice {} → {}", roubles(from), roubles(Some(to))),
        ));
    }
    out
}

/// What the CRM upload needs besides the plan.
pub(super) struct UploadInput<'a> {
    /// One fix per offer: quantity, cost or both.
    pub(super) fixes: &'a [rcost::OfferFix],
    /// The classified rows (WMS sellable and CRM quantity per SKU).
    pub(super) rows: &'a ClassifiedRows,
    /// The CRM's purchase price per SKU.
    pub(super) crm_costs: &'a HashMap<&'a str, rcost::CrmCost>,
}

impl UploadInput<'_> {
    /// The upload entry of a fix: `available` when the quantity is fixed (or,
    /// with `[stock] cost_with_available`, the WMS sellable with a cost-only
    /// fix), `purchasePrice` when the cost is.
    fn offer(&self, f: &rcost::OfferFix, with_available: bool) -> OfferStock {
        let sellable = || {
            self.rows
                .find(&f.sku)
                .and_then(|i| self.rows.wms_sellable[i])
        };
        OfferStock {
            sku: f.sku.clone(),
            available: f
                .quantity
                .map(|q| q.1)
                .or_else(|| with_available.then(sellable).flatten()),
            purchase_price_kop: f.cost.map(|c| c.1),
        }
    }

    /// What the CRM holds for the fix's offer once the upload is acknowledged.
    fn known_after(&self, f: &rcost::OfferFix, sent: &OfferStock) -> Option<KnownOffer> {
        let before = self
            .rows
            .find(&f.sku)
            .and_then(|i| self.rows.crm_quantity[i]);
        Some(KnownOffer {
            sku: f.sku.clone(),
            offer_id: f.crm_offer_id,
            quantity: sent.available.or(before)?,
            cost_kop: sent
                .purchase_price_kop
                .or_else(|| self.crm_costs.get(f.sku.as_str()).and_then(|c| c.cost_kop)),
        })
    }
}

/// Upload batches in flight at once after the first one. The client's rate
/// limiter (shared by every RetailCRM call of the account) still decides when
/// each is sent; this only lets the latency of one batch overlap the next.
pub const UPLOAD_CONCURRENCY: usize = 10;

/// Why a batch is not sent, if it is not: an earlier batch failed, or a stop
/// was requested.
fn skip_reason(ctx: &Context, failed_before: bool) -> Option<&'static str> {
    if failed_before {
        Some("not sent: an earlier chunk failed; the next run retries")
    } else if ctx.stop.is_stopped() {
        Some("not sent: stop requested; the next run retries")
    } else {
        None
    }
}

/// The journaled payload of a batch: per offer the quantity and the cost
/// price it had and is set to.
fn upload_payload(store: &str, chunk: &[rcost::OfferFix], offers: &[OfferStock]) -> Value {
    let entries = chunk.iter().zip(offers).map(|(f, o)| {
        let mut entry = json!({"sku": f.sku});
        if let Some(a) = o.available {
            entry["from"] = json!(f.quantity.map(|q| q.0));
            entry["available"] = json!(a);
        }
        if let Some(p) = o.purchase_price_kop {
            entry["purchase_price_from_kop"] = json!(f.cost.and_then(|c| c.0));
            entry["purchase_price_kop"] = json!(p);
        }
        entry
    });
    json!({"store": store, "offers": entries.collect::<Vec<_>>()})
}

/// The journal key of a batch: its first and last SKU and its size.
fn chunk_key(chunk: &[rcost::OfferFix]) -> String {
    let first = chunk.first().map(|f| f.sku.as_str()).unwrap_or("");
    let last = chunk.last().map(|f| f.sku.as_str()).unwrap_or("");
    format!("{first}..{last} ({} offers)", chunk.len())
}

/// A batch sent: its journal id, its fixes and the offers sent for them.
struct Sent<'a> {
    id: i64,
    chunk: &'a [rcost::OfferFix],
    offers: &'a [OfferStock],
}

/// Settles a batch the CRM acknowledged: each offer applied, or (listed in
/// `notFoundOffers`) `not_found` with a `missing_in_crm` line in `rows`; what
/// the CRM took is recorded as what it is known to hold now.
async fn acknowledged(
    ctx: &Context,
    input: &UploadInput<'_>,
    sent: &Sent<'_>,
    result: &UploadResult,
    ledger: &mut Ledger,
    rows: &mut Vec<(String, &'static str, Fate)>,
) -> Result<()> {
    let answer =
        json!({"processedOffersCount": result.processed, "notFoundOffers": result.not_found});
    ctx.writer()
        .settle(sent.id, CorrectionStatus::Applied, &answer.to_string())
        .await?;
    ledger.corrections.applied += sent.chunk.len() as u64;
    let not_found: std::collections::HashSet<&String> = result.not_found.iter().collect();
    let mut confirmed = Vec::with_capacity(sent.chunk.len());
    for (f, offer) in sent.chunk.iter().zip(sent.offers) {
        if not_found.contains(&f.sku) {
            let note = "the CRM answered notFoundOffers";
            set_fates(ledger, f, FateResult::NotFound, note);
            let fate = Fate::report("listed in notFoundOffers by the CRM");
            rows.push((f.sku.clone(), class::MISSING_IN_CRM, fate));
        } else {
            confirmed.extend(input.known_after(f, offer));
            for (class_name, note) in fix_notes(f) {
                let fate = Fate::new(Action::CrmUpload, FateResult::Applied, note);
                ledger.set(&f.sku, class_name, fate);
            }
        }
    }
    known_stock::confirm(&ctx.state, &confirmed)
        .await
        .context("recording the acknowledged upload")?;
    Ok(())
}

/// Uploads the fixes in batches of at most [`MAX_OFFERS_PER_UPLOAD`].
///
/// Each batch is journaled (after the lock check of [`crate::apply::Writer::plan`])
/// before it is sent and settled with the CRM's answer as soon as that is in.
/// The first batch goes alone (a CRM that fails it is sent nothing else);
/// then up to [`UPLOAD_CONCURRENCY`] are in flight, through the client's rate
/// limiter. No batch starts after a failure or a stop request (those in
/// flight are still settled); the report rows keep the batch order whatever
/// the order of the answers.
pub(super) async fn apply_crm(
    ctx: &Context,
    crm: &RetailCrmClient,
    run_id: i64,
    input: &UploadInput<'_>,
    ledger: &mut Ledger,
) -> Result<()> {
    if input.fixes.is_empty() {
        return Ok(());
    }
    let mut batches = Batches::new(input.fixes);
    let bar = Progress::counter(
        "uploading stock to RetailCRM",
        batches.chunks.len() as u64,
        "batches",
    );
    loop {
        batches.launch(ctx, crm, run_id, input, ledger).await;
        let Some(joined) = batches.tasks.join_next().await else {
            break;
        };
        let answer = match joined {
            Ok(done) => done,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => anyhow::bail!("uploading stock to RetailCRM: {}", crate::errors::Chain(&e)),
        };
        batches.settle(ctx, run_id, input, answer, ledger).await?;
        bar.inc(1);
    }
    drop(bar);
    ledger
        .extra_rows
        .extend(batches.chunk_rows.into_iter().flatten());
    match batches.halted {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A batch's answer: its index, the offers sent and what the CRM said.
type Answer = (usize, Vec<OfferStock>, Result<UploadResult, RetailCrmError>);

/// The upload in progress: which batches are journaled and in flight, which
/// are answered, and whether anything stops further sending.
struct Batches<'a> {
    chunks: Vec<&'a [rcost::OfferFix]>,
    /// The extra report rows of each batch, joined in batch order at the end.
    chunk_rows: Vec<Vec<(String, &'static str, Fate)>>,
    /// Journal id and key of each batch in flight.
    open: HashMap<usize, (i64, String)>,
    tasks: tokio::task::JoinSet<Answer>,
    failed_before: bool,
    answered: usize,
    next: usize,
    /// Why nothing more is sent (the journal refused).
    halted: Option<anyhow::Error>,
}

impl<'a> Batches<'a> {
    fn new(fixes: &'a [rcost::OfferFix]) -> Self {
        let chunks: Vec<&[rcost::OfferFix]> = fixes.chunks(MAX_OFFERS_PER_UPLOAD).collect();
        Batches {
            chunk_rows: chunks.iter().map(|_| Vec::new()).collect(),
            chunks,
            open: HashMap::new(),
            tasks: tokio::task::JoinSet::new(),
            failed_before: false,
            answered: 0,
            next: 0,
            halted: None,
        }
    }

    /// Journals and sends batches until the room is full: one before the first
    /// answer, then up to [`UPLOAD_CONCURRENCY`]. A batch after a failure or a
    /// stop request is skipped; a journal that refuses halts the upload.
    async fn launch(
        &mut self,
        ctx: &Context,
        crm: &RetailCrmClient,
        run_id: i64,
        input: &UploadInput<'_>,
        ledger: &mut Ledger,
    ) {
        let with_available = ctx.config.stock.cost_with_available;
        let room = if self.answered == 0 {
            1
        } else {
            UPLOAD_CONCURRENCY
        };
        while self.halted.is_none() && self.tasks.len() < room && self.next < self.chunks.len() {
            let index = self.next;
            let chunk = self.chunks[index];
            self.next += 1;
            if let Some(reason) = skip_reason(ctx, self.failed_before) {
                for f in chunk {
                    set_fates(ledger, f, FateResult::Skipped, reason);
                }
                continue;
            }
            let offers: Vec<OfferStock> = chunk
                .iter()
                .map(|f| input.offer(f, with_available))
                .collect();
            let payload = upload_payload(&ctx.config.retailcrm.store, chunk, &offers);
            let key = chunk_key(chunk);
            let planned = ctx
                .journal(run_id, JOB)
                .plan(Target::Crm, "inventories_upload", &key, &payload)
                .await;
            let id = match planned {
                Ok(id) => id,
                Err(e) => {
                    // Nothing more is sent; the batches in flight are still settled.
                    self.halted = Some(e.into());
                    return;
                }
            };
            self.open.insert(index, (id, key));
            let client = crm.clone();
            self.tasks.spawn(async move {
                let result = client.upload_chunk(&offers).await;
                (index, offers, result)
            });
        }
    }

    /// Settles one answered batch in the journal and the ledger.
    async fn settle(
        &mut self,
        ctx: &Context,
        run_id: i64,
        input: &UploadInput<'_>,
        (index, offers, result): Answer,
        ledger: &mut Ledger,
    ) -> Result<()> {
        self.answered += 1;
        let chunk = self.chunks[index];
        let (id, key) = self
            .open
            .remove(&index)
            .expect("a batch in flight is journaled");
        match result {
            Ok(result) => {
                let sent = Sent {
                    id,
                    chunk,
                    offers: &offers,
                };
                let rows = &mut self.chunk_rows[index];
                acknowledged(ctx, input, &sent, &result, ledger, rows).await?;
            }
            Err(e) => {
                let text = crate::errors::chain(&e);
                tracing::error!(run = run_id, chunk = %key, "RetailCRM upload failed: {text}");
                ctx.writer()
                    .settle(id, CorrectionStatus::Failed, &text)
                    .await?;
                ledger.corrections.failed += chunk.len() as u64;
                self.failed_before = true;
                for f in chunk {
                    set_fates(ledger, f, FateResult::Failed, &text);
                }
            }
        }
        Ok(())
    }
}
