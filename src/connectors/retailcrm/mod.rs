//! RetailCRM API v5 client: warehouse module registration, stock reads and
//! uploads, catalogue, orders, order history and reference books.
//!
//! Wire rules (RetailCRM API v5 documentation): the key travels in the
//! `X-API-KEY` header only; GET parameters go in the query string
//! (`filter[x][]=…`, booleans `1`/`0`); POST bodies are
//! `application/x-www-form-urlencoded` with nested data as ONE JSON field
//! (`offers=…`, `order=…`, `integrationModule=…`). Every call of one client
//! shares one sliding-window rate limiter (10 requests/s by default; each
//! slot is held until the answer is in, so no server-side window ever counts
//! more, whatever the network delay) and is
//! retried with backoff on 429/503/5xx, timeouts and cut-off answers. All
//! calls sverka makes are idempotent (they set absolute values), so a retry
//! never doubles an effect.
//!
//! Answers are parsed leniently: trailing commas, ids as strings or numbers,
//! PHP's `[]` for empty maps, floats for quantities and prices. Money is kept
//! in kopecks, rounded from the decimal value the server printed.

use crate::connectors::http::{snippet, HttpPolicy, RateLimiter};
use crate::lenient;
use crate::progress::Progress;
use crate::secret::Secret;
use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};
use std::fmt;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

mod filtered;
pub use filtered::{encoded_len, FilteredRead, InventoryFilter, MAX_URL_BYTES};
mod types;
pub use types::*;
mod error;
pub use error::*;
mod wire;
pub use wire::*;
mod paging;
pub use paging::*;

