//! The RetailCRM sandbox HTTP server: routes and handlers.

use super::*;

// ---------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------

pub(super) type Shared = Arc<Mutex<RetailCrmState>>;

pub(super) fn lock(state: &Shared) -> MutexGuard<'_, RetailCrmState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `f` on the state after the account / rate / key checks.
pub(super) fn handle(
    state: &Shared,
    headers: &HeaderMap,
    query: Option<String>,
    body: &[u8],
    f: impl FnOnce(&mut RetailCrmState, &Params, &Params) -> Answer,
) -> Response {
    let query = Params::parse(query.unwrap_or_default().as_bytes());
    let form = Params::parse(body);
    let mut st = lock(state);
    st.admit(headers, &query)
        .and_then(|()| f(&mut st, &query, &form))
        .unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn stores_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, _, _| st.stores_answer())
}

pub(super) async fn statuses_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, _, _| st.statuses_answer())
}

pub(super) async fn inventories_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.inventories(q))
}

pub(super) async fn upload_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(&s, &h, q, &body, |st, _, form| st.upload(form))
}

pub(super) async fn products_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.products_answer(q))
}

pub(super) async fn groups_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.groups_answer(q))
}

pub(super) async fn properties_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.properties_answer(q))
}

pub(super) async fn orders_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.orders_answer(q))
}

pub(super) async fn history_h(
    State(s): State<Shared>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, q, _| st.history_answer(q))
}

pub(super) async fn order_edit_h(
    State(s): State<Shared>,
    Path(external_id): Path<String>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(&s, &h, q, &body, |st, _, form| {
        st.order_edit(&external_id, form)
    })
}

pub(super) async fn module_get_h(
    State(s): State<Shared>,
    Path(code): Path<String>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    handle(&s, &h, q, &[], |st, _, _| st.module_get(&code))
}

pub(super) async fn module_edit_h(
    State(s): State<Shared>,
    Path(code): Path<String>,
    h: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    handle(&s, &h, q, &body, |st, _, form| st.module_edit(&code, form))
}

pub(super) async fn unknown_method() -> Response {
    fail(404, "API method not found", None).into_response()
}

/// The RetailCRM sandbox: shared state plus the request log and fault knobs.
#[derive(Debug, Clone)]
pub struct RetailCrmSandbox {
    /// The account's data; lock it to seed or inspect.
    pub state: Arc<Mutex<RetailCrmState>>,
    /// Request log, latency and fault injection.
    pub control: SandboxControl,
}

impl RetailCrmSandbox {
    /// A sandbox account with `api_key` and `site`; `seed` drives random faults.
    pub fn new(api_key: &str, site: &str, seed: u64) -> Self {
        RetailCrmSandbox {
            state: Arc::new(Mutex::new(RetailCrmState::new(api_key, site))),
            control: SandboxControl::new("retailcrm", seed),
        }
    }

    /// Locks the state (poisoning is ignored: the state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, RetailCrmState> {
        lock(&self.state)
    }

    /// The instrumented router; every route lives under `/api/v5`.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/api/v5/reference/stores", get(stores_h))
            .route("/api/v5/reference/statuses", get(statuses_h))
            .route("/api/v5/store/inventories", get(inventories_h))
            .route("/api/v5/store/inventories/upload", post(upload_h))
            .route("/api/v5/store/products", get(products_h))
            .route("/api/v5/store/product-groups", get(groups_h))
            .route("/api/v5/store/products/properties", get(properties_h))
            .route("/api/v5/orders", get(orders_h))
            .route("/api/v5/orders/history", get(history_h))
            .route("/api/v5/orders/{external_id}/edit", post(order_edit_h))
            .route("/api/v5/integration-modules/{code}", get(module_get_h))
            .route(
                "/api/v5/integration-modules/{code}/edit",
                post(module_edit_h),
            )
            .fallback(unknown_method)
            .with_state(self.state.clone());
        instrument(routes, self.control.clone())
    }

    /// Serves the sandbox on `addr` (port 0 for an ephemeral one).
    pub async fn start(&self, addr: SocketAddr) -> std::io::Result<RunningServer> {
        spawn(self.router(), addr).await
    }
}
