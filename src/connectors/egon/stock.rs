//! EGON stock types: counts, cards, inventory items and inventory status updates.

use super::*;

/// The stock counters of one card. Read from `InventoryDetail`'s `count_types`
/// (lowercase, `expirationBlocked`) and from callbacks' `COUNT_TYPES` (uppercase).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct CountTypes {
    /// Physically on stock (the accounting figure).
    #[serde(default, alias = "ALL", deserialize_with = "count")]
    pub all: i64,
    /// Expired.
    #[serde(default, alias = "EXPIRED", deserialize_with = "count")]
    pub expired: i64,
    /// Damaged.
    #[serde(default, alias = "DAMAGED", deserialize_with = "count")]
    pub damaged: i64,
    /// Ordered (taken by orders not yet reserved).
    #[serde(default, alias = "ORDERED", deserialize_with = "count")]
    pub ordered: i64,
    /// Reserved for orders.
    #[serde(default, alias = "RESERVED", deserialize_with = "count")]
    pub reserved: i64,
    /// Blocked because close to expiry, not expired yet.
    #[serde(
        default,
        rename = "expirationBlocked",
        alias = "EXPIRATION_BLOCKED",
        alias = "expiration_blocked",
        deserialize_with = "count"
    )]
    pub expiration_blocked: i64,
}

impl CountTypes {
    /// What the shop may sell: ALL − EXPIRED − EXPIRATION_BLOCKED − DAMAGED − ORDERED − RESERVED, never below 0.
    pub fn sellable(&self) -> i64 {
        self.all
            .saturating_sub(self.expired)
            .saturating_sub(self.expiration_blocked)
            .saturating_sub(self.damaged)
            .saturating_sub(self.ordered)
            .saturating_sub(self.reserved)
            .max(0)
    }

    /// Usable units (ALL − EXPIRED − EXPIRATION_BLOCKED − DAMAGED) and units
    /// promised to orders (ORDERED + RESERVED), in checked arithmetic; None
    /// when a sum overflows (an unreadable card, never a wrapped number).
    pub fn usable_and_promised(&self) -> Option<(i64, i64)> {
        let blocked = self
            .expired
            .checked_add(self.expiration_blocked)?
            .checked_add(self.damaged)?;
        let usable = self.all.checked_sub(blocked)?;
        let promised = self.ordered.checked_add(self.reserved)?;
        Some((usable, promised))
    }

    /// Reads counters strictly from a `count_types` / `COUNT_TYPES` object
    /// (either case; `expirationBlocked`, `EXPIRATION_BLOCKED` or
    /// `expiration_blocked`).
    ///
    /// Every documented sub-count must be present and a non-negative integer
    /// ([`lenient::value_to_count`]). A missing, null, `[]` or `{}` object, or
    /// a missing or unreadable sub-count, is an error naming what is wrong:
    /// sverka cannot tell such a card's stock, which is not the same as zero.
    pub fn read_strict(v: Option<&Value>) -> Result<CountTypes, String> {
        let obj = match v {
            None => return Err("no count_types".into()),
            Some(Value::Null) => return Err("count_types is null".into()),
            Some(Value::Object(m)) if m.is_empty() => return Err("count_types is {}".into()),
            Some(Value::Object(m)) => m,
            Some(Value::Array(a)) if a.is_empty() => return Err("count_types is []".into()),
            Some(other) => return Err(format!("count_types is not an object: {other}")),
        };
        let get = |names: &[&str]| -> Result<i64, String> {
            let value = names.iter().find_map(|n| obj.get(*n));
            match value {
                None => Err(format!("count_types has no `{}`", names[0])),
                Some(v) => lenient::value_to_count(v)
                    .ok_or_else(|| format!("count_types.{} is not a count: {v}", names[0])),
            }
        };
        Ok(CountTypes {
            all: get(&["all", "ALL"])?,
            expired: get(&["expired", "EXPIRED"])?,
            damaged: get(&["damaged", "DAMAGED"])?,
            ordered: get(&["ordered", "ORDERED"])?,
            reserved: get(&["reserved", "RESERVED"])?,
            expiration_blocked: get(&[
                "expirationBlocked",
                "EXPIRATION_BLOCKED",
                "expiration_blocked",
            ])?,
        })
    }
}

