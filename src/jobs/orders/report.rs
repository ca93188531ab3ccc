//! Report rows and cells: each discrepancy's class and fate.

use super::*;

pub(super) fn class_static(name: &str) -> &'static str {
    [
        class::MISSING_IN_WMS,
        class::SHIPPED_NOT_MARKED_IN_CRM,
        class::TRACK_MISSING_IN_CRM,
        class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS,
        class::CANCELLED_AFTER_SHIPMENT,
        class::CANCELLED_IN_WMS_ACTIVE_IN_SHOP,
        class::STATUS_MISMATCH,
        class::MISSING_IN_CRM,
        class::MISSING_IN_SHOP,
        class::GOODS_MISMATCH,
        class::AMOUNT_MISMATCH,
        class::STUCK,
    ]
    .into_iter()
    .find(|c| *c == name)
    .unwrap_or(class::OK)
}

pub(super) fn extra_row(order_id: &str, class_name: &str, wms_status: Option<String>) -> Row {
    Row {
        order_id: order_id.to_owned(),
        wms_order_id: None,
        shop_status: None,
        wms_status,
        wms_stage: None,
        crm_status: None,
        crm_shipped: None,
        track_wms: None,
        track_crm: None,
        class: class_name.to_owned(),
        note: None,
    }
}

pub(super) fn cells(row: &Row, fate: &Fate) -> Vec<Cell> {
    let note = match (row.note.as_deref(), fate.note.as_str()) {
        (Some(n), "") => n.to_owned(),
        (Some(n), f) => format!("{n}; {f}"),
        (None, f) => f.to_owned(),
    };
    vec![
        Cell::Text(row.order_id.clone()),
        row.wms_order_id.clone().into(),
        row.shop_status.clone().into(),
        row.wms_status.clone().into(),
        row.wms_stage.clone().into(),
        row.crm_status.clone().into(),
        row.crm_shipped.map(|b| b.to_string()).into(),
        row.track_wms.clone().into(),
        row.track_crm.clone().into(),
        Cell::Text(row.class.clone()),
        Cell::Text(fate.action.into()),
        Cell::Text(fate.result.clone()),
        Cell::Text(note),
    ]
}

/// Records every planned correction as not sent (`guarded` or `dry-run`).
pub(super) fn mark_unsent(plan: &OrdersPlan, result: &str, fates: &mut Fates) {
    for m in &plan.crm_ship_marks {
        let fate = Fate::new(action::CRM_SHIP_MARK, result, "");
        for_ship_mark(
            fates,
            &m.order_id,
            m.track.is_some(),
            m.status.is_some(),
            &fate,
        );
    }
    for t in &plan.crm_tracks {
        fates.insert(
            (t.order_id.clone(), class::TRACK_MISSING_IN_CRM),
            Fate::new(action::CRM_TRACK, result, format!("track {}", t.track)),
        );
    }
    for id in &plan.wms_adds {
        fates.insert(
            (id.clone(), class::MISSING_IN_WMS),
            Fate::new("wms_add", result, ""),
        );
    }
    for id in &plan.wms_cancels {
        fates.insert(
            (id.clone(), class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS),
            Fate::new("wms_cancel", result, ""),
        );
    }
}

/// A shipped mark also settles the order's track and status rows when it carries them.
pub(super) fn for_ship_mark(fates: &mut Fates, id: &str, track: bool, status: bool, fate: &Fate) {
    fates.insert(
        (id.to_owned(), class::SHIPPED_NOT_MARKED_IN_CRM),
        fate.clone(),
    );
    if track {
        fates.insert((id.to_owned(), class::TRACK_MISSING_IN_CRM), fate.clone());
    }
    if status {
        fates.insert((id.to_owned(), class::STATUS_MISMATCH), fate.clone());
    }
}
