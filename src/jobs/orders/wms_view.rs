//! The WMS side of an order: stored state, sent documents and EGON polls.

use super::*;

// ---------------------------------------------------------------------------
// WMS state
// ---------------------------------------------------------------------------

/// What the WMS is known to hold for one order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WmsView {
    pub(super) wms_order_id: Option<String>,
    pub(super) status: i64,
    pub(super) track: Option<String>,
    /// When the status last changed (Unix ms).
    pub(super) last_change_at: i64,
    /// When sverka last heard of the order (Unix ms).
    pub(super) seen_at: i64,
    pub(super) goods: Option<Vec<(String, i64)>>,
}

/// A WMS correction sverka sent and the WMS accepted (fully or partly).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sent {
    pub(super) order_id: String,
    pub(super) action: String,
    pub(super) at: i64,
}

/// The WMS's view of the window's orders.
#[derive(Debug, Default)]
pub(super) struct WmsSide {
    pub(super) views: BTreeMap<String, WmsView>,
    /// Orders whose state could not be read this run: order id → why.
    pub(super) unknown: BTreeMap<String, String>,
    pub(super) polled: usize,
}

/// Goods lines of a journaled `goods` JSON: IMSKLAD `[{id, quantity}]` or
/// EGON `[{ITEM_ID, COUNT}]`, as a list or a PHP map, quantities as numbers,
/// floats or strings. `None` when the text is not such a list.
pub(super) fn parse_goods(text: &str) -> Option<Vec<(String, i64)>> {
    let value: Value = lenient::from_str(text).ok()?;
    let lines: Vec<&Value> = match &value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        _ => return None,
    };
    lines
        .into_iter()
        .map(|line| {
            let sku = ["id", "ITEM_ID", "item_id"]
                .iter()
                .find_map(|k| line.get(*k).and_then(lenient::value_to_id))?;
            let qty = ["quantity", "COUNT", "count"]
                .iter()
                .find_map(|k| line.get(*k).and_then(lenient::value_to_f64))?;
            Some((sku, qty.round() as i64))
        })
        .collect()
}

/// The view a journaled order state gives.
pub(super) fn view_from_state(state: &OrderState, kind: WmsKind) -> WmsView {
    let cancelled = match kind {
        WmsKind::Imsklad => IMSKLAD_CANCELLED,
        WmsKind::Egon => EGON_CANCELLED,
    };
    // IMSKLAD reports a cancellation by `update_order is_canceled=1` as well as
    // by status 10; it only counts while the order is still in the warehouse.
    let left_warehouse = state.wms_status.is_some_and(|s| s >= 9);
    let status = match state.wms_status {
        _ if state.is_canceled && kind == WmsKind::Imsklad && !left_warehouse => cancelled,
        Some(s) => s,
        None if state.is_canceled => cancelled,
        None => 0,
    };
    WmsView {
        wms_order_id: state.wms_order_id.clone(),
        status,
        track: state.track.clone(),
        last_change_at: state.status_at.unwrap_or(state.updated_at),
        seen_at: state.updated_at,
        goods: state.goods.as_deref().and_then(parse_goods),
    }
}

/// Adds what sverka itself sent: orders it created (mapping and journal) the
/// callbacks have not reported yet, and cancellations the WMS accepted.
/// `created` gives the shop's creation time of the window's orders; orders
/// outside the window are left alone.
pub(super) fn overlay_sent(
    views: &mut BTreeMap<String, WmsView>,
    sent: &[Sent],
    mapped: &BTreeMap<String, String>,
    created: &BTreeMap<&str, i64>,
    kind: WmsKind,
    map: &StatusMap,
) {
    let (add, cancel, cancelled) = match kind {
        WmsKind::Imsklad => (
            JournalAction::ImskladAdd.as_str(),
            JournalAction::ImskladCancel.as_str(),
            IMSKLAD_CANCELLED,
        ),
        WmsKind::Egon => (
            JournalAction::EgonAdd.as_str(),
            JournalAction::EgonCancel.as_str(),
            EGON_CANCELLED,
        ),
    };
    let added_at: BTreeMap<&str, i64> = sent
        .iter()
        .filter(|s| s.action == add)
        .map(|s| (s.order_id.as_str(), s.at))
        .collect();
    let known: BTreeSet<&str> = mapped
        .keys()
        .map(String::as_str)
        .chain(added_at.keys().copied())
        .collect();
    for id in known {
        let Some(created_at) = created.get(id) else {
            continue;
        };
        if views.contains_key(id) {
            continue;
        }
        let at = added_at.get(id).copied().unwrap_or(*created_at);
        views.insert(
            id.to_owned(),
            WmsView {
                wms_order_id: mapped.get(id).cloned(),
                status: 0,
                track: None,
                last_change_at: at,
                seen_at: at,
                goods: None,
            },
        );
    }
    for s in sent.iter().filter(|s| s.action == cancel) {
        let Some(view) = views.get_mut(&s.order_id) else {
            continue;
        };
        let active = map.stage(kind, view.status).is_some_and(Stage::is_active);
        if active && s.at >= view.last_change_at {
            view.status = cancelled;
            view.last_change_at = s.at;
        }
    }
}