/// The stock figures of one card of an `InventoryStatusUpdate` callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardFigures {
    /// Physical units (`ALL`; with only the deprecated fields, `COUNT + RESERVED_FOR_ORDERS`).
    pub stock: i64,
    /// Units promised to orders (`ORDERED + RESERVED`, or `ORDERED + RESERVED_FOR_ORDERS`).
    pub reserved: i64,
    /// What the shop may sell, never below 0.
    pub sellable: i64,
}

/// Reads a callback card's figures: from `COUNT_TYPES` when it is readable
/// ([`CountTypes::read_strict`]), else from the deprecated `COUNT`, which
/// already excludes reserved units, so sellable = `COUNT − ORDERED`.
///
/// All arithmetic is checked: an overflow, like a card with neither, is an
/// error (an unreadable card), never a wrapped number.
pub fn card_figures(card: &Value) -> Result<CardFigures, String> {
    let overflow = || "the counts overflow".to_string();
    let strict = CountTypes::read_strict(card.get("COUNT_TYPES"));
    if let Ok(c) = strict {
        let (usable, promised) = c.usable_and_promised().ok_or_else(overflow)?;
        return Ok(CardFigures {
            stock: c.all,
            reserved: promised,
            sellable: usable.checked_sub(promised).ok_or_else(overflow)?.max(0),
        });
    }
    let Some(count) = card.get("COUNT").and_then(lenient::value_to_count) else {
        let why = strict.err().unwrap_or_default();
        return Err(format!("no readable COUNT_TYPES ({why}) and no COUNT"));
    };
    let opt = |name: &str| -> Result<i64, String> {
        match card.get(name) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => {
                lenient::value_to_count(v).ok_or_else(|| format!("{name} is not a count: {v}"))
            }
        }
    };
    let ordered = opt("ORDERED")?;
    let reserved_for_orders = opt("RESERVED_FOR_ORDERS")?;
    Ok(CardFigures {
        stock: count
            .checked_add(reserved_for_orders)
            .ok_or_else(overflow)?,
        reserved: ordered
            .checked_add(reserved_for_orders)
            .ok_or_else(overflow)?,
        sellable: count.saturating_sub(ordered).max(0),
    })
}

/// serde: `InventoryDetail`'s counters read strictly ([`CountTypes::read_strict`]).
pub(super) fn strict_counts<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Result<CountTypes, String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(CountTypes::read_strict(v.as_ref()))
}

pub(super) fn no_counts() -> Result<CountTypes, String> {
    CountTypes::read_strict(None)
}

/// One card of `InventoryDetail`'s answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InventoryItem {
    /// The shop's SKU (`item_id`, the card's ITEM_ID).
    #[serde(deserialize_with = "lenient::id")]
    pub item_id: String,
    /// EGON's card id (`id`).
    #[serde(default, rename = "id", deserialize_with = "lenient::opt_int")]
    pub egon_id: Option<i64>,
    /// EAN.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub ean: Option<String>,
    /// Catalog number.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub catalog_id: Option<String>,
    /// Product name.
    #[serde(default, deserialize_with = "lenient::opt_id")]
    pub name: Option<String>,
    /// Stock counters, or why they cannot be read (missing, null, `[]`, `{}`,
    /// a missing or non-numeric sub-count): such a card is *unreadable*, not zero.
    #[serde(
        default = "no_counts",
        rename = "count_types",
        alias = "COUNT_TYPES",
        deserialize_with = "strict_counts"
    )]
    pub counts: Result<CountTypes, String>,
    /// When the card's counts last changed (EGON local time): `count_types.changed_at`
    /// as documented, else a card-level `changed_at`.
    #[serde(default, deserialize_with = "opt_datetime")]
    pub changed_at: Option<NaiveDateTime>,
}

