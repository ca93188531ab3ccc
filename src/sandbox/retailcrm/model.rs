//! Seed and stored types of the RetailCRM sandbox account.

use super::*;

/// Store action codes the strict module check knows (the RetailCRM integration documentation names `inventoriesUpload`).
pub const KNOWN_STORE_ACTIONS: [&str; 1] = ["inventoriesUpload"];

/// Why a seeding call was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedError {
    /// No offer has this SKU as `externalId` or `xmlId`.
    #[error("sandbox RetailCRM: no offer with SKU {0:?}")]
    UnknownOffer(String),
    /// An order with this external id exists already.
    #[error("sandbox RetailCRM: order {0:?} exists already")]
    DuplicateOrder(String),
    /// The status code is not in the reference book.
    #[error("sandbox RetailCRM: unknown status {0:?}")]
    UnknownStatus(String),
    /// The module lacks `code`.
    #[error("sandbox RetailCRM: integration module without a code")]
    ModuleWithoutCode,
    /// No order has this external id.
    #[error("sandbox RetailCRM: no order {0:?}")]
    UnknownOrder(String),
}

/// A store of the reference book.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxStore {
    /// Store code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// `integer` or `available`.
    pub inventory_type: String,
    /// Whether it is in use.
    pub active: bool,
}

/// An order status of the reference book.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxStatus {
    /// Status code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Status group (`new`, `approval`, `assembling`, `delivery`, `complete`, `cancel`).
    pub group: String,
    /// Sort order.
    pub ordering: i64,
}

/// A sales offer with its stock per store.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxOffer {
    /// CRM offer id.
    pub id: i64,
    /// The product it belongs to.
    pub product_id: i64,
    /// `externalId`.
    pub external_id: Option<String>,
    /// `xmlId`.
    pub xml_id: Option<String>,
    /// Name.
    pub name: String,
    /// Base price in kopecks.
    pub price_kop: i64,
    /// Purchase price in kopecks, when known (the offer's own).
    pub purchase_price_kop: Option<i64>,
    /// Purchase price per store code, kopecks (what uploads set).
    pub store_prices: BTreeMap<String, i64>,
    /// Quantity per store code.
    pub quantities: BTreeMap<String, f64>,
    /// Whether it is on sale.
    pub active: bool,
}

impl SandboxOffer {
    pub(super) fn total(&self) -> f64 {
        self.quantities.values().sum()
    }

    /// The purchase price in `store`: the store's own, else the offer's.
    pub(super) fn store_price(&self, store: &str) -> Option<i64> {
        self.store_prices
            .get(store)
            .copied()
            .or(self.purchase_price_kop)
    }
}

/// A catalogue product.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxProduct {
    /// Product id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Groups it belongs to.
    pub group_ids: Vec<i64>,
    /// Whether it is on sale.
    pub active: bool,
}

/// A product group.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxGroup {
    /// Group id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Parent group.
    pub parent_id: Option<i64>,
}

/// A line of a new order.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrderItem {
    /// Offer SKU (`externalId` or `xmlId`).
    pub sku: String,
    /// Quantity.
    pub quantity: f64,
    /// Unit price in kopecks.
    pub price_kop: i64,
}

/// What [`RetailCrmState::add_order`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    /// The shop order id.
    pub external_id: String,
    /// Status code.
    pub status: String,
    /// Lines.
    pub items: Vec<NewOrderItem>,
    /// Delivery type code.
    pub delivery_code: Option<String>,
    /// Delivery cost in kopecks.
    pub delivery_cost_kop: i64,
    /// Shipping store.
    pub shipment_store: Option<String>,
}

/// A line of a stored order.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxItem {
    /// Line id.
    pub id: i64,
    /// Offer id.
    pub offer_id: i64,
    /// Quantity.
    pub quantity: f64,
    /// Unit price in kopecks.
    pub price_kop: i64,
}

/// A stored order.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxOrder {
    /// CRM id.
    pub id: i64,
    /// The shop order id.
    pub external_id: String,
    /// Order number.
    pub number: String,
    /// Site code.
    pub site: String,
    /// Status code.
    pub status: String,
    /// Shipped from the warehouse.
    pub shipped: bool,
    /// Shipping store.
    pub shipment_store: Option<String>,
    /// Shipment date.
    pub shipment_date: Option<NaiveDate>,
    /// Lines.
    pub items: Vec<SandboxItem>,
    /// Delivery type code.
    pub delivery_code: Option<String>,
    /// Delivery cost in kopecks.
    pub delivery_cost_kop: i64,
    /// `delivery.data.trackNumber`.
    pub track_number: Option<String>,
    /// `Y-m-d H:i:s`.
    pub created_at: String,
}

impl SandboxOrder {
    /// Items plus delivery, in kopecks.
    pub fn total_kop(&self) -> i64 {
        let items: f64 = self
            .items
            .iter()
            .map(|i| i.price_kop as f64 * i.quantity)
            .sum();
        items.round() as i64 + self.delivery_cost_kop
    }
}

/// One order history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxHistory {
    /// Increasing id.
    pub id: i64,
    /// `Y-m-d H:i:s`.
    pub created_at: String,
    /// True for the creation entry.
    pub created: bool,
    /// Changed field (RetailCRM's snake_case names).
    pub field: String,
    /// Value before.
    pub old_value: Value,
    /// Value after.
    pub new_value: Value,
    /// CRM order id.
    pub order_id: i64,
}

/// Everything the sandbox account holds; seed and inspect it through the methods.
#[derive(Debug)]
pub struct RetailCrmState {
    /// Offers (by externalId or xmlId) deleted right before the next upload,
    /// to test `notFoundOffers` for offers that were read a moment earlier.
    pub vanish_on_upload: std::collections::BTreeSet<String>,
    /// Which reading of the undocumented behaviour the sandbox follows.
    pub strict: RetailCrmStrictness,
    pub(super) api_key: Secret,
    pub(super) site: String,
    pub(super) account_exists: bool,
    pub(super) rate: RateWindow,
    pub(super) stores: Vec<SandboxStore>,
    pub(super) statuses: Vec<SandboxStatus>,
    pub(super) products: Vec<SandboxProduct>,
    pub(super) offers: Vec<SandboxOffer>,
    /// Where each offer id, `externalId` and `xmlId` stands in `offers`, so an
    /// upload of 250 offers to a million-offer account is not 250 scans.
    pub(super) offer_index: OfferIndex,
    pub(super) groups: Vec<SandboxGroup>,
    pub(super) properties: Vec<(String, String)>,
    pub(super) orders: Vec<SandboxOrder>,
    pub(super) history: Vec<SandboxHistory>,
    pub(super) modules: BTreeMap<String, Value>,
    pub(super) next_id: i64,
}

/// The realistic default status set: (code, name, group).
pub(super) const DEFAULT_STATUSES: [(&str, &str, &str); 12] = [
    ("new", "Новый", "new"),
    ("availability-confirmed", "Наличие подтверждено", "approval"),
    ("client-confirmed", "Согласовано с клиентом", "approval"),
    ("prepayed", "Предоплата поступила", "approval"),
    ("assembling", "Комплектуется", "assembling"),
    ("assembling-complete", "Укомплектован", "assembling"),
    ("send-to-delivery", "Передан в доставку", "delivery"),
    ("delivering", "Доставляется", "delivery"),
    ("complete", "Выполнен", "complete"),
    ("cancel-other", "Отменен", "cancel"),
    ("no-call", "Недозвон", "cancel"),
    ("prices-did-not-suit", "Цена не устроила", "cancel"),
];
