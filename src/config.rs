//! Configuration: built-in defaults, then a TOML file, then environment
//! overrides `SVERKA_<SECTION>__<KEY>` — validated at start with errors that
//! name the key and where it came from.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// How long a statement waits for a row or table lock before it fails
/// (PostgreSQL `lock_timeout`, MySQL `innodb_lock_wait_timeout` and
/// `lock_wait_timeout`; SQLite waits `busy_timeout`). Not a statement
/// timeout: reading a million rows is legitimate; waiting forever on a lock
/// somebody forgot is not, as the job holds its job lock meanwhile.
pub const DEFAULT_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The database kind a URL's scheme names: `sqlite`, `postgres` (also
/// `postgresql://`) or `mysql` (also `mariadb://`); `None` for any other scheme.
pub fn database_scheme(url: &str) -> Option<&'static str> {
    let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Some("sqlite"),
        "postgres" | "postgresql" => Some("postgres"),
        "mysql" | "mariadb" => Some("mysql"),
        _ => None,
    }
}

/// Where a configuration problem came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The TOML file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// Built-in defaults (no file).
    Defaults,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Defaults => f.write_str("built-in defaults"),
        }
    }
}

/// A configuration error: which key, where, what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key has a bad value, is unknown, or is missing.
    #[error("{origin}: `{key}`: {message}")]
    Key {
        /// Where it came from.
        origin: Origin,
        /// Dotted key, e.g. `safety.max_change_share`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// The dotted key this error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Key { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Which warehouse the shop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WmsKind {
    /// IMSKLAD.
    Imsklad,
    /// iSklad EGON.
    Egon,
}

/// How CSV reports are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CsvDialect {
    /// RFC 4180: commas, `.` decimals, no BOM.
    #[default]
    Rfc4180,
    /// For a Russian Excel: `;` separators, a UTF-8 BOM, decimal commas.
    ExcelRu,
}

/// Which offer field in RetailCRM carries the shop SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
pub enum OfferKeyField {
    /// `externalId`
    #[default]
    #[serde(rename = "externalId")]
    ExternalId,
    /// `xmlId`
    #[serde(rename = "xmlId")]
    XmlId,
}

/// `[imsklad] carrier_export`: who exports orders to CDEK / BoxBerry when
/// IMSKLAD asks the shop to (`send_to_cdek`, `send_to_boxberry`, `send_act_to_boxberry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CarrierExport {
    /// Nobody on the shop's side: sverka journals the request, reports it
    /// (`carrier_export_requested`) and answers IMSKLAD's error code 4.
    #[default]
    Refuse,
    /// Another system of the shop does it: sverka journals and answers ok.
    Elsewhere,
}

/// `[imsklad] order_goods_id`: which id goes into `goods[].id` of
/// `add_order` / `update_order` (UNVERIFIED: the IMSKLAD API documentation says the partner's id,
/// typed Int).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OrderGoodsId {
    /// The shop SKU (an integer when it is one, else a string).
    #[default]
    Partner,
    /// The mapped WMS goods id (an integer).
    Wms,
}

/// `[stock] lookup_unmapped`: how a shop SKU without a WMS id mapping is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LookupUnmapped {
    /// Ask IMSKLAD with `update_good` (sending the full product record; this
    /// writes the WMS catalogue).
    #[default]
    UpdateGood,
    /// Only report it (map it with `sverka map import`).
    Report,
}

/// `[imshop] hook_auth`: whether the scan and history hooks require a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HookAuth {
    /// `[imshop] hook_key` as a bearer token, a body `key` or a `key` query
    /// parameter; an empty `hook_key` closes the hooks.
    #[default]
    Key,
    /// No credential (for setups restricted by IP); must be set explicitly.
    None,
}

/// `[imshop] push_key`: where the key goes on status pushes (UNVERIFIED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PushKey {
    /// `Authorization: Bearer <key>`.
    #[default]
    Bearer,
    /// A `key` field of the JSON body.
    Body,
    /// Both.
    Both,
}

impl PushKey {
    /// The key goes in an `Authorization: Bearer` header.
    pub fn in_header(self) -> bool {
        self != PushKey::Body
    }

    /// The key goes in a `key` field of the JSON body.
    pub fn in_body(self) -> bool {
        self != PushKey::Bearer
    }
}

/// The default `[retailcrm] call_points` (UNVERIFIED: no public source lists
/// the values RetailCRM accepts).
pub const DEFAULT_CALL_POINTS: [&str; 2] = ["order.create", "order.edit"];

/// The default `[egon] timezone` of `change_timestamp` / `changed_at` (UNVERIFIED).
pub const DEFAULT_EGON_TIMEZONE: &str = "Europe/Bratislava";

/// `[state]`: sverka's own database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSection {
    /// Database URL (`sqlite://…`, `postgres://…`, `mysql://…`).
    pub database_url: Secret,
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            database_url: Secret::new("sqlite://sverka-state.db"),
        }
    }
}

/// `[shop]`: the shop's database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShopSection {
    /// Database URL.
    pub database_url: Secret,
    /// Folder with adapted copies of `sql/shop/*.sql` (missing files fall back to the built-ins).
    pub queries_dir: Option<PathBuf>,
    /// Seconds a shop statement waits for a row lock before it fails
    /// (PostgreSQL / MySQL; default 60). A lock somebody holds for ever
    /// must not hold the job, and its job lock, for ever.
    pub lock_timeout_secs: u64,
}

impl Default for ShopSection {
    fn default() -> Self {
        ShopSection {
            database_url: Secret::new("sqlite://shop.db"),
            queries_dir: None,
            lock_timeout_secs: DEFAULT_LOCK_TIMEOUT.as_secs(),
        }
    }
}

/// `[wms]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WmsSection {
    /// `imsklad` or `egon`.
    pub kind: WmsKind,
}

impl Default for WmsSection {
    fn default() -> Self {
        WmsSection {
            kind: WmsKind::Imsklad,
        }
    }
}

/// `[imsklad]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImskladSection {
    /// API endpoint, e.g. `http://client.imsklad.ru:7000/`.
    pub url: String,
    /// API key.
    pub key: Secret,
    /// Storage id (1 today).
    pub storage_id: i64,
    /// Key IMSKLAD sends with its callbacks to sverka.
    pub callback_key: Secret,
    /// Goods ids per get_stock call.
    pub stock_batch: usize,
    /// get_stock calls in flight at once.
    pub concurrency: usize,
    /// Who exports orders to carriers when IMSKLAD asks (`refuse` | `elsewhere`).
    pub carrier_export: CarrierExport,
    /// Which id order lines carry (`partner` | `wms`, UNVERIFIED).
    pub order_goods_id: OrderGoodsId,
}

