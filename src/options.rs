//! What the command line resolves to before anything below the edge runs: the
//! options every command shares ([`RunOptions`]). `cli` parses flags into it;
//! jobs, demo, bench and check never see clap's structs.

use std::path::PathBuf;

use crate::config::Config;

/// Options every command takes, resolved from the flags.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Configuration file (`None`: `./sverka.toml` if present, else defaults).
    pub config: Option<PathBuf>,
    /// Plan and report, but write nothing anywhere.
    pub dry_run: bool,
    /// Where reports go (overrides `[reports] dir`).
    pub report_dir: Option<PathBuf>,
    /// Print a machine-readable JSON summary on stdout.
    pub json: bool,
    /// Log format on stderr.
    pub log_format: LogFormat,
}

/// Log output format on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

impl RunOptions {
    /// Loads the configuration named by `config` (or `./sverka.toml`, or
    /// defaults) with the process environment's overrides, and `report_dir`.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let (path, explicit) = match &self.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from("sverka.toml"), false),
        };
        let mut config = Config::load(&path, explicit, std::env::vars())?;
        if let Some(dir) = &self.report_dir {
            config.reports.dir = dir.clone();
        }
        Ok(config)
    }
}
