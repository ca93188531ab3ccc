//! WMS corrections: adding and cancelling orders in IMSKLAD or EGON.

use super::*;

// ---------------------------------------------------------------------------
// WMS corrections
// ---------------------------------------------------------------------------

/// The shop's orders and items by order id.
pub(super) struct ShopData<'a> {
    pub(super) orders: &'a BTreeMap<&'a str, &'a ShopOrder>,
    pub(super) items: &'a BTreeMap<&'a str, Vec<&'a ShopOrderItem>>,
}

/// EGON's address fields, split from the shop's one-line address.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct AddressParts {
    pub(super) postal_code: String,
    pub(super) city: String,
    pub(super) street: String,
    pub(super) number: String,
}

/// Splits a one-line address `postal code, city, street, house` (each part
/// optional, in that order; `д.`/`дом` before the house number is dropped).
/// Parts that cannot be found stay empty, and EGON refuses the order naming them.
pub(super) fn split_address(address: &str) -> AddressParts {
    let mut parts: Vec<&str> = address
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let mut out = AddressParts::default();
    if parts
        .first()
        .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
    {
        out.postal_code = parts.remove(0).to_owned();
    }
    let house = |p: &str| {
        let p = p.trim();
        let p = p
            .strip_prefix("д.")
            .or_else(|| p.strip_prefix("дом"))
            .unwrap_or(p);
        p.trim().to_owned()
    };
    match parts.as_slice() {
        [] => {}
        [street] => out.street = (*street).to_owned(),
        [city, street] => {
            out.city = (*city).to_owned();
            match street.rsplit_once(' ') {
                Some((name, number)) if number.chars().any(|c| c.is_ascii_digit()) => {
                    out.street = name.trim().to_owned();
                    out.number = house(number);
                }
                _ => out.street = (*street).to_owned(),
            }
        }
        [city, middle @ .., last] => {
            out.city = (*city).to_owned();
            if last.chars().any(|c| c.is_ascii_digit()) {
                out.street = middle.join(", ");
                out.number = house(last);
            } else {
                out.street = middle
                    .iter()
                    .chain([last])
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
            }
        }
    }
    out
}

/// The EGON order for a shop order and its lines.
pub(super) fn egon_order(
    order: &ShopOrder,
    items: &[&ShopOrderItem],
    shop_setting_id: i64,
    delivery_id: i64,
) -> NewOrder {
    let name = order.customer_name.trim();
    let (first, last) = name.split_once(' ').unwrap_or((name, ""));
    let phone = order.phone.clone().unwrap_or_default();
    let email = order.email.clone().unwrap_or_default();
    let address = split_address(order.address.as_deref().unwrap_or_default());
    NewOrder {
        original_order_id: order.id.clone(),
        shop_setting_id,
        reference_number: Some(order.id.clone()),
        customer_name: first.to_owned(),
        customer_surname: last.trim().to_owned(),
        customer_phone: phone.clone(),
        customer_email: email.clone(),
        name: first.to_owned(),
        surname: last.trim().to_owned(),
        phone,
        email,
        street: address.street,
        street_number: address.number,
        city: address.city,
        country: "RU".into(),
        postal_code: address.postal_code,
        id_delivery: delivery_id,
        delivery_branch_id: None,
        payment_cod: !order.paid,
        cod_price_kop: (!order.paid).then_some(order.total_kop),
        currency: Some("RUB".into()),
        note: None,
        items: items
            .iter()
            .map(|i| egon::NewOrderItem {
                item_id: i.sku.clone(),
                name: i.name.clone().unwrap_or_else(|| i.sku.clone()),
                count: i.quantity,
                catalog_id: None,
                price_with_tax_kop: Some(i.price_kop),
            })
            .collect(),
    }
}

/// The SKU → WMS goods id mapping when order lines carry WMS ids
/// (`[imsklad] order_goods_id = "wms"`), else nothing.
pub(super) async fn line_id_map(ctx: &Context) -> Result<Option<BTreeMap<String, String>>> {
    Ok(match ctx.config.imsklad.order_goods_id {
        crate::config::OrderGoodsId::Partner => None,
        crate::config::OrderGoodsId::Wms => Some(mapping::all(&ctx.state, MapKind::Good).await?),
    })
}

pub(super) fn line_ids(map: &Option<BTreeMap<String, String>>) -> op::LineIds<'_> {
    match map {
        Some(m) => op::LineIds::Wms(m),
        None => op::LineIds::Partner,
    }
}

/// Journals a WMS correction as planned.
pub(super) async fn plan_wms(
    ctx: &Context,
    run_id: i64,
    action_name: &str,
    id: &str,
    payload: &Value,
) -> Result<i64> {
    Ok(ctx
        .writer()
        .plan(&Planned {
            run_id,
            job: JOB,
            target: Target::Wms,
            action: action_name,
            item_key: id,
            payload,
        })
        .await?)
}

