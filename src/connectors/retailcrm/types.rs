//! RetailCRM wire types: configuration, answers and order shapes the client returns.

use super::*;

/// Which offer field carries the shop SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum OfferKey {
    /// `externalId` (the default).
    #[default]
    #[serde(rename = "externalId")]
    ExternalId,
    /// `xmlId`.
    #[serde(rename = "xmlId")]
    XmlId,
}

impl OfferKey {
    /// The JSON field name of this key.
    pub fn field(self) -> &'static str {
        match self {
            OfferKey::ExternalId => "externalId",
            OfferKey::XmlId => "xmlId",
        }
    }

    /// The inventory filter that selects offers by this key.
    pub fn inventory_filter(self) -> &'static str {
        match self {
            OfferKey::ExternalId => "filter[offerExternalId][]",
            OfferKey::XmlId => "filter[offerXmlId][]",
        }
    }
}

/// Connection settings for one RetailCRM account.
#[derive(Debug, Clone)]
pub struct RetailCrmConfig {
    /// Account base URL, e.g. `https://shop.retailcrm.ru`; the API lives at `{url}/api/v5`.
    pub url: String,
    /// The API key (sent as `X-API-KEY`).
    pub api_key: Secret,
    /// Site code, for multi-shop keys; sent as `site` and used as a filter.
    pub site: Option<String>,
    /// The store (warehouse) code whose quantities sverka reads and uploads.
    pub store: String,
    /// Which offer field is the shop SKU.
    pub offer_key: OfferKey,
    /// Client-side limit, requests per second (RetailCRM allows 10); 0 disables it.
    pub rate_per_sec: usize,
    /// Timeouts and retry bounds.
    pub policy: HttpPolicy,
}

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/// `pagination` of a list answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    /// Page size.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub limit: Option<i64>,
    /// Items in all pages.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub total_count: Option<i64>,
    /// This page, from 1.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub current_page: Option<i64>,
    /// Number of pages.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub total_page_count: Option<i64>,
}

/// One page of a list answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The answer's pagination block.
    pub pagination: Pagination,
}

/// One store's stock of an offer (`stores[]` of `GET /store/inventories?details=1`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreQuantity {
    /// Store code.
    #[serde(deserialize_with = "lenient::id")]
    pub store: String,
    /// Quantity (a float on the wire).
    #[serde(default, deserialize_with = "float_or_zero")]
    pub quantity: f64,
    /// Purchase price in kopecks.
    #[serde(default, rename = "purchasePrice", deserialize_with = "opt_money")]
    pub purchase_price_kop: Option<i64>,
}

/// One offer of `GET /store/inventories`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryOffer {
    /// CRM offer id.
    #[serde(deserialize_with = "lenient::int")]
    pub id: i64,
    /// `externalId`.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub external_id: Option<String>,
    /// `xmlId`.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub xml_id: Option<String>,
    /// Site code.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub site: Option<String>,
    /// Total quantity over all stores.
    #[serde(default, deserialize_with = "float_or_zero")]
    pub quantity: f64,
    /// Per-store breakdown (only with `details=1`).
    #[serde(default, deserialize_with = "lenient::list")]
    pub stores: Vec<StoreQuantity>,
}

impl InventoryOffer {
    /// The shop SKU under the configured key.
    pub fn sku(&self, key: OfferKey) -> Option<&str> {
        match key {
            OfferKey::ExternalId => self.external_id.as_deref(),
            OfferKey::XmlId => self.xml_id.as_deref(),
        }
    }

    /// The purchase price in `store` (kopecks), if the offer lists one there.
    pub fn store_purchase_kop(&self, store: &str) -> Option<i64> {
        self.stores
            .iter()
            .find(|s| s.store == store)
            .and_then(|s| s.purchase_price_kop)
    }

    /// The quantity held in `store`, if the offer lists that store.
    pub fn store_quantity(&self, store: &str) -> Option<f64> {
        self.stores
            .iter()
            .find(|s| s.store == store)
            .map(|s| s.quantity)
    }
}

/// A stock level to upload for one offer in the configured store.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferStock {
    /// The shop SKU (sent under the configured offer key).
    pub sku: String,
    /// Sellable quantity, 0 included; `None` leaves the CRM's quantity as it
    /// is (a cost-only fix, UNVERIFIED whether the CRM accepts that).
    pub available: Option<i64>,
    /// Purchase price in kopecks (sent as decimal roubles), when it is to be set.
    pub purchase_price_kop: Option<i64>,
}

/// The answer of one upload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UploadResult {
    /// `processedOffersCount`.
    pub processed: i64,
    /// SKUs the CRM does not know (`notFoundOffers`).
    pub not_found: Vec<String>,
}

