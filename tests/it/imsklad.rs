//! IMSKLAD client against the IMSKLAD sandbox over real HTTP.

use axum::body::Bytes;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use sverka::connectors::imsklad::{
    quick_policy, Doc, Good, ImskladClient, ImskladConfig, ImskladError, NoExtra, Order, OrderGood,
    Pickup, Preorder, StockRow, WriteOutcome, WARNING_GOODS_NOT_SAVED,
};
use sverka::sandbox::common::{any_local_port, FaultKind, ScriptedFault};
use sverka::sandbox::imsklad::{self as sb, ImskladSandbox, NewBillingLine, TrackUpdate};
use sverka::secret::Secret;
use sverka::server::{spawn, RunningServer};

const KEY: &str = "imsklad-test-key-7f3a";

struct Env {
    sandbox: ImskladSandbox,
    server: RunningServer,
}

impl Env {
    async fn start() -> Env {
        let sandbox = ImskladSandbox::new(KEY, 1, 7);
        let server = sandbox
            .start(any_local_port())
            .await
            .expect("sandbox starts");
        Env { sandbox, server }
    }

    fn config(&self) -> ImskladConfig {
        let mut cfg = ImskladConfig::new(format!("{}/", self.server.url), Secret::new(KEY), 1);
        cfg.policy = quick_policy(Duration::from_secs(5), 4);
        cfg
    }

    fn client(&self) -> ImskladClient {
        ImskladClient::new(self.config()).expect("client")
    }

    fn client_with(&self, f: impl FnOnce(&mut ImskladConfig)) -> ImskladClient {
        let mut cfg = self.config();
        f(&mut cfg);
        ImskladClient::new(cfg).expect("client")
    }

    fn requests(&self) -> usize {
        self.sandbox.control.requests().len()
    }

    fn requests_with(&self, action: &str) -> usize {
        let needle = format!("\"action\":\"{action}\"");
        self.sandbox
            .control
            .requests()
            .iter()
            .filter(|r| r.body_text().contains(&needle))
            .count()
    }
}

fn good(id: &str, price_kop: i64) -> Good {
    Good {
        id: id.into(),
        name: format!("Товар {id}"),
        description: None,
        price_kop,
        cost_kop: price_kop / 2,
        image: None,
        weight: Some(250),
        width: None,
        height: None,
        length: None,
        color: Some(13),
        size: Some("XL".into()),
    }
}

fn line(id: &str, quantity: i64, price_kop: i64) -> OrderGood {
    OrderGood {
        id: id.into(),
        quantity,
        price_kop,
    }
}

fn order(id: &str, goods: Vec<OrderGood>) -> Order {
    Order {
        id: id.into(),
        guid: Some(format!("guid-{id}")),
        tags: Some("call".into()),
        name: "Иванов Иван".into(),
        email: None,
        phone: Some("79990000000".into()),
        phone2: None,
        post_code: None,
        address: Some("Москва".into()),
        address_lat: None,
        address_lng: None,
        comment: None,
        owner_comment: None,
        discount_kop: 0,
        delivery_kop: 35_050,
        total_paid_kop: 158_445,
        delivery_type: Some(16),
        delivery_date_from: None,
        delivery_date_to: None,
        shipment_date: None,
        courier: Some(7),
        is_canceled: Some(0),
        tracked: None,
        track: None,
        track_status: None,
        track_update: None,
        city_id: None,
        pickup_point: None,
        courier_city_code: None,
        address_obj: None,
        goods,
    }
}

fn request_data(env: &Env, action: &str) -> Value {
    let needle = format!("\"action\":\"{action}\"");
    let r = env
        .sandbox
        .control
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.body_text().contains(&needle))
        .expect("request was sent");
    let v: Value = serde_json::from_slice(&r.body).expect("the client sends strict JSON");
    v["data"].clone()
}

