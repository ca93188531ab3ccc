//! RetailCRM parsing helpers and the raw answer shapes the client decodes.

use super::*;
use serde::de;

pub use crate::money::{kop_to_money, money_to_kop};

pub(super) fn float_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(lenient::opt_float(d)?.unwrap_or(0.0))
}

pub(super) fn opt_money<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(lenient::opt_float(d)?.and_then(money_to_kop))
}

pub(super) fn money<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(opt_money(d)?.unwrap_or(0))
}

pub(super) fn default_true() -> bool {
    true
}

/// A flag that defaults to true when absent or null (`active` fields).
pub(super) fn lenient_bool_default_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => matches!(s.trim(), "1" | "true" | "yes" | "Y" | "y"),
        Some(other) => lenient::value_to_i64(&other).is_some_and(|n| n != 0),
    })
}

/// Parses `Y-m-d` or the date part of `Y-m-d H:i:s`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    let date = t.get(..10).unwrap_or(t);
    NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()
}

pub(super) fn serialize_secret<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// Normalises an `errors` value (a map, a list, a string or absent) into entries.
pub fn field_errors(value: Option<&Value>) -> Vec<FieldError> {
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }
    match value {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| FieldError {
                field: Some(k.clone()),
                message: text(v),
            })
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| FieldError {
                field: None,
                message: text(v),
            })
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![FieldError {
            field: None,
            message: s.clone(),
        }],
        _ => Vec::new(),
    }
}

/// Percent-encodes one URL path segment (RFC 3986 unreserved characters pass).
pub(super) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Raw answers
// ---------------------------------------------------------------------------

/// An item type that list answers carry under one documented key.
pub(super) trait Listed: DeserializeOwned {
    /// The answer's key of the list (`offers`, `productGroup`, …).
    const KEY: &'static str;
    /// Whether the answer has a `pagination` block sverka reads.
    const PAGED: bool;
}

macro_rules! listed {
    ($($item:ty => $key:literal, $paged:literal;)*) => {
        $(impl Listed for $item {
            const KEY: &'static str = $key;
            const PAGED: bool = $paged;
        })*
    };
}

listed! {
    InventoryOffer => "offers", true;
    Product => "products", true;
    ProductGroup => "productGroup", true;
    ProductProperty => "properties", true;
    HistoryEntry => "history", true;
    RawOrder => "orders", true;
    Status => "statuses", false;
    Store => "stores", false;
}

/// A list answer: the items under [`Listed::KEY`] (read like
/// [`lenient::list`]: absent, null or `{}` is empty) and, for paged lists,
/// the `pagination` block (absent is the default).
pub(super) struct ListAnswer<T> {
    pub(super) items: Vec<T>,
    pub(super) pagination: Pagination,
}

impl<T> ListAnswer<T> {
    /// The answer as a page of items.
    pub(super) fn into_page(self) -> Paged<T> {
        Paged {
            items: self.items,
            pagination: self.pagination,
        }
    }
}

impl<'de, T: Listed> Deserialize<'de> for ListAnswer<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut answer = Map::<String, Value>::deserialize(d)?;
        let items = match answer.remove(T::KEY) {
            Some(list) => lenient::list(list).map_err(de::Error::custom)?,
            None => Vec::new(),
        };
        let pagination = match answer.remove("pagination") {
            Some(block) if T::PAGED => Pagination::deserialize(block).map_err(de::Error::custom)?,
            _ => Pagination::default(),
        };
        Ok(ListAnswer { items, pagination })
    }
}

/// `GET /store/inventories`.
pub(super) type InventoriesAnswer = ListAnswer<InventoryOffer>;

/// An offer an answer names by its ids (`notFoundOffers[]`, `items[].offer`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawOfferRef {
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub(super) id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) external_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) xml_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UploadAnswer {
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub(super) processed_offers_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(super) not_found_offers: Vec<RawOfferRef>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ModuleAnswer {
    pub(super) integration_module: Option<IntegrationModule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawItem {
    #[serde(default, deserialize_with = "lenient::opt_float")]
    pub(super) quantity: Option<f64>,
    #[serde(default, deserialize_with = "money")]
    pub(super) initial_price: i64,
    #[serde(default)]
    pub(super) offer: Option<RawOfferRef>,
}

#[derive(Deserialize)]
pub(super) struct RawDelivery {
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) code: Option<String>,
    #[serde(default)]
    pub(super) data: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawOrder {
    #[serde(deserialize_with = "lenient::int")]
    pub(super) id: i64,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) external_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) number: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) site: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) status: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    pub(super) shipped: bool,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) shipment_store: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) shipment_date: Option<String>,
    #[serde(default, deserialize_with = "money")]
    pub(super) total_summ: i64,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(super) items: Vec<RawItem>,
    #[serde(default)]
    pub(super) delivery: Option<RawDelivery>,
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub(super) created_at: Option<String>,
}

impl RawOrder {
    pub(super) fn into_order(self, endpoint: &str) -> Result<CrmOrder, RetailCrmError> {
        let shipment_date = match self.shipment_date.as_deref() {
            None => None,
            Some(text) => Some(parse_date(text).ok_or_else(|| RetailCrmError::Schema {
                endpoint: endpoint.to_string(),
                detail: format!("order {}: shipmentDate {text:?} is not Y-m-d", self.id),
            })?),
        };
        let (delivery_code, track_number) = match self.delivery {
            Some(d) => (
                d.code,
                d.data
                    .get("trackNumber")
                    .and_then(lenient::value_to_id)
                    .filter(|t| !t.is_empty()),
            ),
            None => (None, None),
        };
        let items = self
            .items
            .into_iter()
            .map(|item| {
                let offer = item.offer.unwrap_or_default();
                CrmItem {
                    offer_id: offer.id,
                    offer_external_id: offer.external_id,
                    offer_xml_id: offer.xml_id,
                    quantity: item.quantity.unwrap_or(0.0),
                    initial_price_kop: item.initial_price,
                }
            })
            .collect();
        Ok(CrmOrder {
            id: self.id,
            external_id: self.external_id,
            number: self.number,
            site: self.site,
            status: self.status,
            shipped: self.shipped,
            shipment_store: self.shipment_store,
            shipment_date,
            total_summ_kop: self.total_summ,
            items,
            delivery_code,
            track_number,
            created_at: self.created_at,
        })
    }
}
