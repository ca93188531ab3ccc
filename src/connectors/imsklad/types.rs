//! IMSKLAD wire types: configuration, money at the wire, goods, orders, preorders and documents.

use super::*;
use crate::lenient::opt;

/// Connection settings of the IMSKLAD client.
#[derive(Debug, Clone)]
pub struct ImskladConfig {
    /// Endpoint URL, e.g. `http://client.imsklad.ru:7000/`.
    pub url: String,
    /// API key (sent in the body, never logged).
    pub key: Secret,
    /// Warehouse id (`storage_id`, 1 today).
    pub storage_id: i64,
    /// WMS ids per `get_stock` call.
    pub stock_batch: usize,
    /// `get_stock` calls in flight at once.
    pub concurrency: usize,
    /// Timeouts and retries.
    pub policy: HttpPolicy,
}

impl ImskladConfig {
    /// A configuration with the default batch (500), concurrency (4) and policy.
    pub fn new(url: impl Into<String>, key: Secret, storage_id: i64) -> Self {
        ImskladConfig {
            url: url.into(),
            key,
            storage_id,
            stock_batch: 500,
            concurrency: 4,
            policy: HttpPolicy::default(),
        }
    }
}

/// Serde helpers for money: integer kopecks in our types, rubles on the wire.
pub mod money {
    use super::*;

    pub use crate::money::{from_value, parse_decimal, to_rubles, MAX_EXACT_KOPECKS};

    /// serde: write kopecks as rubles.
    pub fn serialize<S: Serializer>(kop: &i64, s: S) -> Result<S::Ok, S::Error> {
        match to_rubles(*kop) {
            Some(n) => n.serialize(s),
            None => Err(serde::ser::Error::custom(format!(
                "amount {kop} kopecks is too large to send exactly"
            ))),
        }
    }

    /// serde: read rubles (number or string, 0–2 decimals) as kopecks.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let v = Value::deserialize(d)?;
        from_value(&v).ok_or_else(|| de::Error::custom(format!("expected an amount, got {v}")))
    }
}

/// serde: a partner id is sent as a JSON integer when it is one (the doc types
/// goods ids in orders as Int), else as a string.
pub(super) fn ser_id_int_if_numeric<S: Serializer>(id: &str, s: S) -> Result<S::Ok, S::Error> {
    let numeric = !id.is_empty()
        && id.len() <= 18
        && id.bytes().all(|b| b.is_ascii_digit())
        && !(id.len() > 1 && id.starts_with('0'));
    match id.parse::<i64>() {
        Ok(n) if numeric => s.serialize_i64(n),
        _ => s.serialize_str(id),
    }
}

/// A product (`goods` / `add_good`, `update_good`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Good {
    /// Partner (shop) SKU.
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub description: Option<String>,
    /// Retail price, kopecks (`price`, rubles on the wire).
    #[serde(rename = "price", with = "money")]
    pub price_kop: i64,
    /// Cost, kopecks (`cost`, rubles on the wire).
    #[serde(rename = "cost", with = "money")]
    pub cost_kop: i64,
    /// External picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub image: Option<String>,
    /// Weight, grams.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub weight: Option<i64>,
    /// Width, mm.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub width: Option<i64>,
    /// Height, mm.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub height: Option<i64>,
    /// Length, mm.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub length: Option<i64>,
    /// Colour id from the doc's colour table.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub color: Option<i64>,
    /// Size (`XL`, `10 см x 20 см`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub size: Option<String>,
}

impl Good {
    /// A product with the required fields only (cost = price).
    pub fn new(id: impl Into<String>, name: impl Into<String>, price_kop: i64) -> Self {
        Good {
            id: id.into(),
            name: name.into(),
            description: None,
            price_kop,
            cost_kop: price_kop,
            image: None,
            weight: None,
            width: None,
            height: None,
            length: None,
            color: None,
            size: None,
        }
    }
}

/// One line of an order, preorder or document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderGood {
    /// Partner SKU (sent as an integer when numeric, as documented).
    #[serde(
        serialize_with = "ser_id_int_if_numeric",
        deserialize_with = "lenient::id"
    )]
    pub id: String,
    /// Quantity (accepted as `4`, `4.0` or `"4"`).
    #[serde(deserialize_with = "lenient::int")]
    pub quantity: i64,
    /// Unit price, kopecks (`price`, rubles on the wire).
    #[serde(rename = "price", with = "money")]
    pub price_kop: i64,
}

impl OrderGood {
    /// A line of `quantity` × `id` at `price_kop` each.
    pub fn new(id: impl Into<String>, quantity: i64, price_kop: i64) -> Self {
        OrderGood {
            id: id.into(),
            quantity,
            price_kop,
        }
    }
}

/// Delivery address in parts (`address_obj`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AddressObj {
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub city: Option<String>,
    /// Street.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub street: Option<String>,
    /// House.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub house: Option<String>,
    /// Flat.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub room: Option<String>,
}

