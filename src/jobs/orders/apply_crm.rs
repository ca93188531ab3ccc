//! CRM corrections: the integration module and order edits in RetailCRM.

use super::*;

// ---------------------------------------------------------------------------
// CRM corrections
// ---------------------------------------------------------------------------

/// The `url` of the `inventoriesUpload` action, appended to `baseUrl`.
pub const INVENTORIES_CALLBACK_PATH: &str = "/retailcrm/inventories";

/// The warehouse module sverka registers so that `order[shipped]` is writable,
/// and a note when it goes without the `inventoriesUpload` callback.
///
/// `baseUrl` is `[orders] listener_url` (absolute, https unless loopback);
/// without a usable one the module carries no action (nothing to call back)
/// and `baseUrl` is the CRM account's own URL. An empty `clientId` is an
/// error: the CRM needs it to identify the account in callbacks.
pub fn desired_module(
    config: &crate::config::Config,
) -> Result<(IntegrationModule, Option<String>), String> {
    let crm = &config.retailcrm;
    if crm.client_id.is_empty() {
        return Err(
            "[retailcrm] client_id is empty: RetailCRM needs it to register the warehouse module; the module was not registered"
                .into(),
        );
    }
    let (base_url, actions, note) = match config.orders.module_base_url() {
        Ok(Some(url)) => (
            url,
            vec![StoreAction {
                code: "inventoriesUpload".into(),
                url: INVENTORIES_CALLBACK_PATH.into(),
                call_points: crm.call_points.clone(),
            }],
            None,
        ),
        Ok(None) => (
            crm.url.trim_end_matches('/').to_owned(),
            Vec::new(),
            Some("the warehouse module was registered without the inventoriesUpload callback: [orders] listener_url is not set".to_owned()),
        ),
        Err(why) => (
            crm.url.trim_end_matches('/').to_owned(),
            Vec::new(),
            Some(format!("the warehouse module was registered without the inventoriesUpload callback: [orders] listener_url {why}")),
        ),
    };
    let module = IntegrationModule {
        code: crm.module_code.clone(),
        integration_code: Some(crm.integration_code()),
        name: "sverka".into(),
        active: true,
        base_url,
        client_id: crm.client_id.clone(),
        logo: crm.logo.clone().filter(|l| !l.trim().is_empty()),
        account_url: None,
        integrations: Some(Integrations {
            store: Some(StoreIntegration { actions }),
        }),
    };
    Ok((module, note))
}

/// A fingerprint (SHA-256, hex) of everything sverka registers, `clientId`
/// included: a change of any of it means registering again.
pub fn module_fingerprint(m: &IntegrationModule) -> String {
    use sha2::{Digest, Sha256};
    let mut value = serde_json::to_value(m).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        obj.insert("clientId".into(), json!(m.client_id.expose()));
    }
    let text = crate::json_canon::canonical_json(&value);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `existing` already is the module sverka wants: active, same
