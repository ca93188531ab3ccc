//! Test helpers: a fresh database per test on each engine, and [`TestWorld`],
//! the one harness black-box tests build their world with (sandbox servers
//! seeded with a generated world, shop and state databases, configuration,
//! optionally the callback listener on port 0).
//!
//! SQLite always runs (a file in a temp dir). PostgreSQL and MySQL/MariaDB run
//! when `SVERKA_TEST_POSTGRES_URL` / `SVERKA_TEST_MYSQL_URL` name a server the
//! tests may create databases on (`.ci/run` sets both); otherwise those cases
//! print why they were skipped.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use sverka::config::{Config, WmsKind};
use sverka::connectors::http::HttpPolicy;
use sverka::db::{with_database, Db, Dialect};
use sverka::jobs::Context;
use sverka::listener::{ListenerSettings, ListenerState};
use sverka::sandbox::common::any_local_port;
use sverka::sandbox::world::{World, WorldSpec};
use sverka::sandbox::world_orders::{self as wo, WorldOrder};
use sverka::sandbox::{SandboxOptions, SandboxSet};
use sverka::secret::Secret;
use sverka::server::RunningServer;
use sverka::shop::{Queries, Shop};

/// A database created for one test; `drop_db` removes it.
pub struct TestDb {
    /// The URL of the fresh database.
    pub url: String,
    admin_url: Option<String>,
    name: String,
    dialect: Dialect,
    _dir: Option<tempfile::TempDir>,
}

/// The engines a database test should run on, each with a fresh database.
pub async fn engines(test: &str) -> Vec<TestDb> {
    let mut out = vec![sqlite()];
    for (var, dialect) in [
        ("SVERKA_TEST_POSTGRES_URL", Dialect::Postgres),
        ("SVERKA_TEST_MYSQL_URL", Dialect::MySql),
    ] {
        match std::env::var(var) {
            Ok(admin) if !admin.is_empty() => match server_db(&admin, dialect).await {
                Ok(db) => out.push(db),
                Err(e) => panic!("{var} is set but unusable: {e}"),
            },
            _ => crate::optional::skip(
                &format!("{test} on {}", dialect.name()),
                &format!("set {var} to run it against a real server"),
            ),
        }
    }
    out
}

/// A fresh SQLite database file.
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("test.db");
    TestDb {
        url: format!("sqlite://{}", path.display()),
        admin_url: None,
        name: String::new(),
        dialect: Dialect::Sqlite,
        _dir: Some(dir),
    }
}

fn unique_name() -> String {
    format!(
        "sverka_t_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .get(..10)
            .unwrap_or("x")
    )
}

async fn server_db(admin: &str, dialect: Dialect) -> Result<TestDb, String> {
    let name = unique_name();
    let db = Db::connect(admin).await.map_err(|e| e.to_string())?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(db.pool())
        .await
        .map_err(|e| e.to_string())?;
    db.close().await;
    Ok(TestDb {
        url: with_database(admin, &name),
        admin_url: Some(admin.to_string()),
        name,
        dialect,
        _dir: None,
    })
}

impl TestDb {
    /// A database the caller made (nothing is dropped).
    pub fn at(url: &str) -> TestDb {
        TestDb {
            url: url.to_string(),
            admin_url: None,
            name: String::new(),
            dialect: Dialect::from_url(url).unwrap_or(Dialect::Sqlite),
            _dir: None,
        }
    }

    /// Engine name.
    pub fn engine(&self) -> &'static str {
        self.dialect.name()
    }

    /// Removes the database (server engines); SQLite's temp dir goes with `self`.
    pub async fn drop_db(self) {
        if let Some(admin) = &self.admin_url {
            if let Ok(db) = Db::connect(admin).await {
                let sql = match self.dialect {
                    Dialect::Postgres => {
                        format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)
                    }
                    _ => format!("DROP DATABASE IF EXISTS {}", self.name),
                };
                let _ = sqlx::query(&sql).execute(db.pool()).await;
                db.close().await;
            }
        }
    }
}

