//! Local servers that speak IMSKLAD, RetailCRM, EGON and IMSHOP as documented,
//! with seeded data, latency, rate limits and injectable faults.
//!
//! [`SandboxSet::start`] runs all four on local ports (port 0 in tests and the
//! demo); [`world`] generates the data they serve.

pub mod common;
pub mod egon;
pub mod imshop;
pub mod imsklad;
pub mod replay;
pub mod retailcrm;
pub mod serve;
pub mod world;
pub mod world_billing;
#[cfg(test)]
mod world_fingerprint;
pub mod world_orders;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::config::{Config, WmsKind};
use crate::secret::Secret;
use crate::server::RunningServer;

/// The credentials the sandbox servers accept (they are not secrets: the
/// sandbox is local and throwaway).
#[derive(Debug, Clone)]
pub struct SandboxKeys {
    /// IMSKLAD API key.
    pub imsklad_key: String,
    /// IMSKLAD storage id.
    pub imsklad_storage_id: i64,
    /// Key IMSKLAD callbacks carry.
    pub imsklad_callback_key: String,
    /// RetailCRM API key.
    pub retailcrm_key: String,
    /// RetailCRM site.
    pub retailcrm_site: String,
    /// RetailCRM store code.
    pub retailcrm_store: String,
    /// clientId of the registered module.
    pub retailcrm_client_id: String,
    /// EGON auth_id.
    pub egon_auth_id: String,
    /// EGON auth_key.
    pub egon_auth_key: String,
    /// EGON auth_token.
    pub egon_auth_token: String,
    /// Key for IMSHOP status updates.
    pub imshop_key: String,
    /// Key IMSHOP hooks carry.
    pub imshop_hook_key: String,
}

impl Default for SandboxKeys {
    fn default() -> Self {
        SandboxKeys {
            imsklad_key: "sandbox-imsklad-key".into(),
            imsklad_storage_id: 1,
            imsklad_callback_key: "sandbox-imsklad-callback-key".into(),
            retailcrm_key: "sandbox-retailcrm-key".into(),
            retailcrm_site: "sandbox-shop".into(),
            retailcrm_store: "fulfillment".into(),
            retailcrm_client_id: "sandbox-client-id".into(),
            egon_auth_id: "sandbox-egon".into(),
            egon_auth_key: "sandbox-egon-key".into(),
            egon_auth_token: "sandbox-egon-token".into(),
            imshop_key: "sandbox-imshop-key".into(),
            imshop_hook_key: "sandbox-imshop-hook-key".into(),
        }
    }
}

/// Where the running servers are.
#[derive(Debug, Clone)]
pub struct SandboxUrls {
    /// IMSKLAD endpoint.
    pub imsklad: String,
    /// RetailCRM account URL (API under `/api/v5`).
    pub retailcrm: String,
    /// EGON endpoint.
    pub egon: String,
    /// IMSHOP status-update URL.
    pub imshop: String,
}

/// Options for [`SandboxSet::start`].
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Seed for faults.
    pub seed: u64,
    /// First port; 0 picks free ports.
    pub port: u16,
    /// Latency added to every request.
    pub latency: Duration,
    /// Enforce the vendors' rate limits (RetailCRM 10/s, EGON 180/min).
    pub rate_limits: bool,
    /// Every strictness switch on its strict reading
    /// ([`retailcrm::RetailCrmStrictness::strict`],
    /// [`imsklad::ImskladStrictness::strict`], [`egon::EgonStrictness::strict`]);
    /// off by default, so the sandbox follows the readings sverka tries first.
    pub strict: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            seed: 42,
            port: 0,
            latency: Duration::ZERO,
            rate_limits: true,
            strict: false,
        }
    }
}

/// All four sandbox servers, running.
pub struct SandboxSet {
    /// IMSKLAD.
    pub imsklad: imsklad::ImskladSandbox,
    /// RetailCRM.
    pub retailcrm: retailcrm::RetailCrmSandbox,
    /// EGON.
    pub egon: egon::EgonSandbox,
    /// IMSHOP.
    pub imshop: imshop::ImshopSandbox,
    /// Credentials.
    pub keys: SandboxKeys,
    /// URLs.
    pub urls: SandboxUrls,
    servers: Vec<RunningServer>,
}

impl std::fmt::Debug for SandboxSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxSet")
            .field("urls", &self.urls)
            .finish()
    }
}