#[tokio::test]
async fn goods_round_trip() {
    let env = Env::start().await;
    let client = env.client();
    let id = client
        .add_good(&good("SKU-1", 12_345))
        .await
        .expect("added");
    let data = request_data(&env, "add_good");
    assert_eq!(data["price"], json!(123.45));
    assert_eq!(data["cost"], json!(61.72));
    assert_eq!(data["id"], json!("SKU-1"));
    assert!(
        data.get("description").is_none(),
        "unset options are left out"
    );
    let mut changed = good("SKU-1", 100);
    changed.name = "Новое имя".into();
    assert_eq!(client.update_good(&changed).await.expect("updated"), id);
    let state = env.sandbox.lock();
    let stored = state.good_by_partner("SKU-1").expect("stored");
    assert_eq!((stored.wms_id, stored.good.price_kop), (id, 100));
    assert_eq!(stored.good.name, "Новое имя");
    let r = &env.sandbox.control.requests()[0];
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert!(r
        .headers
        .iter()
        .any(|(k, v)| k == "user-agent" && v.starts_with("sverka/")));
}

#[tokio::test]
async fn stock_is_batched_sorted_and_lenient() {
    let env = Env::start().await;
    let ids: Vec<i64> = {
        let mut s = env.sandbox.lock();
        (0..1200)
            .map(|i| {
                let id = s.add_good(&format!("S{i}"), &format!("n{i}"), 100);
                s.set_stock(id, i, i % 3).expect("known");
                id
            })
            .collect()
    };
    let client = env.client_with(|c| c.stock_batch = 500);
    let mut shuffled = ids.clone();
    shuffled.reverse();
    shuffled.push(ids[0]); // duplicates are asked once
    let rows = client.get_stock(&shuffled).await.expect("stock").rows;
    assert_eq!(env.requests_with("get_stock"), 3);
    assert_eq!(rows.len(), 1200);
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        rows[5],
        StockRow {
            id: ids[5],
            stock: 5,
            reserved: 2
        }
    );
    let sizes: Vec<usize> = env
        .sandbox
        .control
        .requests()
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).expect("json");
            assert_eq!(v["data"]["storage_id"], json!(1));
            v["data"]["ids"].as_array().map_or(0, Vec::len)
        })
        .collect();
    let mut sorted_sizes = sizes.clone();
    sorted_sizes.sort_unstable();
    assert_eq!(sorted_sizes, vec![200, 500, 500]);

    // Quirks: strings, trailing commas, hidden rows, empty answers.
    {
        let mut s = env.sandbox.lock();
        s.stock_as_strings = true;
        s.trailing_commas = true;
        s.hidden_stock.insert(ids[1]);
    }
    let rows = client
        .get_stock(&ids[..3])
        .await
        .expect("quirky stock")
        .rows;
    assert_eq!(
        rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![ids[0], ids[2]]
    );
    assert_eq!(rows[1].stock, 2);
    env.sandbox.lock().empty_stock = true;
    assert!(client
        .get_stock(&ids[..3])
        .await
        .expect("empty")
        .rows
        .is_empty());
    env.sandbox.control.clear_requests();
    assert!(client
        .get_stock(&[])
        .await
        .expect("nothing asked")
        .rows
        .is_empty());
    assert_eq!(env.requests(), 0, "no call for no ids");
}

#[tokio::test]
async fn stock_concurrency_is_bounded() {
    let env = Env::start().await;
    let ids: Vec<i64> = {
        let mut s = env.sandbox.lock();
        s.answer_delay = Duration::from_millis(60);
        (0..40)
            .map(|i| s.add_good(&format!("C{i}"), "c", 1))
            .collect()
    };
    let client = env.client_with(|c| {
        c.stock_batch = 4;
        c.concurrency = 3;
    });
    let rows = client.get_stock(&ids).await.expect("stock").rows;
    assert_eq!(rows.len(), 40);
    assert_eq!(env.requests_with("get_stock"), 10);
    let max = env.sandbox.lock().max_in_flight();
    assert!(max <= 3, "{max} calls in flight with concurrency 3");
    assert!(max >= 2, "batches should overlap, saw {max}");
}