/// What a [`TestWorld`] holds besides the catalogue.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    /// The generated world.
    pub spec: WorldSpec,
    /// The warehouse the configuration names.
    pub wms: WmsKind,
    /// The sandbox servers' knobs.
    pub sandbox: SandboxOptions,
    /// The state database; a SQLite file in the world's folder when `None`.
    pub state_url: Option<String>,
    /// Write the SKU ↔ WMS id mapping into the state database.
    pub sku_mapping: bool,
    /// Generate the world's orders and load them into the sandboxes and the
    /// shop (and, for IMSKLAD, the order mapping).
    pub orders: bool,
    /// With `orders` on IMSKLAD: write the order ↔ WMS id mapping too.
    pub order_mapping: bool,
    /// Start the callback listener (port 0) on the state and shop databases.
    pub listener: bool,
    /// The listener's settings, instead of the sandbox's callback keys.
    pub listener_settings: Option<ListenerSettings>,
    /// Write the world's catalogue into the shop; else the shop only gets
    /// its reference schema (the test seeds its own rows).
    pub shop_seed: bool,
}

impl WorldOptions {
    /// A world of `spec` on `wms`, with the SKU mapping, no orders, no listener.
    pub fn new(spec: WorldSpec, wms: WmsKind) -> Self {
        WorldOptions {
            spec,
            wms,
            sandbox: SandboxOptions::default(),
            state_url: None,
            sku_mapping: true,
            orders: false,
            order_mapping: true,
            listener: false,
            listener_settings: None,
            shop_seed: true,
        }
    }

    /// A world with no catalogue and no mapping (the shop gets only its
    /// reference schema): for a test that seeds the vendors and the shop itself.
    pub fn empty() -> Self {
        let spec = WorldSpec {
            skus: 0,
            orders: 0,
            ..WorldSpec::default()
        };
        WorldOptions {
            sku_mapping: false,
            shop_seed: false,
            ..WorldOptions::new(spec, WmsKind::Imsklad)
        }
    }

    /// The world of a test that talks to the listener alone: [`Self::empty`]
    /// with the listener started with `settings`.
    pub fn listener_only(settings: ListenerSettings) -> Self {
        WorldOptions {
            listener: true,
            listener_settings: Some(settings),
            ..WorldOptions::empty()
        }
    }
}

/// A whole test world: the four sandbox servers seeded with a generated
/// world, the shop database written from it, a migrated state database, a
/// configuration pointing at all of them (`max_change_share` 0.9), and
/// optionally the listener. Request logs are cleared before it is handed out.
pub struct TestWorld {
    /// The sandbox servers.
    pub set: SandboxSet,
    /// The generated world.
    pub world: World,
    /// Its orders (empty unless [`WorldOptions::orders`]).
    pub orders: Vec<WorldOrder>,
    /// The world's "now" (Unix ms) the orders were generated at.
    pub now: i64,
    /// The configuration for jobs.
    pub config: Config,
    /// The state database.
    pub state: Db,
    /// The shop database.
    pub shop: Shop,
    /// The listener, when asked for.
    pub listener: Option<RunningServer>,
    /// The world's folder (state database, reports).
    pub dir: tempfile::TempDir,
}

impl TestWorld {
    /// Builds the world described by `opts` on the shop database `shop_db`.
    pub async fn spawn(shop_db: &TestDb, opts: WorldOptions) -> TestWorld {
        let dir = tempfile::tempdir().expect("temp dir");
        let set = SandboxSet::start(&opts.sandbox).await.expect("sandbox");
        let world = World::generate(&opts.spec);
        world.seed_servers(&set).expect("seed servers");
        let now = sverka::db::now_ms();
        let orders = if opts.orders {
            let orders = wo::generate_orders(&world, now);
            wo::seed_orders(&set, &orders).await.expect("seed orders");
            orders
        } else {
            Vec::new()
        };
        let state_url = opts
            .state_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("state.db").display()));
        let mut config = set.config(
            &state_url,
            &shop_db.url,
            &dir.path().join("reports"),
            opts.wms,
        );
        config.safety.max_change_share = 0.9;
        let shop = Shop::new(
            Db::connect(&shop_db.url).await.expect("shop db"),
            Queries::builtin(),
        );
        if opts.shop_seed {
            world.write_shop(&shop).await.expect("write shop");
        } else {
            shop.create_reference_schema().await.expect("shop schema");
        }
        let state = Db::connect_state(&state_url).await.expect("state db");
        if opts.sku_mapping {
            world.write_mapping(&state, &set).await.expect("mapping");
        }
        if opts.orders {
            wo::write_shop_orders(&shop, &orders)
                .await
                .expect("write orders");
            if opts.wms == WmsKind::Imsklad && opts.order_mapping {
                wo::write_order_mapping(&state, &set, &orders)
                    .await
                    .expect("order mapping");
            }
        }
        let listener = match (opts.listener, opts.listener_settings.clone()) {
            (false, _) => None,
            (true, None) => Some(spawn_listener(&set, &state, &shop).await),
            (true, Some(settings)) => Some(spawn_listener_with(settings, &state, &shop).await),
        };
        let w = TestWorld {
            set,
            world,
            orders,
            now,
            config,
            state,
            shop,
            listener,
            dir,
        };
        w.clear_requests();
        w
    }

    /// Forgets the requests every sandbox server has recorded.
    pub fn clear_requests(&self) {
        self.set.imsklad.control.clear_requests();
        self.set.retailcrm.control.clear_requests();
        self.set.egon.control.clear_requests();
        self.set.imshop.control.clear_requests();
    }

    /// The listener's URL (panics when the world has none).
    pub fn listener_url(&self) -> &str {
        &self.listener.as_ref().expect("a world with a listener").url
    }
}