/// Settles an IMSKLAD write: `ok` applied, `warning` partial, error failed.
pub(super) async fn settle_imsklad(
    ctx: &Context,
    journal_id: i64,
    answer: &Result<WriteOutcome, crate::connectors::imsklad::ImskladError>,
    corrections: &mut CorrectionCounts,
) -> Result<(&'static str, String)> {
    Ok(match answer {
        Ok(WriteOutcome::Ok { id }) => {
            ctx.writer()
                .settle(
                    journal_id,
                    CorrectionStatus::Applied,
                    &json!({"result": "ok", "id": id}).to_string(),
                )
                .await?;
            corrections.applied += 1;
            (
                "applied",
                id.map(|i| format!("WMS order id {i}")).unwrap_or_default(),
            )
        }
        Ok(WriteOutcome::Warning { id, warning }) => {
            let answer = json!({"result": "warning", "warning": warning, "id": id}).to_string();
            ctx.writer()
                .settle(journal_id, CorrectionStatus::Partial, &answer)
                .await?;
            corrections.partial += 1;
            ("partial", format!("IMSKLAD warning: {warning}"))
        }
        Err(e) => {
            let idempotent = e
                .action()
                .is_none_or(crate::connectors::imsklad::is_idempotent);
            let (status, outcome) = super::super::failed_write(idempotent, e.is_ambiguous());
            let mut text = e.to_string();
            if status == CorrectionStatus::Unknown {
                text.push_str(
                    "; it may have been applied: not re-sent in this run, the next run's read tells",
                );
            }
            ctx.writer().settle(journal_id, status, &text).await?;
            super::super::count_failure(corrections, status);
            (outcome.as_str(), text)
        }
    })
}

/// The warehouse sverka writes to this run.
pub(super) enum WmsClient {
    /// IMSKLAD.
    Imsklad(crate::connectors::imsklad::ImskladClient),
    /// EGON.
    Egon(EgonClient),
}

pub(super) async fn apply_wms(
    ctx: &Context,
    run_id: i64,
    plan: &OrdersPlan,
    shop: &ShopData<'_>,
    fates: &mut Fates,
    corrections: &mut CorrectionCounts,
    notes: &mut Vec<op::Note>,
) -> Result<()> {
    if plan.wms_adds.is_empty() && plan.wms_cancels.is_empty() {
        return Ok(());
    }
    let client = match ctx.config.wms.kind {
        WmsKind::Imsklad => WmsClient::Imsklad(ctx.imsklad()?),
        WmsKind::Egon => WmsClient::Egon(egon_client(ctx)?),
    };
    let bar = Progress::counter(
        "WMS order writes",
        (plan.wms_adds.len() + plan.wms_cancels.len()) as u64,
        "orders",
    );
    for id in &plan.wms_adds {
        bar.inc(1);
        let fate = add_one(ctx, &client, run_id, id, shop, corrections).await?;
        fates.insert((id.clone(), class::MISSING_IN_WMS), fate);
    }
    for id in &plan.wms_cancels {
        bar.inc(1);
        let fate = cancel_one(ctx, &client, run_id, id, shop, corrections, notes).await?;
        fates.insert((id.clone(), class::CANCELLED_IN_SHOP_ACTIVE_IN_WMS), fate);
    }
    Ok(())
}