/// The WMS corrections of this job the WMS accepted (applied or partial), oldest first.
pub(super) async fn sent_to_wms(db: &Db) -> Result<Vec<Sent>, DbError> {
    let rows = db
        .fetch_all(
            "SELECT item_key, action, updated_at FROM corrections \
             WHERE job = ? AND target = ? AND status IN ('applied', 'partial') ORDER BY id",
            &[JOB.into(), Target::Wms.as_str().into()],
            "reading the orders job's WMS corrections",
        )
        .await?;
    rows.iter()
        .map(|r| {
            let corrupt = |e: sqlx::Error| DbError::Corrupt(format!("corrections row: {e}"));
            Ok(Sent {
                order_id: crate::db::text(r, "item_key").map_err(corrupt)?,
                action: crate::db::text(r, "action").map_err(corrupt)?,
                at: crate::db::int(r, "updated_at").map_err(corrupt)?,
            })
        })
        .collect()
}

/// An EGON client with `[orders] egon_shop_setting_id` for `StornoOrder`.
pub(super) fn egon_client(ctx: &Context) -> Result<EgonClient> {
    let c = &ctx.config.egon;
    let mut cfg = EgonConfig::new(
        c.url.clone(),
        c.auth_id.clone(),
        c.auth_key.clone(),
        c.auth_token.clone(),
    );
    cfg.shop_setting_id = ctx.config.orders.egon_shop_setting_id;
    cfg.policy = ctx.http.clone();
    EgonClient::new(cfg)
        .map(|client| ctx.share_egon_limit(client))
        .context("configuring the EGON client")
}

/// The view a `GetOrderStatus` answer gives.
pub(super) fn view_from_poll(status: &egon::OrderStatus, now: i64, tz: chrono_tz::Tz) -> WmsView {
    let changed = status
        .change_timestamp
        .and_then(|t| tz.from_local_datetime(&t).earliest())
        .map(|t| t.timestamp_millis())
        .unwrap_or(now);
    WmsView {
        wms_order_id: status.order_id.map(|id| id.to_string()),
        status: status.status_id,
        track: status.tracks().first().map(|t| (*t).to_owned()),
        last_change_at: changed,
        seen_at: now,
        goods: Some(
            status
                .order_items
                .iter()
                .map(|i| (i.item_id.clone(), i.count))
                .collect(),
        ),
    }
}

/// Whether an EGON order's journal state needs a `GetOrderStatus`.
pub(super) fn needs_poll(
    state: Option<&OrderState>,
    shop: &ShopOrder,
    now: i64,
    stale_hours: i64,
) -> bool {
    match state {
        None => shop.paid || shop.cancelled,
        Some(s) => {
            let is_final = s.wms_status.is_some_and(|st| EGON_FINAL.contains(&st));
            !is_final && now.saturating_sub(s.updated_at) > stale_hours.saturating_mul(HOUR_MS)
        }
    }
}

pub(super) async fn read_wms(
    ctx: &Context,
    map: &StatusMap,
    shop_orders: &[ShopOrder],
    now: i64,
) -> Result<WmsSide> {
    let kind = ctx.config.wms.kind;
    let source = match kind {
        WmsKind::Imsklad => SOURCE_IMSKLAD,
        WmsKind::Egon => SOURCE_EGON,
    };
    let states: BTreeMap<String, OrderState> = events::order_states(&ctx.state)
        .await
        .context("reading the order states of the callback journal")?
        .into_iter()
        .filter(|s| s.source == source)
        .map(|s| (s.order_id.clone(), s))
        .collect();
    let mut side = WmsSide::default();
    for (id, state) in &states {
        side.views.insert(id.clone(), view_from_state(state, kind));
    }
    if kind == WmsKind::Egon {
        let client = egon_client(ctx)?;
        let bar = Progress::counter("EGON GetOrderStatus", shop_orders.len() as u64, "orders");
        for order in shop_orders {
            bar.inc(1);
            if ctx.stop.is_stopped() {
                break;
            }
            let state = states.get(&order.id);
            if !needs_poll(state, order, now, ctx.config.orders.stale_hours) {
                continue;
            }
            side.polled += 1;
            match client
                .get_order_status(OrderRef::Original(order.id.clone()))
                .await
            {
                Ok(status) => {
                    side.views.insert(
                        order.id.clone(),
                        view_from_poll(&status, now, ctx.config.egon.tz()),
                    );
                }
                Err(EgonError::NotFound { .. }) => {}
                Err(e) => {
                    let e = crate::errors::chain(&e);
                    tracing::warn!(order = %order.id, "EGON GetOrderStatus failed: {e}");
                    if state.is_none() {
                        side.unknown
                            .insert(order.id.clone(), format!("GetOrderStatus failed: {e}"));
                    }
                }
            }
        }
    }
    let sent = sent_to_wms(&ctx.state).await?;
    let mapped = mapping::all(&ctx.state, MapKind::Order).await?;
    let created: BTreeMap<&str, i64> = shop_orders
        .iter()
        .map(|o| (o.id.as_str(), o.created_at))
        .collect();
    overlay_sent(&mut side.views, &sent, &mapped, &created, kind, map);
    Ok(side)
}