impl SandboxSet {
    /// Starts the four servers on `127.0.0.1`.
    pub async fn start(opts: &SandboxOptions) -> std::io::Result<SandboxSet> {
        let keys = SandboxKeys::default();
        let imsklad =
            imsklad::ImskladSandbox::new(&keys.imsklad_key, keys.imsklad_storage_id, opts.seed);
        let retailcrm =
            retailcrm::RetailCrmSandbox::new(&keys.retailcrm_key, &keys.retailcrm_site, opts.seed);
        let egon = egon::EgonSandbox::new(
            &keys.egon_auth_id,
            &keys.egon_auth_key,
            &keys.egon_auth_token,
            opts.seed,
        );
        let imshop = imshop::ImshopSandbox::new(&keys.imshop_key, opts.seed);
        if opts.strict {
            retailcrm.lock().strict = retailcrm::RetailCrmStrictness::strict();
            imsklad.lock().strict = imsklad::ImskladStrictness::strict();
            egon.lock().strict = egon::EgonStrictness::strict();
        }
        if !opts.rate_limits {
            retailcrm.lock().set_rate_limit(0);
            egon.lock().set_rate_limit(0, Duration::from_secs(60));
        }
        for control in [
            &imsklad.control,
            &retailcrm.control,
            &egon.control,
            &imshop.control,
        ] {
            control.set_latency(opts.latency);
        }
        let port = |offset: u16| {
            let p = if opts.port == 0 {
                0
            } else {
                opts.port + offset
            };
            SocketAddr::from(([127, 0, 0, 1], p))
        };
        let s1 = imsklad.start(port(0)).await?;
        let s2 = retailcrm.start(port(1)).await?;
        let s3 = egon.start(port(2)).await?;
        let s4 = imshop.start(port(3)).await?;
        let urls = SandboxUrls {
            imsklad: format!("{}/", s1.url),
            retailcrm: s2.url.clone(),
            egon: format!("{}/rest/v1", s3.url),
            imshop: format!("{}/scans/update", s4.url),
        };
        Ok(SandboxSet {
            imsklad,
            retailcrm,
            egon,
            imshop,
            keys,
            urls,
            servers: vec![s1, s2, s3, s4],
        })
    }

    /// A configuration pointing sverka at these servers.
    pub fn config(
        &self,
        state_url: &str,
        shop_url: &str,
        report_dir: &Path,
        wms: WmsKind,
    ) -> Config {
        config_for(
            &self.urls,
            &self.keys,
            &Locations {
                state_url,
                shop_url,
                report_dir,
            },
            wms,
        )
    }

    /// Stops every server.
    pub async fn stop(self) {
        for s in self.servers {
            s.stop().await;
        }
    }
}

/// Where a sandbox configuration keeps sverka's own data.
#[derive(Debug, Clone, Copy)]
pub struct Locations<'a> {
    /// The state database URL.
    pub state_url: &'a str,
    /// The shop database URL.
    pub shop_url: &'a str,
    /// The report folder.
    pub report_dir: &'a Path,
}

/// A configuration pointing sverka at sandbox servers at `urls` with `keys`
/// (also those of a `sverka sandbox` running as another process).
pub fn config_for(
    urls: &SandboxUrls,
    keys: &SandboxKeys,
    at: &Locations<'_>,
    wms: WmsKind,
) -> Config {
    let (state_url, shop_url, report_dir) = (at.state_url, at.shop_url, at.report_dir);
    {
        let k = keys;
        let mut c = Config::default();
        c.state.database_url = Secret::new(state_url);
        c.shop.database_url = Secret::new(shop_url);
        c.wms.kind = wms;
        c.imsklad.url = urls.imsklad.clone();
        c.imsklad.key = Secret::new(k.imsklad_key.as_str());
        c.imsklad.storage_id = k.imsklad_storage_id;
        c.imsklad.callback_key = Secret::new(k.imsklad_callback_key.as_str());
        c.egon.url = urls.egon.clone();
        c.egon.auth_id = k.egon_auth_id.clone();
        c.egon.auth_key = Secret::new(k.egon_auth_key.as_str());
        c.egon.auth_token = Secret::new(k.egon_auth_token.as_str());
        c.retailcrm.url = urls.retailcrm.clone();
        c.retailcrm.api_key = Secret::new(k.retailcrm_key.as_str());
        c.retailcrm.site = Some(k.retailcrm_site.clone());
        c.retailcrm.store = k.retailcrm_store.clone();
        c.retailcrm.client_id = Secret::new(k.retailcrm_client_id.as_str());
        c.imshop.update_url = Secret::new(urls.imshop.as_str());
        c.imshop.key = Secret::new(k.imshop_key.as_str());
        c.imshop.hook_key = Secret::new(k.imshop_hook_key.as_str());
        c.reports.dir = report_dir.to_path_buf();
        c
    }
}