/// An order (`order` / `add_order`, `update_order`). `storage_id` is added by
/// the client on `add_order` only, as documented. Deserialising also accepts
/// the callback spelling (`delivery_type_id`, `delivery_courier_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Partner (shop) order id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// Partner order GUID, echoed back by the WMS.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub guid: Option<String>,
    /// Comma-separated tags (`call`, `nosms`, `problem`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub tags: Option<String>,
    /// Customer's full name.
    pub name: String,
    /// Customer e-mail.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub email: Option<String>,
    /// Customer phone.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub phone: Option<String>,
    /// Second phone.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub phone2: Option<String>,
    /// Post code.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub post_code: Option<String>,
    /// Delivery address.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub address: Option<String>,
    /// Latitude of the address.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::float")]
    pub address_lat: Option<f64>,
    /// Longitude of the address.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::float")]
    pub address_lng: Option<f64>,
    /// Customer's comment.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub comment: Option<String>,
    /// Shop's comment.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub owner_comment: Option<String>,
    /// Discount, kopecks (`discount`).
    #[serde(rename = "discount", with = "money")]
    pub discount_kop: i64,
    /// Delivery cost, kopecks (`delivery`).
    #[serde(rename = "delivery", with = "money")]
    pub delivery_kop: i64,
    /// Amount paid by the customer, kopecks (`total_paid`).
    #[serde(rename = "total_paid", with = "money")]
    pub total_paid_kop: i64,
    /// Delivery type id (4 Russian Post, 16 CDEK, 22 Grastin, 62 BoxBerry, 113 Peshkariki).
    #[serde(alias = "delivery_type_id")]
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub delivery_type: Option<i64>,
    /// Delivery window start (unix).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub delivery_date_from: Option<i64>,
    /// Delivery window end (unix).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub delivery_date_to: Option<i64>,
    /// Shipment date (unix).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub shipment_date: Option<i64>,
    /// Courier id.
    #[serde(alias = "delivery_courier_id")]
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub courier: Option<i64>,
    /// 1 when cancelled, 0 otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub is_canceled: Option<i64>,
    /// Tracking flag (unused by IMSKLAD today).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub tracked: Option<i64>,
    /// Carrier tracking number.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub track: Option<String>,
    /// Tracking status (unused by IMSKLAD today).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub track_status: Option<String>,
    /// Tracking update time (unix, unused by IMSKLAD today).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub track_update: Option<i64>,
    /// Delivery city id.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub city_id: Option<i64>,
    /// Carrier pickup point code.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub pickup_point: Option<String>,
    /// Carrier city code.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub courier_city_code: Option<String>,
    /// Address in parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_obj: Option<AddressObj>,
    /// Lines.
    #[serde(deserialize_with = "lenient::list")]
    pub goods: Vec<OrderGood>,
}

impl Order {
    /// An order with the required fields only: no discount, no delivery
    /// cost, nothing paid, every optional field unset.
    pub fn new(id: impl Into<String>, name: impl Into<String>, goods: Vec<OrderGood>) -> Self {
        Order {
            id: id.into(),
            guid: None,
            tags: None,
            name: name.into(),
            email: None,
            phone: None,
            phone2: None,
            post_code: None,
            address: None,
            address_lat: None,
            address_lng: None,
            comment: None,
            owner_comment: None,
            discount_kop: 0,
            delivery_kop: 0,
            total_paid_kop: 0,
            delivery_type: None,
            delivery_date_from: None,
            delivery_date_to: None,
            shipment_date: None,
            courier: None,
            is_canceled: None,
            tracked: None,
            track: None,
            track_status: None,
            track_update: None,
            city_id: None,
            pickup_point: None,
            courier_city_code: None,
            address_obj: None,
            goods,
        }
    }

    /// True when `is_canceled` is 1.
    pub fn is_cancelled(&self) -> bool {
        self.is_canceled == Some(1)
    }
}

/// A supplier preorder or a stock document: the documented fields both
/// have, and `extra`, the fields of one kind only ([`Pickup`] for preorders).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document<P> {
    /// Partner document id.
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    /// Document code.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub code: Option<String>,
    /// Preorder: 0 inbound from the supplier, 1 return to the supplier;
    /// document: 0 receipt, 1 write-off.
    #[serde(rename = "type", deserialize_with = "lenient::int")]
    pub kind: i64,
    /// Document date (unix); `add_preorder` spells it `owner_date`.
    #[serde(alias = "owner_date")]
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub date: Option<i64>,
    /// The fields of this kind of document, on the same level on the wire.
    #[serde(flatten)]
    pub extra: P,
    /// Lines.
    #[serde(deserialize_with = "lenient::list")]
    pub goods: Vec<OrderGood>,
}

/// A supplier preorder (`preorder` / `add_preorder`, `update_preorder`).
///
/// The document date is sent as `owner_date` by `add_preorder` and as `date`
/// by `update_preorder`, as the doc spells them; both are read back.
pub type Preorder = Document<Pickup>;

/// A stock document (`doc` / `add_doc`, `update_doc`).
pub type Doc = Document<NoExtra>;

/// The pickup fields of a preorder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pickup {
    /// 1 when a courier must collect from the supplier.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::int")]
    pub need_pickup: Option<i64>,
    /// Supplier's address.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub pickup_address: Option<String>,
    /// Supplier's contacts.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub pickup_contacts: Option<String>,
    /// Supplier's name.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt::text")]
    pub supplier_name: Option<String>,
}

/// No fields beyond the common ones (stock documents).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoExtra {}
