//! Shop corrections: stock figures written back to the shop.

use anyhow::Result;
use serde_json::json;
use std::collections::HashSet;

use super::super::Context;
use super::report::{Action, Fate, FateResult, Ledger};
use super::JOB;
use crate::db::journal::{CorrectionStatus, ItemOutcome, Target};
use crate::reconcile::stock::{class, ShopStockUpdate};
use crate::shop::StockWrite;

/// Writes the shop's quantities in one compare-and-set transaction,
/// journaled before and settled after; a row that changed since the read is
/// left as it is (`changed_during_run`).
pub(super) async fn apply_shop(
    ctx: &Context,
    run_id: i64,
    updates: &[ShopStockUpdate],
    ledger: &mut Ledger,
) -> Result<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let payload = json!(updates
        .iter()
        .map(|u| json!({"sku": u.sku, "from": u.from, "to": u.to}))
        .collect::<Vec<_>>());
    let key = format!("{} SKUs", updates.len());
    let id = ctx
        .journal(run_id, JOB)
        .plan(Target::Shop, "update_stock", &key, &payload)
        .await?;
    let writes: Vec<StockWrite> = updates
        .iter()
        .map(|u| StockWrite {
            sku: u.sku.clone(),
            from: u.from,
            to: u.to,
        })
        .collect();
    let outcome = match ctx.shop.update_stock(&writes).await {
        Ok(outcome) => outcome,
        Err(e) => {
            let text = crate::errors::chain(&e);
            ctx.writer()
                .settle(id, CorrectionStatus::Failed, &text)
                .await?;
            ledger.corrections.failed += writes.len() as u64;
            for u in updates {
                let fate = Fate::new(Action::ShopUpdate, FateResult::Failed, text.clone());
                ledger.set(&u.sku, class::QTY_MISMATCH_SHOP, fate);
            }
            return Ok(());
        }
    };
    let changed: HashSet<&str> = outcome
        .changed_during_run
        .iter()
        .map(String::as_str)
        .collect();
    let status = if changed.is_empty() {
        CorrectionStatus::Applied
    } else {
        CorrectionStatus::Partial
    };
    let answer = json!({
        "updated": outcome.updated.len(),
        "inserted": outcome.inserted.len(),
        "changed_during_run": outcome.changed_during_run,
    });
    ctx.writer().settle(id, status, &answer.to_string()).await?;
    for u in updates {
        let fate = if changed.contains(u.sku.as_str()) {
            ledger.corrections.failed += 1;
            let note = format!(
                "the shop row no longer held {} when sverka wrote {}: left as it is; the next run re-reads it",
                u.from, u.to
            );
            Fate::new(
                Action::ShopUpdate,
                ItemOutcome::ChangedDuringRun.into(),
                note,
            )
        } else {
            ledger.corrections.applied += 1;
            let note = format!("{} → {}", u.from, u.to);
            Fate::new(Action::ShopUpdate, ItemOutcome::Applied.into(), note)
        };
        ledger.set(&u.sku, class::QTY_MISMATCH_SHOP, fate);
    }
    Ok(())
}