/// A listener-only [`TestWorld`] ([`WorldOptions::listener_only`]) on a fresh
/// SQLite shop, with its listener taken out for the test to drive.
pub struct ListenerWorld {
    /// The listener.
    pub server: RunningServer,
    /// The world around it (state database, shop, sandbox).
    pub world: TestWorld,
    /// The shop database the world writes.
    pub shop_db: TestDb,
}

impl ListenerWorld {
    /// The listener on `settings`, the state database at `state_url` (a
    /// SQLite file in the world's folder when `None`).
    pub async fn spawn(state_url: Option<&str>, settings: ListenerSettings) -> ListenerWorld {
        let shop_db = sqlite();
        let mut world = TestWorld::spawn(
            &shop_db,
            WorldOptions {
                state_url: state_url.map(str::to_string),
                ..WorldOptions::listener_only(settings)
            },
        )
        .await;
        let server = world.listener.take().expect("the world's listener");
        ListenerWorld {
            server,
            world,
            shop_db,
        }
    }
}

/// An HTTP policy for tests: two attempts, short back-off and timeout.
pub fn fast_http() -> HttpPolicy {
    HttpPolicy {
        max_attempts: 2,
        base_backoff: Duration::from_millis(20),
        timeout: Duration::from_secs(5),
        ..HttpPolicy::default()
    }
}

/// An HTTP policy for connector tests that talk to one sandbox directly:
/// three attempts, millisecond back-off, 3 s timeout (tests of timeouts set
/// their own).
pub fn client_policy() -> HttpPolicy {
    HttpPolicy {
        timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        max_attempts: 3,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
    }
}

/// A job context on `config` with [`fast_http`].
pub async fn context(config: &Config, dry_run: bool, force: bool) -> Context {
    let mut ctx = Context::open(config, &crate::stock::global(dry_run), force)
        .await
        .expect("context");
    let fast = fast_http();
    ctx.http.max_attempts = fast.max_attempts;
    ctx.http.base_backoff = fast.base_backoff;
    ctx.http.timeout = fast.timeout;
    ctx
}

/// The callback listener on port 0 with the sandbox's callback keys.
pub async fn spawn_listener(set: &SandboxSet, state: &Db, shop: &Shop) -> RunningServer {
    let settings = ListenerSettings {
        imsklad_callback_key: Secret::new(set.keys.imsklad_callback_key.as_str()),
        egon_auth_id: set.keys.egon_auth_id.clone(),
        egon_auth_key: Secret::new(set.keys.egon_auth_key.as_str()),
        ..ListenerSettings::default()
    };
    spawn_listener_with(settings, state, shop).await
}

/// The callback listener on port 0 with `settings`.
pub async fn spawn_listener_with(
    settings: ListenerSettings,
    state: &Db,
    shop: &Shop,
) -> RunningServer {
    sverka::listener::spawn(
        ListenerState {
            settings: Arc::new(settings),
            state_db: state.clone(),
            shop: shop.clone(),
        },
        any_local_port(),
    )
    .await
    .expect("listener")
}
