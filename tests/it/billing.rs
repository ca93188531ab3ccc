//! `reconcile billing` end to end: the seeded sandbox world's billing over real
//! HTTP, the shop and state databases on every engine, the CSV and HTML
//! reports read back, and the HTML page rendered by a real browser.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde_json::Value;
use sverka::config::{Config, CsvDialect, WmsKind};
use sverka::db::runs::{self, RunStatus};
use sverka::db::Db;
use sverka::jobs::billing::{self, day_start, LINE_REPORT_COLUMNS, SUMMARY_REPORT_COLUMNS};
use sverka::jobs::Context;
use sverka::reconcile::billing::{class, kind};
use sverka::report::summary::JobSummary;
use sverka::sandbox::imsklad::{NewBillingLine, CODE_FATAL};
use sverka::sandbox::world::WorldSpec;
use sverka::sandbox::world_billing::{self as wb, BillingDrift, WorldBilling};
use sverka::sandbox::{SandboxOptions, SandboxSet};

use crate::stock::global;
use crate::support::{self, TestWorld, WorldOptions};

/// The world's orders and billing loaded into the sandbox and one database
/// that holds both the shop's tables and sverka's state.
struct Fixture {
    set: SandboxSet,
    billing: WorldBilling,
    /// The sandbox id of each world line, in order.
    ids: Vec<i64>,
    config: Config,
    tz: Tz,
    _dir: tempfile::TempDir,
}

async fn fixture(db: &support::TestDb, n_orders: usize) -> Fixture {
    let mut opts = support::WorldOptions::new(
        WorldSpec {
            skus: 40,
            orders: n_orders,
            ..WorldSpec::default()
        },
        WmsKind::Imsklad,
    );
    opts.sandbox.rate_limits = false;
    opts.state_url = Some(db.url.clone());
    opts.sku_mapping = false;
    opts.orders = true;
    opts.order_mapping = false;
    let w = support::TestWorld::spawn(db, opts).await;
    let tz = w.config.tz();
    let billing = wb::generate_billing(&w.orders, w.world.spec.seed, w.world.spec.days, w.now, tz);
    let ids = wb::seed_billing(&w.set, &billing);
    wb::write_shop_billing(&w.shop, &billing)
        .await
        .expect("write billing facts");
    w.shop.db().close().await;
    w.set.imsklad.control.clear_requests();
    Fixture {
        set: w.set,
        billing,
        ids,
        config: w.config,
        tz,
        _dir: w.dir,
    }
}

