//! Shop corrections: stock figures written back to the shop.

use super::*;

pub(super) async fn apply_shop(
    ctx: &Context,
    run_id: i64,
    plan: &rs::StockPlan,
    fates: &mut HashMap<(String, &'static str), Fate>,
    corrections: &mut CorrectionCounts,
) -> Result<()> {
    if plan.shop_updates.is_empty() {
        return Ok(());
    }
    let payload = json!(plan
        .shop_updates
        .iter()
        .map(|u| json!({"sku": u.sku, "from": u.from, "to": u.to}))
        .collect::<Vec<_>>());
    let key = format!("{} SKUs", plan.shop_updates.len());
    let id = ctx
        .writer()
        .plan(&Planned {
            run_id,
            job: JOB,
            target: Target::Shop,
            action: "update_stock",
            item_key: &key,
            payload: &payload,
        })
        .await?;
    let updates: Vec<crate::shop::StockWrite> = plan
        .shop_updates
        .iter()
        .map(|u| crate::shop::StockWrite {
            sku: u.sku.clone(),
            from: u.from,
            to: u.to,
        })
        .collect();
    match ctx.shop.update_stock(&updates).await {
        Ok(outcome) => {
            let changed: std::collections::HashSet<&str> = outcome
                .changed_during_run
                .iter()
                .map(String::as_str)
                .collect();
            let status = if changed.is_empty() {
                CorrectionStatus::Applied
            } else {
                CorrectionStatus::Partial
            };
            ctx.writer()
                .settle(
                    id,
                    status,
                    &json!({
                        "updated": outcome.updated.len(),
                        "inserted": outcome.inserted.len(),
                        "changed_during_run": outcome.changed_during_run,
                    })
                    .to_string(),
                )
                .await?;
            for u in &plan.shop_updates {
                let fate = if changed.contains(u.sku.as_str()) {
                    corrections.failed += 1;
                    Fate {
                        action: "shop_update",
                        result: ItemOutcome::ChangedDuringRun.as_str().into(),
                        note: format!(
                            "the shop row no longer held {} when sverka wrote {}: left as it is; the next run re-reads it",
                            u.from, u.to
                        ),
                    }
                } else {
                    corrections.applied += 1;
                    Fate {
                        action: "shop_update",
                        result: ItemOutcome::Applied.as_str().into(),
                        note: format!("{} → {}", u.from, u.to),
                    }
                };
                fates.insert((u.sku.clone(), class::QTY_MISMATCH_SHOP), fate);
            }
        }
        Err(e) => {
            let text = e.to_string();
            ctx.writer()
                .settle(id, CorrectionStatus::Failed, &text)
                .await?;
            corrections.failed += updates.len() as u64;
            for u in &plan.shop_updates {
                fates.insert(
                    (u.sku.clone(), class::QTY_MISMATCH_SHOP),
                    Fate {
                        action: "shop_update",
                        result: "failed".into(),
                        note: text.clone(),
                    },
                );
            }
        }
    }
    Ok(())
}