/// `baseUrl`, and every wanted action with its `url` and `callPoints` (the
/// client id is not compared: the CRM may not echo it; the stored
/// fingerprint covers it).
pub(super) fn module_matches(existing: &IntegrationModule, wanted: &IntegrationModule) -> bool {
    let actions = |m: &IntegrationModule| {
        m.integrations
            .as_ref()
            .and_then(|i| i.store.as_ref())
            .map(|s| {
                s.actions
                    .iter()
                    .map(|a| {
                        let points: BTreeSet<String> = a.call_points.iter().cloned().collect();
                        (a.code.clone(), a.url.clone(), points)
                    })
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default()
    };
    existing.active
        && existing.base_url.trim_end_matches('/') == wanted.base_url
        && actions(wanted).is_subset(&actions(existing))
}

/// Registers sverka's warehouse module unless it already is (journaled):
/// the CRM's copy must match and the stored fingerprint must equal what
/// sverka would register now. The inner error says why shipped marks cannot
/// be sent this run; the inner `Ok` carries a note for the report (a module
/// without callback); the outer error is a journal failure that ends the run.
pub(super) async fn ensure_module(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
) -> Result<Result<Option<String>, String>> {
    let (wanted, note) = match desired_module(&ctx.config) {
        Ok(w) => w,
        Err(why) => return Ok(Err(why)),
    };
    if let Some(n) = &note {
        tracing::warn!(run = run_id, "{n}");
    }
    let fingerprint = module_fingerprint(&wanted);
    let stored = crate::db::protocol::module_fingerprint(&ctx.state, &wanted.code).await?;
    match crm.integration_module_get(&wanted.code).await {
        Ok(Some(existing))
            if module_matches(&existing, &wanted)
                && stored.as_deref() == Some(fingerprint.as_str()) =>
        {
            return Ok(Ok(note))
        }
        Ok(_) => {}
        Err(e) => return Ok(Err(format!("reading the warehouse module failed: {e}"))),
    }
    let actions: Vec<&str> = wanted
        .integrations
        .iter()
        .flat_map(|i| i.store.iter())
        .flat_map(|s| s.actions.iter().map(|a| a.code.as_str()))
        .collect();
    let payload = json!({"code": wanted.code, "baseUrl": wanted.base_url, "actions": actions,
                         "fingerprint": fingerprint});
    let id = ctx
        .writer()
        .plan(&Planned {
            run_id,
            job: JOB,
            target: Target::Crm,
            action: action::CRM_MODULE,
            item_key: &wanted.code,
            payload: &payload,
        })
        .await?;
    match crm.integration_module_edit(&wanted).await {
        Ok(()) => {
            ctx.writer()
                .settle(id, CorrectionStatus::Applied, "{}")
                .await?;
            crate::db::protocol::put_module_fingerprint(&ctx.state, &wanted.code, &fingerprint)
                .await?;
            Ok(Ok(note))
        }
        Err(e) => {
            let text = e.to_string();
            ctx.writer()
                .settle(id, CorrectionStatus::Failed, &text)
                .await?;
            Ok(Err(format!(
                "registering the warehouse module failed: {text}"
            )))
        }
    }
}

/// Sends one journaled order edit; answers the fate result and note.
pub(super) async fn send_edit(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
    order_id: &str,
    action_name: &'static str,
    patch: &OrderPatch,
    corrections: &mut CorrectionCounts,
) -> Result<Fate> {
    let payload = patch.to_json();
    let id = ctx
        .writer()
        .plan(&Planned {
            run_id,
            job: JOB,
            target: Target::Crm,
            action: action_name,
            item_key: order_id,
            payload: &payload,
        })
        .await?;
    match crm.order_edit(order_id, patch).await {
        Ok(()) => {
            ctx.writer()
                .settle(id, CorrectionStatus::Applied, "{}")
                .await?;
            corrections.applied += 1;
            Ok(Fate::new(action_name, "applied", payload.to_string()))
        }
        Err(e) => {
            let text = e.to_string();
            tracing::error!(
                run = run_id,
                order = order_id,
                "RetailCRM order edit failed: {text}"
            );
            ctx.writer()
                .settle(id, CorrectionStatus::Failed, &text)
                .await?;
            corrections.failed += 1;
            Ok(Fate::new(action_name, "failed", text))
        }
    }
}

pub(super) async fn apply_crm(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
    plan: &OrdersPlan,
    shipped_at: &BTreeMap<&str, i64>,
    fates: &mut Fates,
    corrections: &mut CorrectionCounts,
) -> Result<Option<String>> {
    let module = if plan.crm_ship_marks.is_empty() {
        Ok(None)
    } else {
        ensure_module(ctx, run_id, crm).await?
    };
    let module_note = module.as_ref().ok().cloned().flatten();
    let tz = ctx.config.tz();
    let bar = Progress::counter(
        "RetailCRM order edits",
        (plan.crm_ship_marks.len() + plan.crm_tracks.len()) as u64,
        "edits",
    );
    for mark in &plan.crm_ship_marks {
        bar.inc(1);
        let (track, status) = (mark.track.is_some(), mark.status.is_some());
        let fate = if ctx.stop.is_stopped() {
            Fate::new(
                action::CRM_SHIP_MARK,
                "skipped",
                "stop requested; the next run retries",
            )
        } else if let Err(why) = &module {
            corrections.failed += 1;
            Fate::new(action::CRM_SHIP_MARK, "failed", why.clone())
        } else {
            let date = shipped_at
                .get(mark.order_id.as_str())
                .and_then(|ms| chrono::DateTime::from_timestamp_millis(*ms))
                .map(|t| t.with_timezone(&tz).date_naive())
                .unwrap_or_else(|| ctx.today());
            let patch = OrderPatch {
                shipped: Some(true),
                shipment_store: Some(ctx.config.retailcrm.store.clone()),
                shipment_date: Some(date),
                status: mark.status.clone(),
                track_number: mark.track.clone(),
            };
            send_edit(
                ctx,
                run_id,
                crm,
                &mark.order_id,
                action::CRM_SHIP_MARK,
                &patch,
                corrections,
            )
            .await?
        };
        for_ship_mark(fates, &mark.order_id, track, status, &fate);
    }
    for t in &plan.crm_tracks {
        bar.inc(1);
        let fate = if ctx.stop.is_stopped() {
            Fate::new(
                action::CRM_TRACK,
                "skipped",
                "stop requested; the next run retries",
            )
        } else {
            let patch = OrderPatch {
                track_number: Some(t.track.clone()),
                ..OrderPatch::default()
            };
            send_edit(
                ctx,
                run_id,
                crm,
                &t.order_id,
                action::CRM_TRACK,
                &patch,
                corrections,
            )
            .await?
        };
        fates.insert((t.order_id.clone(), class::TRACK_MISSING_IN_CRM), fate);
    }
    Ok(module_note)
}