async fn run_billing(
    config: &Config,
    dry_run: bool,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> JobSummary {
    let mut ctx = Context::open(config, &global(dry_run), false)
        .await
        .expect("context");
    ctx.http.max_attempts = 2;
    ctx.http.base_backoff = Duration::from_millis(20);
    ctx.http.timeout = Duration::from_secs(5);
    let summary = billing::run(&ctx, from, to).await;
    ctx.state.close().await;
    ctx.shop.db().close().await;
    summary
}

/// A CSV report as rows of column → value (BOM stripped).
fn read_csv(path: &Path, delimiter: u8) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let bytes = std::fs::read(path).expect("report readable");
    let body = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(body);
    let headers: Vec<String> = rdr
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = rdr
        .records()
        .map(|r| {
            let r = r.expect("row");
            headers
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect();
    (headers, rows)
}

fn report(summary: &JobSummary, prefix: &str) -> PathBuf {
    summary
        .reports
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("no {prefix} report in {:?}", summary.reports))
}

fn lines_report(summary: &JobSummary) -> PathBuf {
    report(summary, "billing-2")
}

fn summary_report(summary: &JobSummary) -> PathBuf {
    report(summary, "billing-summary-")
}

/// `section/item` → (count, amount) of the summary report.
fn summary_rows(path: &Path, delimiter: u8) -> BTreeMap<String, (String, String, String)> {
    let (headers, rows) = read_csv(path, delimiter);
    assert_eq!(headers, SUMMARY_REPORT_COLUMNS);
    rows.into_iter()
        .map(|r| {
            (
                format!("{}/{}", r["section"], r["item"]),
                (r["value"].clone(), r["count"].clone(), r["amount"].clone()),
            )
        })
        .collect()
}

fn rub(kop: i64) -> String {
    sverka::report::csv::money(kop, CsvDialect::Rfc4180)
}

fn day_bounds(tz: Tz, day: NaiveDate) -> (i64, i64) {
    let next = day.succ_opt().expect("next day");
    (
        day_start(tz, day).expect("start"),
        day_start(tz, next).expect("end"),
    )
}

async fn stored_closings(config: &Config) -> Vec<(i64, i64, i64)> {
    let db = Db::connect(config.state.database_url.expose())
        .await
        .expect("state db");
    let rows = db
        .fetch_all(
            "SELECT period_from, period_to, closing_kop FROM balances ORDER BY id",
            &[],
            "reading balances",
        )
        .await
        .expect("balances");
    db.close().await;
    use sqlx::Row;
    rows.iter()
        .map(|r| {
            (
                r.try_get::<i64, _>("period_from").expect("from"),
                r.try_get::<i64, _>("period_to").expect("to"),
                r.try_get::<i64, _>("closing_kop").expect("kop"),
            )
        })
        .collect()
}

const LINE_CLASSES: [&str; 4] = [
    class::CHARGE_FOR_UNKNOWN_ORDER,
    class::DUPLICATE_CHARGE,
    class::CHARGE_FOR_CANCELLED_ORDER,
    class::AMOUNT_OFF_TARIFF,
];

#[tokio::test]
async fn every_billing_class_on_the_seeded_world_on_every_engine() {
    for db in support::engines("every_billing_class_on_the_seeded_world").await {
        let engine = db.engine();
        let f = fixture(&db, 40).await;
        let (y0, y1) = day_bounds(f.tz, f.billing.drift_day);

        // The nightly default: yesterday, where every drift example is.
        let s = run_billing(&f.config, false, None, None).await;
        assert_eq!(
            s.status,
            RunStatus::Discrepancies,
            "{engine}: {:?}",
            s.error
        );
        assert_eq!(s.exit_code(), 1);

        // What the warehouse booked that day, straight from the world.
        let day: Vec<(usize, &wb::WorldBillingLine)> = f
            .billing
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| (y0..y1).contains(&l.date))
            .collect();
        let listed: Vec<&(usize, &wb::WorldBillingLine)> =
            day.iter().filter(|(_, l)| l.listed).collect();
        let ok_lines = listed
            .iter()
            .filter(|(_, l)| l.drift == BillingDrift::None)
            .count() as u64;
        for c in LINE_CLASSES {
            assert_eq!(s.counts.get(c), Some(&1), "{engine}: {c} in {:?}", s.counts);
        }
        assert_eq!(s.counts.get(class::ORDER_WITHOUT_CHARGE), Some(&1));
        assert_eq!(s.counts.get(class::BALANCE_GAP), Some(&1));
        assert_eq!(s.counts.get(class::OK), Some(&ok_lines), "{engine}");
        assert_eq!(s.reports.len(), 3);

        // Every listed line once, with its class, amount and order ids.
        let (headers, rows) = read_csv(&lines_report(&s), b',');
        assert_eq!(headers, LINE_REPORT_COLUMNS);
        let by_id: BTreeMap<String, &BTreeMap<String, String>> =
            rows.iter().map(|r| (r["id"].clone(), r)).collect();
        assert_eq!(
            rows.len(),
            listed.len() + 1,
            "every line + the order without charge"
        );
        for (i, l) in &listed {
            let row = by_id[&f.ids[*i].to_string()];
            assert_eq!(row["class"], l.drift.class(), "{engine}: {l:?}");
            assert_eq!(row["amount"], rub(l.amount_kop));
            assert_eq!(row["type"], l.kind.to_string());
            assert_eq!(
                row["order_id"],
                l.foreign_order_id.clone().unwrap_or_default()
            );
            assert_eq!(row["comment"], l.comment);
            if l.drift == BillingDrift::None && l.foreign_order_id.is_some() {
                assert!(!row["wms_order_id"].is_empty(), "WMS id of a seeded order");
            }
        }
        let drifted = |d: BillingDrift| {
            let (i, _) = listed
                .iter()
                .find(|(_, l)| l.drift == d)
                .expect("drift line");
            by_id[&f.ids[*i].to_string()]
        };
        let off = drifted(BillingDrift::AmountOffTariff);
        assert_eq!(
            (
                off["amount"].as_str(),
                off["expected"].as_str(),
                off["difference"].as_str()
            ),
            ("-60.00", "45.00", "15.00")
        );
        let unknown = drifted(BillingDrift::ChargeForUnknownOrder);
        assert_eq!(unknown["order_id"], wb::UNKNOWN_ORDER_ID);
        assert_eq!(
            unknown["wms_order_id"],
            wb::UNKNOWN_WMS_ORDER_ID.to_string()
        );
        assert_eq!(unknown["order_status"], "");
        assert_eq!(
            drifted(BillingDrift::ChargeForCancelledOrder)["order_status"],
            "cancelled"
        );
        let dup = drifted(BillingDrift::DuplicateCharge);
        let firsts: Vec<_> = rows
            .iter()
            .filter(|r| r["order_id"] == dup["order_id"] && r["type"] == "0")
            .collect();
        assert_eq!(firsts.len(), 2, "the first assembly charge stays ok");
        let missing = rows
            .iter()
            .find(|r| r["id"].is_empty())
            .expect("missing charge row");
        assert_eq!(missing["class"], class::ORDER_WITHOUT_CHARGE);
        assert_eq!(
            Some(missing["order_id"].clone()),
            f.billing.order_without_charge
        );
        assert_eq!(missing["expected"], "45.00");
        let pickup = rows
            .iter()
            .find(|r| r["comment"] == "Забор товара")
            .expect("pickup");
        assert_eq!(pickup["doc_request_id"], "1120");

        // Totals to the kopeck.
        let sum = |pred: &dyn Fn(&wb::WorldBillingLine) -> bool| -> i64 {
            day.iter()
                .filter(|(_, l)| pred(l))
                .map(|(_, l)| l.amount_kop)
                .sum()
        };
        let listed_sum = sum(&|l| l.listed);
        let change = sum(&|_| true);
        let closing = f.billing.opening_kop
            + f.billing
                .lines
                .iter()
                .filter(|l| l.date < y1)
                .map(|l| l.amount_kop)
                .sum::<i64>();
        let totals = summary_rows(&summary_report(&s), b',');
        for (k, name) in [
            (kind::ASSEMBLY, "assembly"),
            (kind::TOP_UP, "top_up"),
            (kind::DELIVERY, "delivery"),
            (kind::OTHER, "other"),
        ] {
            let n = day.iter().filter(|(_, l)| l.listed && l.kind == k).count();
            let kop = sum(&|l| l.listed && l.kind == k);
            let (_, count, amount) = &totals[&format!("type/{k} {name}")];
            assert_eq!(
                (count.as_str(), amount.as_str()),
                (n.to_string().as_str(), rub(kop).as_str()),
                "{engine} type {k}"
            );
        }
        let class_row = |c: &str| totals[&format!("class/{c}")].clone();
        assert_eq!(
            class_row(class::OK).2,
            rub(sum(&|l| l.listed && l.drift == BillingDrift::None))
        );
        assert_eq!(class_row(class::AMOUNT_OFF_TARIFF).2, "-60.00");
        assert_eq!(class_row(class::BALANCE_GAP).2, rub(-wb::UNLISTED_KOP));
        assert_eq!(totals["balance/Σ amounts of the lines"].2, rub(listed_sum));
        assert_eq!(
            totals["balance/change_of_balance reported by IMSKLAD"].2,
            rub(change)
        );
        assert_eq!(
            totals["balance/closing: balance at the end of the period"].2,
            rub(closing)
        );
        assert_eq!(
            totals["balance/gap: Σ amounts − change_of_balance"].2,
            rub(-wb::UNLISTED_KOP)
        );
        assert_eq!(totals["balance/check"].0, "gap");
        assert_eq!(
            totals["period/get_billing_calls"].1, "2",
            "one day + the roll-forward"
        );
        assert_eq!(s.extra["balance"]["closing_kop"], Value::from(closing));
        assert_eq!(
            s.extra["balance"]["gap_change_kop"],
            Value::from(-wb::UNLISTED_KOP)
        );

        // The run is recorded with its window, counts and reports; the day's
        // closing balance is stored.
        let state = Db::connect(&db.url).await.expect("state");
        let recorded = runs::recent(&state, Some("billing"), 1)
            .await
            .expect("runs");
        state.close().await;
        let run = recorded.first().expect("a billing run");
        assert_eq!(
            (run.window_from, run.window_to),
            (Some(y0 * 1000), Some(y1 * 1000))
        );
        assert_eq!(run.counts, s.counts);
        assert_eq!(run.report_paths, s.reports);
        assert_eq!(
            stored_closings(&f.config).await,
            [(y0 * 1000, y1 * 1000, closing)]
        );

        // A dry re-run of the period replaces the reports and stores nothing.
        let again = run_billing(
            &f.config,
            true,
            Some(f.billing.drift_day),
            Some(f.billing.drift_day),
        )
        .await;
        assert_eq!(again.reports, s.reports);
        assert_eq!(again.counts, s.counts);
        assert_eq!(stored_closings(&f.config).await.len(), 1);
        let dir = lines_report(&s).parent().expect("dir").to_path_buf();
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .expect("report dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temp files left");
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_balance_gap_shows_across_two_consecutive_runs() {
    for db in support::engines("a_balance_gap_shows_across_two_consecutive_runs").await {
        let engine = db.engine();
        let f = fixture(&db, 30).await;
        let day = |back: u64| {
            f.billing
                .drift_day
                .checked_sub_days(chrono::Days::new(back))
                .expect("day")
        };
        // Three ordinary days before the drift day, one run each.
        let a = run_billing(&f.config, false, Some(day(3)), Some(day(3))).await;
        assert_eq!(
            a.status,
            RunStatus::Clean,
            "{engine}: {:?} {:?}",
            a.error,
            a.counts
        );
        assert_eq!(a.extra["balance"]["previous_closing_kop"], Value::Null);

        let b = run_billing(&f.config, false, Some(day(2)), Some(day(2))).await;
        assert_eq!(b.status, RunStatus::Clean, "{engine}: {:?}", b.counts);
        assert_eq!(b.exit_code(), 0);
        assert_eq!(
            b.extra["balance"]["previous_closing_kop"], a.extra["balance"]["closing_kop"],
            "the chain: run B starts where run A ended"
        );
        assert_eq!(b.extra["balance"]["gap_balance_kop"], Value::from(0));

        // The balance moves by 123.45 without an operation in the statement.
        {
            let mut wms = f.set.imsklad.lock();
            let now = wms.balance();
            wms.set_balance(now + 12_345);
        }
        let c = run_billing(&f.config, false, Some(day(1)), Some(day(1))).await;
        assert_eq!(c.status, RunStatus::Discrepancies, "{engine}");
        assert_eq!(c.exit_code(), 1);
        assert_eq!(c.counts.get(class::BALANCE_GAP), Some(&1));
        assert_eq!(
            c.extra["balance"]["gap_change_kop"],
            Value::from(0),
            "the lines are complete"
        );
        assert_eq!(c.extra["balance"]["gap_balance_kop"], Value::from(-12_345));
        let totals = summary_rows(&summary_report(&c), b',');
        assert_eq!(
            totals["balance/gap: opening + change − closing"].2,
            "-123.45"
        );
        assert_eq!(
            totals["balance/opening: the previous run's closing balance"].2,
            rub(b.extra["balance"]["closing_kop"].as_i64().expect("kop"))
        );
        assert_eq!(totals["balance/check"].0, "gap");
        db.drop_db().await;
    }
}

/// Unix seconds of a local time in Moscow.
fn msk(date: NaiveDate, h: u32, m: u32, s: u32) -> i64 {
    use chrono::TimeZone;
    chrono_tz::Europe::Moscow
        .from_local_datetime(&date.and_hms_opt(h, m, s).expect("time"))
        .single()
        .expect("unambiguous")
        .timestamp()
}

#[tokio::test]
async fn a_month_is_fetched_day_by_day_without_duplicates() {
    let shop_db = support::sqlite();
    let world = TestWorld::spawn(
        &shop_db,
        WorldOptions {
            sandbox: SandboxOptions {
                rate_limits: false,
                ..SandboxOptions::default()
            },
            ..WorldOptions::empty()
        },
    )
    .await;
    let set = &world.set;
    let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2025, m, day).expect("date");
    let mut october_other = 0i64;
    let mut october_lines = 0usize;
    {
        let mut wms = set.imsklad.lock();
        wms.set_balance(1_000_000);
        // A WMS that filters by booking time: an hour of slack on both sides,
        // so the lines near midnight come back in two days' answers.
        wms.billing_slack_secs = 3_600;
        let mut book = |date: i64, kind: i64, amount_kop: i64| {
            wms.add_billing_line(NewBillingLine {
                kind,
                date,
                amount_kop,
                comment: format!("op at {date}"),
                ..NewBillingLine::default()
            });
        };
        book(msk(d(9, 30), 23, 30, 0), kind::OTHER, -1_234);
        for day in 1..=31 {
            for (h, m, s, kop) in [
                (0, 0, 0, -100 - i64::from(day)),
                (12, 0, 0, -2_000),
                (23, 59, 59, -333),
            ] {
                book(msk(d(10, day), h, m, s), kind::OTHER, kop);
                october_other += kop;
                october_lines += 1;
            }
        }
        book(msk(d(10, 15), 10, 0, 0), kind::TOP_UP, 500_000);
        october_lines += 1;
        book(msk(d(11, 5), 12, 0, 0), kind::OTHER, -7_777);
    }
    let config = world.config.clone();

    // The day before stores the balance October starts from.
    let before = run_billing(&config, false, Some(d(9, 30)), Some(d(9, 30))).await;
    assert_eq!(
        before.status,
        RunStatus::Clean,
        "{:?} {:?}",
        before.error,
        before.counts
    );
    set.imsklad.control.clear_requests();

    let s = run_billing(&config, false, Some(d(10, 1)), Some(d(10, 31))).await;
    assert_eq!(
        s.status,
        RunStatus::Clean,
        "{:?} {:?} {}",
        s.error,
        s.counts,
        s.extra
    );
    assert_eq!(s.exit_code(), 0);

    // One get_billing per day, midnight to the last second, plus the roll-forward.
    let calls: Vec<(i64, i64)> = set
        .imsklad
        .control
        .requests()
        .iter()
        .filter(|r| r.body_text().contains("\"get_billing\""))
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).expect("json");
            (
                v["data"]["from"].as_i64().expect("from"),
                v["data"]["to"].as_i64().expect("to"),
            )
        })
        .collect();
    assert_eq!(calls.len(), 32, "{calls:?}");
    let expected: Vec<(i64, i64)> = (1..=31)
        .map(|day| (msk(d(10, day), 0, 0, 0), msk(d(10, day), 23, 59, 59)))
        .collect();
    assert_eq!(calls[..31], expected[..]);
    let (from, to) = calls[31];
    assert_eq!(from, msk(d(11, 1), 0, 0, 0));
    assert!(
        (to - chrono::Utc::now().timestamp()).abs() < 120,
        "to = now"
    );

    // Each line once, although the answers overlap; the totals are exact.
    let (_, rows) = read_csv(&lines_report(&s), b',');
    assert_eq!(rows.len(), october_lines);
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["id"].as_str()).collect();
    assert_eq!(ids.len(), rows.len());
    assert!(
        s.extra["repeated_lines"].as_u64().expect("n") >= 60,
        "{}",
        s.extra
    );
    assert_eq!(s.extra["lines_outside_period"], Value::from(1));
    let totals = summary_rows(&summary_report(&s), b',');
    assert_eq!(totals["type/9 other"].1, (october_lines - 1).to_string());
    assert_eq!(totals["type/9 other"].2, rub(october_other));
    assert_eq!(totals["type/1 top_up"].2, "5000.00");
    assert_eq!(
        s.extra["balance"]["change_of_balance_kop"],
        Value::from(october_other + 500_000)
    );
    assert_eq!(s.extra["balance"]["gap_balance_kop"], Value::from(0));
    assert_eq!(
        s.extra["balance"]["closing_kop"],
        Value::from(1_000_000 - 1_234 + october_other + 500_000)
    );
    assert_eq!(totals["balance/check"].0, "ok");
    // A closing balance per day, each a day's change after the one before.
    let closings = stored_closings(&config).await;
    assert_eq!(closings.len(), 1 + 31);
    assert_eq!(closings[1].0, closings[0].1);
    assert_eq!(closings[1].2 - closings[0].2, -101 - 2_000 - 333);
}

