//! The plan phase (pure): classify what was read and plan every write the
//! apply phase takes, complete and typed.

use super::*;

/// One planned CRM order edit: the order, which edit, and the patch sent.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CrmWrite {
    pub(super) order_id: String,
    pub(super) edit: CrmEdit,
    pub(super) patch: OrderPatch,
}

impl CrmWrite {
    /// Settles the rows the edit answers: a shipped mark also settles the
    /// order's track and status rows when it carries them.
    pub(super) fn settle(&self, fates: &mut Fates, fate: Fate) {
        match self.edit {
            CrmEdit::ShipMark => for_ship_mark(
                fates,
                &self.order_id,
                self.patch.track_number.is_some(),
                self.patch.status.is_some(),
                &fate,
            ),
            CrmEdit::Track => {
                fates.insert((self.order_id.clone(), OrderClass::TrackMissingInCrm), fate);
            }
        }
    }
}

/// One planned WMS write as it goes out, or why nothing goes out.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum WmsStep {
    /// Nothing is sent; the report says why.
    Held(String),
    /// IMSKLAD `add_order`.
    ImskladAdd(Order),
    /// EGON `CreateNewOrder`.
    EgonAdd(NewOrder),
    /// IMSKLAD `update_order` with `is_canceled = 1`; `full`: the order is
    /// sverka's full copy (else the shop's data).
    ImskladCancel {
        /// The order sent.
        order: Order,
        /// Whether it is a full copy.
        full: bool,
    },
    /// EGON `StornoOrder`.
    EgonCancel,
}

/// The run's plan.
pub(super) struct RunPlan {
    /// The classifier's plan (held and not-created additions removed): what
    /// the guard counts and a gated run reports as not sent.
    pub(super) orders: OrdersPlan,
    /// The classified rows.
    pub(super) rows: Vec<Row>,
    /// Orders of the shop whose WMS status the map does not know, with it.
    pub(super) unmapped: Vec<(String, i64)>,
    /// Fates decided by the plan (additions held or not allowed).
    pub(super) fates: Fates,
    /// The CRM edits: shipped marks, then tracks.
    pub(super) crm_edits: Vec<CrmWrite>,
    /// The warehouse module the shipped marks need (when there are any), or
    /// why it cannot be registered; with a note for the report.
    pub(super) module: Option<Result<(IntegrationModule, Option<String>), String>>,
    /// WMS additions by order id.
    pub(super) wms_adds: Vec<(String, WmsStep)>,
    /// WMS cancellations by order id.
    pub(super) wms_cancels: Vec<(String, WmsStep)>,
    /// WMS orders in scope.
    pub(super) wms_orders: usize,
    /// CRM orders compared.
    pub(super) crm_orders: usize,
}

impl RunPlan {
    /// How many corrections are planned.
    pub(super) fn planned_count(&self) -> u64 {
        let p = &self.orders;
        (p.wms_adds.len() + p.wms_cancels.len() + p.crm_ship_marks.len() + p.crm_tracks.len())
            as u64
    }
}

/// Orders the plan touches, for the change-share guard.
pub(super) fn touched(plan: &OrdersPlan) -> BTreeSet<&str> {
    plan.wms_adds
        .iter()
        .chain(&plan.wms_cancels)
        .map(String::as_str)
        .chain(plan.crm_ship_marks.iter().map(|m| m.order_id.as_str()))
        .chain(plan.crm_tracks.iter().map(|t| t.order_id.as_str()))
        .collect()
}

pub(super) fn change_share(plan: &OrdersPlan, window_orders: usize) -> f64 {
    let n = touched(plan).len();
    match (n, window_orders) {
        (0, _) => 0.0,
        (_, 0) => 1.0,
        (n, total) => n as f64 / total as f64,
    }
}

/// The classified rows and the classifier's plan, with what the plan needs of
/// the WMS side.
struct Classified<'a> {
    rows: Vec<Row>,
    plan: OrdersPlan,
    scope: Vec<(&'a str, &'a WmsView, Stage)>,
    unmapped: Vec<(String, i64)>,
    crm_orders: usize,
}

/// Classifies what was read and plans every write.
pub(super) fn plan_run(
    config: &crate::config::Config,
    today: NaiveDate,
    map: &StatusMap,
    src: &Sources,
    window: (i64, i64),
    now: i64,
) -> Result<RunPlan> {
    let options = OrdersOptions {
        now_ms: now,
        stuck_hours: config.orders.stuck_hours,
        amount_tolerance_kop: config.orders.amount_tolerance_kop,
        stage_status: map.crm.clone(),
    };
    let c = classify(config.wms.kind, map, src, window, &options)?;
    let mut orders = c.plan;
    let fates = hold_adds(
        &mut orders,
        &c.unmapped,
        src,
        config.orders.create_missing_in_wms,
    );
    let shipped_at: BTreeMap<&str, i64> = c
        .scope
        .iter()
        .map(|(id, v, _)| (*id, v.last_change_at))
        .collect();
    let crm_edits = crm_writes(&orders, &shipped_at, config, today);
    let module = (!orders.crm_ship_marks.is_empty()).then(|| desired_module(config));
    let shop = ShopData::of(src);
    let wms_adds = orders
        .wms_adds
        .iter()
        .map(|id| (id.clone(), plan_add(config, &shop, id)))
        .collect();
    let wms_cancels = orders
        .wms_cancels
        .iter()
        .map(|id| (id.clone(), plan_cancel(config.wms.kind, &shop, id)))
        .collect();
    Ok(RunPlan {
        rows: c.rows,
        unmapped: c.unmapped,
        fates,
        crm_edits,
        module,
        wms_adds,
        wms_cancels,
        wms_orders: c.scope.len(),
        crm_orders: c.crm_orders,
        orders,
    })
}