/// The outcome of one chunk of [`RetailCrmClient::upload_inventories`].
#[derive(Debug)]
pub struct ChunkOutcome {
    /// Chunk number, from 0.
    pub index: usize,
    /// SKUs the chunk carried, in order.
    pub skus: Vec<String>,
    /// What the CRM answered.
    pub result: Result<UploadResult, RetailCrmError>,
}

/// A store action of a warehouse integration module (a callback registration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreAction {
    /// Callback code, e.g. `inventoriesUpload`.
    pub code: String,
    /// Path appended to `baseUrl`.
    pub url: String,
    /// When the CRM calls it (allowed values are UNVERIFIED).
    #[serde(default, deserialize_with = "lenient::list")]
    pub call_points: Vec<String>,
}

/// `integrations.store` of a module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StoreIntegration {
    /// Registered callbacks.
    #[serde(default, deserialize_with = "lenient::list")]
    pub actions: Vec<StoreAction>,
}

/// `integrations` of a module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Integrations {
    /// The warehouse part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreIntegration>,
}

/// A warehouse integration module (`integrationModule`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationModule {
    /// Module code (must start with `integration_code` when that is set).
    pub code: String,
    /// Integration code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_code: Option<String>,
    /// Display name.
    pub name: String,
    /// Whether the module is switched on.
    #[serde(
        default = "default_true",
        deserialize_with = "lenient_bool_default_true"
    )]
    pub active: bool,
    /// Callback base URL.
    pub base_url: String,
    /// Identifies the account in callbacks; treated as a secret.
    #[serde(serialize_with = "serialize_secret")]
    pub client_id: Secret,
    /// Logo URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
    /// Account URL in the warehouse system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_url: Option<String>,
    /// Callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrations: Option<Integrations>,
}

/// One offer of a catalogue product.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductOffer {
    /// CRM offer id.
    #[serde(deserialize_with = "lenient::int")]
    pub id: i64,
    /// `externalId`.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub external_id: Option<String>,
    /// `xmlId`.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub xml_id: Option<String>,
    /// Article.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub article: Option<String>,
    /// Offer name.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub name: Option<String>,
    /// Base price in kopecks.
    #[serde(default, rename = "price", deserialize_with = "opt_money")]
    pub price_kop: Option<i64>,
    /// Purchase price in kopecks.
    #[serde(default, rename = "purchasePrice", deserialize_with = "opt_money")]
    pub purchase_price_kop: Option<i64>,
    /// Total quantity.
    #[serde(default, deserialize_with = "float_or_zero")]
    pub quantity: f64,
    /// Whether the offer is on sale.
    #[serde(
        default = "default_true",
        deserialize_with = "lenient_bool_default_true"
    )]
    pub active: bool,
}

/// A group reference inside a product.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRef {
    /// Group id.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub id: Option<i64>,
    /// Group external id.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub external_id: Option<String>,
}

/// A catalogue product (`GET /store/products`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    /// CRM product id.
    #[serde(deserialize_with = "lenient::int")]
    pub id: i64,
    /// Name.
    #[serde(default, deserialize_with = "lenient::id_or_empty")]
    pub name: String,
    /// Article.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub article: Option<String>,
    /// External id.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub external_id: Option<String>,
    /// Whether the product is on sale.
    #[serde(
        default = "default_true",
        deserialize_with = "lenient_bool_default_true"
    )]
    pub active: bool,
    /// Groups it belongs to.
    #[serde(default, deserialize_with = "lenient::list")]
    pub groups: Vec<GroupRef>,
    /// Its offers.
    #[serde(default, deserialize_with = "lenient::list")]
    pub offers: Vec<ProductOffer>,
}

/// A product group (`GET /store/product-groups`, answer key `productGroup`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductGroup {
    /// Group id.
    #[serde(deserialize_with = "lenient::int")]
    pub id: i64,
    /// Name.
    #[serde(default, deserialize_with = "lenient::id_or_empty")]
    pub name: String,
    /// Site code.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub site: Option<String>,
    /// Parent group id.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub parent_id: Option<i64>,
    /// External id.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub external_id: Option<String>,
    /// Whether it is shown.
    #[serde(
        default = "default_true",
        deserialize_with = "lenient_bool_default_true"
    )]
    pub active: bool,
}

/// A product property (`GET /store/products/properties`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductProperty {
    /// Property code.
    #[serde(deserialize_with = "lenient::id")]
    pub code: String,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::id_or_empty")]
    pub name: String,
    /// Sites that use it.
    #[serde(default, deserialize_with = "lenient::list")]
    pub sites: Vec<String>,
}