#[tokio::test]
async fn orders_add_update_warning_and_cancel() {
    let env = Env::start().await;
    let client = env.client();
    {
        let mut s = env.sandbox.lock();
        s.add_good("101", "a", 10_000);
        s.add_good("A-2", "b", 20_000);
    }
    let o = order("ORD-1", vec![line("101", 2, 12_345), line("A-2", 1, 99)]);
    let outcome = client.add_order(&o).await.expect("added");
    let wms_id = outcome.id().expect("id answered");
    assert_eq!(outcome, WriteOutcome::Ok { id: Some(wms_id) });
    let data = request_data(&env, "add_order");
    assert_eq!(data["storage_id"], json!(1));
    assert_eq!(
        data["goods"][0],
        json!({"id": 101, "quantity": 2, "price": 123.45})
    );
    assert_eq!(data["goods"][1]["id"], json!("A-2"));
    assert_eq!(data["delivery"], json!(350.5));
    assert_eq!(data["total_paid"], json!(1584.45));
    {
        let s = env.sandbox.lock();
        let stored = s.order("ORD-1").expect("stored");
        assert_eq!(stored.order, o, "money round-trips to the kopeck");
        assert_eq!((stored.wms_id, stored.status), (wms_id, 0));
    }
    let dup = client.add_order(&o).await.expect_err("exists");
    assert!(dup.is_not_performed(), "{dup}");

    // In assembly, a goods change is refused with the documented warning.
    env.sandbox
        .lock()
        .set_order_status("ORD-1", 2)
        .expect("known");
    let mut changed = o.clone();
    changed.goods[0].quantity = 3;
    changed.comment = Some("позвонить".into());
    let outcome = client
        .update_order(&changed)
        .await
        .expect("partial success");
    assert_eq!(outcome.warning(), Some(WARNING_GOODS_NOT_SAVED));
    assert_eq!(outcome.id(), Some(wms_id));
    assert!(request_data(&env, "update_order")
        .get("storage_id")
        .is_none());
    {
        let s = env.sandbox.lock();
        let stored = s.order("ORD-1").expect("stored");
        assert_eq!(stored.order.goods, o.goods);
        assert_eq!(stored.order.comment.as_deref(), Some("позвонить"));
    }
    let mut cancel = o.clone();
    cancel.is_canceled = Some(1);
    assert_eq!(
        client.update_order(&cancel).await.expect("cancelled"),
        WriteOutcome::Ok { id: Some(wms_id) }
    );
    assert_eq!(
        env.sandbox.lock().order("ORD-1").map(|o| o.status),
        Some(10)
    );
    let unknown = client
        .update_order(&order("NOPE", vec![]))
        .await
        .expect_err("unknown");
    assert!(unknown.is_not_found(), "{unknown}");
    let bad_line = client
        .add_order(&order("ORD-2", vec![line("missing", 1, 1)]))
        .await
        .expect_err("unknown goods");
    assert!(bad_line.is_not_found());
}

#[tokio::test]
async fn preorders_and_docs() {
    let env = Env::start().await;
    let client = env.client();
    env.sandbox.lock().add_good("7", "g", 100);
    let mut p = Preorder {
        id: "P-1".into(),
        code: Some("TT-1".into()),
        kind: 0,
        date: Some(1_565_397_798),
        extra: Pickup {
            need_pickup: Some(1),
            pickup_address: Some("Москва".into()),
            pickup_contacts: None,
            supplier_name: Some("SomeGoodCompany".into()),
        },
        goods: vec![line("7", 4, 1_050)],
    };
    let id = client.add_preorder(&p).await.expect("added").id();
    let data = request_data(&env, "add_preorder");
    assert_eq!(
        (data["owner_date"].clone(), data.get("date")),
        (json!(1_565_397_798), None)
    );
    assert_eq!(data["storage_id"], json!(1));
    assert_eq!(data["goods"][0]["price"], json!(10.5));
    p.goods[0].quantity = 5;
    let outcome = client.update_preorder(&p).await.expect("updated");
    assert_eq!(outcome.id(), id);
    let data = request_data(&env, "update_preorder");
    assert_eq!(data["date"], json!(1_565_397_798));
    assert!(data.get("owner_date").is_none() && data.get("storage_id").is_none());
    assert_eq!(
        env.sandbox
            .lock()
            .preorder("P-1")
            .map(|p| p.doc.goods[0].quantity),
        Some(5)
    );

    let mut d = Doc {
        id: "D-1".into(),
        code: None,
        kind: 1,
        date: None,
        extra: NoExtra {},
        goods: vec![line("7", 1, 100)],
    };
    let id = client.add_doc(&d).await.expect("added").id();
    assert_eq!(request_data(&env, "add_doc")["storage_id"], json!(1));
    d.code = Some("WO-1".into());
    assert_eq!(client.update_doc(&d).await.expect("updated").id(), id);
    assert_eq!(
        env.sandbox.lock().doc("D-1").map(|x| x.doc.clone()),
        Some(d.clone())
    );
    d.kind = 5;
    let err = client.update_doc(&d).await.expect_err("bad type");
    assert!(err.is_bad_request() && !err.is_retryable(), "{err}");
}

