//! Polars frames of the shop, WMS and CRM sides, and reading the classified rows back.

use super::*;

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// The WMS orders that belong in this run: the window's, plus active orders
/// the shop does not list that the WMS touched within the window.
pub(super) fn wms_in_scope<'a>(
    side: &'a WmsSide,
    shop_ids: &BTreeSet<&str>,
    map: &StatusMap,
    kind: WmsKind,
    window: (i64, i64),
) -> Vec<(&'a str, &'a WmsView, Stage)> {
    side.views
        .iter()
        .filter_map(|(id, v)| {
            let stage = map.stage(kind, v.status)?;
            let in_shop = shop_ids.contains(id.as_str());
            let recent_active = stage.is_active() && v.seen_at >= window.0 && v.seen_at < window.1;
            (in_shop || recent_active).then_some((id.as_str(), v, stage))
        })
        .collect()
}

pub(super) fn shop_frame(orders: &[ShopOrder]) -> PolarsResult<DataFrame> {
    df!(
        "order_id" => orders.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        "shop_status" => orders.iter().map(|o| o.status.as_str()).collect::<Vec<_>>(),
        "cancelled" => orders.iter().map(|o| o.cancelled).collect::<Vec<_>>(),
        "needs_fulfilment" => orders.iter().map(|o| o.paid).collect::<Vec<_>>(),
        "created_at" => orders.iter().map(|o| o.created_at).collect::<Vec<_>>(),
        "total_kop" => orders.iter().map(|o| o.total_kop).collect::<Vec<_>>(),
    )
}

pub(super) fn items_frame<'a>(
    lines: impl Iterator<Item = (&'a str, &'a str, i64)>,
) -> PolarsResult<DataFrame> {
    let (mut ids, mut skus, mut qty) = (Vec::new(), Vec::new(), Vec::new());
    for (id, sku, q) in lines {
        ids.push(id);
        skus.push(sku);
        qty.push(q);
    }
    df!("order_id" => ids, "sku" => skus, "quantity" => qty)
}

pub(super) fn wms_frame(scope: &[(&str, &WmsView, Stage)]) -> PolarsResult<DataFrame> {
    df!(
        "order_id" => scope.iter().map(|s| s.0).collect::<Vec<_>>(),
        "wms_order_id" => scope.iter().map(|s| s.1.wms_order_id.as_deref()).collect::<Vec<_>>(),
        "wms_status" => scope.iter().map(|s| s.1.status.to_string()).collect::<Vec<_>>(),
        "wms_stage" => scope.iter().map(|s| s.2.as_str()).collect::<Vec<_>>(),
        "track" => scope.iter().map(|s| s.1.track.as_deref()).collect::<Vec<_>>(),
        "last_change_at" => scope.iter().map(|s| s.1.last_change_at).collect::<Vec<_>>(),
        "total_kop" => scope.iter().map(|_| None::<i64>).collect::<Vec<_>>(),
    )
}

pub(super) fn crm_frame(orders: &[&CrmOrder]) -> PolarsResult<DataFrame> {
    df!(
        "order_id" => orders.iter().map(|o| o.external_id.as_deref().unwrap_or_default()).collect::<Vec<_>>(),
        "crm_status" => orders.iter().map(|o| o.status.as_deref().unwrap_or_default()).collect::<Vec<_>>(),
        "crm_shipped" => orders.iter().map(|o| o.shipped).collect::<Vec<_>>(),
        "track" => orders.iter().map(|o| o.track_number.as_deref()).collect::<Vec<_>>(),
        "total_kop" => orders.iter().map(|o| o.total_summ_kop).collect::<Vec<_>>(),
    )
}

/// CRM orders by external id; a repeated external id keeps the first order.
pub(super) fn crm_by_external_id(orders: &[CrmOrder]) -> BTreeMap<&str, &CrmOrder> {
    let mut out = BTreeMap::new();
    for o in orders {
        let Some(id) = o.external_id.as_deref() else {
            continue;
        };
        if out.contains_key(id) {
            tracing::warn!(
                order = id,
                crm_id = o.id,
                "the CRM holds this external id twice; comparing the first"
            );
            continue;
        }
        out.insert(id, o);
    }
    out
}

/// One classified row, for the report.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) order_id: String,
    pub(super) wms_order_id: Option<String>,
    pub(super) shop_status: Option<String>,
    pub(super) wms_status: Option<String>,
    pub(super) wms_stage: Option<String>,
    pub(super) crm_status: Option<String>,
    pub(super) crm_shipped: Option<bool>,
    pub(super) track_wms: Option<String>,
    pub(super) track_crm: Option<String>,
    pub(super) class: String,
    pub(super) note: Option<String>,
}

pub(super) fn read_rows(df: &DataFrame) -> Result<Vec<Row>> {
    let input = Input::new(df, "classified_orders");
    let owned = |v: Vec<Option<&str>>| {
        v.into_iter()
            .map(|s| s.map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let ids = input.strings("order_id")?;
    let wms_ids = owned(input.opt_strings("wms_order_id")?);
    let shop_status = owned(input.opt_strings("shop_status")?);
    let wms_status = owned(input.opt_strings("wms_status")?);
    let wms_stage = owned(input.opt_strings("wms_stage")?);
    let crm_status = owned(input.opt_strings("crm_status")?);
    let crm_shipped = input.opt_bools("crm_shipped")?;
    let track_wms = owned(input.opt_strings("track_wms")?);
    let track_crm = owned(input.opt_strings("track_crm")?);
    let classes = input.strings("class")?;
    let notes = owned(input.opt_strings("note")?);
    Ok((0..ids.len())
        .map(|i| Row {
            order_id: ids[i].to_owned(),
            wms_order_id: wms_ids[i].clone(),
            shop_status: shop_status[i].clone(),
            wms_status: wms_status[i].clone(),
            wms_stage: wms_stage[i].clone(),
            crm_status: crm_status[i].clone(),
            crm_shipped: crm_shipped[i],
            track_wms: track_wms[i].clone(),
            track_crm: track_crm[i].clone(),
            class: classes[i].to_owned(),
            note: notes[i].clone(),
        })
        .collect())
}
