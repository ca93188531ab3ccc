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

/// What the shipped marks need of the warehouse module, from its copy in
/// the CRM and the stored fingerprint.
#[derive(Debug)]
pub(super) enum ModuleStep {
    /// The module is registered as wanted (or no shipped mark needs it); the
    /// report's note.
    Current(Option<String>),
    /// The module is registered (again) before the shipped marks go out.
    Register {
        /// What sverka registers.
        wanted: Box<IntegrationModule>,
        /// Its fingerprint ([`module_fingerprint`]).
        fingerprint: String,
        /// The report's note.
        note: Option<String>,
    },
    /// Shipped marks cannot be sent this run: why.
    Unusable(String),
}

/// Reads what the planned module registration needs (`planned`: the
/// module the shipped marks need, `RunPlan::module`): the
/// stored fingerprint and the CRM's copy. The error is a state read failure
/// that ends the run.
pub(super) async fn read_module(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
    planned: Option<&Result<(IntegrationModule, Option<String>), String>>,
) -> Result<ModuleStep> {
    let (wanted, note) = match planned {
        None => return Ok(ModuleStep::Current(None)),
        Some(Err(why)) => return Ok(ModuleStep::Unusable(why.clone())),
        Some(Ok((wanted, note))) => (wanted.clone(), note.clone()),
    };
    if let Some(n) = &note {
        tracing::warn!(run = run_id, "{n}");
    }
    let fingerprint = module_fingerprint(&wanted);
    let stored = crate::db::protocol::module_fingerprint(&ctx.state, &wanted.code).await?;
    Ok(match crm.integration_module_get(&wanted.code).await {
        Ok(Some(existing))
            if module_matches(&existing, &wanted)
                && stored.as_deref() == Some(fingerprint.as_str()) =>
        {
            ModuleStep::Current(note)
        }
        Ok(_) => ModuleStep::Register {
            wanted: Box::new(wanted),
            fingerprint,
            note,
        },
        Err(e) => ModuleStep::Unusable(format!(
            "reading the warehouse module failed: {}",
            crate::errors::Chain(&e)
        )),
    })
}

/// Registers sverka's warehouse module when [`read_module`] found it
/// missing or different (journaled). The inner error says why shipped marks
/// cannot be sent this run; the inner `Ok` carries a note for the report (a
/// module without callback); the outer error is a journal failure that ends
/// the run.
pub(super) async fn ensure_module(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
    step: ModuleStep,
) -> Result<Result<Option<String>, String>> {
    let (wanted, fingerprint, note) = match step {
        ModuleStep::Current(note) => return Ok(Ok(note)),
        ModuleStep::Unusable(why) => return Ok(Err(why)),
        ModuleStep::Register {
            wanted,
            fingerprint,
            note,
        } => (wanted, fingerprint, note),
    };
    let actions: Vec<&str> = wanted
        .integrations
        .iter()
        .flat_map(|i| i.store.iter())
        .flat_map(|s| s.actions.iter().map(|a| a.code.as_str()))
        .collect();
    let payload = json!({"code": wanted.code, "baseUrl": wanted.base_url, "actions": actions,
                         "fingerprint": fingerprint});
    let action = JournalAction::CrmModule;
    let id = plan_write(ctx, run_id, Target::Crm, action, &wanted.code, &payload).await?;
    let answer = crm
        .integration_module_edit(&wanted)
        .await
        .map(|()| "{}".to_owned())
        .map_err(|e| crate::errors::chain(&e));
    match settle_plain(ctx, id, answer).await? {
        Ok(()) => {
            crate::db::protocol::put_module_fingerprint(&ctx.state, &wanted.code, &fingerprint)
                .await?;
            Ok(Ok(note))
        }
        Err(text) => Ok(Err(format!(
            "registering the warehouse module failed: {text}"
        ))),
    }
}

/// Sends one journaled order edit; answers its fate.
pub(super) async fn send_edit(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
    write: &CrmWrite,
    corrections: &mut CorrectionCounts,
) -> Result<Fate> {
    let order_id = write.order_id.as_str();
    let payload = write.patch.to_json();
    let action = write.edit.journal();
    let id = plan_write(ctx, run_id, Target::Crm, action, order_id, &payload).await?;
    let answer = match crm.order_edit(order_id, &write.patch).await {
        Ok(()) => Ok("{}".to_owned()),
        Err(e) => {
            let text = crate::errors::chain(&e);
            tracing::error!(
                run = run_id,
                order = order_id,
                "RetailCRM order edit failed: {text}"
            );
            Err(text)
        }
    };
    let settled = settle_plain(ctx, id, answer).await?;
    let act = ReportAction::Crm(write.edit);
    Ok(plain_fate(act, settled, payload.to_string(), corrections))
}

/// Sends the planned CRM edits (after the warehouse module, when shipped
/// marks need it); answers the module's note for the run's `extra`.
pub(super) async fn apply_crm(
    ctx: &Context,
    run_id: i64,
    crm: &RetailCrmClient,
    plan: &RunPlan,
    module: ModuleStep,
    applied: &mut Applied,
) -> Result<Option<String>> {
    let module = ensure_module(ctx, run_id, crm, module).await?;
    let bar = Progress::counter(
        "RetailCRM order edits",
        plan.crm_edits.len() as u64,
        "edits",
    );
    for write in &plan.crm_edits {
        bar.inc(1);
        let act = ReportAction::Crm(write.edit);
        let fate = match (&module, write.edit) {
            _ if ctx.stop.is_stopped() => Fate::skipped(act),
            (Err(why), CrmEdit::ShipMark) => {
                applied.corrections.failed += 1;
                Fate::new(act, FateResult::Failed, why.clone())
            }
            _ => send_edit(ctx, run_id, crm, write, &mut applied.corrections).await?,
        };
        write.settle(&mut applied.fates, fate);
    }
    Ok(module.ok().flatten())
}