#[tokio::test]
async fn excel_ru_reports_read_back_with_the_csv_crate() {
    let db = support::sqlite();
    let mut f = fixture(&db, 30).await;
    f.config.reports.dialect = CsvDialect::ExcelRu;
    let s = run_billing(&f.config, false, None, None).await;
    assert_eq!(s.status, RunStatus::Discrepancies, "{:?}", s.error);
    let decimal_comma = |v: &str| {
        let (whole, cents) = v.split_once(',').unwrap_or(("x", "x"));
        let whole = whole.strip_prefix('-').unwrap_or(whole);
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && cents.len() == 2
            && cents.bytes().all(|b| b.is_ascii_digit())
    };
    for (path, columns) in [
        (lines_report(&s), &["amount", "expected", "difference"][..]),
        (summary_report(&s), &["amount"][..]),
    ] {
        let bytes = std::fs::read(&path).expect("report");
        assert!(
            bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
            "{} has a UTF-8 BOM",
            path.display()
        );
        let first_line = String::from_utf8_lossy(&bytes[3..])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        assert!(
            first_line.contains(';') && !first_line.contains(','),
            "{first_line}"
        );
        let (headers, rows) = read_csv(&path, b';');
        assert!(rows.len() > 5);
        assert_eq!(headers.len(), rows[0].len());
        let mut money = 0;
        for r in &rows {
            for c in columns {
                let v = &r[*c];
                if !v.is_empty() {
                    assert!(decimal_comma(v), "{c} = {v:?} in {}", path.display());
                    money += 1;
                }
            }
        }
        assert!(money > 5, "money cells checked");
    }
    let (_, rows) = read_csv(&lines_report(&s), b';');
    let off = rows
        .iter()
        .find(|r| r["class"] == class::AMOUNT_OFF_TARIFF)
        .expect("off tariff");
    assert_eq!(
        (off["amount"].as_str(), off["difference"].as_str()),
        ("-60,00", "15,00")
    );
    // A comment starting with a formula character would be neutralised; the
    // Cyrillic comments come back as written.
    assert!(rows.iter().any(|r| r["comment"] == "Забор товара"));
}