impl Default for ImskladSection {
    fn default() -> Self {
        ImskladSection {
            url: String::new(),
            key: Secret::default(),
            storage_id: 1,
            callback_key: Secret::default(),
            stock_batch: 500,
            concurrency: 4,
            carrier_export: CarrierExport::Refuse,
            order_goods_id: OrderGoodsId::Partner,
        }
    }
}

/// `[egon]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgonSection {
    /// API endpoint, e.g. `https://api.isklad.com/rest/v1`.
    pub url: String,
    /// auth_id.
    pub auth_id: String,
    /// auth_key.
    pub auth_key: Secret,
    /// auth_token.
    pub auth_token: Secret,
    /// Time zone of EGON's `change_timestamp` and `changed_at` (UNVERIFIED;
    /// default Europe/Bratislava, iSklad being Slovak).
    pub timezone: String,
}

impl Default for EgonSection {
    fn default() -> Self {
        EgonSection {
            url: String::new(),
            auth_id: String::new(),
            auth_key: Secret::default(),
            auth_token: Secret::default(),
            timezone: DEFAULT_EGON_TIMEZONE.into(),
        }
    }
}

impl EgonSection {
    /// The configured time zone (validated at load).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone
            .parse()
            .unwrap_or(chrono_tz::Europe::Bratislava)
    }
}

/// `[retailcrm]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetailCrmSection {
    /// Account URL, e.g. `https://shop.retailcrm.ru`.
    pub url: String,
    /// API key.
    pub api_key: Secret,
    /// Site code (multi-shop keys).
    pub site: Option<String>,
    /// Store (warehouse) code whose quantities sverka keeps.
    pub store: String,
    /// Offer field that carries the shop SKU.
    pub offer_key: OfferKeyField,
    /// Integration module code sverka registers as.
    pub module_code: String,
    /// `clientId` RetailCRM sends back with its callbacks.
    pub client_id: Secret,
    /// Requests per second (RetailCRM allows 10 per key).
    pub rate_per_sec: usize,
    /// `integrationCode` of the module (the module `code` must start with it;
    /// default: `module_code`).
    pub integration_code: Option<String>,
    /// `callPoints` of the `inventoriesUpload` action (UNVERIFIED values).
    pub call_points: Vec<String>,
    /// Logo URL shown in the CRM's marketplace (optional).
    pub logo: Option<String>,
}

impl RetailCrmSection {
    /// The module's `integrationCode`: the configured one, else the module code.
    pub fn integration_code(&self) -> String {
        self.integration_code
            .clone()
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| self.module_code.clone())
    }
}

impl Default for RetailCrmSection {
    fn default() -> Self {
        RetailCrmSection {
            url: String::new(),
            api_key: Secret::default(),
            site: None,
            store: "main".into(),
            offer_key: OfferKeyField::ExternalId,
            module_code: "sverka".into(),
            client_id: Secret::default(),
            rate_per_sec: 10,
            integration_code: None,
            call_points: DEFAULT_CALL_POINTS.iter().map(|s| s.to_string()).collect(),
            logo: None,
        }
    }
}

/// `[imshop]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImshopSection {
    /// URL IMSHOP issued for asynchronous scan-status updates (it may carry
    /// a token, so it is held like a key and never printed).
    pub update_url: Secret,
    /// Key for that URL.
    pub key: Secret,
    /// Key IMSHOP sends with its hooks to sverka.
    pub hook_key: Secret,
    /// A scan still `processing` this many minutes after its last change is
    /// reported as stuck by `reconcile scans` (default 60).
    pub stuck_minutes: u64,
    /// Whether the hooks require `hook_key` (`key`) or no credential (`none`).
    pub hook_auth: HookAuth,
    /// Where the key goes on status pushes (`bearer` | `body` | `both`, UNVERIFIED).
    pub push_key: PushKey,
}

impl Default for ImshopSection {
    fn default() -> Self {
        ImshopSection {
            update_url: Secret::default(),
            key: Secret::default(),
            hook_key: Secret::default(),
            stuck_minutes: 60,
            hook_auth: HookAuth::Key,
            push_key: PushKey::Bearer,
        }
    }
}

/// `[listener]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerSection {
    /// Address `sverka serve` binds.
    pub bind: SocketAddr,
    /// Largest accepted callback body, bytes.
    pub max_body_bytes: usize,
    /// Seconds a client has to send a request's headers (also the idle
    /// keep-alive limit); default 10.
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body; default 30.
    pub body_timeout_secs: u64,
    /// Open connections at most; more wait in the kernel's accept queue. Default 512.
    pub max_connections: usize,
    /// Seconds requests in flight get to finish on shutdown (SIGTERM) before
    /// their connections are closed; default 30.
    pub shutdown_grace_secs: u64,
}

impl Default for ListenerSection {
    fn default() -> Self {
        ListenerSection {
            bind: SocketAddr::from(([127, 0, 0, 1], 8088)),
            max_body_bytes: 1024 * 1024,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_connections: 512,
            shutdown_grace_secs: 30,
        }
    }
}

/// `[reports]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsSection {
    /// Output folder.
    pub dir: PathBuf,
    /// CSV dialect.
    pub dialect: CsvDialect,
}

impl Default for ReportsSection {
    fn default() -> Self {
        ReportsSection {
            dir: PathBuf::from("reports"),
            dialect: CsvDialect::Rfc4180,
        }
    }
}

/// `[safety]`: guards that stop a run before it writes anything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetySection {
    /// Largest share of SKUs a stock plan may change (0–1).
    pub max_change_share: f64,
    /// Smallest share of mapped SKUs the WMS must report (0–1).
    pub min_wms_coverage: f64,
    /// Largest drop of total sellable stock since the last successful run (0–1).
    pub max_stock_drop_share: f64,
    /// Below this many SKUs (stock: the SKUs the WMS should report) or orders
    /// (orders: the window's), a share says little (one order of one is
    /// 100%): the change guard counts instead, see `small_max_changes`.
    pub small_below: usize,
    /// Under `small_below`, the most SKUs or orders a plan may change.
    pub small_max_changes: usize,
    /// The most SKUs one stock run may register or look up in the WMS
    /// (`update_good` / `add_good`): more means a first run or a lost
    /// mapping, which stops the run until `--force`.
    pub max_registrations: usize,
}

impl Default for SafetySection {
    fn default() -> Self {
        SafetySection {
            max_change_share: 0.5,
            min_wms_coverage: 0.9,
            max_stock_drop_share: 0.5,
            small_below: 40,
            small_max_changes: 20,
            max_registrations: 200,
        }
    }
}

