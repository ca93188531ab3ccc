//! The configuration's sections (`[state]`, `[shop]`, `[wms]`, `[imsklad]`, …)
//! with their defaults, and the vocabularies their keys take.

use super::*;

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
pub(super) enum RoublesValue {
    Int(i64),
    Float(f64),
    Text(String),
}

/// serde: roubles (string or number, at most 2 decimals, not negative) → kopecks.
pub(super) fn de_roubles<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
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
