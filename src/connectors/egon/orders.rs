//! EGON order types: items, statuses, tracking, packages, new orders and cards.

use super::*;

/// One card of an issue (the physical pieces picked for an order line).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IssueCardItem {
    /// Warehouse inventory id.
    #[serde(
        default,
        rename = "INVENTORY_ID",
        deserialize_with = "lenient::opt_int"
    )]
    pub inventory_id: Option<i64>,
    /// QR / marking code of the piece, if any.
    #[serde(default, rename = "QR_CODE", deserialize_with = "lenient::opt_id")]
    pub qr_code: Option<String>,
}

/// One line of an order as EGON reports it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderItem {
    /// The shop's SKU (`ITEM_ID`).
    #[serde(
        rename = "ITEM_ID",
        alias = "item_id",
        deserialize_with = "lenient::id"
    )]
    pub item_id: String,
    /// EAN.
    #[serde(
        default,
        rename = "EAN",
        alias = "ean",
        deserialize_with = "lenient::opt_id"
    )]
    pub ean: Option<String>,
    /// Pieces ordered.
    #[serde(default, rename = "COUNT", alias = "count", deserialize_with = "count")]
    pub count: i64,
    /// Pieces reserved.
    #[serde(
        default,
        rename = "COUNT_RESERVED",
        alias = "count_reserved",
        deserialize_with = "count"
    )]
    pub count_reserved: i64,
    /// Reservation details, kept as sent.
    #[serde(
        default,
        rename = "RESERVATION_ITEMS",
        deserialize_with = "lenient::list"
    )]
    pub reservation_items: Vec<Value>,
    /// Picked pieces.
    #[serde(
        default,
        rename = "ISSUE_CARD_ITEMS",
        deserialize_with = "lenient::list"
    )]
    pub issue_card_items: Vec<IssueCardItem>,
}

/// One tracking event of a package.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TrackingEvent {
    /// When the state was reached.
    #[serde(default, deserialize_with = "opt_datetime")]
    pub timestamp: Option<NaiveDateTime>,
    /// EGON's shipment status code.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub shipment_status: Option<i64>,
    /// EGON's status text.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub shipment_note: Option<String>,
    /// The carrier's own status code.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub shipment_status_delivery_company: Option<String>,
    /// The carrier's own status text.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub shipment_note_delivery_company: Option<String>,
}

/// One parcel of an order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Package {
    /// The tracking number.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub package_nr: Option<String>,
    /// Tracking link.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub tracking_url: Option<String>,
    /// Tracking history.
    #[serde(default, deserialize_with = "lenient::list")]
    pub tracking_data: Vec<TrackingEvent>,
    /// Pictures (typed array, sent as `{}` when empty).
    #[serde(default, deserialize_with = "lenient::list")]
    pub images: Vec<Value>,
    /// Weight (grams).
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub weight: Option<i64>,
    /// Width (mm).
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub width: Option<i64>,
    /// Height (mm).
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub height: Option<i64>,
    /// Depth (mm).
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub depth: Option<i64>,
    /// Label URL.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub label: Option<String>,
}

/// One fee EGON charged for the order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CostItem {
    /// EGON's fee id.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub item_id: Option<String>,
    /// Fee name.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub name: Option<String>,
    /// Amount in minor units.
    #[serde(default, rename = "price", deserialize_with = "opt_money")]
    pub price_kop: Option<i64>,
}

/// An order's state: `GetOrderStatus`'s `resp_data` and the `WriteOrderStatus` callback's `req_data`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct OrderStatus {
    /// The shop's order id.
    #[serde(deserialize_with = "lenient::id")]
    pub order_original_id: String,
    /// Reference number.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub reference_number: Option<String>,
    /// EGON's order id.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub order_id: Option<i64>,
    /// EGON status id (see [`status_name`]).
    #[serde(deserialize_with = "lenient::int")]
    pub status_id: i64,
    /// EGON status name (empty when not sent).
    #[serde(default, deserialize_with = "lenient::id_or_empty")]
    pub status_name: String,
    /// Whether the order may still be updated through the API.
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub api_update_enabled: bool,
    /// When the status changed.
    #[serde(default, deserialize_with = "opt_datetime")]
    pub change_timestamp: Option<NaiveDateTime>,
    /// Transport id.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub delivery_id: Option<i64>,
    /// Order lines (typed as an object, sent as an array; both accepted).
    #[serde(default, deserialize_with = "lenient::list")]
    pub order_items: Vec<OrderItem>,
    /// Parcels with their tracking numbers.
    #[serde(default, deserialize_with = "lenient::list")]
    pub packages: Vec<Package>,
    /// Carrier id.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub shipp_company_id: Option<i64>,
    /// Carrier name.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub shipp_company: Option<String>,
    /// Expected delivery date as sent (`Y-m-d`).
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub estimated_delivery_time: Option<String>,
    /// EGON's total charge for the order, in minor units.
    #[serde(default, rename = "total_cost", deserialize_with = "opt_money")]
    pub total_cost_kop: Option<i64>,
    /// EGON's charges per fee.
    #[serde(default, deserialize_with = "lenient::list")]
    pub cost_by_item: Vec<CostItem>,
    /// Problems with the order's data (typed array, sent as `{}` when empty).
    #[serde(default, deserialize_with = "lenient::list")]
    pub order_errors: Vec<Value>,
    /// Invoice link.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub invoice_url: Option<String>,
    /// Invoice id.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub invoice_id: Option<String>,
    /// Returned lines, kept as sent.
    #[serde(default, deserialize_with = "lenient::list")]
    pub returned_items: Vec<Value>,
}

