//! `sverka sandbox`: the sandbox servers as a standalone process, with a
//! seeded world, for trying sverka (or curl) against them.

use anyhow::{Context as _, Result};
use std::time::Duration;

use crate::db::Db;
use crate::shop::{Queries, Shop};

use super::world::{World, WorldSpec};
use super::{world_billing, world_orders, SandboxOptions, SandboxSet};

/// What `sverka sandbox` was asked for: the world, the ports and the realism knobs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Random seed of the generated world.
    pub seed: u64,
    /// SKUs.
    pub skus: usize,
    /// Orders.
    pub orders: usize,
    /// Days of billing history.
    pub days: u32,
    /// First port (IMSKLAD; RetailCRM, EGON, IMSHOP take the next ones). 0 = any free ports.
    pub port: u16,
    /// Added latency per request, milliseconds.
    pub latency_ms: u64,
    /// Also write the matching shop database to this URL.
    pub write_shop: Option<String>,
    /// Also write the goods id mapping into this state database URL.
    pub write_state: Option<String>,
    /// Every sandbox strictness switch on its strict reading.
    pub strict: bool,
    /// Lift the vendors' rate limits.
    pub no_rate_limit: bool,
    /// Leave out the SKUs the WMS does not know yet.
    pub established: bool,
}

/// Starts the servers, prints their URLs and keys, and serves until Ctrl-C / SIGTERM.
pub async fn run(
    args: &ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<u8> {
    let spec = WorldSpec {
        seed: args.seed,
        skus: args.skus,
        orders: args.orders,
        days: args.days,
        drift: true,
    };
    let world = generate_world(args, &spec);
    let set = SandboxSet::start(&SandboxOptions {
        seed: args.seed,
        port: args.port,
        latency: Duration::from_millis(args.latency_ms),
        rate_limits: !args.no_rate_limit,
        strict: args.strict,
    })
    .await
    .context("starting the sandbox servers")?;
    world.seed_servers(&set)?;
    // The world's orders, and the warehouse's billing for them over `--days`
    // (its drift on yesterday, in the default time zone).
    let now = crate::db::now_ms();
    let orders = world_orders::generate_orders(&world, now);
    world_orders::seed_orders(&set, &orders).await?;
    let tz = crate::config::Config::default().tz();
    let billing = world_billing::generate_billing(&orders, spec.seed, spec.days, now, tz);
    world_billing::seed_billing(&set, &billing);
    write_databases(args, &world, &set, &orders, &billing).await?;
    print_banner(&spec, &set, orders.len(), &billing);
    print_sample_calls(&set);
    println!("Ctrl-C stops it.");
    shutdown.await;
    set.stop().await;
    Ok(0)
}

/// The seeded world; `--established` leaves out the SKUs the WMS does not know yet.
fn generate_world(args: &ServeOptions, spec: &WorldSpec) -> World {
    let mut world = World::generate(spec);
    if args.established {
        world.skus.retain(|s| {
            !matches!(
                s.drift,
                super::world::StockDrift::MissingInWms | super::world::StockDrift::Unmapped
            )
        });
    }
    world
}

/// Writes the matching shop database (`--write-shop`) and the id mappings
/// (`--write-state`) when asked for.
async fn write_databases(
    args: &ServeOptions,
    world: &World,
    set: &SandboxSet,
    orders: &[world_orders::WorldOrder],
    billing: &world_billing::WorldBilling,
) -> Result<()> {
    if let Some(url) = &args.write_shop {
        let shop = Shop::new(Db::connect(url).await?, Queries::builtin());
        world.write_shop(&shop).await?;
        world_orders::write_shop_orders(&shop, orders).await?;
        world_billing::write_shop_billing(&shop, billing).await?;
        println!(
            "shop database written to {}",
            crate::secret::redact_url(url)
        );
    }
    if let Some(url) = &args.write_state {
        let state = Db::connect_state(url).await?;
        world.write_mapping(&state, set).await?;
        world_orders::write_order_mapping(&state, set, orders).await?;
        println!(
            "goods mapping written to {}",
            crate::secret::redact_url(url)
        );
    }
    Ok(())
}

/// What was seeded, and each server's URL and keys.
fn print_banner(
    spec: &WorldSpec,
    set: &SandboxSet,
    orders: usize,
    billing: &world_billing::WorldBilling,
) {
    let k = &set.keys;
    println!(
        "sverka sandbox: {} SKUs, {} orders, {} billing operations from {} to {}, seed {}",
        spec.skus,
        orders,
        billing.lines.len(),
        billing.first_day,
        billing.drift_day,
        spec.seed
    );
    println!(
        "  IMSKLAD    {}   key {}  storage_id {}",
        set.urls.imsklad, k.imsklad_key, k.imsklad_storage_id
    );
    println!(
        "  RetailCRM  {}/api/v5   X-API-KEY {}  site {}  store {}",
        set.urls.retailcrm, k.retailcrm_key, k.retailcrm_site, k.retailcrm_store
    );
    println!(
        "  EGON       {}   auth_id {}  auth_key {}  auth_token {}",
        set.urls.egon, k.egon_auth_id, k.egon_auth_key, k.egon_auth_token
    );
    println!("  IMSHOP     {}   Bearer {}", set.urls.imshop, k.imshop_key);
}

/// Sample curl calls against the seeded IMSKLAD and RetailCRM.
fn print_sample_calls(set: &SandboxSet) {
    let k = &set.keys;
    // The first goods the seeded IMSKLAD knows, so the sample call answers rows.
    let sample_ids: Vec<String> = {
        let wms = set.imsklad.lock();
        let mut ids: Vec<i64> = wms.goods().map(|g| g.wms_id).collect();
        ids.sort_unstable();
        ids.iter().take(3).map(i64::to_string).collect()
    };
    println!("try:");
    println!(
        "  curl -s -X POST {} -H 'Content-Type: application/json' -d '{{\"key\":\"{}\",\"type\":\"goods\",\"action\":\"get_stock\",\"data\":{{\"storage_id\":{},\"ids\":[{}]}}}}'",
        set.urls.imsklad,
        k.imsklad_key,
        k.imsklad_storage_id,
        sample_ids.join(",")
    );
    // `-g`: curl would otherwise read the brackets of `filter[details]` as a glob.
    println!(
        "  curl -sg '{}/api/v5/store/inventories?limit=20&filter[details]=1' -H 'X-API-KEY: {}'",
        set.urls.retailcrm, k.retailcrm_key
    );
}