impl SafetySection {
    /// The change guard's verdict for a plan changing `changed` of `base`
    /// SKUs or orders (`what` names them in the message): a share above
    /// `max_change_share`, or, below `small_below`, more than
    /// `small_max_changes`. A plan changing anything of an empty base trips it.
    pub fn change_guard(&self, changed: usize, base: usize, what: &str) -> Option<String> {
        if changed == 0 {
            return None;
        }
        if base == 0 {
            return Some(format!(
                "the plan would change {changed} {what} of none read; refusing to write"
            ));
        }
        if base < self.small_below {
            return (changed > self.small_max_changes).then(|| {
                format!(
                    "the plan would change {changed} of {base} {what}, above [safety] small_max_changes = {} (a guard by count below [safety] small_below = {} {what})",
                    self.small_max_changes, self.small_below
                )
            });
        }
        let share = changed as f64 / base as f64;
        (share > self.max_change_share).then(|| {
            format!(
                "the plan would change {changed} of {base} {what} ({:.1}%), above [safety] max_change_share = {:.1}%",
                share * 100.0,
                self.max_change_share * 100.0
            )
        })
    }
}

/// `[stock]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StockSection {
    /// Register shop SKUs unknown to the WMS with add_good.
    pub create_missing_in_wms: bool,
    /// Hours before a SKU the WMS did not know is looked up again.
    pub recheck_missing_hours: i64,
    /// How unmapped shop SKUs are handled (`update_good` | `report`).
    pub lookup_unmapped: LookupUnmapped,
    /// `full` reads every CRM inventory page; `delta` only the offers whose
    /// WMS figure or shop cost moved since what the CRM is known to hold.
    pub mode: StockMode,
    /// Compare and upload cost prices (`cost_kop` of `stock_select.sql`
    /// against the store's `purchasePrice`); unset: whenever the query
    /// returns a cost.
    pub sync_cost: Option<bool>,
    /// A delta run runs as a full one when no full run succeeded within this
    /// many hours.
    pub full_every_hours: i64,
    /// A cost-only fix also sends `available` (the WMS sellable): for a CRM
    /// that refuses a store entry without it (UNVERIFIED).
    pub cost_with_available: bool,
    /// The filter a delta run reads moved offers with first (`ids`: the CRM
    /// offer ids of the last full read; `offer_key`: the configured key's
    /// list); the other one is the fallback.
    pub delta_read: DeltaRead,
}

/// `[stock] delta_read`: the filter a delta run tries first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeltaRead {
    /// `filter[ids][]` (250 ids fit a URL under 8 KB).
    #[default]
    Ids,
    /// `filter[offerExternalId][]` / `filter[offerXmlId][]`.
    OfferKey,
}

impl Default for StockSection {
    fn default() -> Self {
        StockSection {
            create_missing_in_wms: false,
            recheck_missing_hours: 24,
            lookup_unmapped: LookupUnmapped::UpdateGood,
            mode: StockMode::Full,
            sync_cost: None,
            full_every_hours: 24,
            cost_with_available: false,
            delta_read: DeltaRead::Ids,
        }
    }
}

/// `[stock] mode`: how a stock run reads RetailCRM.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum StockMode {
    /// Every inventory page of the store.
    #[default]
    Full,
    /// Only the offers whose WMS sellable or shop cost moved since the
    /// known state (the last full read plus acknowledged uploads).
    Delta,
}

impl StockMode {
    /// The name as written in the configuration and the run summary.
    pub fn as_str(self) -> &'static str {
        match self {
            StockMode::Full => "full",
            StockMode::Delta => "delta",
        }
    }
}

/// `[orders]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrdersSection {
    /// Days back from now that the window covers.
    pub window_days: i64,
    /// Hours without WMS progress before an order is `stuck`.
    pub stuck_hours: i64,
    /// Send orders missing in the WMS with add_order / CreateNewOrder.
    pub create_missing_in_wms: bool,
    /// The status map file (WMS status → stage → CRM status); the built-in
    /// `jobs/maps/status_map.toml` when unset.
    pub status_map: Option<PathBuf>,
    /// Largest tolerated difference between order totals, kopecks.
    pub amount_tolerance_kop: i64,
    /// EGON: ask `GetOrderStatus` for orders whose callback state is older than
    /// this many hours (or missing).
    pub stale_hours: i64,
    /// EGON `shop_setting_id` sent with `CreateNewOrder` and `StornoOrder`.
    pub egon_shop_setting_id: Option<i64>,
    /// EGON transport id (`id_delivery`) for orders sverka creates.
    pub egon_delivery_id: Option<i64>,
    /// Public URL of `sverka serve`, registered as the RetailCRM module's
    /// `baseUrl`: absolute, and https unless its host is loopback. Without it
    /// the module is registered without the `inventoriesUpload` callback.
    pub listener_url: Option<String>,
}

impl Default for OrdersSection {
    fn default() -> Self {
        OrdersSection {
            window_days: 30,
            stuck_hours: 48,
            create_missing_in_wms: false,
            status_map: None,
            amount_tolerance_kop: 100,
            stale_hours: 6,
            egon_shop_setting_id: None,
            egon_delivery_id: None,
            listener_url: None,
        }
    }
}

impl OrdersSection {
    /// The RetailCRM module's `baseUrl` from `listener_url`: `Ok(None)` when it
    /// is not set, an error naming the problem when it is not absolute or is
    /// plain http on a host that is not loopback (RetailCRM's cloud cannot call
    /// a private address, and the callback carries the account's `clientId`).
    pub fn module_base_url(&self) -> Result<Option<String>, String> {
        let Some(raw) = self.listener_url.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if raw.is_empty() {
            return Ok(None);
        }
        let url = reqwest::Url::parse(raw)
            .map_err(|e| format!("`{raw}` is not an absolute URL ({e})"))?;
        let host = url.host_str().unwrap_or_default();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_host(host) => {}
            "http" => {
                return Err(format!(
                    "`{raw}` is plain http on `{host}`: use https (http is only for a loopback host, as in the demo and tests)"
                ))
            }
            other => return Err(format!("`{raw}`: scheme `{other}` is not http(s)")),
        }
        if host.is_empty() {
            return Err(format!("`{raw}` has no host"));
        }
        Ok(Some(raw.trim_end_matches('/').to_owned()))
    }
}

/// True for `localhost`, 127.0.0.0/8 and `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One expected charge of the billing tariff table (`[[billing.tariff]]`).
///
/// Amounts are written in roubles, as a string (`"45.00"`, `"1 250,50"`) or a
/// number (`45`, `45.5`), and kept as exact integer kopecks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingTariff {
    /// IMSKLAD operation type: 0 order assembly, 2 delivery, 9 other.
    #[serde(rename = "type")]
    pub kind: i64,
    /// The shop order's delivery type this tariff is for (none: any).
    #[serde(default)]
    pub delivery_type: Option<i64>,
    /// Expected charge, kopecks (`amount` in roubles; compared with the
    /// charge's absolute value, since IMSKLAD sends charges negative).
    #[serde(rename = "amount", deserialize_with = "de_roubles")]
    pub amount_kop: i64,
    /// Largest tolerated difference, kopecks (`tolerance` in roubles, default 0).
    #[serde(rename = "tolerance", default, deserialize_with = "de_roubles")]
    pub tolerance_kop: i64,
}