impl OrderStatus {
    /// The tracking numbers of all parcels, in order.
    pub fn tracks(&self) -> Vec<&str> {
        self.packages
            .iter()
            .filter_map(|p| p.package_nr.as_deref())
            .collect()
    }
}

pub use crate::vendor_docs::egon::{status_name, ORDER_STATUSES};

/// One line of a new order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewOrderItem {
    /// The shop's SKU (sent as a number when numeric, as documented).
    #[serde(serialize_with = "id_out")]
    pub item_id: String,
    /// Product name.
    pub name: String,
    /// Pieces.
    pub count: i64,
    /// Catalog number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    /// Unit price with VAT, in minor units (sent as `price_with_tax`).
    #[serde(
        rename = "price_with_tax",
        serialize_with = "money_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub price_with_tax_kop: Option<i64>,
}

/// A `CreateNewOrder` request (the mandatory fields plus the usual optional ones).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewOrder {
    /// The shop's order id.
    pub original_order_id: String,
    /// EGON's e-shop setting id.
    pub shop_setting_id: i64,
    /// Reference number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_number: Option<String>,
    /// Customer first name.
    pub customer_name: String,
    /// Customer surname.
    pub customer_surname: String,
    /// Customer phone.
    pub customer_phone: String,
    /// Customer e-mail.
    pub customer_email: String,
    /// Delivery first name.
    pub name: String,
    /// Delivery surname.
    pub surname: String,
    /// Delivery phone.
    pub phone: String,
    /// Delivery e-mail.
    pub email: String,
    /// Delivery street.
    pub street: String,
    /// Delivery street number.
    pub street_number: String,
    /// Delivery city.
    pub city: String,
    /// Delivery country (ISO 3166-1 alpha-2).
    pub country: String,
    /// Delivery postal code.
    pub postal_code: String,
    /// Transport id.
    pub id_delivery: i64,
    /// Pickup point id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_branch_id: Option<i64>,
    /// Cash on delivery (sent as 0/1).
    #[serde(serialize_with = "flag_out")]
    pub payment_cod: bool,
    /// Cash on delivery amount with VAT, minor units (sent as `cod_price`).
    #[serde(
        rename = "cod_price",
        serialize_with = "money_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub cod_price_kop: Option<i64>,
    /// Currency code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Order lines.
    pub items: Vec<NewOrderItem>,
}

/// `CreateNewOrder`'s answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CreatedOrder {
    /// EGON's order id.
    #[serde(deserialize_with = "lenient::int")]
    pub order_id: i64,
    /// Initial status id.
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub order_status_id: Option<i64>,
    /// MyOrder link.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub myorder_url: Option<String>,
    /// True when EGON answered 401 (created), false for 402 (an existing order updated).
    #[serde(skip)]
    pub created: bool,
}

/// An `UpdateInventoryCard` request (inserts or updates a card).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryCard {
    /// The shop's SKU (sent as a number when numeric, as documented).
    #[serde(serialize_with = "id_out")]
    pub item_id: String,
    /// EGON's e-shop setting id.
    pub shop_setting_id: i64,
    /// Product name.
    pub name: String,
    /// Catalog number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_id: Option<String>,
    /// EAN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ean: Option<String>,
    /// Unit of measure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mj: Option<String>,
    /// Allowed on the web (sent as 0/1).
    #[serde(
        serialize_with = "opt_flag_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub enabled: Option<bool>,
    /// Price without VAT in minor units (sent as `price_without_tax`).
    #[serde(
        rename = "price_without_tax",
        serialize_with = "money_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub price_without_tax_kop: Option<i64>,
    /// VAT rate in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax: Option<f64>,
}