/// Frames what was read, classifies it and plans with the classifier.
fn classify<'a>(
    kind: WmsKind,
    map: &StatusMap,
    src: &'a Sources,
    window: (i64, i64),
    options: &OrdersOptions,
) -> Result<Classified<'a>> {
    let shop_ids = src.shop_ids();
    let scope = wms_in_scope(&src.wms, &shop_ids, map, kind, window);
    let unmapped = src
        .wms
        .views
        .iter()
        .filter(|(id, v)| shop_ids.contains(id.as_str()) && map.stage(kind, v.status).is_none())
        .map(|(id, v)| (id.clone(), v.status))
        .collect();
    let crm_by_id = crm_by_external_id(&src.crm_orders);
    let crm_list: Vec<&CrmOrder> = crm_by_id.values().copied().collect();
    let shop_lines = src
        .shop_items
        .iter()
        .filter(|i| shop_ids.contains(i.order_id.as_str()))
        .map(|i| (i.order_id.as_str(), i.sku.as_str(), i.quantity));
    let wms_lines = scope.iter().flat_map(|(id, v, _)| {
        v.goods
            .iter()
            .flatten()
            .map(move |(sku, q)| (*id, sku.as_str(), *q))
    });
    let classified = ro::classify_orders(
        &shop_frame(&src.shop_orders)?,
        &items_frame(shop_lines)?,
        &wms_frame(&scope)?,
        &items_frame(wms_lines)?,
        &crm_frame(&crm_list)?,
        options,
    )?;
    Ok(Classified {
        plan: ro::plan_orders(&classified, options)?,
        rows: read_rows(&classified)?,
        scope,
        unmapped,
        crm_orders: crm_by_id.len(),
    })
}

/// Takes out of the additions the orders whose WMS state is unknown or
/// unmapped this run, and all of them unless sverka may create orders: they
/// are reported instead of sent.
fn hold_adds(
    plan: &mut OrdersPlan,
    unmapped: &[(String, i64)],
    src: &Sources,
    create: bool,
) -> Fates {
    let unsure: BTreeSet<&str> = unmapped
        .iter()
        .map(|(id, _)| id.as_str())
        .chain(src.wms.unknown.keys().map(String::as_str))
        .collect();
    let (held, adds): (Vec<String>, Vec<String>) = std::mem::take(&mut plan.wms_adds)
        .into_iter()
        .partition(|id| unsure.contains(id.as_str()));
    let (adds, not_created) = if create {
        (adds, Vec::new())
    } else {
        (Vec::new(), adds)
    };
    plan.wms_adds = adds;
    let mut fates = Fates::new();
    for id in held {
        let note = "the WMS state of this order could not be read or mapped this run; not sent";
        fates.insert((id, OrderClass::MissingInWms), Fate::report(note));
    }
    for id in not_created {
        let note = "set [orders] create_missing_in_wms = true to send it";
        fates.insert((id, OrderClass::MissingInWms), Fate::report(note));
    }
    fates
}

/// The CRM edits with their patches: shipped marks (dated by the WMS's last
/// change of the order, in the configured time zone), then tracks.
fn crm_writes(
    plan: &OrdersPlan,
    shipped_at: &BTreeMap<&str, i64>,
    config: &crate::config::Config,
    today: NaiveDate,
) -> Vec<CrmWrite> {
    let tz = config.tz();
    let marks = plan.crm_ship_marks.iter().map(|mark| {
        let date = shipped_at
            .get(mark.order_id.as_str())
            .and_then(|ms| chrono::DateTime::from_timestamp_millis(*ms))
            .map(|t| t.with_timezone(&tz).date_naive())
            .unwrap_or(today);
        CrmWrite {
            order_id: mark.order_id.clone(),
            edit: CrmEdit::ShipMark,
            patch: OrderPatch {
                shipped: Some(true),
                shipment_store: Some(config.retailcrm.store.clone()),
                shipment_date: Some(date),
                status: mark.status.clone(),
                track_number: mark.track.clone(),
            },
        }
    });
    let tracks = plan.crm_tracks.iter().map(|t| CrmWrite {
        order_id: t.order_id.clone(),
        edit: CrmEdit::Track,
        patch: OrderPatch {
            track_number: Some(t.track.clone()),
            ..OrderPatch::default()
        },
    });
    marks.chain(tracks).collect()
}