impl BillingTariff {
    fn new(kind: i64, delivery_type: Option<i64>, amount_kop: i64, tolerance_kop: i64) -> Self {
        BillingTariff {
            kind,
            delivery_type,
            amount_kop,
            tolerance_kop,
        }
    }
}

/// IMSKLAD billing operation types a tariff may name (1, a top-up, has none).
pub const TARIFF_KINDS: [i64; 3] = [0, 2, 9];

/// An amount in roubles as TOML writes it: a string or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum RoublesValue {
    Int(i64),
    Float(f64),
    Text(String),
}

/// serde: roubles (string or number, at most 2 decimals, not negative) → kopecks.
fn de_roubles<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = RoublesValue::deserialize(d)?;
    let text = match &value {
        RoublesValue::Int(v) => v.to_string(),
        RoublesValue::Float(v) => v.to_string(),
        RoublesValue::Text(t) => t.clone(),
    };
    let kop = crate::money::parse_decimal(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{text}` is not an amount in roubles with at most 2 decimals (e.g. \"45.00\")"
        ))
    })?;
    if kop < 0 {
        return Err(serde::de::Error::custom(format!(
            "`{text}` is negative: give the charge as a positive amount"
        )));
    }
    Ok(kop)
}

/// `[billing]`: billing reconciliation against IMSKLAD `get_billing`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSection {
    /// The default period: the last `window_days` complete days in the
    /// configured time zone (1 = yesterday; the scheduler's job definition
    /// may set another value).
    pub window_days: i64,
    /// Shop orders created up to this many days before the period are read
    /// with it; a charge naming an older order is looked up by id.
    pub order_lookback_days: i64,
    /// The tariff table (`[[billing.tariff]]`): the expected charge per
    /// operation type, and per delivery type for deliveries.
    #[serde(rename = "tariff")]
    pub tariffs: Vec<BillingTariff>,
}

impl BillingSection {
    /// The built-in tariff table: the sandbox warehouse's price list (set yours).
    pub fn default_tariffs() -> Vec<BillingTariff> {
        vec![
            BillingTariff::new(0, None, 4_500, 0),
            BillingTariff::new(2, Some(4), 25_000, 1_000),
            BillingTariff::new(2, Some(16), 30_000, 1_000),
            BillingTariff::new(2, Some(22), 20_000, 1_000),
            BillingTariff::new(2, Some(62), 27_000, 1_000),
            BillingTariff::new(2, Some(113), 35_000, 1_000),
        ]
    }

    /// The tariff for (operation type, delivery type), falling back to the
    /// operation type's tariff for any delivery type.
    pub fn tariff(&self, kind: i64, delivery_type: Option<i64>) -> Option<&BillingTariff> {
        let exact = delivery_type.and_then(|d| {
            self.tariffs
                .iter()
                .find(|t| t.kind == kind && t.delivery_type == Some(d))
        });
        exact.or_else(|| {
            self.tariffs
                .iter()
                .find(|t| t.kind == kind && t.delivery_type.is_none())
        })
    }
}

impl Default for BillingSection {
    fn default() -> Self {
        BillingSection {
            window_days: 1,
            order_lookback_days: 90,
            tariffs: Self::default_tariffs(),
        }
    }
}

/// `timezone = "Europe/Moscow"` or `[timezone] name = "Europe/Moscow"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TimezoneSetting {
    /// A plain IANA name.
    Name(String),
    /// A table with `name`.
    Table {
        /// IANA name.
        name: String,
    },
}

impl Default for TimezoneSetting {
    fn default() -> Self {
        TimezoneSetting::Name("Europe/Moscow".into())
    }
}

impl TimezoneSetting {
    /// The IANA name.
    pub fn name(&self) -> &str {
        match self {
            TimezoneSetting::Name(n) | TimezoneSetting::Table { name: n } => n,
        }
    }
}

/// `[http]`: how sverka talks to the vendors.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Refuse plain-`http://` vendor endpoints (default false: IMSKLAD's
    /// documented endpoint is plain http). Without it, sverka warns at
    /// start about every plain-http endpoint that is not on this machine.
    pub require_https: bool,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[state]`
    pub state: StateSection,
    /// `[shop]`
    pub shop: ShopSection,
    /// `[wms]`
    pub wms: WmsSection,
    /// `[imsklad]`
    pub imsklad: ImskladSection,
    /// `[egon]`
    pub egon: EgonSection,
    /// `[retailcrm]`
    pub retailcrm: RetailCrmSection,
    /// `[imshop]`
    pub imshop: ImshopSection,
    /// `[listener]`
    pub listener: ListenerSection,
    /// `[reports]`
    pub reports: ReportsSection,
    /// `[safety]`
    pub safety: SafetySection,
    /// `[http]`
    pub http: HttpSection,
    /// `[stock]`
    pub stock: StockSection,
    /// `[orders]`
    pub orders: OrdersSection,
    /// `[billing]`
    pub billing: BillingSection,
    /// Time zone for days and schedules.
    pub timezone: TimezoneSetting,
}

/// The longest billing period one run covers, in days (one `get_billing` call per day).
pub const MAX_BILLING_DAYS: i64 = 366;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "SVERKA_";

impl Config {
    /// Loads `path` if it exists (a missing default file means built-in
    /// defaults; a missing explicit file is an error), applies the environment
    /// overrides from `env`, and validates.
    pub fn load(
        path: &Path,
        explicit: bool,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (mut table, origin) = if path.exists() || explicit {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let table: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Syntax {
                        path: path.to_path_buf(),
                        message: e.to_string().trim().to_string(),
                    })?;
            (table, Origin::File(path.to_path_buf()))
        } else {
            (toml::Table::new(), Origin::Defaults)
        };
        // Check the file alone first, so its errors name the file.
        Self::from_table(table.clone(), &origin)?;
        let mut env_keys: Vec<(String, String)> = Vec::new();
        // Overrides are taken as the strings they are (an all-digit EGON
        // `auth_id` or key stays a string, leading zeros and all); one that a
        // key refuses as a string is given to it as the number or boolean it
        // reads as (`0.2`, `5`, `true`).
        let mut retypable: Vec<(String, String, String, toml::Value)> = Vec::new();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue;
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            if section.is_empty() || key.is_empty() {
                continue;
            }
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(sec) = entry.as_table_mut() else {
                return Err(ConfigError::Key {
                    origin: Origin::Env(var),
                    key: section,
                    message: "is not a section".into(),
                });
            };
            let typed = env_value(&value);
            if !typed.is_str() {
                retypable.push((
                    format!("{section}.{key}"),
                    section.clone(),
                    key.clone(),
                    typed,
                ));
            }
            sec.insert(key.clone(), toml::Value::String(value));
            env_keys.push((format!("{section}.{key}"), var));
        }
        let result = loop {
            match Self::from_table(table.clone(), &origin) {
                Err(ConfigError::Key { key, .. }) if retypable.iter().any(|(k, ..)| *k == key) => {
                    let pos = retypable.iter().position(|(k, ..)| *k == key).unwrap_or(0);
                    let (_, section, field, typed) = retypable.remove(pos);
                    if let Some(sec) = table.get_mut(&section).and_then(|v| v.as_table_mut()) {
                        sec.insert(field, typed);
                    }
                }
                other => break other,
            }
        };
        result.map_err(|e| match e {
            ConfigError::Key { key, message, .. } => {
                let var = env_keys
                    .iter()
                    .find(|(k, _)| key == *k || key.starts_with(&format!("{k}.")))
                    .map(|(_, v)| Origin::Env(v.clone()))
                    .unwrap_or(origin.clone());
                ConfigError::Key {
                    origin: var,
                    key,
                    message,
                }
            }
            other => other,
        })
    }

    fn from_table(table: toml::Table, origin: &Origin) -> Result<Config, ConfigError> {
        let value = toml::Value::Table(table);
        let config: Config = serde_path_to_error::deserialize(value).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                let key = e.path().to_string();
                ConfigError::Key {
                    origin: origin.clone(),
                    key: if key == "." { String::new() } else { key },
                    message: e.into_inner().message().trim().to_string(),
                }
            },
        )?;
        config.validate(origin)?;
        Ok(config)
    }

    fn validate(&self, origin: &Origin) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Key {
            origin: origin.clone(),
            key: key.into(),
            message,
        };
        for (key, url) in [
            ("state.database_url", &self.state.database_url),
            ("shop.database_url", &self.shop.database_url),
        ] {
            database_scheme(url.expose()).ok_or_else(|| {
                bad(
                    key,
                    "must start with sqlite://, postgres:// or mysql://".into(),
                )
            })?;
        }
        for (key, v) in [
            ("safety.max_change_share", self.safety.max_change_share),
            ("safety.min_wms_coverage", self.safety.min_wms_coverage),
            (
                "safety.max_stock_drop_share",
                self.safety.max_stock_drop_share,
            ),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(bad(key, format!("must be between 0 and 1, got {v}")));
            }
        }
        for (key, v) in [
            (
                "listener.max_body_bytes",
                self.listener.max_body_bytes as u64,
            ),
            (
                "listener.header_timeout_secs",
                self.listener.header_timeout_secs,
            ),
            (
                "listener.body_timeout_secs",
                self.listener.body_timeout_secs,
            ),
            (
                "listener.max_connections",
                self.listener.max_connections as u64,
            ),
        ] {
            if v == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if self.imsklad.stock_batch == 0 {
            return Err(bad("imsklad.stock_batch", "must be at least 1".into()));
        }
        if self.imsklad.concurrency == 0 {
            return Err(bad("imsklad.concurrency", "must be at least 1".into()));
        }
        if self.retailcrm.rate_per_sec == 0 {
            return Err(bad("retailcrm.rate_per_sec", "must be at least 1".into()));
        }
        if self.retailcrm.store.trim().is_empty() {
            return Err(bad("retailcrm.store", "must name a store code".into()));
        }
        for (key, url) in [
            ("imsklad.url", &self.imsklad.url),
            ("egon.url", &self.egon.url),
            ("retailcrm.url", &self.retailcrm.url),
        ] {
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(key, format!("must be an http(s) URL, got `{url}`")));
            }
        }
        if self.http.require_https {
            if let Some((key, _)) = self.plain_http_endpoints().first() {
                return Err(bad(
                    key,
                    "is a plain-http URL and [http] require_https is on; use https://".into(),
                ));
            }
        }
        let update_url = self.imshop.update_url.expose();
        if !(update_url.is_empty()
            || update_url.starts_with("http://")
            || update_url.starts_with("https://"))
        {
            // Not echoed: the URL may carry a token.
            return Err(bad(
                "imshop.update_url",
                "must be an http(s) URL (the value is not shown: it may carry a token)".into(),
            ));
        }
        if self.stock.full_every_hours <= 0 {
            return Err(bad("stock.full_every_hours", "must be positive".into()));
        }
        if self.stock.recheck_missing_hours < 0 {
            return Err(bad(
                "stock.recheck_missing_hours",
                "must not be negative".into(),
            ));
        }
        if self.orders.window_days <= 0 {
            return Err(bad("orders.window_days", "must be positive".into()));
        }
        if self.orders.stuck_hours <= 0 {
            return Err(bad("orders.stuck_hours", "must be positive".into()));
        }
        if self.orders.amount_tolerance_kop < 0 {
            return Err(bad(
                "orders.amount_tolerance_kop",
                "must not be negative".into(),
            ));
        }
        if self.orders.stale_hours < 0 {
            return Err(bad("orders.stale_hours", "must not be negative".into()));
        }
        if let Some(url) = &self.orders.listener_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(
                    "orders.listener_url",
                    format!("must be an http(s) URL, got `{url}`"),
                ));
            }
        }
        if self.egon.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(bad(
                "egon.timezone",
                format!(
                    "unknown time zone `{}` (use an IANA name such as Europe/Bratislava)",
                    self.egon.timezone
                ),
            ));
        }
        self.validate_billing(origin)?;
        if self.timezone.name().parse::<chrono_tz::Tz>().is_err() {
            return Err(bad(
                "timezone",
                format!(
                    "unknown time zone `{}` (use an IANA name such as Europe/Moscow)",
                    self.timezone.name()
                ),
            ));
        }
        Ok(())
    }

    fn validate_billing(&self, origin: &Origin) -> Result<(), ConfigError> {
        let bad = |key: String, message: String| ConfigError::Key {
            origin: origin.clone(),
            key,
            message,
        };
        let b = &self.billing;
        if !(1..=MAX_BILLING_DAYS).contains(&b.window_days) {
            return Err(bad(
                "billing.window_days".into(),
                format!(
                    "must be between 1 and {MAX_BILLING_DAYS}, got {}",
                    b.window_days
                ),
            ));
        }
        if b.order_lookback_days < 0 {
            return Err(bad(
                "billing.order_lookback_days".into(),
                "must not be negative".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in b.tariffs.iter().enumerate() {
            if !TARIFF_KINDS.contains(&t.kind) {
                let why = if t.kind == 1 {
                    "1 is a balance top-up, which has no tariff".to_string()
                } else {
                    format!("{} is not an IMSKLAD operation type with a tariff (0 assembly, 2 delivery, 9 other)", t.kind)
                };
                return Err(bad(format!("billing.tariff[{i}].type"), why));
            }
            if t.delivery_type.is_some_and(|d| d < 0) {
                return Err(bad(
                    format!("billing.tariff[{i}].delivery_type"),
                    "must not be negative".into(),
                ));
            }
            if !seen.insert((t.kind, t.delivery_type)) {
                let dt = t.delivery_type.map_or("any".to_string(), |d| d.to_string());
                return Err(bad(
                    format!("billing.tariff[{i}]"),
                    format!("a second tariff for type {} and delivery type {dt}", t.kind),
                ));
            }
        }
        Ok(())
    }

    /// The vendor endpoints configured with plain `http://` (key, URL without
    /// its query: the IMSHOP URL may carry a token).
    pub fn plain_http_endpoints(&self) -> Vec<(&'static str, String)> {
        [
            ("imsklad.url", self.imsklad.url.as_str()),
            ("egon.url", self.egon.url.as_str()),
            ("retailcrm.url", self.retailcrm.url.as_str()),
            ("imshop.update_url", self.imshop.update_url.expose()),
        ]
        .into_iter()
        .filter(|(_, url)| url.starts_with("http://"))
        .map(|(key, url)| {
            let shown = url.split(['?', '#']).next().unwrap_or("");
            (key, shown.to_string())
        })
        .collect()
    }

    /// Warns (once per endpoint) about plain-http vendor endpoints that are
    /// not on this machine: keys and bodies would cross the network in clear.
    pub fn warn_plain_http(&self) {
        for (key, url) in self.plain_http_endpoints() {
            if !crate::net::is_loopback(&url) {
                tracing::warn!(
                    key,
                    url = %url,
                    "plain-http endpoint: keys and data cross the network unencrypted; use https:// where the vendor offers it, or set [http] require_https = true to refuse it"
                );
            }
        }
    }

    /// Checks that what a job needs to reach the outside systems is configured.
    pub fn require_remote(&self) -> Result<(), ConfigError> {
        let missing = |key: &str| ConfigError::Key {
            origin: Origin::Defaults,
            key: key.into(),
            message: "is required to reach the outside systems".into(),
        };
        match self.wms.kind {
            WmsKind::Imsklad => {
                if self.imsklad.url.is_empty() {
                    return Err(missing("imsklad.url"));
                }
                if self.imsklad.key.is_empty() {
                    return Err(missing("imsklad.key"));
                }
            }
            WmsKind::Egon => {
                if self.egon.url.is_empty() {
                    return Err(missing("egon.url"));
                }
                if self.egon.auth_id.is_empty() {
                    return Err(missing("egon.auth_id"));
                }
            }
        }
        if self.retailcrm.url.is_empty() {
            return Err(missing("retailcrm.url"));
        }
        if self.retailcrm.api_key.is_empty() {
            return Err(missing("retailcrm.api_key"));
        }
        Ok(())
    }

    /// The configured time zone.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone
            .name()
            .parse()
            .unwrap_or(chrono_tz::Europe::Moscow)
    }
}

