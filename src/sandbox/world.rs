//! A seeded, consistent world of a shop, its warehouse and its CRM — then
//! known drift injected on top, so every discrepancy class has examples.
//!
//! The same seed always gives the same world. [`World::seed_servers`] loads it
//! into the sandbox servers, [`World::write_shop`] writes the matching shop
//! database, and [`World::write_mapping`] stores the goods id mapping sverka
//! would have built when the goods were first registered with the WMS.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::connectors::egon::CountTypes;
use crate::db::mapping::{self, MapKind};
use crate::db::{Arg, Db, DbError};
use crate::shop::{Shop, ShopError};

/// What to generate.
#[derive(Debug, Clone)]
pub struct WorldSpec {
    /// Random seed.
    pub seed: u64,
    /// SKUs in the shop catalogue.
    pub skus: usize,
    /// Orders (used by the order and billing jobs).
    pub orders: usize,
    /// Days of history.
    pub days: u32,
    /// Inject drift (false: all three systems agree).
    pub drift: bool,
}

impl Default for WorldSpec {
    fn default() -> Self {
        WorldSpec {
            seed: 42,
            skus: 1000,
            orders: 200,
            days: 7,
            drift: true,
        }
    }
}

/// Which drift a SKU carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StockDrift {
    /// The three systems agree.
    None,
    /// The CRM's quantity is off.
    CrmQuantity,
    /// The shop's quantity is off.
    ShopQuantity,
    /// Both are off.
    Both,
    /// The CRM has no offer.
    MissingInCrm,
    /// The WMS does not know the SKU (and sverka has no mapping).
    MissingInWms,
    /// The WMS knows the SKU, but sverka has no mapping yet.
    Unmapped,
    /// The WMS holds stock of a SKU the shop no longer sells.
    MissingInShop,
    /// The WMS reserves more than it holds.
    ReservedExceedsStock,
}

/// One SKU of the world.
#[derive(Debug, Clone, Serialize)]
pub struct WorldSku {
    /// SKU.
    pub sku: String,
    /// Product name.
    pub name: String,
    /// Price, kopecks.
    pub price_kop: i64,
    /// Cost, kopecks.
    pub cost_kop: i64,
    /// Weight, grams.
    pub weight_g: i64,
    /// Units in the warehouse.
    pub stock: i64,
    /// Units reserved.
    pub reserved: i64,
    /// The CRM's quantity (None: no offer).
    pub crm_quantity: Option<i64>,
    /// The shop's quantity (None: not in the shop catalogue).
    pub shop_quantity: Option<i64>,
    /// Whether the WMS knows the SKU.
    pub in_wms: bool,
    /// Whether sverka's mapping knows it.
    pub mapped: bool,
    /// The injected drift.
    pub drift: StockDrift,
}

impl WorldSku {
    /// What the shop may sell: stock − reserved, never below 0.
    pub fn sellable(&self) -> i64 {
        (self.stock - self.reserved).max(0)
    }
}

/// A generated world.
#[derive(Debug, Clone)]
pub struct World {
    /// The spec it came from.
    pub spec: WorldSpec,
    /// Every SKU, sorted.
    pub skus: Vec<WorldSku>,
}

