//! Job definitions: `jobs/*.toml` parsed and validated into [`JobDef`]s.

use super::*;

/// One scheduled job, from one `jobs/*.toml` file.
#[derive(Clone)]
pub struct JobDef {
    /// Unique name (`stock-nightly`).
    pub name: String,
    /// Which reconciliation it runs.
    pub job: Job,
    /// The cron expression as written.
    pub cron: String,
    /// The parsed expression.
    pub schedule: cron::Schedule,
    /// The zone the expression is read in.
    pub timezone: Tz,
    /// Plan and report only.
    pub dry_run: bool,
    /// How many days back the job looks, if it has a window.
    pub window_days: Option<u32>,
    /// A stock job's mode (`full` | `delta`), over `[stock] mode`.
    pub mode: Option<crate::config::StockMode>,
    /// Healthchecks-style ping URL (it carries a token: kept secret).
    pub heartbeat_url: Option<Secret>,
    /// Whether the scheduler fires it.
    pub enabled: bool,
    /// The file it came from.
    pub source: PathBuf,
}

impl std::fmt::Debug for JobDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobDef")
            .field("name", &self.name)
            .field("job", &self.job)
            .field("cron", &self.cron)
            .field("timezone", &self.timezone)
            .field("dry_run", &self.dry_run)
            .field("window_days", &self.window_days)
            .field("mode", &self.mode)
            .field("heartbeat_url", &self.heartbeat_url)
            .field("enabled", &self.enabled)
            .field("source", &self.source)
            .finish()
    }
}

impl JobDef {
    /// Parses one definition file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<JobDef, ScheduleError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| ScheduleError::Toml {
            path: path.to_path_buf(),
            reason: e.message().to_string(),
        })?;
        let file = DefFile {
            path,
            table: &table,
        };
        file.reject_unknown_keys()?;
        let name = file.required_str("name")?;
        if !valid_name(&name) {
            return Err(file.bad(
                "name",
                "use letters, digits, `-`, `_` and `.` only (it names runs and logs)".into(),
            ));
        }
        let cron = file.required_str("cron")?;
        let schedule = parse_cron(&cron).map_err(|e| file.bad("cron", e.to_string()))?;
        Ok(JobDef {
            name,
            job: file.job_kind()?,
            cron,
            schedule,
            timezone: file.timezone()?,
            dry_run: file.optional_bool("dry_run")?.unwrap_or(false),
            window_days: file.window_days()?,
            mode: file.mode()?,
            heartbeat_url: file.heartbeat_url()?,
            enabled: file.optional_bool("enabled")?.unwrap_or(true),
            source: path.to_path_buf(),
        })
    }

    /// Reads and parses one definition file.
    pub fn load(path: &Path) -> Result<JobDef, ScheduleError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScheduleError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        JobDef::parse(&text, path)
    }
}

/// Loads every `*.toml` file of `dir`, sorted by file name; names must be unique.
pub fn load_dir(dir: &Path) -> Result<Vec<JobDef>, ScheduleError> {
    let read_err = |source| ScheduleError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut defs: Vec<JobDef> = Vec::with_capacity(paths.len());
    for path in paths {
        let def = JobDef::load(&path)?;
        if let Some(first) = defs.iter().find(|d| d.name == def.name) {
            return Err(ScheduleError::DuplicateName {
                name: def.name,
                first: first.source.clone(),
                second: path,
            });
        }
        defs.push(def);
    }
    Ok(defs)
}

pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A parsed definition file with typed accessors naming the file and key in errors.
pub(super) struct DefFile<'a> {
    path: &'a Path,
    table: &'a toml::Table,
}

impl DefFile<'_> {
    pub(super) fn bad(&self, key: &'static str, reason: String) -> ScheduleError {
        ScheduleError::BadValue {
            path: self.path.to_path_buf(),
            key,
            reason,
        }
    }

    pub(super) fn reject_unknown_keys(&self) -> Result<(), ScheduleError> {
        match self.table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            Some(key) => Err(ScheduleError::UnknownKey {
                path: self.path.to_path_buf(),
                key: key.clone(),
            }),
            None => Ok(()),
        }
    }

    pub(super) fn optional_str(&self, key: &'static str) -> Result<Option<String>, ScheduleError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(toml::Value::String(_)) => Err(self.bad(key, "must not be empty".into())),
            Some(other) => Err(self.bad(
                key,
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    pub(super) fn required_str(&self, key: &'static str) -> Result<String, ScheduleError> {
        self.optional_str(key)?
            .ok_or_else(|| ScheduleError::MissingKey {
                path: self.path.to_path_buf(),
                key,
            })
    }

    pub(super) fn optional_bool(&self, key: &'static str) -> Result<Option<bool>, ScheduleError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(*b)),
            Some(other) => Err(self.bad(
                key,
                format!("expected true or false, found {}", other.type_str()),
            )),
        }
    }

    pub(super) fn job_kind(&self) -> Result<Job, ScheduleError> {
        let text = self.required_str("job")?;
        Job::from_name(&text).ok_or_else(|| {
            self.bad(
                "job",
                format!("`{text}` is not a job: use stock, orders, billing or scans"),
            )
        })
    }

    pub(super) fn timezone(&self) -> Result<Tz, ScheduleError> {
        match self.optional_str("timezone")? {
            None => Ok(DEFAULT_TIMEZONE),
            Some(name) => name.parse::<Tz>().map_err(|_| {
                self.bad(
                    "timezone",
                    format!("`{name}` is not an IANA time zone (like Europe/Moscow)"),
                )
            }),
        }
    }

    pub(super) fn mode(&self) -> Result<Option<crate::config::StockMode>, ScheduleError> {
        use crate::config::StockMode;
        match self.optional_str("mode")?.as_deref() {
            None => Ok(None),
            Some("full") => Ok(Some(StockMode::Full)),
            Some("delta") => Ok(Some(StockMode::Delta)),
            Some(other) => Err(self.bad(
                "mode",
                format!("`{other}` is not a stock mode: use \"full\" or \"delta\""),
            )),
        }
    }

    pub(super) fn window_days(&self) -> Result<Option<u32>, ScheduleError> {
        match self.table.get("window_days") {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => match u32::try_from(*n) {
                Ok(days) if (1..=3660).contains(&days) => Ok(Some(days)),
                _ => Err(self.bad("window_days", format!("{n} is not between 1 and 3660"))),
            },
            Some(other) => Err(self.bad(
                "window_days",
                format!(
                    "expected a whole number of days, found {}",
                    other.type_str()
                ),
            )),
        }
    }

    pub(super) fn heartbeat_url(&self) -> Result<Option<Secret>, ScheduleError> {
        let Some(url) = self.optional_str("heartbeat_url")? else {
            return Ok(None);
        };
        // The URL carries the check's token: errors describe it, never repeat it.
        match reqwest::Url::parse(&url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(Some(Secret::new(url))),
            Ok(_) => Err(self.bad("heartbeat_url", "must be an http:// or https:// URL".into())),
            Err(e) => Err(self.bad("heartbeat_url", format!("not a URL ({e})"))),
        }
    }
}