#[tokio::test]
async fn billing_is_filtered_and_exact() {
    let env = Env::start().await;
    {
        let mut s = env.sandbox.lock();
        s.set_balance(1_000_000);
        s.add_billing_line(NewBillingLine {
            order_id: Some(5),
            foreign_order_id: Some("359407".into()),
            kind: 0,
            date: 1_000,
            amount_kop: -5_050,
            ..NewBillingLine::default()
        });
        s.add_billing_line(NewBillingLine {
            doc_request_id: Some(1120),
            kind: 2,
            date: 2_000,
            amount_kop: -10_001,
            comment: "Забор товара".into(),
            ..NewBillingLine::default()
        });
        s.add_billing_line(NewBillingLine {
            kind: 1,
            date: 3_000,
            amount_kop: 100_000,
            ..NewBillingLine::default()
        });
    }
    let client = env.client();
    let b = client.get_billing(1_000, 2_000).await.expect("billing");
    assert_eq!(b.current_balance_kop, 1_084_949);
    assert_eq!(b.change_of_balance_kop, -15_051);
    assert_eq!(b.lines.len(), 2);
    assert_eq!(b.lines[0].foreign_order_id.as_deref(), Some("359407"));
    assert_eq!((b.lines[1].kind, b.lines[1].amount_kop), (2, -10_001));
    assert_eq!(
        request_data(&env, "get_billing"),
        json!({"storage_id": 1, "from": 1_000, "to": 2_000})
    );
    {
        let mut s = env.sandbox.lock();
        s.amounts_as_strings = true;
        s.trailing_commas = true;
    }
    let quirky = client
        .get_billing(1_000, 2_000)
        .await
        .expect("quirky billing");
    assert_eq!(quirky, b);
    let none = client
        .get_billing(5_000, 6_000)
        .await
        .expect("empty period");
    assert!(none.lines.is_empty() && none.change_of_balance_kop == 0);
}

#[tokio::test]
async fn code_1_is_retried_until_it_succeeds_or_attempts_run_out() {
    let env = Env::start().await;
    let client = env.client();
    env.sandbox
        .lock()
        .fail_next("get_billing", sb::CODE_FATAL, "Fatal error", 2);
    client
        .get_billing(0, 1)
        .await
        .expect("third attempt succeeds");
    assert_eq!(env.requests_with("get_billing"), 3);

    env.sandbox
        .lock()
        .fail_next("get_billing", sb::CODE_FATAL, "Fatal error", 10);
    let err = client.get_billing(0, 1).await.expect_err("gives up");
    assert!(err.is_fatal_server_error(), "{err}");
    assert_eq!(env.requests_with("get_billing"), 3 + 4, "max_attempts = 4");
    assert_eq!(err.action(), Some("get_billing"));
}