/// Errors loading a world somewhere.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// The shop database refused.
    #[error(transparent)]
    Shop(#[from] ShopError),
    /// The state database refused.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A sandbox refused the seed data.
    #[error("seeding the {vendor} sandbox: {message}")]
    Seed {
        /// Which sandbox.
        vendor: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl World {
    /// Generates the world for `spec`.
    pub fn generate(spec: &WorldSpec) -> World {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let skus = (0..spec.skus)
            .map(|i| generate_sku(i, spec.drift, &mut rng))
            .collect();
        World {
            spec: spec.clone(),
            skus,
        }
    }

    /// SKUs per injected drift.
    pub fn drift_counts(&self) -> BTreeMap<String, usize> {
        count_by_name(self.skus.iter().map(|s| s.drift))
    }

    /// The marking codes (Честный ЗНАК, GS1 DataMatrix with group separators)
    /// printed on the units of the first SKUs: `(code, sku)`.
    pub fn marking_codes(&self) -> Vec<(String, String)> {
        let mut rng = StdRng::seed_from_u64(self.spec.seed ^ 0x5ca7);
        let n = (self.skus.len() / 10).clamp(1, 200).min(self.skus.len());
        let mut out = Vec::with_capacity(n * 2);
        for (i, s) in self
            .skus
            .iter()
            .filter(|s| s.shop_quantity.is_some())
            .take(n)
            .enumerate()
        {
            for unit in 0..2 {
                let serial: String = (0..13)
                    .map(|_| {
                        let c = rng.random_range(0..36u8);
                        (if c < 10 { b'0' + c } else { b'A' + c - 10 }) as char
                    })
                    .collect();
                let code = format!(
                    "0104607{:07}{}21{serial}\u{1d}91EE07\u{1d}92{:08}",
                    i * 2 + unit,
                    (i + unit) % 10,
                    rng.random_range(0..100_000_000u32)
                );
                out.push((code, s.sku.clone()));
            }
        }
        out
    }

    /// Loads the world into the sandbox servers.
    pub fn seed_servers(&self, set: &super::SandboxSet) -> Result<(), WorldError> {
        let seed_err = |vendor: &'static str| {
            move |e: &dyn std::fmt::Display| WorldError::Seed {
                vendor,
                message: e.to_string(),
            }
        };
        {
            let mut wms = set.imsklad.lock();
            for s in self.skus.iter().filter(|s| s.in_wms) {
                let id = wms.add_good(&s.sku, &s.name, s.price_kop);
                wms.set_stock(id, s.stock, s.reserved)
                    .map_err(|e| seed_err("imsklad")(&e))?;
            }
        }
        {
            let mut egon = set.egon.lock();
            for s in self.skus.iter().filter(|s| s.in_wms) {
                egon.add_item(
                    &s.sku,
                    CountTypes {
                        all: s.stock,
                        reserved: s.reserved,
                        ..CountTypes::default()
                    },
                );
            }
        }
        {
            let mut crm = set.retailcrm.lock();
            let store = set.keys.retailcrm_store.clone();
            crm.add_store(&store, "Склад фулфилмента");
            for s in &self.skus {
                if let Some(q) = s.crm_quantity {
                    crm.add_offer(
                        Some(&s.sku),
                        Some(&s.sku),
                        &s.name,
                        s.price_kop,
                        &[(store.as_str(), q as f64)],
                    );
                    // An established catalogue: the CRM holds the shop's cost.
                    crm.set_purchase_price(&s.sku, &store, s.cost_kop)
                        .map_err(|e| WorldError::Seed {
                            vendor: "RetailCRM",
                            message: e.to_string(),
                        })?;
                }
            }
        }
        Ok(())
    }

    /// Writes the shop database (reference schema) for this world.
    pub async fn write_shop(&self, shop: &Shop) -> Result<(), WorldError> {
        let mut tx = begin_shop_seed(shop, "shop").await?;
        let db = shop.db();
        let now = crate::db::now_ms();
        let product_sql = db.sql("INSERT INTO products (sku, name, description, price_kop, cost_kop, weight_g, ean, supplier_id, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)").into_owned();
        let stock_sql = db
            .sql("INSERT INTO stock (sku, quantity, updated_at) VALUES (?, ?, ?)")
            .into_owned();
        for s in &self.skus {
            let Some(q) = s.shop_quantity else { continue };
            crate::db::bind_args(
                sqlx::query(&product_sql),
                &[
                    Arg::Text(s.sku.clone()),
                    Arg::Text(s.name.clone()),
                    Arg::OptText(Some(format!("{} — описание", s.name))),
                    Arg::I64(s.price_kop),
                    Arg::I64(s.cost_kop),
                    Arg::OptI64(Some(s.weight_g)),
                    Arg::OptText(None),
                    Arg::OptText(Some("SUP-1".into())),
                ],
            )
            .execute(&mut *tx)
            .await
            .map_err(DbError::query("seeding shop products"))?;
            crate::db::bind_args(
                sqlx::query(&stock_sql),
                &[Arg::Text(s.sku.clone()), Arg::I64(q), Arg::I64(now)],
            )
            .execute(&mut *tx)
            .await
            .map_err(DbError::query("seeding shop stock"))?;
        }
        let code_sql = db
            .sql(
                "INSERT INTO marking_codes (code, sku, used_by, used_at) VALUES (?, ?, NULL, NULL)",
            )
            .into_owned();
        for (code, sku) in self.marking_codes() {
            crate::db::bind_args(sqlx::query(&code_sql), &[Arg::Text(code), Arg::Text(sku)])
                .execute(&mut *tx)
                .await
                .map_err(DbError::query("seeding marking codes"))?;
        }
        let supplier_sql = db.sql("INSERT INTO suppliers (id, name, inn, phone, email, address) VALUES (?, ?, ?, ?, ?, ?)").into_owned();
        crate::db::bind_args(
            sqlx::query(&supplier_sql),
            &[
                Arg::Text("SUP-1".into()),
                Arg::Text("ООО «Поставщик»".into()),
                Arg::OptText(Some("7701234567".into())),
                Arg::OptText(Some("+7 495 000-00-00".into())),
                Arg::OptText(Some("supply@example.ru".into())),
                Arg::OptText(Some("Москва, ул. Складская, 1".into())),
            ],
        )
        .execute(&mut *tx)
        .await
        .map_err(DbError::query("seeding suppliers"))?;
        tx.commit()
            .await
            .map_err(DbError::query("committing the shop seed"))?;
        Ok(())
    }

    /// Stores the goods mapping sverka built when these goods were registered
    /// with IMSKLAD (SKUs marked unmapped are left out, to be looked up).
    pub async fn write_mapping(
        &self,
        state: &Db,
        set: &super::SandboxSet,
    ) -> Result<(), WorldError> {
        let ids: Vec<(String, String)> = {
            let wms = set.imsklad.lock();
            self.skus
                .iter()
                .filter(|s| s.mapped)
                .filter_map(|s| {
                    wms.good_by_partner(&s.sku)
                        .map(|g| (s.sku.clone(), g.wms_id.to_string()))
                })
                .collect()
        };
        mapping::put_many(state, MapKind::Good, &ids).await?;
        Ok(())
    }
}

/// Creates the shop's reference schema and starts the transaction the `what`
/// seed (`shop`, `shop orders`) is written in.
pub(super) async fn begin_shop_seed(
    shop: &Shop,
    what: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, WorldError> {
    shop.create_reference_schema().await?;
    let tx = shop
        .db()
        .pool()
        .begin()
        .await
        .map_err(DbError::query(format!(
            "starting the {what} seed transaction"
        )))?;
    Ok(tx)
}

/// How many of `drifts` each drift is, by its serialised name.
pub(super) fn count_by_name<T: serde::Serialize>(
    drifts: impl Iterator<Item = T>,
) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for drift in drifts {
        let name = serde_json::to_value(drift)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        *out.entry(name).or_insert(0) += 1;
    }
    out
}

/// The drift of the `i`-th generated item: each of `classes` once, in order,
/// first (so small worlds carry every class), then a roll in 0..1000 against
/// the inclusive upper bounds of the classes that have one (their bands),
/// `none` past the last band.
pub(super) fn pick_drift<T: Copy>(
    i: usize,
    rng: &mut StdRng,
    classes: &[(Option<i32>, T)],
    none: T,
) -> T {
    if let Some((_, d)) = classes.get(i) {
        return *d;
    }
    let roll: i32 = rng.random_range(0..1000);
    classes
        .iter()
        .find(|(upper, _)| upper.is_some_and(|u| roll <= u))
        .map_or(none, |(_, d)| *d)
}

/// The `i`-th SKU (0-based) of the world. Draws from `rng` in a fixed order:
/// stock, reserved, price, drift, weight, then what the drift needs.
fn generate_sku(i: usize, with_drift: bool, rng: &mut StdRng) -> WorldSku {
    let sku = format!("SKU-{:06}", i + 1);
    let stock: i64 = rng.random_range(0..200);
    let reserved: i64 = if stock > 0 {
        rng.random_range(0..=stock / 3)
    } else {
        0
    };
    let price_kop: i64 = rng.random_range(100..50_000) * 100 + rng.random_range(0..100);
    let drift = if with_drift {
        stock_drift(i, rng)
    } else {
        StockDrift::None
    };
    let mut w = WorldSku {
        name: format!("Товар {}", i + 1),
        sku,
        price_kop,
        cost_kop: price_kop * 6 / 10,
        weight_g: rng.random_range(50..5000),
        stock,
        reserved,
        crm_quantity: None,
        shop_quantity: None,
        in_wms: true,
        mapped: true,
        drift,
    };
    apply_stock_drift(&mut w, rng);
    w
}

/// The drift of the `i`-th SKU.
fn stock_drift(i: usize, rng: &mut StdRng) -> StockDrift {
    pick_drift(
        i,
        rng,
        &[
            (Some(39), StockDrift::CrmQuantity),
            (Some(69), StockDrift::ShopQuantity),
            (Some(79), StockDrift::Both),
            (Some(89), StockDrift::MissingInCrm),
            (Some(96), StockDrift::MissingInWms),
            (Some(103), StockDrift::Unmapped),
            (Some(108), StockDrift::MissingInShop),
            (Some(113), StockDrift::ReservedExceedsStock),
        ],
        StockDrift::None,
    )
}

/// Sets the CRM's and the shop's quantities of `w` (its sellable stock), then
/// applies its drift.
fn apply_stock_drift(w: &mut WorldSku, rng: &mut StdRng) {
    if w.drift == StockDrift::MissingInShop && w.stock == 0 {
        w.stock = rng.random_range(1..50);
        w.reserved = 0;
    }
    if w.drift == StockDrift::ReservedExceedsStock {
        w.reserved = w.stock + rng.random_range(1..5);
    }
    let sellable = w.sellable();
    let off = |rng: &mut StdRng| -> i64 {
        let delta = rng.random_range(1..20);
        if sellable >= delta && rng.random_bool(0.5) {
            sellable - delta
        } else {
            sellable + delta
        }
    };
    w.crm_quantity = Some(sellable);
    w.shop_quantity = Some(sellable);
    match w.drift {
        StockDrift::CrmQuantity => w.crm_quantity = Some(off(rng)),
        StockDrift::ShopQuantity => w.shop_quantity = Some(off(rng)),
        StockDrift::Both => {
            w.crm_quantity = Some(off(rng));
            w.shop_quantity = Some(off(rng));
        }
        StockDrift::MissingInCrm => w.crm_quantity = None,
        StockDrift::MissingInWms => {
            w.in_wms = false;
            w.mapped = false;
            w.stock = 0;
            w.reserved = 0;
            // The shop and the CRM still show what they last knew.
        }
        StockDrift::Unmapped => w.mapped = false,
        StockDrift::MissingInShop => w.shop_quantity = None,
        StockDrift::ReservedExceedsStock | StockDrift::None => {}
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Asserts that `counts` holds at least one of each of `drifts`.
    pub(in crate::sandbox) fn assert_carries_every(
        counts: &BTreeMap<String, usize>,
        drifts: &[&str],
    ) {
        for d in drifts {
            assert!(
                counts.get(*d).copied().unwrap_or(0) >= 1,
                "{d} missing: {counts:?}"
            );
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_world() {
        let spec = WorldSpec {
            skus: 300,
            ..WorldSpec::default()
        };
        let a = World::generate(&spec);
        let b = World::generate(&spec);
        assert_eq!(a.skus.len(), 300);
        for (x, y) in a.skus.iter().zip(&b.skus) {
            assert_eq!(
                (
                    x.stock,
                    x.reserved,
                    x.crm_quantity,
                    x.shop_quantity,
                    x.drift
                ),
                (
                    y.stock,
                    y.reserved,
                    y.crm_quantity,
                    y.shop_quantity,
                    y.drift
                )
            );
        }
        let c = World::generate(&WorldSpec { seed: 7, ..spec });
        assert!(a.skus.iter().zip(&c.skus).any(|(x, y)| x.stock != y.stock));
    }

    #[test]
    fn small_worlds_carry_every_drift_and_drift_is_real() {
        let w = World::generate(&WorldSpec {
            skus: 20,
            ..WorldSpec::default()
        });
        assert_carries_every(
            &w.drift_counts(),
            &[
                "crm_quantity",
                "shop_quantity",
                "both",
                "missing_in_crm",
                "missing_in_wms",
                "unmapped",
                "missing_in_shop",
                "reserved_exceeds_stock",
            ],
        );
        for s in &w.skus {
            match s.drift {
                StockDrift::CrmQuantity => assert_ne!(s.crm_quantity, Some(s.sellable())),
                StockDrift::ShopQuantity => assert_ne!(s.shop_quantity, Some(s.sellable())),
                StockDrift::ReservedExceedsStock => assert!(s.reserved > s.stock),
                StockDrift::MissingInShop => assert!(s.stock > 0 && s.shop_quantity.is_none()),
                _ => {}
            }
        }
    }

    #[test]
    fn marking_codes_are_gs1_with_group_separators_and_unique() {
        let w = World::generate(&WorldSpec {
            skus: 100,
            ..WorldSpec::default()
        });
        let codes = w.marking_codes();
        assert_eq!(codes.len(), 20);
        let unique: std::collections::BTreeSet<_> = codes.iter().map(|(c, _)| c.clone()).collect();
        assert_eq!(unique.len(), codes.len());
        for (c, _) in &codes {
            assert!(c.starts_with("01") && c.contains('\u{1d}'), "{c:?}");
        }
    }

    #[test]
    fn without_drift_everything_agrees() {
        let w = World::generate(&WorldSpec {
            skus: 200,
            drift: false,
            ..WorldSpec::default()
        });
        for s in &w.skus {
            assert_eq!(s.crm_quantity, Some(s.sellable()));
            assert_eq!(s.shop_quantity, Some(s.sellable()));
            assert!(s.in_wms && s.mapped);
        }
    }
}
