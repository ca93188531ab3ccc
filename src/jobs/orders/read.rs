//! The read phase: every source the run compares or writes from, read before
//! its first write.

use super::*;

/// Everything the run read.
pub(super) struct Sources {
    /// The shop's orders in the window.
    pub(super) shop_orders: Vec<ShopOrder>,
    /// Their items.
    pub(super) shop_items: Vec<ShopOrderItem>,
    /// The WMS side of the window's orders.
    pub(super) wms: WmsSide,
    /// Carrier exports IMSKLAD asked for (sverka does none) and export failures.
    pub(super) carrier_notes: Vec<op::Note>,
    /// The CRM client the orders were read with (and the edits go out with).
    pub(super) crm: RetailCrmClient,
    /// The CRM's orders by the window's external ids.
    pub(super) crm_orders: Vec<CrmOrder>,
    /// SKU → WMS goods id, when IMSKLAD order lines carry WMS ids.
    pub(super) goods_ids: Option<BTreeMap<String, String>>,
    /// The stored full copies (IMSKLAD) of the orders the shop cancelled:
    /// what a cancellation re-sends.
    pub(super) documents: BTreeMap<String, String>,
}

impl Sources {
    /// The shop's order ids.
    pub(super) fn shop_ids(&self) -> BTreeSet<&str> {
        self.shop_orders.iter().map(|o| o.id.as_str()).collect()
    }
}

/// Reads the shop, the WMS, the CRM and sverka's stored state for the window.
pub(super) async fn read_sources(
    ctx: &Context,
    map: &StatusMap,
    window: (i64, i64),
    now: i64,
) -> Result<Sources> {
    let kind = ctx.config.wms.kind;
    let (shop_orders, shop_items) = ctx
        .shop
        .orders_and_items(window.0, window.1)
        .await
        .context("reading shop orders and their items")?;
    let wms = read_wms(ctx, map, &shop_orders, now).await?;
    let carrier_notes = read_carrier_notes(ctx, &wms, window).await?;
    let ids = crm_ids(&shop_orders, &wms, map, kind, window);
    let crm = ctx.retailcrm()?;
    let crm_orders = crm
        .orders_by_external_ids(&ids)
        .await
        .context("reading CRM orders by externalIds")?;
    let (goods_ids, documents) = if kind == WmsKind::Imsklad {
        let cancelled: Vec<&str> = shop_orders
            .iter()
            .filter(|o| o.cancelled)
            .map(|o| o.id.as_str())
            .collect();
        let documents = op::stored_documents(&ctx.state, &cancelled)
            .await
            .context("reading the stored copies of the cancelled orders")?;
        (line_id_map(ctx).await?, documents)
    } else {
        (None, BTreeMap::new())
    };
    Ok(Sources {
        shop_orders,
        shop_items,
        wms,
        carrier_notes,
        crm,
        crm_orders,
        goods_ids,
        documents,
    })
}

/// Carrier exports IMSKLAD asked for (sverka does none) and export failures.
async fn read_carrier_notes(
    ctx: &Context,
    wms: &WmsSide,
    window: (i64, i64),
) -> Result<Vec<op::Note>> {
    if ctx.config.wms.kind != WmsKind::Imsklad {
        return Ok(Vec::new());
    }
    op::carrier_notes(
        &ctx.state,
        window.0,
        ctx.config.imsklad.carrier_export != crate::config::CarrierExport::Elsewhere,
        ctx.config.tz(),
        |id| wms.views.get(id).is_some_and(|v| v.track.is_some()),
    )
    .await
    .context("reading carrier export callbacks from the journal")
}

/// The external ids to read from the CRM: the shop's orders and the WMS
/// orders in scope.
fn crm_ids(
    shop_orders: &[ShopOrder],
    wms: &WmsSide,
    map: &StatusMap,
    kind: WmsKind,
    window: (i64, i64),
) -> Vec<String> {
    let shop_ids: BTreeSet<&str> = shop_orders.iter().map(|o| o.id.as_str()).collect();
    let scope = wms_in_scope(wms, &shop_ids, map, kind, window);
    shop_ids
        .iter()
        .copied()
        .chain(scope.iter().map(|s| s.0))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The SKU → WMS goods id mapping when order lines carry WMS ids
/// (`[imsklad] order_goods_id = "wms"`), else nothing.
async fn line_id_map(ctx: &Context) -> Result<Option<BTreeMap<String, String>>> {
    Ok(match ctx.config.imsklad.order_goods_id {
        crate::config::OrderGoodsId::Partner => None,
        crate::config::OrderGoodsId::Wms => Some(mapping::all(&ctx.state, MapKind::Good).await?),
    })
}