#[tokio::test]
async fn codes_2_3_4_and_wrong_key_are_not_retried() {
    let env = Env::start().await;
    let client = env.client();
    let err = client
        .update_good(&good("ghost", 1))
        .await
        .expect_err("code 2");
    assert!(err.is_not_found() && !err.is_retryable());
    assert_eq!(env.requests(), 1);

    env.sandbox
        .lock()
        .fail_next("add_good", sb::CODE_BAD_DATA, "Incorrect data", 1);
    let err = client.add_good(&good("x", 1)).await.expect_err("code 3");
    assert!(err.is_bad_request());
    assert_eq!(env.requests(), 2);

    client.add_good(&good("x", 1)).await.expect("added");
    let err = client.add_good(&good("x", 1)).await.expect_err("code 4");
    assert!(err.is_not_performed());
    assert_eq!(env.requests(), 4);

    let wrong = env.client_with(|c| c.key = Secret::new("wrong-key-SECRET"));
    let err = wrong.get_billing(0, 1).await.expect_err("wrong key");
    assert!(err.is_bad_request(), "{err}");
    assert_eq!(env.requests(), 5);
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("wrong-key-SECRET") && !shown.contains(KEY));
}

#[tokio::test]
async fn http_faults_are_retried() {
    let env = Env::start().await;
    let client = env.client();
    env.sandbox.lock().add_good("F", "f", 1);
    let wms = env.sandbox.lock().good_by_partner("F").map(|g| g.wms_id);
    let ids: Vec<i64> = wms.into_iter().collect();
    let fault = |kind: FaultKind, times: usize| ScriptedFault {
        path_contains: "get_stock".into(),
        skip: 0,
        times,
        kind,
    };

    env.sandbox
        .control
        .push_fault(fault(FaultKind::Status(500), 2));
    assert_eq!(
        client.get_stock(&ids).await.expect("after 500s").rows.len(),
        1
    );
    assert_eq!(env.requests(), 3);

    env.sandbox.control.set_faults(Default::default());
    env.sandbox
        .control
        .push_fault(fault(FaultKind::Truncate, 1));
    assert_eq!(
        client
            .get_stock(&ids)
            .await
            .expect("after truncation")
            .rows
            .len(),
        1
    );
    assert_eq!(env.requests(), 5);

    env.sandbox.control.set_faults(Default::default());
    env.sandbox
        .control
        .push_fault(fault(FaultKind::Truncate, 10));
    let err = client.get_stock(&ids).await.expect_err("always truncated");
    assert!(matches!(err, ImskladError::Decode { .. }), "{err}");
    assert!(
        err.to_string().contains("get_stock") && err.to_string().contains("[{"),
        "{err}"
    );
    assert_eq!(
        env.requests(),
        5 + 3,
        "one try and two retries for bad bodies"
    );

    env.sandbox.control.set_faults(Default::default());
    env.sandbox
        .control
        .push_fault(fault(FaultKind::Status(503), 10));
    let err = client.get_stock(&ids).await.expect_err("always 503");
    assert!(
        matches!(err, ImskladError::Status { status: 503, .. }),
        "{err}"
    );
    assert_eq!(env.requests(), 8 + 4);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let env = Env::start().await;
    let mut faults = env.sandbox.control.faults();
    faults.timeout_delay = Duration::from_secs(3);
    faults.scripted.push(ScriptedFault {
        path_contains: "get_billing".into(),
        skip: 0,
        times: 1,
        kind: FaultKind::Timeout,
    });
    env.sandbox.control.set_faults(faults);
    let client = env.client_with(|c| c.policy = quick_policy(Duration::from_millis(300), 3));
    // The fault hits exactly the first call, so success means a retry was made.
    // (A request abandoned by the client never completes, so the log only
    // holds the answered one.)
    client
        .get_billing(0, 1)
        .await
        .expect("second attempt answers");
    let answered = env.sandbox.control.requests();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].fault, None);

    let one_try = env.client_with(|c| c.policy = quick_policy(Duration::from_millis(300), 1));
    env.sandbox.control.push_fault(ScriptedFault {
        path_contains: "get_billing".into(),
        skip: 0,
        times: 1,
        kind: FaultKind::Timeout,
    });
    let err = one_try.get_billing(0, 1).await.expect_err("times out");
    assert!(
        matches!(err, ImskladError::Transport { timeout: true, .. }),
        "{err}"
    );
    assert!(!format!("{err:?}").contains(KEY));
}

