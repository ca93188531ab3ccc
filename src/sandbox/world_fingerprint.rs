//! Pins what the world generators produce: the same seed gives the same world
//! byte for byte, across refactors of the generators (the demo's summary, the
//! bench inputs and every fixture derived from a seed depend on it).

use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use super::world::{World, WorldSpec};
use super::world_billing::generate_billing;
use super::world_orders::generate_orders;

const NOW: i64 = 1_800_000_000_000;

/// SHA-256 of the world's SKUs, orders and billing for `spec`, as JSON.
fn fingerprint(spec: &WorldSpec) -> String {
    let tz: Tz = "Europe/Moscow".parse().expect("a valid time zone");
    let world = World::generate(spec);
    let orders = generate_orders(&world, NOW);
    let billing = generate_billing(&orders, spec.seed, spec.days, NOW, tz);
    let json = serde_json::json!({
        "skus": world.skus,
        "orders": orders,
        "billing_lines": billing.lines,
        "billing_orders": billing.orders,
        "drift_day": billing.drift_day.to_string(),
        "first_day": billing.first_day.to_string(),
        "order_without_charge": billing.order_without_charge,
    });
    let bytes = serde_json::to_vec(&json).expect("the world serializes");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_default_world_is_pinned() {
    assert_eq!(
        fingerprint(&WorldSpec::default()),
        "870cec7aea294bb0b501c1dcb4298d5ae0dff7fcb1bd1d029baf6c8a3a387bc8"
    );
}

#[test]
fn a_small_world_of_another_seed_is_pinned() {
    let spec = WorldSpec {
        seed: 7,
        skus: 60,
        orders: 30,
        days: 3,
        drift: true,
    };
    assert_eq!(
        fingerprint(&spec),
        "fc5cb111107853f149b73db99e218811c00dcc443d0571b52f163b531ef6f11b"
    );
}

#[test]
fn a_world_without_drift_is_pinned() {
    let spec = WorldSpec {
        drift: false,
        ..WorldSpec::default()
    };
    assert_eq!(
        fingerprint(&spec),
        "97e8dcddf985ca8637ae061d7f3a1496473a69fcd7ed7f80a0b0e08d3a110381"
    );
}