/// Interprets an environment value as a TOML scalar when it is one
/// (`0.2`, `true`, `5`), otherwise as a string.
fn env_value(raw: &str) -> toml::Value {
    if let Ok(v) = raw.parse::<i64>() {
        return toml::Value::Integer(v);
    }
    if let Ok(v) = raw.parse::<f64>() {
        if raw.contains('.') || raw.contains('e') {
            return toml::Value::Float(v);
        }
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let f = file(text);
        Config::load(
            f.path(),
            true,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_without_a_file() {
        let c = Config::load(Path::new("/nonexistent/sverka.toml"), false, Vec::new()).unwrap();
        assert_eq!(c.wms.kind, WmsKind::Imsklad);
        assert_eq!(c.timezone.name(), "Europe/Moscow");
        assert_eq!(c.reports.dialect, CsvDialect::Rfc4180);
    }

    #[test]
    fn imshop_stuck_minutes_defaults_to_an_hour_and_can_be_set() {
        let c = Config::load(Path::new("/nonexistent/sverka.toml"), false, Vec::new()).unwrap();
        assert_eq!(c.imshop.stuck_minutes, 60);
        let c = load("[imshop]\nstuck_minutes = 15\n", &[]).unwrap();
        assert_eq!(c.imshop.stuck_minutes, 15);
    }

    #[test]
    fn imshop_push_key_defaults_to_bearer_and_reads_each_placement() {
        let c = Config::load(Path::new("/nonexistent/sverka.toml"), false, Vec::new()).unwrap();
        assert_eq!(c.imshop.push_key, PushKey::Bearer);
        for (text, want, header, body) in [
            ("bearer", PushKey::Bearer, true, false),
            ("body", PushKey::Body, false, true),
            ("both", PushKey::Both, true, true),
        ] {
            let c = load(&format!("[imshop]\npush_key = \"{text}\"\n"), &[]).unwrap();
            assert_eq!(c.imshop.push_key, want);
            assert_eq!((want.in_header(), want.in_body()), (header, body), "{text}");
        }
        let c = load("", &[("SVERKA_IMSHOP__PUSH_KEY", "body")]).unwrap();
        assert_eq!(c.imshop.push_key, PushKey::Body);
        let e = load("[imshop]\npush_key = \"query\"\n", &[]).unwrap_err();
        assert!(e.to_string().contains("imshop.push_key"), "{e}");
    }

    #[test]
    fn all_digit_env_overrides_of_string_keys_stay_strings() {
        let c = load(
            "",
            &[
                ("SVERKA_EGON__AUTH_ID", "123456"),
                ("SVERKA_EGON__AUTH_KEY", "987654321"),
                ("SVERKA_IMSKLAD__CALLBACK_KEY", "00042"),
                ("SVERKA_IMSKLAD__KEY", "1e5"),
                ("SVERKA_RETAILCRM__CLIENT_ID", "777"),
                ("SVERKA_RETAILCRM__STORE", "42"),
                ("SVERKA_IMSHOP__HOOK_KEY", "true"),
                ("SVERKA_SAFETY__MAX_CHANGE_SHARE", "0.3"),
                ("SVERKA_IMSKLAD__STORAGE_ID", "7"),
                ("SVERKA_STOCK__CREATE_MISSING_IN_WMS", "true"),
            ],
        )
        .unwrap();
        assert_eq!(c.egon.auth_id, "123456");
        assert_eq!(c.egon.auth_key.expose(), "987654321");
        assert_eq!(c.imsklad.callback_key.expose(), "00042");
        assert_eq!(c.imsklad.key.expose(), "1e5");
        assert_eq!(c.retailcrm.client_id.expose(), "777");
        assert_eq!(c.retailcrm.store, "42");
        assert_eq!(c.imshop.hook_key.expose(), "true");
        assert_eq!(c.safety.max_change_share, 0.3);
        assert_eq!(c.imsklad.storage_id, 7);
        assert!(c.stock.create_missing_in_wms);
    }

    #[test]
    fn config_errors_never_print_a_secret() {
        let e = load("[retailcrm]\napi_key = 3.25\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("retailcrm.api_key") && !e.contains("3.25"),
            "{e}"
        );
        let e = load("[imshop]\nupdate_url = \"ftp://h/x?token=S3CRET\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("imshop.update_url") && !e.contains("S3CRET"),
            "{e}"
        );
        // A numeric key in the file is taken as its digits.
        let c = load("[retailcrm]\napi_key = 12345\n", &[]).unwrap();
        assert_eq!(c.retailcrm.api_key.expose(), "12345");
        let c = load("[imshop]\nupdate_url = \"https://h/x?token=S3CRET\"\n", &[]).unwrap();
        assert!(!format!("{:?}", c.imshop).contains("S3CRET"));
    }

    #[test]
    fn require_https_refuses_plain_http_endpoints() {
        let text = "[imsklad]\nurl = \"http://client.imsklad.ru:7000/\"\n";
        assert!(load(text, &[]).is_ok(), "plain http is allowed by default");
        let c = load(text, &[]).unwrap();
        assert_eq!(
            c.plain_http_endpoints(),
            [("imsklad.url", "http://client.imsklad.ru:7000/".to_string())]
        );
        let e = load(&format!("{text}[http]\nrequire_https = true\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("imsklad.url") && e.contains("require_https"),
            "{e}"
        );
        let ok = "[imsklad]\nurl = \"https://client.imsklad.ru/\"\n[http]\nrequire_https = true\n";
        assert!(load(ok, &[]).is_ok());
        assert!(crate::net::is_loopback("http://127.0.0.1:8080/x"));
        assert!(crate::net::is_loopback("http://localhost/x"));
        assert!(crate::net::is_loopback("http://[::1]:9/"));
        assert!(!crate::net::is_loopback("http://client.imsklad.ru:7000/"));
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let e = Config::load(Path::new("/nonexistent/x.toml"), true, Vec::new()).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.toml"), "{e}");
    }

    #[test]
    fn every_error_names_its_key_and_file() {
        let cases: &[(&str, &str)] = &[
            (
                "[safety]\nmax_change_share = 1.5\n",
                "safety.max_change_share",
            ),
            (
                "[safety]\nmin_wms_coverage = -0.1\n",
                "safety.min_wms_coverage",
            ),
            (
                "[safety]\nmax_stock_drop_share = 2.0\n",
                "safety.max_stock_drop_share",
            ),
            ("[wms]\nkind = \"sap\"\n", "wms.kind"),
            ("[retailcrm]\noffer_key = \"id\"\n", "retailcrm.offer_key"),
            ("[retailcrm]\napi_kee = \"x\"\n", "retailcrm.api_kee"),
            ("[retailcrm]\nstore = \"\"\n", "retailcrm.store"),
            ("[retailcrm]\nurl = \"ftp://x\"\n", "retailcrm.url"),
            ("[retailcrm]\nrate_per_sec = 0\n", "retailcrm.rate_per_sec"),
            ("[reports]\ndialect = \"excel\"\n", "reports.dialect"),
            ("[listener]\nbind = \"not an address\"\n", "listener.bind"),
            (
                "[state]\ndatabase_url = \"oracle://x\"\n",
                "state.database_url",
            ),
            (
                "[shop]\ndatabase_url = \"redis://x\"\n",
                "shop.database_url",
            ),
            ("[imsklad]\nstock_batch = 0\n", "imsklad.stock_batch"),
            ("[imsklad]\nconcurrency = 0\n", "imsklad.concurrency"),
            ("[imsklad]\nstorage_id = \"one\"\n", "imsklad.storage_id"),
            ("[imsklad]\nurl = \"localhost\"\n", "imsklad.url"),
            ("[egon]\nurl = \"x\"\n", "egon.url"),
            ("[imshop]\nupdate_url = \"x\"\n", "imshop.update_url"),
            ("[orders]\nwindow_days = 0\n", "orders.window_days"),
            ("[orders]\nstuck_hours = -1\n", "orders.stuck_hours"),
            (
                "[orders]\namount_tolerance_kop = -1\n",
                "orders.amount_tolerance_kop",
            ),
            ("[orders]\nstale_hours = -2\n", "orders.stale_hours"),
            ("[orders]\nlistener_url = \"x\"\n", "orders.listener_url"),
            (
                "[orders]\negon_shop_setting_id = \"a\"\n",
                "orders.egon_shop_setting_id",
            ),
            (
                "[stock]\ncreate_missing_in_wms = \"yes\"\n",
                "stock.create_missing_in_wms",
            ),
            ("timezone = \"Mars/Olympus\"\n", "timezone"),
            ("[bogus]\nx = 1\n", "bogus"),
        ];
        for (text, key) in cases {
            let f = file(text);
            let err = Config::load(f.path(), true, Vec::new()).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(key),
                "error for {text:?} must name {key}: {msg}"
            );
            assert!(
                msg.contains(&f.path().display().to_string()),
                "error must name the file: {msg}"
            );
        }
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let f = file("[safety\nx=");
        let msg = Config::load(f.path(), true, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load(
            "[safety]\nmax_change_share = 0.1\n[retailcrm]\nstore = \"a\"\n",
            &[
                ("SVERKA_SAFETY__MAX_CHANGE_SHARE", "0.3"),
                ("SVERKA_RETAILCRM__STORE", "b"),
                ("SVERKA_WMS__KIND", "egon"),
                ("SVERKA_STOCK__CREATE_MISSING_IN_WMS", "true"),
                ("OTHER_VAR", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.safety.max_change_share, 0.3);
        assert_eq!(c.retailcrm.store, "b");
        assert_eq!(c.wms.kind, WmsKind::Egon);
        assert!(c.stock.create_missing_in_wms);
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let err = load("", &[("SVERKA_SAFETY__MAX_CHANGE_SHARE", "7")]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("SVERKA_SAFETY__MAX_CHANGE_SHARE"), "{msg}");
        assert!(msg.contains("safety.max_change_share"), "{msg}");
        let err = load("", &[("SVERKA_RETAILCRM__OFFER_KEY", "sku")]).unwrap_err();
        assert!(
            err.to_string().contains("SVERKA_RETAILCRM__OFFER_KEY"),
            "{err}"
        );
    }

    #[test]
    fn orders_keys_have_defaults_and_load() {
        let d = OrdersSection::default();
        assert_eq!(
            (
                d.amount_tolerance_kop,
                d.stale_hours,
                d.status_map.is_none()
            ),
            (100, 6, true)
        );
        let c = load(
            "[orders]\nstatus_map = \"/etc/sverka/map.toml\"\namount_tolerance_kop = 0\nstale_hours = 2\negon_shop_setting_id = 5\negon_delivery_id = 291\nlistener_url = \"https://hooks.example\"\n",
            &[("SVERKA_ORDERS__STALE_HOURS", "3")],
        )
        .unwrap();
        assert_eq!(
            c.orders.status_map.as_deref(),
            Some(Path::new("/etc/sverka/map.toml"))
        );
        assert_eq!(c.orders.amount_tolerance_kop, 0);
        assert_eq!(c.orders.stale_hours, 3);
        assert_eq!(c.orders.egon_shop_setting_id, Some(5));
        assert_eq!(c.orders.egon_delivery_id, Some(291));
        assert_eq!(
            c.orders.listener_url.as_deref(),
            Some("https://hooks.example")
        );
    }

    #[test]
    fn billing_defaults_match_the_sandbox_price_list() {
        let d = BillingSection::default();
        assert_eq!((d.window_days, d.order_lookback_days), (1, 90));
        assert_eq!(d.tariff(0, Some(16)).map(|t| t.amount_kop), Some(4_500));
        assert_eq!(d.tariff(2, Some(16)).map(|t| t.amount_kop), Some(30_000));
        assert_eq!(d.tariff(2, Some(4)).map(|t| t.tolerance_kop), Some(1_000));
        assert!(d.tariff(2, Some(999)).is_none());
        assert!(d.tariff(9, None).is_none());
    }

    #[test]
    fn billing_tariffs_parse_roubles_exactly() {
        let c = load(
            "[billing]\nwindow_days = 7\norder_lookback_days = 30\n\
             [[billing.tariff]]\ntype = 0\namount = \"45.00\"\ntolerance = \"0.5\"\n\
             [[billing.tariff]]\ntype = 2\ndelivery_type = 16\namount = 300\ntolerance = 10.25\n\
             [[billing.tariff]]\ntype = 2\namount = \"1 250,10\"\n\
             [[billing.tariff]]\ntype = 9\namount = 0.1\n",
            &[("SVERKA_BILLING__WINDOW_DAYS", "3")],
        )
        .unwrap();
        assert_eq!(
            (c.billing.window_days, c.billing.order_lookback_days),
            (3, 30)
        );
        let t: Vec<(i64, Option<i64>, i64, i64)> = c
            .billing
            .tariffs
            .iter()
            .map(|t| (t.kind, t.delivery_type, t.amount_kop, t.tolerance_kop))
            .collect();
        assert_eq!(
            t,
            [
                (0, None, 4_500, 50),
                (2, Some(16), 30_000, 1_025),
                (2, None, 125_010, 0),
                (9, None, 10, 0),
            ]
        );
        // An explicit delivery type wins, any other falls back to "any".
        assert_eq!(
            c.billing.tariff(2, Some(16)).map(|t| t.amount_kop),
            Some(30_000)
        );
        assert_eq!(
            c.billing.tariff(2, Some(4)).map(|t| t.amount_kop),
            Some(125_010)
        );
        // An explicit (even empty) table replaces the built-in one.
        let c = load("[billing]\ntariff = []\n", &[]).unwrap();
        assert!(c.billing.tariffs.is_empty());
    }

    #[test]
    fn bad_billing_keys_are_named() {
        let cases: &[(&str, &str)] = &[
            ("[billing]\nwindow_days = 0\n", "billing.window_days"),
            ("[billing]\nwindow_days = 400\n", "billing.window_days"),
            ("[billing]\norder_lookback_days = -1\n", "billing.order_lookback_days"),
            ("[[billing.tariff]]\ntype = 0\namount = \"45.001\"\n", "billing.tariff[0].amount"),
            ("[[billing.tariff]]\ntype = 0\namount = \"-45\"\n", "billing.tariff[0].amount"),
            ("[[billing.tariff]]\ntype = 0\namount = \"abc\"\n", "billing.tariff[0].amount"),
            ("[[billing.tariff]]\ntype = 0\namount = 1\ntolerance = true\n", "billing.tariff[0].tolerance"),
            ("[[billing.tariff]]\ntype = 0\n", "billing.tariff[0]"),
            ("[[billing.tariff]]\ntype = 1\namount = 1\n", "billing.tariff[0].type"),
            ("[[billing.tariff]]\ntype = 5\namount = 1\n", "billing.tariff[0].type"),
            ("[[billing.tariff]]\ntype = 2\ndelivery_type = -4\namount = 1\n", "billing.tariff[0].delivery_type"),
            ("[[billing.tariff]]\ntype = 0\namount = 1\ncost = 2\n", "billing.tariff[0].cost"),
            (
                "[[billing.tariff]]\ntype = 2\ndelivery_type = 4\namount = 1\n[[billing.tariff]]\ntype = 2\ndelivery_type = 4\namount = 2\n",
                "billing.tariff[1]",
            ),
        ];
        for (text, key) in cases {
            let f = file(text);
            let msg = Config::load(f.path(), true, Vec::new())
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains(key),
                "error for {text:?} must name {key}: {msg}"
            );
            assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        }
        let err = load("", &[("SVERKA_BILLING__WINDOW_DAYS", "0")]).unwrap_err();
        assert!(
            err.to_string().contains("SVERKA_BILLING__WINDOW_DAYS"),
            "{err}"
        );
    }

    #[test]
    fn timezone_as_a_table_works() {
        let c = load("[timezone]\nname = \"Asia/Yekaterinburg\"\n", &[]).unwrap();
        assert_eq!(c.timezone.name(), "Asia/Yekaterinburg");
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let c = load(
            "[retailcrm]\napi_key = \"crm-secret-123\"\n[imsklad]\nkey = \"wms-secret-456\"\ncallback_key = \"cb-secret-789\"\n[state]\ndatabase_url = \"postgres://u:dbpass-000@h/db\"\n[egon]\nauth_key = \"egon-secret-1\"\nauth_token = \"egon-token-2\"\n[imshop]\nkey = \"imshop-secret-3\"\nhook_key = \"hook-secret-4\"\n",
            &[],
        )
        .unwrap();
        let dump = format!("{c:?}");
        for s in [
            "crm-secret-123",
            "wms-secret-456",
            "cb-secret-789",
            "dbpass-000",
            "egon-secret-1",
            "egon-token-2",
            "imshop-secret-3",
            "hook-secret-4",
        ] {
            assert!(!dump.contains(s), "{s} leaked into Debug output");
        }
        assert_eq!(c.retailcrm.api_key.expose(), "crm-secret-123");
    }

    #[test]
    fn the_example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sverka.example.toml");
        Config::load(&path, true, Vec::new()).unwrap();
    }
}