#[tokio::test]
async fn doc_examples_are_accepted_over_http() {
    let env = Env::start().await;
    {
        let mut s = env.sandbox.lock();
        s.add_good("123123", "a", 1);
        s.add_good("342343", "b", 1);
    }
    let http = reqwest::Client::new();
    for example in [
        sb::doc_examples::ADD_GOOD_REQUEST,
        sb::doc_examples::GET_STOCK_REQUEST,
        sb::doc_examples::ADD_ORDER_REQUEST,
        sb::doc_examples::GET_BILLING_REQUEST,
    ] {
        let body = example.replace("YOUR_API_KEY", KEY);
        let text = http
            .post(&env.server.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("body");
        let v: Value = serde_json::from_str(&text).expect("strict JSON answer");
        assert!(v.get("error").is_none(), "{example} → {text}");
    }
    assert!(env.sandbox.lock().order("AZ-1234").is_some());
}

type Received = Arc<Mutex<Vec<String>>>;

async fn listener() -> (RunningServer, Received) {
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                if let Ok(mut v) = sink.lock() {
                    v.push(String::from_utf8_lossy(&body).into_owned());
                }
                r#"{"result": "ok"}"#
            }
        }),
    );
    let server = spawn(app, any_local_port()).await.expect("listener starts");
    (server, received)
}

#[tokio::test]
async fn callbacks_reach_the_listener() {
    let (server, received) = listener().await;
    let url = format!("{}/hook", server.url);
    let data = sb::set_status_data("AZ-1", 0, 1, 42, None);
    let (status, body) = sb::send_callback(&url, "endpoint-key", "order", "set_status", &data)
        .await
        .expect("delivered");
    assert_eq!((status, body.as_str()), (200, r#"{"result": "ok"}"#));
    let tracks = sb::update_tracks_data(&[TrackUpdate::Err {
        id: "AZ-1".into(),
        guid: None,
        err: "Incorrect pvz".into(),
    }]);
    sb::send_callback(&url, "endpoint-key", "order", "update_tracks", &tracks)
        .await
        .expect("delivered");
    sb::send_raw_callback(&url, sb::CALLBACK_UPDATE_TRACKS_EXAMPLE)
        .await
        .expect("delivered");
    let got = received.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(got.len(), 3);
    let first: Value = serde_json::from_str(&got[0]).expect("strict JSON");
    assert_eq!(
        first,
        json!({"key": "endpoint-key", "type": "order", "action": "set_status",
               "data": {"id": "AZ-1", "old_status": 0, "new_status": 1, "system_id": 42, "guid": null}})
    );
    let second: Value = serde_json::from_str(&got[1]).expect("strict JSON");
    assert_eq!(second["data"][0]["err"], "Incorrect pvz");
    assert_eq!(got[2], sb::CALLBACK_UPDATE_TRACKS_EXAMPLE, "sent verbatim");
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One retried call and one refused call.
async fn retried_and_refused_calls(env: &Env) {
    env.sandbox
        .lock()
        .fail_next("get_billing", sb::CODE_FATAL, "Fatal error", 1);
    let client = env.client();
    client.get_billing(0, 1).await.expect("retried");
    client
        .update_good(&good("ghost", 1))
        .await
        .expect_err("not found");
}

#[tokio::test]
async fn logs_name_the_action_and_request_but_never_the_key() {
    let env = Env::start().await;
    // tracing caches per-callsite interest globally; a callsite first reached
    // by a parallel test while this subscriber is being installed could stay
    // muted. Reaching every callsite first makes the install below rebuild
    // their interest with this subscriber included.
    retried_and_refused_calls(&env).await;

    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    retried_and_refused_calls(&env).await;
    let text = logs
        .0
        .lock()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    assert!(
        text.contains("get_billing") && text.contains("request_id"),
        "{text}"
    );
    assert!(text.contains("imsklad retry"), "{text}");
    assert!(text.contains("imsklad request failed"), "{text}");
    assert!(!text.contains(KEY), "the key leaked into the logs");
}