/// One card of an `InventoryStatusUpdate` callback.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct InventoryCardStatus {
    /// EGON's card id (`ID`), when sent.
    #[serde(default, rename = "ID", deserialize_with = "lenient::opt_id")]
    pub id: Option<String>,
    /// The shop's SKU (`ITEM_ID`, int or string).
    #[serde(rename = "ITEM_ID", deserialize_with = "lenient::id")]
    pub item_id: String,
    /// Catalog number.
    #[serde(default, rename = "CATALOG_ID", deserialize_with = "lenient::opt_id")]
    pub catalog_id: Option<String>,
    /// EAN.
    #[serde(default, rename = "EAN", deserialize_with = "lenient::opt_id")]
    pub ean: Option<String>,
    /// E-shop the card belongs to.
    #[serde(default, rename = "ESHOP_ID", deserialize_with = "lenient::opt_int")]
    pub eshop_id: Option<i64>,
    /// Last purchase price in minor units.
    #[serde(default, rename = "PURCHASE_PRICE", deserialize_with = "opt_money")]
    pub purchase_price_kop: Option<i64>,
    /// Whether the purchase price includes VAT.
    #[serde(default, rename = "WITH_VAT", deserialize_with = "lenient::boolean")]
    pub with_vat: bool,
    /// Whether the card can be folded (sent by newer EGON versions).
    #[serde(
        default,
        rename = "CAN_BE_FOLDED",
        deserialize_with = "lenient::boolean"
    )]
    pub can_be_folded: bool,
    /// The recommended counters; None when EGON sent only the deprecated fields.
    #[serde(default, rename = "COUNT_TYPES", deserialize_with = "opt_counts")]
    pub count_types: Option<CountTypes>,
    /// Deprecated `COUNT` (= ALL − RESERVED − EXPIRED − DAMAGED).
    #[serde(default, rename = "COUNT", deserialize_with = "lenient::opt_int")]
    pub deprecated_count: Option<i64>,
    /// Deprecated `ORDERED`.
    #[serde(default, rename = "ORDERED", deserialize_with = "lenient::opt_int")]
    pub deprecated_ordered: Option<i64>,
    /// Deprecated `RESERVED_FOR_ORDERS` (= RESERVED).
    #[serde(
        default,
        rename = "RESERVED_FOR_ORDERS",
        deserialize_with = "lenient::opt_int"
    )]
    pub deprecated_reserved_for_orders: Option<i64>,
}

impl InventoryCardStatus {
    /// Sellable stock: from `COUNT_TYPES` when present, else from the
    /// deprecated `COUNT − ORDERED` (COUNT already excludes reserved units; it
    /// cannot see expiration blocks).
    pub fn sellable(&self) -> Option<i64> {
        match (&self.count_types, self.deprecated_count) {
            (Some(c), _) => Some(c.sellable()),
            (None, Some(count)) => Some(
                count
                    .saturating_sub(self.deprecated_ordered.unwrap_or(0))
                    .max(0),
            ),
            (None, None) => None,
        }
    }
}

/// `InventoryStatusUpdate`'s `req_data`: cards keyed by the shop's card id.
///
/// Accepts a map (documented), a list (keyed then by `ITEM_ID`) and PHP's `[]`
/// for an empty update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InventoryStatusUpdate(pub BTreeMap<String, InventoryCardStatus>);

impl InventoryStatusUpdate {
    /// The cards, by key.
    pub fn cards(&self) -> impl Iterator<Item = (&String, &InventoryCardStatus)> {
        self.0.iter()
    }

    /// Number of cards.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the update carries no card.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for InventoryStatusUpdate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Option::<Value>::deserialize(d)?;
        let mut cards = BTreeMap::new();
        match v {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (key, card) in m {
                    let card: InventoryCardStatus = serde_json::from_value(card)
                        .map_err(|e| de::Error::custom(format!("card {key}: {e}")))?;
                    cards.insert(key, card);
                }
            }
            Some(Value::Array(list)) => {
                for card in list {
                    let card: InventoryCardStatus =
                        serde_json::from_value(card).map_err(de::Error::custom)?;
                    cards.insert(card.item_id.clone(), card);
                }
            }
            Some(other) => {
                return Err(de::Error::custom(format!(
                    "expected a map of cards, got {other}"
                )))
            }
        }
        Ok(InventoryStatusUpdate(cards))
    }
}