/// At most this many offers go into one `POST /store/inventories/upload`.
pub const MAX_OFFERS_PER_UPLOAD: usize = 250;
/// Page size `GET /store/inventories` asks for first. UNVERIFIED: the official
/// PHP client validates 20/50/100 only; when the CRM refuses 250 the client
/// falls back to [`INVENTORY_FALLBACK_LIMIT`] for the rest of its life (one
/// run), once, with a log line.
pub const INVENTORY_PAGE_LIMIT: u32 = 250;
/// The page size inventory reads use after the CRM refused [`INVENTORY_PAGE_LIMIT`].
pub const INVENTORY_FALLBACK_LIMIT: u32 = 100;
/// Inventory pages in flight at once after the first page: the shared rate
/// limiter still decides when each request is sent, this only lets the
/// latency of one page overlap the next ones.
pub const INVENTORY_READ_CONCURRENCY: usize = 10;
/// Page size for `GET /orders`.
pub const ORDERS_PAGE_LIMIT: u32 = 50;
/// External ids per `GET /orders` request (keeps the URL under ~4 KB).
pub const ORDER_IDS_PER_REQUEST: usize = 100;
/// Page size for `GET /orders/history`.
pub const HISTORY_PAGE_LIMIT: u32 = 100;
/// Page sizes every list method accepts (the official PHP client's
/// `checkPaginationLimit`); only `/store/inventories` is asked for more.
pub const ALLOWED_LIMITS: [u32; 3] = [20, 50, 100];

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// How a request carries its parameters.
enum Call<'a> {
    /// Query string.
    Get(&'a [(String, String)]),
    /// Form body.
    Post(&'a [(String, String)]),
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    api: String,
    api_key: Secret,
    site: Option<String>,
    store: String,
    offer_key: OfferKey,
    policy: HttpPolicy,
    limiter: RateLimiter,
    /// The page size inventory reads ask for (250, or 100 once refused).
    inventory_limit: std::sync::atomic::AtomicU32,
    /// The account's limit shared with every other sverka process of the
    /// state database (see [`crate::db::rate`]), when set.
    shared: Option<crate::db::rate::SharedRateLimit>,
}

/// A RetailCRM v5 client; clones share the connection pool, and every client
/// of the same account shares one rate limiter.
#[derive(Debug, Clone)]
pub struct RetailCrmClient {
    inner: Arc<Inner>,
}

impl RetailCrmClient {
    /// Builds a client. Fails on an empty key, an empty store or a URL that is not http(s).
    pub fn new(cfg: RetailCrmConfig) -> Result<Self, RetailCrmError> {
        let base = cfg.url.trim().trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(RetailCrmError::Config(format!(
                "url {base:?} must start with https:// or http://"
            )));
        }
        if cfg.api_key.is_empty() {
            return Err(RetailCrmError::Config("api_key is empty".into()));
        }
        if cfg.store.trim().is_empty() {
            return Err(RetailCrmError::Config("store is empty".into()));
        }
        let http = cfg
            .policy
            .client()
            .map_err(|e| RetailCrmError::Config(format!("cannot build the HTTP client: {e}")))?;
        let base = base.strip_suffix("/api/v5").unwrap_or(base);
        Ok(RetailCrmClient {
            inner: Arc::new(Inner {
                http,
                api: format!("{base}/api/v5"),
                api_key: cfg.api_key,
                site: cfg.site.filter(|s| !s.trim().is_empty()),
                store: cfg.store,
                offer_key: cfg.offer_key,
                // RetailCRM counts an account's requests per second, whichever
                // client sends them (see `RateLimiter::shared`); each slot is
                // held until the answer is in (`RateLimiter::acquire_held`).
                limiter: RateLimiter::shared(
                    &format!("{base}/api/v5"),
                    cfg.rate_per_sec,
                    Duration::from_secs(1),
                ),
                policy: cfg.policy,
                inventory_limit: std::sync::atomic::AtomicU32::new(INVENTORY_PAGE_LIMIT),
                shared: None,
            }),
        })
    }

    /// The page size inventory reads ask for now: [`INVENTORY_PAGE_LIMIT`]
    /// until the CRM refuses it, then [`INVENTORY_FALLBACK_LIMIT`].
    pub fn inventory_page_limit(&self) -> u32 {
        self.inner
            .inventory_limit
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Follows `/store/inventories` from its page 1 `first` (read from
    /// `base` at `limit` items a page) to the last page, handing each page's
    /// offers to `each` in order. `each` may stop the walk with a value,
    /// which is answered as `Some`.
    async fn walk_inventory<B>(
        &self,
        base: &[(String, String)],
        first: InventoriesAnswer,
        limit: u32,
        mut each: impl FnMut(Vec<InventoryOffer>) -> ControlFlow<B>,
    ) -> Result<Option<B>, RetailCrmError> {
        let mut next = Some(first);
        let mut page = 1;
        loop {
            let answer: InventoriesAnswer = match next.take() {
                Some(a) => a,
                None => {
                    let query = with_page(base, page, limit);
                    self.call("/store/inventories", Call::Get(&query)).await?
                }
            };
            let done = is_last_page(&answer.pagination, page, answer.items.len(), limit);
            if let ControlFlow::Break(value) = each(answer.items) {
                return Ok(Some(value));
            }
            if done {
                return Ok(None);
            }
            page += 1;
        }
    }

    /// One `/store/inventories` page at the current page size; when the CRM
    /// refuses that size, falls back to [`INVENTORY_FALLBACK_LIMIT`] (once per
    /// client, with a log line) and asks again. Answers the page and the size
    /// it was read with.
    async fn inventory_page(
        &self,
        base: &[(String, String)],
        page: u32,
    ) -> Result<(InventoriesAnswer, u32), RetailCrmError> {
        use std::sync::atomic::Ordering;
        const ENDPOINT: &str = "/store/inventories";
        let limit = self.inventory_page_limit();
        let query = with_page(base, page, limit);
        match self
            .call::<InventoriesAnswer>(ENDPOINT, Call::Get(&query))
            .await
        {
            Err(e) if limit > INVENTORY_FALLBACK_LIMIT && refuses_page_size(&e) => {
                if self
                    .inner
                    .inventory_limit
                    .compare_exchange(
                        limit,
                        INVENTORY_FALLBACK_LIMIT,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    tracing::warn!(
                        "RetailCRM refused page size {limit} on {ENDPOINT} ({e}); reading {INVENTORY_FALLBACK_LIMIT} a page for the rest of the run"
                    );
                }
                let query = with_page(base, page, INVENTORY_FALLBACK_LIMIT);
                let answer = self.call(ENDPOINT, Call::Get(&query)).await?;
                Ok((answer, INVENTORY_FALLBACK_LIMIT))
            }
            other => other.map(|answer| (answer, limit)),
        }
    }

    /// This client, also keeping `limit`: the account's rate limit shared with
    /// every sverka process of one state database. Call it on a new client
    /// (before it is cloned).
    pub fn with_shared_limit(mut self, limit: crate::db::rate::SharedRateLimit) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.shared = Some(limit),
            None => tracing::warn!(
                "the RetailCRM client was already shared; its rate limit stays per process"
            ),
        }
        self
    }

    /// The configured store code.
    pub fn store(&self) -> &str {
        &self.inner.store
    }

    /// The configured offer key.
    pub fn offer_key(&self) -> OfferKey {
        self.inner.offer_key
    }

    /// Creates or updates a warehouse integration module.
    pub async fn integration_module_edit(
        &self,
        m: &IntegrationModule,
    ) -> Result<(), RetailCrmError> {
        let endpoint = format!("/integration-modules/{}/edit", encode_segment(&m.code));
        let module = serde_json::to_string(m).map_err(|e| RetailCrmError::Schema {
            endpoint: endpoint.clone(),
            detail: format!("cannot encode the module: {e}"),
        })?;
        let form = vec![("integrationModule".to_string(), module)];
        self.call::<Value>(&endpoint, Call::Post(&form)).await?;
        Ok(())
    }

    /// Reads a module; `None` when the CRM answers 404.
    pub async fn integration_module_get(
        &self,
        code: &str,
    ) -> Result<Option<IntegrationModule>, RetailCrmError> {
        let endpoint = format!("/integration-modules/{}", encode_segment(code));
        match self.call::<ModuleAnswer>(&endpoint, Call::Get(&[])).await {
            Ok(answer) => Ok(answer.integration_module),
            Err(e) if e.api_kind() == Some(ApiErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every offer's stock with the per-store breakdown (all pages, 250 a
    /// page, or 100 when the CRM refuses 250).
    ///
    /// The first page tells how many pages there are; the others are then
    /// read concurrently (at most [`INVENTORY_READ_CONCURRENCY`] in flight,
    /// all through the client's rate limiter) and concatenated in page order.
    /// As with a page-by-page read, the pages end at the first empty page or
    /// at the last page a page's `pagination` announces.
    pub async fn inventories(&self) -> Result<Vec<InventoryOffer>, RetailCrmError> {
        let mut base = vec![("filter[details]".to_string(), "1".to_string())];
        if let Some(site) = &self.inner.site {
            base.push(("filter[sites][]".into(), site.clone()));
        }
        const ENDPOINT: &str = "/store/inventories";
        // The first page settles the page size (250, or 100 once refused);
        // every other page is asked for with the same size.
        let (first, limit) = self.inventory_page(&base, 1).await?;
        if is_last_page(&first.pagination, 1, first.items.len(), limit) {
            return Ok(first.items);
        }
        // Pages 2..=`horizon` (the most pages any answer announced) are read
        // until a page turns out to be the last one (`end`).
        let total = |p: &Pagination| pages_announced(p, limit);
        let mut horizon = total(&first.pagination);
        let bar = Progress::counter("RetailCRM inventory pages", u64::from(horizon), "pages");
        bar.inc(1);
        let mut end: Option<u32> = None;
        let mut pages: std::collections::BTreeMap<u32, Vec<InventoryOffer>> =
            std::collections::BTreeMap::new();
        pages.insert(1, first.items);
        let mut next = 2u64;
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.len() < INVENTORY_READ_CONCURRENCY
                && next <= u64::from(end.unwrap_or(horizon))
            {
                let client = self.clone();
                let page = next as u32;
                let query = with_page(&base, page, limit);
                tasks.spawn(async move {
                    let answer = client
                        .call::<InventoriesAnswer>(ENDPOINT, Call::Get(&query))
                        .await;
                    (page, answer)
                });
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (page, answer) = match joined {
                Ok(done) => done,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => {
                    return Err(RetailCrmError::Schema {
                        endpoint: ENDPOINT.into(),
                        detail: format!("reading page: {e}"),
                    })
                }
            };
            let answer = answer?;
            if is_last_page(&answer.pagination, page, answer.items.len(), limit) {
                end = Some(end.map_or(page, |e| e.min(page)));
            } else {
                horizon = horizon.max(total(&answer.pagination));
            }
            bar.set_length(u64::from(end.unwrap_or(horizon)));
            bar.inc(1);
            pages.insert(page, answer.items);
        }
        let last = end.unwrap_or(horizon);
        Ok(pages
            .into_iter()
            .take_while(|(page, _)| *page <= last)
            .flat_map(|(_, offers)| offers)
            .collect())
    }

    /// Stock of the offers with the given SKUs (one request a 250, all pages).
    pub async fn inventories_for(
        &self,
        skus: &[String],
    ) -> Result<Vec<InventoryOffer>, RetailCrmError> {
        let mut all = Vec::new();
        for batch in skus.chunks(MAX_OFFERS_PER_UPLOAD) {
            let mut base = vec![("filter[details]".to_string(), "1".to_string())];
            if let Some(site) = &self.inner.site {
                base.push(("filter[sites][]".into(), site.clone()));
            }
            let filter = self.inner.offer_key.inventory_filter();
            base.extend(batch.iter().map(|s| (filter.to_string(), s.clone())));
            let (first, limit) = self.inventory_page(&base, 1).await?;
            let walk = self.walk_inventory(&base, first, limit, |offers| {
                all.extend(offers);
                ControlFlow::<()>::Continue(())
            });
            walk.await?;
        }
        Ok(all)
    }

    /// One upload request of at most [`MAX_OFFERS_PER_UPLOAD`] offers to the configured store.
    /// An empty slice sends nothing.
    pub async fn upload_chunk(
        &self,
        offers: &[OfferStock],
    ) -> Result<UploadResult, RetailCrmError> {
        if offers.len() > MAX_OFFERS_PER_UPLOAD {
            return Err(RetailCrmError::TooManyOffers {
                count: offers.len(),
            });
        }
        if offers.is_empty() {
            return Ok(UploadResult::default());
        }
        let endpoint = "/store/inventories/upload";
        let body = self.upload_body(offers).to_string();
        let mut form = vec![("offers".to_string(), body)];
        if let Some(site) = &self.inner.site {
            form.push(("site".into(), site.clone()));
        }
        let answer: UploadAnswer = self.call(endpoint, Call::Post(&form)).await?;
        let key = self.inner.offer_key;
        let not_found = answer
            .not_found_offers
            .into_iter()
            .filter_map(|o| {
                let (preferred, other) = match key {
                    OfferKey::ExternalId => (o.external_id, o.xml_id),
                    OfferKey::XmlId => (o.xml_id, o.external_id),
                };
                preferred.or(other).or(o.id.map(|id| id.to_string()))
            })
            .collect();
        Ok(UploadResult {
            processed: answer.processed_offers_count.unwrap_or(0),
            not_found,
        })
    }

    /// Uploads any number of offers in chunks of ≤ 250, one after another; every
    /// chunk's outcome is kept, a failed chunk does not stop the others.
    pub async fn upload_inventories(&self, offers: &[OfferStock]) -> Vec<ChunkOutcome> {
        let mut outcomes = Vec::new();
        for (index, chunk) in offers.chunks(MAX_OFFERS_PER_UPLOAD).enumerate() {
            let result = self.upload_chunk(chunk).await;
            if let Err(e) = &result {
                tracing::warn!(chunk = index, error = %crate::errors::Chain(&e), "RetailCRM inventory upload chunk failed");
            }
            outcomes.push(ChunkOutcome {
                index,
                skus: chunk.iter().map(|o| o.sku.clone()).collect(),
                result,
            });
        }
        outcomes
    }

    /// The exact `offers` JSON for an upload: key, site, one store with
    /// `available` and `purchasePrice` where set.
    pub fn upload_body(&self, offers: &[OfferStock]) -> Value {
        let key = self.inner.offer_key.field();
        let list = offers
            .iter()
            .map(|o| {
                let mut store = Map::new();
                store.insert("code".into(), Value::String(self.inner.store.clone()));
                if let Some(available) = o.available {
                    store.insert("available".into(), Value::from(available));
                }
                if let Some(kop) = o.purchase_price_kop {
                    store.insert("purchasePrice".into(), Value::from(kop_to_money(kop)));
                }
                let mut offer = Map::new();
                offer.insert(key.into(), Value::String(o.sku.clone()));
                if let Some(site) = &self.inner.site {
                    offer.insert("site".into(), Value::String(site.clone()));
                }
                offer.insert("stores".into(), Value::Array(vec![Value::Object(store)]));
                Value::Object(offer)
            })
            .collect();
        Value::Array(list)
    }

    /// One page of catalogue products (`limit` ∈ {20, 50, 100}).
    pub async fn products(&self, page: u32, limit: u32) -> Result<Paged<Product>, RetailCrmError> {
        self.catalogue_page("/store/products", page, limit).await
    }

    /// One page of a catalogue list endpoint.
    async fn catalogue_page<T: Listed>(
        &self,
        endpoint: &str,
        page: u32,
        limit: u32,
    ) -> Result<Paged<T>, RetailCrmError> {
        let query = self.paged_query(page, limit)?;
        let answer: ListAnswer<T> = self.call(endpoint, Call::Get(&query)).await?;
        Ok(answer.into_page())
    }

    /// One page of product groups.
    pub async fn product_groups(
        &self,
        page: u32,
        limit: u32,
    ) -> Result<Paged<ProductGroup>, RetailCrmError> {
        self.catalogue_page("/store/product-groups", page, limit)
            .await
    }

    /// One page of product properties.
    pub async fn product_properties(
        &self,
        page: u32,
        limit: u32,
    ) -> Result<Paged<ProductProperty>, RetailCrmError> {
        self.catalogue_page("/store/products/properties", page, limit)
            .await
    }

    /// Orders with the given external ids (batches of 100 ids, every page of each).
    pub async fn orders_by_external_ids(
        &self,
        ids: &[String],
    ) -> Result<Vec<CrmOrder>, RetailCrmError> {
        let endpoint = "/orders";
        let mut all = Vec::new();
        let bar = Progress::counter(
            "RetailCRM orders by externalId",
            ids.len().div_ceil(ORDER_IDS_PER_REQUEST) as u64,
            "batches",
        );
        for batch in ids.chunks(ORDER_IDS_PER_REQUEST) {
            bar.inc(1);
            let mut base: Vec<(String, String)> = batch
                .iter()
                .map(|id| ("filter[externalIds][]".to_string(), id.clone()))
                .collect();
            if let Some(site) = &self.inner.site {
                base.push(("filter[sites][]".into(), site.clone()));
            }
            let mut page = 1;
            loop {
                let query = with_page(&base, page, ORDERS_PAGE_LIMIT);
                let answer: ListAnswer<RawOrder> = self.call(endpoint, Call::Get(&query)).await?;
                let done = is_last_page(
                    &answer.pagination,
                    page,
                    answer.items.len(),
                    ORDERS_PAGE_LIMIT,
                );
                for raw in answer.items {
                    all.push(raw.into_order(endpoint)?);
                }
                if done {
                    break;
                }
                page += 1;
            }
        }
        Ok(all)
    }

    /// Every history entry after `since_id` (all of them when `None`), oldest
    /// first, and the id to resume from next time (`since_id` when nothing is new).
    pub async fn orders_history(
        &self,
        since_id: Option<i64>,
    ) -> Result<(Vec<HistoryEntry>, Option<i64>), RetailCrmError> {
        let mut cursor = since_id;
        let mut all: Vec<HistoryEntry> = Vec::new();
        loop {
            let mut query = Vec::new();
            if let Some(id) = cursor {
                query.push(("filter[sinceId]".to_string(), id.to_string()));
            }
            let query = with_page(&query, 1, HISTORY_PAGE_LIMIT);
            let answer: ListAnswer<HistoryEntry> =
                self.call("/orders/history", Call::Get(&query)).await?;
            let last = answer.items.iter().map(|h| h.id).max();
            let fresh: Vec<HistoryEntry> = answer
                .items
                .into_iter()
                .filter(|h| cursor.is_none_or(|c| h.id > c))
                .collect();
            let more = answer.pagination.total_page_count.unwrap_or(1) > 1;
            let progressed = !fresh.is_empty() && last > cursor;
            all.extend(fresh);
            if progressed {
                cursor = last;
            }
            if !more || !progressed {
                return Ok((all, cursor));
            }
        }
    }

    /// Edits an order found by its external id; sends only the set fields.
    /// An empty patch sends nothing.
    pub async fn order_edit(
        &self,
        external_id: &str,
        patch: &OrderPatch,
    ) -> Result<(), RetailCrmError> {
        if patch.is_empty() {
            return Ok(());
        }
        let endpoint = format!("/orders/{}/edit", encode_segment(external_id));
        let mut form = vec![
            ("by".to_string(), "externalId".to_string()),
            ("order".to_string(), patch.to_json().to_string()),
        ];
        if let Some(site) = &self.inner.site {
            form.push(("site".into(), site.clone()));
        }
        self.call::<Value>(&endpoint, Call::Post(&form)).await?;
        Ok(())
    }

    /// All order statuses (the answer is an object keyed by code).
    pub async fn statuses(&self) -> Result<Vec<Status>, RetailCrmError> {
        let a: ListAnswer<Status> = self.call("/reference/statuses", Call::Get(&[])).await?;
        Ok(a.items)
    }

    /// All stores.
    pub async fn stores(&self) -> Result<Vec<Store>, RetailCrmError> {
        let a: ListAnswer<Store> = self.call("/reference/stores", Call::Get(&[])).await?;
        Ok(a.items)
    }

    fn paged_query(&self, page: u32, limit: u32) -> Result<Vec<(String, String)>, RetailCrmError> {
        if !ALLOWED_LIMITS.contains(&limit) || page == 0 {
            return Err(RetailCrmError::Config(format!(
                "page {page} / limit {limit}: page starts at 1, limit is one of {ALLOWED_LIMITS:?}"
            )));
        }
        let mut base = Vec::new();
        if let Some(site) = &self.inner.site {
            base.push(("filter[sites][]".to_string(), site.clone()));
        }
        Ok(with_page(&base, page, limit))
    }

    /// Sends one call with rate limiting and bounded retries.
    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        call: Call<'_>,
    ) -> Result<T, RetailCrmError> {
        let policy = &self.inner.policy;
        let mut attempt = 1;
        loop {
            // Held until the answer is in: see `RateLimiter::acquire_held`.
            let permit = self.inner.limiter.acquire_held().await;
            // The same, across processes: a slot in the state database, held
            // until the answer is in. A state database that cannot be asked
            // leaves this process's own limit (logged, not fatal).
            let slot = match &self.inner.shared {
                Some(limit) => match limit.acquire().await {
                    Ok(slot) => Some(slot),
                    Err(e) => {
                        tracing::warn!(error = %crate::errors::Chain(&e), "shared RetailCRM rate limit unavailable; keeping this process's own");
                        None
                    }
                },
                None => None,
            };
            let result = self.send_once(endpoint, &call).await;
            if let Some(slot) = slot {
                if let Err(e) = slot.release().await {
                    tracing::warn!(error = %crate::errors::Chain(&e), "could not give back a shared rate-limit slot");
                }
            }
            drop(permit);
            match result {
                Err(e) if e.is_retryable() && attempt < policy.max_attempts.max(1) => {
                    let wait = policy.backoff(attempt);
                    tracing::debug!(endpoint, attempt, error = %crate::errors::Chain(&e), ?wait, "RetailCRM call retried");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        call: &Call<'_>,
    ) -> Result<T, RetailCrmError> {
        let url = format!("{}{endpoint}", self.inner.api);
        let request = match call {
            Call::Get(query) => self.inner.http.get(&url).query(query),
            Call::Post(form) => self.inner.http.post(&url).form(form),
        };
        let transport = |e: reqwest::Error| RetailCrmError::Transport {
            endpoint: endpoint.to_string(),
            timeout: e.is_timeout(),
            source: e,
        };
        let response = request
            .header("X-API-KEY", self.inner.api_key.expose())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = crate::connectors::http::read_capped(
            response,
            crate::connectors::http::body_caps::DEFAULT,
        )
        .await
        .map_err(transport)?
        .map_err(|too_large| RetailCrmError::Malformed {
            endpoint: endpoint.to_string(),
            status,
            snippet: too_large.to_string(),
        })?;
        let body = String::from_utf8_lossy(&bytes);
        if let Some(answer) = decode_success(status, &body) {
            return Ok(answer);
        }
        let value = interpret(endpoint, status, &body)?;
        serde_json::from_value(value).map_err(|e| RetailCrmError::Schema {
            endpoint: endpoint.to_string(),
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(key: OfferKey, site: Option<&str>) -> RetailCrmClient {
        RetailCrmClient::new(RetailCrmConfig {
            url: "https://shop.retailcrm.ru/".into(),
            api_key: Secret::new("k-123"),
            site: site.map(str::to_string),
            store: "main".into(),
            offer_key: key,
            rate_per_sec: 10,
            policy: HttpPolicy::default(),
        })
        .unwrap()
    }

    #[test]
    fn money_rounds_the_decimal_value() {
        assert_eq!(money_to_kop(0.29), Some(29));
        assert_eq!(money_to_kop(19.99), Some(1999));
        assert_eq!(money_to_kop(1500.0), Some(150000));
        assert_eq!(money_to_kop(1234.565), Some(123457));
        assert_eq!(money_to_kop(-3.5), Some(-350));
        assert_eq!(money_to_kop(f64::NAN), None);
        assert_eq!(kop_to_money(12345), 123.45);
    }

    #[test]
    fn upload_body_carries_what_is_set_and_the_configured_key() {
        let c = client(OfferKey::XmlId, Some("shop-ru"));
        let body = c.upload_body(&[
            OfferStock {
                sku: "A-1".into(),
                available: Some(0),
                purchase_price_kop: None,
            },
            OfferStock {
                sku: "B-2".into(),
                available: Some(7),
                purchase_price_kop: Some(1250),
            },
            OfferStock {
                sku: "C-3".into(),
                available: None,
                purchase_price_kop: Some(1029),
            },
        ]);
        assert_eq!(
            body,
            json!([
                {"xmlId": "A-1", "site": "shop-ru", "stores": [{"code": "main", "available": 0}]},
                {"xmlId": "B-2", "site": "shop-ru", "stores": [{"code": "main", "available": 7, "purchasePrice": 12.5}]},
                {"xmlId": "C-3", "site": "shop-ru", "stores": [{"code": "main", "purchasePrice": 10.29}]}
            ])
        );
        let plain = client(OfferKey::ExternalId, None).upload_body(&[OfferStock {
            sku: "A-1".into(),
            available: Some(0),
            purchase_price_kop: None,
        }]);
        assert_eq!(
            plain,
            json!([{"externalId": "A-1", "stores": [{"code": "main", "available": 0}]}])
        );
    }

    #[test]
    fn order_patch_sends_only_set_fields() {
        assert!(OrderPatch::default().is_empty());
        assert_eq!(OrderPatch::default().to_json(), json!({}));
        let p = OrderPatch {
            shipped: Some(true),
            shipment_store: Some("main".into()),
            shipment_date: NaiveDate::from_ymd_opt(2026, 11, 21),
            status: Some("send-to-delivery".into()),
            track_number: Some("RA123".into()),
        };
        assert_eq!(
            p.to_json(),
            json!({"shipped":true,"shipmentStore":"main","shipmentDate":"2026-11-21",
                   "status":"send-to-delivery","delivery":{"data":{"trackNumber":"RA123"}}})
        );
        let only_track = OrderPatch {
            track_number: Some("X".into()),
            ..OrderPatch::default()
        };
        assert_eq!(
            only_track.to_json(),
            json!({"delivery":{"data":{"trackNumber":"X"}}})
        );
    }

    #[test]
    fn errors_are_typed_and_classified() {
        let refused = interpret(
            "/store/inventories",
            400,
            r#"{"success":false,"errorMsg":"Errors in the input parameters","errors":{"limit":"This value is not valid."}}"#,
        )
        .unwrap_err();
        assert!(refuses_page_size(&refused), "{refused}");
        let other = interpret(
            "/store/inventories",
            400,
            r#"{"success":false,"errorMsg":"Errors in the input parameters","errors":{"page":"bad"}}"#,
        )
        .unwrap_err();
        assert!(!refuses_page_size(&other));
        assert_eq!(ALLOWED_LIMITS, [20, 50, 100]);
    }

    #[test]
    fn errors_are_typed_and_classified_by_kind() {
        let e = interpret(
            "/x",
            403,
            r#"{"success":false,"errorMsg":"Wrong \"apiKey\" value."}"#,
        )
        .unwrap_err();
        assert_eq!(e.api_kind(), Some(ApiErrorKind::Forbidden));
        let e = interpret(
            "/x",
            400,
            r#"{"success":false,"errorMsg":"Parameter 'offers' is missing"}"#,
        )
        .unwrap_err();
        assert_eq!(e.api_kind(), Some(ApiErrorKind::MissingParameter));
        let e = interpret(
            "/x",
            400,
            r#"{"success":false,"errorMsg":"Errors in the entity format","errors":{"status":"Unknown","date":"Bad",}}"#,
        )
        .unwrap_err();
        match &e {
            RetailCrmError::Api { kind, errors, .. } => {
                assert_eq!(*kind, ApiErrorKind::Validation);
                assert_eq!(errors.len(), 2);
                assert!(errors
                    .iter()
                    .any(|e| e.field.as_deref() == Some("status") && e.message == "Unknown"));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("status: Unknown"));
        let e = interpret(
            "/x",
            460,
            r#"{"success":false,"errorMsg":"Partly","errors":["offer 3 failed"]}"#,
        )
        .unwrap_err();
        match e {
            RetailCrmError::Api { kind, errors, .. } => {
                assert_eq!(kind, ApiErrorKind::PartialFailure);
                assert_eq!(
                    errors,
                    vec![FieldError {
                        field: None,
                        message: "offer 3 failed".into()
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
        let e = interpret("/x", 200, r#"{"success":false,"errorMsg":"Nope"}"#).unwrap_err();
        assert_eq!(e.api_kind(), Some(ApiErrorKind::Other));
    }

    #[test]
    fn html_and_broken_bodies_are_recognised() {
        let e =
            interpret("/x", 200, "\n<!DOCTYPE html><html>Account not found</html>").unwrap_err();
        assert!(matches!(e, RetailCrmError::NotApi { .. }));
        assert!(e.to_string().contains("account does not exist"));
        assert!(!e.is_retryable());
        let e = interpret("/x", 200, r#"{"success":true,"off"#).unwrap_err();
        assert!(matches!(e, RetailCrmError::Malformed { .. }) && e.is_retryable());
        let e = interpret("/x", 503, "sandbox: injected 503").unwrap_err();
        assert!(matches!(e, RetailCrmError::RateLimited { status: 503, .. }) && e.is_retryable());
        let e = interpret("/x", 502, "<html>bad gateway</html>").unwrap_err();
        assert!(matches!(e, RetailCrmError::Server { .. }) && e.is_retryable());
    }

    #[test]
    fn inventory_answer_with_php_quirks_parses() {
        let body = r#"{"success":true,"pagination":{"limit":250,"totalCount":2,"currentPage":1,"totalPageCount":1},
            "offers":[{"id":"11","externalId":1001,"xmlId":"x-1","site":"shop-ru","quantity":"5.0",
                       "stores":[{"store":"main","quantity":3.0,"purchasePrice":10.29},{"store":"spb","quantity":2}]},
                      {"id":12,"externalId":null,"xmlId":"x-2","quantity":0.0,"stores":{}},]}"#;
        let a: InventoriesAnswer =
            serde_json::from_value(interpret("/x", 200, body).unwrap()).unwrap();
        assert_eq!(a.pagination.total_page_count, Some(1));
        let o = &a.items[0];
        assert_eq!(
            (o.id, o.sku(OfferKey::ExternalId), o.sku(OfferKey::XmlId)),
            (11, Some("1001"), Some("x-1"))
        );
        assert_eq!(o.quantity, 5.0);
        assert_eq!(o.store_quantity("main"), Some(3.0));
        assert_eq!(o.stores[0].purchase_price_kop, Some(1029));
        assert_eq!(o.store_quantity("nowhere"), None);
        assert_eq!(a.items[1].sku(OfferKey::ExternalId), None);
        assert!(a.items[1].stores.is_empty());
    }

    #[test]
    fn order_with_php_empty_maps_parses() {
        let body = r#"{"success":true,"pagination":{"limit":50,"totalCount":1,"currentPage":1,"totalPageCount":1},
          "orders":[{"id":501,"externalId":"S-1","number":"501A","site":"shop-ru","status":"assembling",
            "shipped":"0","shipmentStore":"main","shipmentDate":"2026-11-21","totalSumm":1999.9,
            "createdAt":"2026-11-20 10:00:00","payments":[],"customFields":[],
            "delivery":{"code":"courier","cost":300.0,"data":[]},
            "items":[{"id":1,"quantity":2.0,"initialPrice":999.95,"offer":{"id":11,"externalId":"A-1","xmlId":"x-1"},"properties":[]}]}]}"#;
        let a: ListAnswer<RawOrder> =
            serde_json::from_value(interpret("/orders", 200, body).unwrap()).unwrap();
        let mut orders = a.items.into_iter();
        let o = orders.next().unwrap().into_order("/orders").unwrap();
        assert_eq!(o.external_id.as_deref(), Some("S-1"));
        assert!(!o.shipped);
        assert_eq!(o.shipment_date, NaiveDate::from_ymd_opt(2026, 11, 21));
        assert_eq!(o.total_summ_kop, 199990);
        assert_eq!(o.items[0].quantity, 2.0);
        assert_eq!(o.items[0].initial_price_kop, 99995);
        assert_eq!(o.items[0].sku(OfferKey::XmlId), Some("x-1"));
        assert_eq!(o.track_number, None);
        assert_eq!(o.delivery_code.as_deref(), Some("courier"));
    }

    #[test]
    fn bad_shipment_date_is_a_schema_error() {
        let raw: RawOrder =
            serde_json::from_value(json!({"id": 1, "shipmentDate": "21.11.2026"})).unwrap();
        assert!(matches!(
            raw.into_order("/orders"),
            Err(RetailCrmError::Schema { .. })
        ));
    }

    #[test]
    fn statuses_keyed_by_code_parse() {
        let body = r#"{"success":true,"statuses":{
            "new":{"name":"Новый","code":"new","active":true,"ordering":10,"group":"new"},
            "cancel-other":{"name":"Отменен","code":"cancel-other","active":true,"ordering":200,"group":"cancel"}}}"#;
        let a: ListAnswer<Status> =
            serde_json::from_value(interpret("/x", 200, body).unwrap()).unwrap();
        assert_eq!(a.items.len(), 2);
        let cancel = a.items.iter().find(|s| s.code == "cancel-other").unwrap();
        assert_eq!(
            (cancel.group.as_str(), cancel.ordering),
            ("cancel", Some(200))
        );
    }

    #[test]
    fn module_serialises_client_id_but_debug_hides_it() {
        let m = IntegrationModule {
            code: "sverka-wms".into(),
            integration_code: Some("sverka".into()),
            name: "sverka".into(),
            active: true,
            base_url: "https://hooks.example".into(),
            client_id: Secret::new("cid-secret"),
            logo: None,
            account_url: None,
            integrations: Some(Integrations {
                store: Some(StoreIntegration {
                    actions: vec![StoreAction {
                        code: "inventoriesUpload".into(),
                        url: "/crm/inventories".into(),
                        call_points: vec!["order_create".into()],
                    }],
                }),
            }),
        };
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["clientId"], "cid-secret");
        assert_eq!(v["baseUrl"], "https://hooks.example");
        assert_eq!(
            v["integrations"]["store"]["actions"][0]["callPoints"][0],
            "order_create"
        );
        assert!(!format!("{m:?}").contains("cid-secret"));
        let back: IntegrationModule = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn config_is_validated_and_key_never_printed() {
        let mut cfg = RetailCrmConfig {
            url: "shop.retailcrm.ru".into(),
            api_key: Secret::new("k-123"),
            site: None,
            store: "main".into(),
            offer_key: OfferKey::ExternalId,
            rate_per_sec: 10,
            policy: HttpPolicy::default(),
        };
        assert!(matches!(
            RetailCrmClient::new(cfg.clone()),
            Err(RetailCrmError::Config(_))
        ));
        cfg.url = "https://shop.retailcrm.ru/api/v5/".into();
        let c = RetailCrmClient::new(cfg.clone()).unwrap();
        assert_eq!(c.inner.api, "https://shop.retailcrm.ru/api/v5");
        assert!(!format!("{c:?}").contains("k-123"));
        cfg.api_key = Secret::default();
        assert!(RetailCrmClient::new(cfg).is_err());
    }

    #[test]
    fn offer_key_serde_names() {
        assert_eq!(
            serde_json::to_string(&OfferKey::XmlId).unwrap(),
            "\"xmlId\""
        );
        let k: OfferKey = serde_json::from_str("\"externalId\"").unwrap();
        assert_eq!(k, OfferKey::ExternalId);
        assert_eq!(encode_segment("A 1/ä"), "A%201%2F%C3%A4");
    }
}
