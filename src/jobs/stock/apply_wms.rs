//! WMS corrections: goods registered or updated in the WMS.

use super::*;

/// True when an `update_good` look-up answer means "unknown to the WMS"
/// (code 2, or code 4: UNVERIFIED which one the real service sends).
pub(super) fn unknown_good(e: &crate::connectors::imsklad::ImskladError) -> bool {
    e.is_not_found() || e.is_not_performed()
}

/// `add_good`, journaled; maps the SKU to the answered WMS id. The inner
/// error is the refusal's text.
/// A SKU the WMS answered with its goods id: mapped, no longer absent, its
/// correction settled applied with the id, and counted.
pub(super) async fn record_mapped(
    ctx: &Context,
    sku: &str,
    journal_id: i64,
    wms_id: i64,
    corrections: &mut CorrectionCounts,
) -> Result<()> {
    mapping::put(&ctx.state, MapKind::Good, sku, &wms_id.to_string()).await?;
    mapping::remove(&ctx.state, MapKind::AbsentGood, sku).await?;
    ctx.writer()
        .settle(
            journal_id,
            CorrectionStatus::Applied,
            &json!({"id": wms_id}).to_string(),
        )
        .await?;
    corrections.applied += 1;
    Ok(())
}

pub(super) async fn add_good(
    ctx: &Context,
    client: &crate::connectors::imsklad::ImskladClient,
    run_id: i64,
    sku: &str,
    good: &Good,
    payload: &serde_json::Value,
    corrections: &mut CorrectionCounts,
) -> Result<(&'static str, String)> {
    let add = ctx
        .writer()
        .plan(&Planned {
            run_id,
            job: JOB,
            target: Target::Wms,
            action: "add_good",
            item_key: sku,
            payload,
        })
        .await?;
    match client.add_good(good).await {
        Ok(wms_id) => {
            record_mapped(ctx, sku, add, wms_id, corrections).await?;
            Ok((
                "applied",
                format!("created in the WMS as goods id {wms_id}"),
            ))
        }
        Err(e) => {
            // add_good is not idempotent: an ambiguous failure is `unknown`.
            let (status, outcome) = super::super::failed_write(
                crate::connectors::imsklad::is_idempotent("add_good"),
                e.is_ambiguous(),
            );
            let mut text = e.to_string();
            if status == CorrectionStatus::Unknown {
                text.push_str(
                    "; it may have been created: not re-sent in this run, the next run looks it up",
                );
            }
            ctx.writer().settle(add, status, &text).await?;
            super::super::count_failure(corrections, status);
            Ok((outcome.as_str(), text))
        }
    }
}

pub(super) async fn apply_wms(
    ctx: &Context,
    run_id: i64,
    plan: &rs::StockPlan,
    fates: &mut HashMap<(String, &'static str), Fate>,
    corrections: &mut CorrectionCounts,
) -> Result<()> {
    if plan.wms_missing.is_empty() {
        return Ok(());
    }
    let create = ctx.config.stock.create_missing_in_wms;
    let lookup = ctx.config.stock.lookup_unmapped;
    let catalogue: BTreeMap<String, crate::shop::Product> = ctx
        .shop
        .products()
        .await
        .context("reading the shop catalogue")?
        .into_iter()
        .map(|p| (p.sku.clone(), p))
        .collect();
    let absent = mapping::all(&ctx.state, MapKind::AbsentGood).await?;
    let recheck_ms = ctx
        .config
        .stock
        .recheck_missing_hours
        .saturating_mul(3_600_000);
    let now = crate::db::now_ms();
    let mut set = |sku: &str, action: &'static str, result: &str, note: String| {
        fates.insert(
            (sku.to_string(), class::MISSING_IN_WMS),
            Fate {
                action,
                result: result.into(),
                note,
            },
        );
    };
    match ctx.config.wms.kind {
        WmsKind::Imsklad => {
            let client = ctx.imsklad()?;
            let bar = Progress::counter(
                "registering SKUs in IMSKLAD",
                plan.wms_missing.len() as u64,
                "SKUs",
            );
            for sku in &plan.wms_missing {
                bar.inc(1);
                if ctx.stop.is_stopped() {
                    set(sku, "wms_register", "skipped", "stop requested".into());
                    continue;
                }
                let checked_at = absent.get(sku).and_then(|t| t.parse::<i64>().ok());
                if let (Some(at), false) = (checked_at, create) {
                    if now - at < recheck_ms {
                        set(sku, "report", "", "unknown to the WMS at the last look-up; asked again after [stock] recheck_missing_hours".into());
                        continue;
                    }
                }
                let Some(product) = catalogue.get(sku) else {
                    set(
                        sku,
                        "report",
                        "",
                        "not in the shop catalogue (products_select.sql)".into(),
                    );
                    continue;
                };
                // The full record: update_good replaces the WMS copy.
                let good = product.to_imsklad_good();
                let payload = serde_json::to_value(&good).unwrap_or_default();
                if lookup == LookupUnmapped::Report {
                    if !create {
                        set(sku, "report", "", "no WMS goods id mapped; [stock] lookup_unmapped = \"report\": map it with `sverka map import`".into());
                        continue;
                    }
                    let (result, note) =
                        add_good(ctx, &client, run_id, sku, &good, &payload, corrections).await?;
                    set(sku, "wms_add", result, note);
                    continue;
                }
                let id = ctx
                    .writer()
                    .plan(&Planned {
                        run_id,
                        job: JOB,
                        target: Target::Wms,
                        action: "update_good",
                        item_key: sku,
                        payload: &payload,
                    })
                    .await?;
                match client.update_good(&good).await {
                    Ok(wms_id) => {
                        record_mapped(ctx, sku, id, wms_id, corrections).await?;
                        set(
                            sku,
                            "wms_register",
                            "applied",
                            format!("known to the WMS as goods id {wms_id}; mapped"),
                        );
                    }
                    // UNVERIFIED: the IMSKLAD API documentation does not say what update_good of an
                    // unknown id answers; code 2 (not found) and code 4 (not
                    // performed) both count as "unknown to the WMS".
                    Err(e) if unknown_good(&e) => {
                        ctx.writer()
                            .settle(id, CorrectionStatus::Failed, &e.to_string())
                            .await?;
                        if create {
                            let (result, note) =
                                add_good(ctx, &client, run_id, sku, &good, &payload, corrections)
                                    .await?;
                            set(sku, "wms_add", result, note);
                        } else {
                            mapping::put(&ctx.state, MapKind::AbsentGood, sku, &now.to_string())
                                .await?;
                            set(sku, "report", "", "unknown to the WMS; set [stock] create_missing_in_wms = true to create it".into());
                        }
                    }
                    Err(e) => {
                        ctx.writer()
                            .settle(id, CorrectionStatus::Failed, &e.to_string())
                            .await?;
                        corrections.failed += 1;
                        set(sku, "wms_register", "failed", e.to_string());
                    }
                }
            }
            drop(bar);
        }
        WmsKind::Egon => {
            for sku in &plan.wms_missing {
                set(
                    sku,
                    "report",
                    "",
                    "unknown to EGON (no inventory card with this ITEM_ID)".into(),
                );
            }
        }
    }
    Ok(())
}
