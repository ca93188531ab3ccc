//! Configuration: built-in defaults, then a TOML file, then environment
//! overrides `SVERKA_<SECTION>__<KEY>` — validated at start with errors that
//! name the key and where it came from.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

mod sections;
pub use sections::*;

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
    #[error("cannot read config file {path}")]
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
        let (mut table, origin) = read_table(path, explicit)?;
        // Check the file alone first, so its errors name the file.
        Self::from_table(table.clone(), &origin)?;
        let overrides = EnvOverrides::apply(&mut table, env)?;
        let result = Self::from_table_retyping(table, &origin, overrides.retypable);
        result.map_err(|e| match e {
            ConfigError::Key { key, message, .. } => {
                let var = overrides
                    .env_keys
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

    /// Parses `table`; while a key refuses the string an override gave it,
    /// retypes that override (see [`EnvOverrides`]) and tries again.
    fn from_table_retyping(
        mut table: toml::Table,
        origin: &Origin,
        mut retypable: Vec<Retypable>,
    ) -> Result<Config, ConfigError> {
        loop {
            match Self::from_table(table.clone(), origin) {
                Err(ConfigError::Key { key, .. }) if retypable.iter().any(|(k, ..)| *k == key) => {
                    let pos = retypable.iter().position(|(k, ..)| *k == key).unwrap_or(0);
                    let (_, section, field, typed) = retypable.remove(pos);
                    if let Some(sec) = table.get_mut(&section).and_then(|v| v.as_table_mut()) {
                        sec.insert(field, typed);
                    }
                }
                other => break other,
            }
        }
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

    /// Checks the values serde cannot: ranges, URLs, time zones (the first
    /// problem found is the error, in the order of the sections below).
    fn validate(&self, origin: &Origin) -> Result<(), ConfigError> {
        self.validate_limits(origin)?;
        self.validate_endpoints(origin)?;
        self.validate_jobs(origin)?;
        self.validate_zones(origin)
    }

    /// Database URLs, the safety shares and the listener limits.
    fn validate_limits(&self, origin: &Origin) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| key_error(origin, key, message);
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
        Ok(())
    }

    /// The connectors' batch sizes, rates and URLs.
    fn validate_endpoints(&self, origin: &Origin) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| key_error(origin, key, message);
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
        Ok(())
    }

    /// The stock and orders job settings.
    fn validate_jobs(&self, origin: &Origin) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| key_error(origin, key, message);
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
        Ok(())
    }

    /// The time zones, with the billing settings checked between them.
    fn validate_zones(&self, origin: &Origin) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| key_error(origin, key, message);
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

/// Reads and parses the file at `path` (a missing default file is an empty table).
fn read_table(path: &Path, explicit: bool) -> Result<(toml::Table, Origin), ConfigError> {
    if !(path.exists() || explicit) {
        return Ok((toml::Table::new(), Origin::Defaults));
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim().to_string(),
        })?;
    Ok((table, Origin::File(path.to_path_buf())))
}

/// An override that reads as a number or boolean: `section.key`, section,
/// key, and the typed value to try when the key refuses the string.
type Retypable = (String, String, String, toml::Value);

/// The `SVERKA_SECTION__KEY` overrides written into a table.
struct EnvOverrides {
    /// `section.key` and the variable that set it.
    env_keys: Vec<(String, String)>,
    /// Overrides that may be retyped.
    retypable: Vec<Retypable>,
}

impl EnvOverrides {
    /// Writes the overrides from `env` into `table` as strings.
    fn apply(
        table: &mut toml::Table,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut env_keys: Vec<(String, String)> = Vec::new();
        // Overrides are taken as the strings they are (an all-digit EGON
        // `auth_id` or key stays a string, leading zeros and all); one that a
        // key refuses as a string is given to it as the number or boolean it
        // reads as (`0.2`, `5`, `true`).
        let mut retypable: Vec<Retypable> = Vec::new();
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
        Ok(Self {
            env_keys,
            retypable,
        })
    }
}

/// A [`ConfigError::Key`] for `key` from `origin`.
fn key_error(origin: &Origin, key: &str, message: String) -> ConfigError {
    ConfigError::Key {
        origin: origin.clone(),
        key: key.into(),
        message,
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