#[tokio::test]
async fn egon_is_refused_with_exit_2() {
    let db = support::sqlite();
    let mut f = fixture(&db, 12).await;
    f.config.wms.kind = WmsKind::Egon;
    let s = run_billing(&f.config, false, None, None).await;
    assert_eq!(s.status, RunStatus::Failed);
    assert_eq!(s.exit_code(), 2);
    let error = s.error.clone().unwrap_or_default();
    assert!(
        error.contains("IMSKLAD-only") && error.contains("egon"),
        "{error}"
    );
    assert!(s.reports.is_empty());
    assert!(
        f.set.imsklad.control.requests().is_empty(),
        "IMSKLAD was not asked"
    );
    assert!(
        f.set.egon.control.requests().is_empty(),
        "EGON was not asked"
    );
    let state = Db::connect(&db.url).await.expect("state");
    let recorded = runs::recent(&state, Some("billing"), 1)
        .await
        .expect("runs");
    assert_eq!(recorded.first().map(|r| r.status), Some(RunStatus::Failed));
    assert_eq!(recorded.first().and_then(|r| r.error.clone()), Some(error));
}

#[tokio::test]
async fn a_failing_or_unreachable_wms_fails_with_exit_2() {
    let db = support::sqlite();
    let mut f = fixture(&db, 12).await;
    f.set
        .imsklad
        .lock()
        .fail_next("get_billing", CODE_FATAL, "Fatal error", 10);
    let s = run_billing(&f.config, false, None, None).await;
    assert_eq!((s.status, s.exit_code()), (RunStatus::Failed, 2));
    let error = s.error.clone().unwrap_or_default();
    assert!(
        error.contains("get_billing") && error.contains(&f.billing.drift_day.to_string()),
        "{error}"
    );
    assert!(!error.contains(&f.set.keys.imsklad_key), "no key in errors");
    assert!(stored_closings(&f.config).await.is_empty());

    f.config.imsklad.url = "http://127.0.0.1:9/".into();
    let s = run_billing(&f.config, false, None, None).await;
    assert_eq!((s.status, s.exit_code()), (RunStatus::Failed, 2));
    assert!(s.error.unwrap_or_default().contains("request failed"));
}

#[tokio::test]
async fn the_html_summary_renders_in_chromium() {
    let db = support::sqlite();
    let f = fixture(&db, 40).await;
    let s = run_billing(&f.config, false, None, None).await;
    let html_path = s
        .reports
        .iter()
        .map(PathBuf::from)
        .find(|p| p.extension().is_some_and(|e| e == "html"))
        .expect("an HTML report");
    let html = std::fs::read_to_string(&html_path).expect("html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for c in LINE_CLASSES
        .iter()
        .chain(&[class::ORDER_WITHOUT_CHARGE, class::BALANCE_GAP])
    {
        assert!(html.contains(c), "{c} on the page");
    }
    assert_eq!(html.matches("<rect").count(), 1, "one bar for the one day");

    if let Err(why) = crate::optional::chromium() {
        crate::optional::skip("the_html_summary_renders_in_chromium", &why);
        return;
    }
    let png = html_path.with_extension("png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/render-billing-html.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&html_path)
        .arg(&png)
        .output()
        .expect("the render script runs");
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&png).expect("png written");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        bytes.len() > 20_000,
        "a real page, not a blank image: {} bytes",
        bytes.len()
    );
}