pub(super) async fn add_one(
    ctx: &Context,
    client: &WmsClient,
    run_id: i64,
    id: &str,
    shop: &ShopData<'_>,
    corrections: &mut CorrectionCounts,
) -> Result<Fate> {
    const ACT: &str = "wms_add";
    if ctx.stop.is_stopped() {
        return Ok(Fate::new(
            ACT,
            "skipped",
            "stop requested; the next run retries",
        ));
    }
    let (Some(order), Some(items)) = (shop.orders.get(id), shop.items.get(id)) else {
        return Ok(Fate::new(
            "report",
            "",
            "the shop lists no items for this order; not sent",
        ));
    };
    match client {
        WmsClient::Imsklad(imsklad) => {
            let goods_ids = line_id_map(ctx).await?;
            let o = match op::imsklad_order(order, items, line_ids(&goods_ids)) {
                Ok(o) => o,
                Err(why) => return Ok(Fate::new("report", "", format!("not sent: {why}"))),
            };
            let payload = serde_json::to_value(&o).unwrap_or_default();
            let jid = plan_wms(ctx, run_id, action::IMSKLAD_ADD, id, &payload).await?;
            let answer = imsklad.add_order(&o).await;
            if let Some(wms_id) = answer.as_ref().ok().and_then(WriteOutcome::id) {
                mapping::put(&ctx.state, MapKind::Order, id, &wms_id.to_string()).await?;
            }
            if answer.is_ok() {
                op::remember_sent(&ctx.state, &o).await?;
            }
            let (result, note) = settle_imsklad(ctx, jid, &answer, corrections).await?;
            Ok(Fate::new(ACT, result, note))
        }
        WmsClient::Egon(egon_api) => {
            let (Some(setting), Some(delivery)) = (
                ctx.config.orders.egon_shop_setting_id,
                ctx.config.orders.egon_delivery_id,
            ) else {
                return Ok(Fate::new(
                    "report",
                    "",
                    "set [orders] egon_shop_setting_id and egon_delivery_id to send it to EGON",
                ));
            };
            let o = egon_order(order, items, setting, delivery);
            let problems = op::create_order_problems(&o);
            if !problems.is_empty() {
                return Ok(Fate::new(
                    "report",
                    "",
                    format!(
                        "not sent: EGON would refuse CreateNewOrder with 301: {}",
                        problems.join("; ")
                    ),
                ));
            }
            let payload = serde_json::to_value(&o).unwrap_or_default();
            let jid = plan_wms(ctx, run_id, action::EGON_ADD, id, &payload).await?;
            match egon_api.create_new_order(&o).await {
                Ok(created) => {
                    mapping::put(
                        &ctx.state,
                        MapKind::Order,
                        id,
                        &created.order_id.to_string(),
                    )
                    .await?;
                    let answer = json!({"order_id": created.order_id, "created": created.created});
                    ctx.writer()
                        .settle(jid, CorrectionStatus::Applied, &answer.to_string())
                        .await?;
                    corrections.applied += 1;
                    Ok(Fate::new(
                        ACT,
                        "applied",
                        format!("EGON order id {}", created.order_id),
                    ))
                }
                Err(e) => {
                    let text = e.to_string();
                    ctx.writer()
                        .settle(jid, CorrectionStatus::Failed, &text)
                        .await?;
                    corrections.failed += 1;
                    Ok(Fate::new(ACT, "failed", text))
                }
            }
        }
    }
}

pub(super) async fn cancel_one(
    ctx: &Context,
    client: &WmsClient,
    run_id: i64,
    id: &str,
    shop: &ShopData<'_>,
    corrections: &mut CorrectionCounts,
    notes: &mut Vec<op::Note>,
) -> Result<Fate> {
    const ACT: &str = "wms_cancel";
    if ctx.stop.is_stopped() {
        return Ok(Fate::new(
            ACT,
            "skipped",
            "stop requested; the next run retries",
        ));
    }
    match client {
        WmsClient::Imsklad(imsklad) => {
            let goods_ids = line_id_map(ctx).await?;
            let from_shop = || {
                let order = shop
                    .orders
                    .get(id)
                    .ok_or_else(|| "not in the shop's window; not cancelled".to_owned())?;
                let items = shop.items.get(id).map(Vec::as_slice).unwrap_or_default();
                op::imsklad_order(order, items, line_ids(&goods_ids))
            };
            let (o, full) = match op::cancellation(&ctx.state, id, from_shop).await? {
                Ok(found) => found,
                Err(why) => return Ok(Fate::new("report", "", why)),
            };
            if !full {
                notes.push(op::Note {
                    order_id: id.to_owned(),
                    class: op::CLASS_PARTIAL_ORDER_DATA,
                    note: format!(
                        "sverka holds no full copy of the order as the WMS has it; the cancellation went out with the shop's data (discount {}, {} goods lines)",
                        o.discount_kop as f64 / 100.0,
                        o.goods.len()
                    ),
                });
            }
            let payload = serde_json::to_value(&o).unwrap_or_default();
            let jid = plan_wms(ctx, run_id, action::IMSKLAD_CANCEL, id, &payload).await?;
            let answer = imsklad.update_order(&o).await;
            if answer.is_ok() {
                op::remember_sent(&ctx.state, &o).await?;
            }
            let (result, note) = settle_imsklad(ctx, jid, &answer, corrections).await?;
            Ok(Fate::new(ACT, result, note))
        }
        WmsClient::Egon(egon_api) => {
            let payload = json!({"original_order_id": id});
            let jid = plan_wms(ctx, run_id, action::EGON_CANCEL, id, &payload).await?;
            match egon_api
                .storno_order(OrderRef::Original(id.to_owned()))
                .await
            {
                Ok(()) => {
                    ctx.writer()
                        .settle(jid, CorrectionStatus::Applied, "{}")
                        .await?;
                    corrections.applied += 1;
                    Ok(Fate::new(ACT, "applied", ""))
                }
                Err(e) => {
                    let text = e.to_string();
                    ctx.writer()
                        .settle(jid, CorrectionStatus::Failed, &text)
                        .await?;
                    corrections.failed += 1;
                    Ok(Fate::new(ACT, "failed", text))
                }
            }
        }
    }
}