/// An order status (`GET /reference/statuses`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Status code.
    #[serde(deserialize_with = "lenient::id")]
    pub code: String,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::id_or_empty")]
    pub name: String,
    /// Whether it is in use.
    #[serde(
        default = "default_true",
        deserialize_with = "lenient_bool_default_true"
    )]
    pub active: bool,
    /// Sort order.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub ordering: Option<i64>,
    /// Group: `new`, `approval`, `assembling`, `delivery`, `complete`, `cancel`.
    #[serde(default, deserialize_with = "lenient::id_or_empty")]
    pub group: String,
}

/// A store (`GET /reference/stores`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    /// Store code.
    #[serde(deserialize_with = "lenient::id")]
    pub code: String,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::id_or_empty")]
    pub name: String,
    /// `integer` or `available`.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub inventory_type: Option<String>,
    /// Whether it is in use.
    #[serde(
        default = "default_true",
        deserialize_with = "lenient_bool_default_true"
    )]
    pub active: bool,
}

/// One line of a CRM order.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmItem {
    /// CRM offer id.
    pub offer_id: Option<i64>,
    /// Offer `externalId`.
    pub offer_external_id: Option<String>,
    /// Offer `xmlId`.
    pub offer_xml_id: Option<String>,
    /// Ordered quantity (a float on the wire).
    pub quantity: f64,
    /// Unit price before discounts, in kopecks.
    pub initial_price_kop: i64,
}

impl CrmItem {
    /// The shop SKU under the configured key.
    pub fn sku(&self, key: OfferKey) -> Option<&str> {
        match key {
            OfferKey::ExternalId => self.offer_external_id.as_deref(),
            OfferKey::XmlId => self.offer_xml_id.as_deref(),
        }
    }
}

/// A CRM order, as far as sverka compares it.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmOrder {
    /// CRM order id.
    pub id: i64,
    /// The shop order id.
    pub external_id: Option<String>,
    /// Order number.
    pub number: Option<String>,
    /// Site code.
    pub site: Option<String>,
    /// Status code.
    pub status: Option<String>,
    /// Whether it is marked shipped from the warehouse.
    pub shipped: bool,
    /// Shipping store code.
    pub shipment_store: Option<String>,
    /// Shipment date.
    pub shipment_date: Option<NaiveDate>,
    /// Order total in kopecks.
    pub total_summ_kop: i64,
    /// Lines.
    pub items: Vec<CrmItem>,
    /// Delivery type code.
    pub delivery_code: Option<String>,
    /// `delivery.data.trackNumber`.
    pub track_number: Option<String>,
    /// `createdAt` (`Y-m-d H:i:s`, account time zone), as sent.
    pub created_at: Option<String>,
}

/// The order a history entry is about.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryOrderRef {
    /// CRM order id.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub id: Option<i64>,
    /// The shop order id.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub external_id: Option<String>,
    /// Order number.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub number: Option<String>,
    /// Site code.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub site: Option<String>,
}

/// One change of `GET /orders/history`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Increasing entry id (the cursor).
    #[serde(deserialize_with = "lenient::int")]
    pub id: i64,
    /// `Y-m-d H:i:s`.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub created_at: Option<String>,
    /// True for the entry that created the order.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub created: bool,
    /// `api`, `user`, …
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub source: Option<String>,
    /// Changed field (`status`, `shipped`, …).
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub field: Option<String>,
    /// Value before.
    #[serde(default)]
    pub old_value: Value,
    /// Value after.
    #[serde(default)]
    pub new_value: Value,
    /// The order.
    #[serde(default)]
    pub order: Option<HistoryOrderRef>,
}

/// Changed fields of an order; only the set ones are sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderPatch {
    /// `shipped`.
    pub shipped: Option<bool>,
    /// `shipmentStore`.
    pub shipment_store: Option<String>,
    /// `shipmentDate` (`Y-m-d`).
    pub shipment_date: Option<NaiveDate>,
    /// `status` code.
    pub status: Option<String>,
    /// `delivery.data.trackNumber`.
    pub track_number: Option<String>,
}

impl OrderPatch {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &OrderPatch::default()
    }

    /// The `order` JSON: only the fields that are set.
    pub fn to_json(&self) -> Value {
        let mut order = Map::new();
        if let Some(shipped) = self.shipped {
            order.insert("shipped".into(), Value::Bool(shipped));
        }
        if let Some(store) = &self.shipment_store {
            order.insert("shipmentStore".into(), Value::String(store.clone()));
        }
        if let Some(date) = self.shipment_date {
            order.insert(
                "shipmentDate".into(),
                Value::String(date.format("%Y-%m-%d").to_string()),
            );
        }
        if let Some(status) = &self.status {
            order.insert("status".into(), Value::String(status.clone()));
        }
        if let Some(track) = &self.track_number {
            order.insert(
                "delivery".into(),
                json!({ "data": { "trackNumber": track } }),
            );
        }
        Value::Object(order)
    }
}
