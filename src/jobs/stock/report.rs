//! Report rows and cells: each discrepancy's class, note and fate.

use super::*;

pub(super) fn class_static(name: &str) -> &'static str {
    class::ALL
        .iter()
        .copied()
        .find(|c| *c == name)
        .unwrap_or(class::OK)
}

pub(super) fn note_for(class_name: &str) -> String {
    match class_name {
        class::MISSING_IN_CRM => "the CRM has no offer for this SKU".into(),
        class::MISSING_IN_SHOP => "the WMS holds stock of a SKU the shop does not sell".into(),
        class::RESERVED_EXCEEDS_STOCK => "the WMS reserves more than it holds".into(),
        class::MISSING_IN_WMS => "the WMS does not know this SKU".into(),
        _ => String::new(),
    }
}

/// A report line with only its SKU (the other twelve columns filled by the caller).
pub(super) fn empty_cells(sku: &str) -> Vec<Cell> {
    let mut cells = vec![Cell::Empty; 12];
    cells[0] = Cell::Text(sku.to_string());
    cells
}

/// The classified frame as plain columns, for the report.
pub(in crate::jobs) struct ClassifiedRows {
    pub(super) sku: Vec<String>,
    pub(super) wms_id: Vec<Option<i64>>,
    pub(super) crm_offer_id: Vec<Option<i64>>,
    pub(super) wms_stock: Vec<Option<i64>>,
    pub(super) wms_reserved: Vec<Option<i64>>,
    pub(in crate::jobs) wms_sellable: Vec<Option<i64>>,
    pub(in crate::jobs) crm_quantity: Vec<Option<i64>>,
    pub(super) shop_quantity: Vec<Option<i64>>,
    pub(super) class: Vec<String>,
}

impl ClassifiedRows {
    pub(super) fn read(df: &DataFrame) -> Result<Self> {
        let input = Input::new(df, "classified_stock");
        Ok(ClassifiedRows {
            sku: input
                .strings(col::SKU)?
                .into_iter()
                .map(str::to_string)
                .collect(),
            wms_id: input.opt_ints(col::WMS_ID)?,
            crm_offer_id: input.opt_ints(col::CRM_OFFER_ID)?,
            wms_stock: input.opt_ints(col::WMS_STOCK)?,
            wms_reserved: input.opt_ints(col::WMS_RESERVED)?,
            wms_sellable: input.opt_ints(col::WMS_SELLABLE)?,
            crm_quantity: input.opt_ints(col::CRM_QUANTITY)?,
            shop_quantity: input.opt_ints(col::SHOP_QUANTITY)?,
            class: input
                .strings(col::CLASS)?
                .into_iter()
                .map(str::to_string)
                .collect(),
        })
    }

    pub(super) fn len(&self) -> usize {
        self.sku.len()
    }

    pub(super) fn distinct_skus(&self) -> usize {
        // Sorted by (sku, class), so equal SKUs are adjacent.
        self.sku.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!self.sku.is_empty())
    }

    pub(in crate::jobs) fn find(&self, sku: &str) -> Option<usize> {
        self.sku.binary_search_by(|s| s.as_str().cmp(sku)).ok()
    }

    pub(super) fn cells(&self, i: usize, fate: &Fate) -> Vec<Cell> {
        vec![
            Cell::Text(self.sku[i].clone()),
            self.wms_id[i].into(),
            self.crm_offer_id[i].into(),
            self.wms_stock[i].into(),
            self.wms_reserved[i].into(),
            self.wms_sellable[i].into(),
            self.crm_quantity[i].into(),
            self.shop_quantity[i].into(),
            Cell::Text(self.class[i].clone()),
            Cell::Text(fate.action.into()),
            Cell::Text(fate.result.clone()),
            Cell::Text(fate.note.clone()),
        ]
    }
}
