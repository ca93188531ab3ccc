//! The state database on every engine: migrations, runs, the journal, mappings
//! and the job lock.

use std::time::Duration;
use sverka::db::journal::{self, CorrectionStatus, Planned, Target};
use sverka::db::lock::{JobLock, LockError};
use sverka::db::mapping::{self, MapKind};
use sverka::db::runs::{self, RunEnd, RunStatus};
use sverka::db::Db;

use crate::support;

#[tokio::test]
async fn migrations_runs_journal_and_mappings_on_every_engine() {
    for t in support::engines("migrations_runs_journal_and_mappings").await {
        let db = Db::connect_state(&t.url).await.expect("migrate");
        // Migrating twice is a no-op.
        db.migrate().await.expect("second migrate");

        let id = runs::start(&db, "stock", (None, None), false, false)
            .await
            .unwrap();
        let mut end = RunEnd::default();
        end.counts.insert("qty_mismatch_crm".into(), 3);
        end.report_paths.push("reports/stock-1.csv".into());
        end.summary = serde_json::json!({"total_sellable": 42});
        runs::finish(&db, id, RunStatus::Discrepancies, &end)
            .await
            .unwrap();
        let last = runs::last_successful(&db, "stock")
            .await
            .unwrap()
            .expect("a run");
        assert_eq!(last.id, id, "{}", t.engine());
        assert_eq!(last.counts["qty_mismatch_crm"], 3);
        assert_eq!(last.summary["total_sellable"], 42);
        assert_eq!(runs::recent(&db, None, 10).await.unwrap().len(), 1);

        let payload = serde_json::json!({"offers": 2});
        let c = journal::plan(
            &db,
            &Planned {
                run_id: id,
                job: "stock",
                target: Target::Crm,
                action: "inventories_upload",
                item_key: "A..B",
                payload: &payload,
            },
        )
        .await
        .unwrap();
        assert_eq!(journal::unsettled(&db, "stock").await.unwrap().len(), 1);
        journal::settle(&db, c, CorrectionStatus::Applied, "{\"success\":true}")
            .await
            .unwrap();
        let rows = journal::of_run(&db, id).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, "applied");
        assert!(journal::unsettled(&db, "stock").await.unwrap().is_empty());

        mapping::put(&db, MapKind::Good, "SKU-1", "101")
            .await
            .unwrap();
        mapping::put(&db, MapKind::Good, "SKU-1", "102")
            .await
            .unwrap();
        assert_eq!(
            mapping::get(&db, MapKind::Good, "SKU-1")
                .await
                .unwrap()
                .as_deref(),
            Some("102")
        );
        assert_eq!(mapping::all(&db, MapKind::Good).await.unwrap().len(), 1);
        // Many at once: multi-row upserts over more than one chunk, an
        // existing mapping replaced, a repeated partner id keeping its last.
        let mut many: Vec<(String, String)> = (0..1203)
            .map(|i| (format!("M-{i}"), (5000 + i).to_string()))
            .collect();
        many.push(("SKU-1".into(), "103".into()));
        many.push(("M-7".into(), "77".into()));
        mapping::put_many(&db, MapKind::Good, &many).await.unwrap();
        let all = mapping::all(&db, MapKind::Good).await.unwrap();
        assert_eq!(all.len(), 1204, "{}", t.engine());
        assert_eq!(all["SKU-1"], "103");
        assert_eq!(all["M-7"], "77");
        assert_eq!(all["M-1202"], "6202");
        db.close().await;
        t.drop_db().await;
    }
}

#[tokio::test]
async fn the_job_lock_refuses_a_second_run_and_recovers_after_a_crash() {
    for t in support::engines("job_lock").await {
        let a = Db::connect_state(&t.url).await.expect("migrate");
        let b = Db::connect(&t.url).await.expect("second process");
        let lease = Duration::from_millis(600);

        let held = JobLock::acquire(&a, "stock", lease)
            .await
            .expect("first lock");
        match JobLock::acquire(&b, "stock", lease).await {
            Err(LockError::Held { job, .. }) => assert_eq!(job, "stock"),
            other => panic!("{}: second lock must be refused, got {other:?}", t.engine()),
        }
        // Another job is independent.
        JobLock::acquire(&b, "orders", lease)
            .await
            .expect("other job")
            .release()
            .await
            .unwrap();
        // A held SQLite lease is renewed, so it survives past its lease time.
        tokio::time::sleep(lease * 2).await;
        assert!(
            JobLock::acquire(&b, "stock", lease).await.is_err(),
            "{}: renewed lock",
            t.engine()
        );

        // Crash: the holder disappears without releasing.
        held.abandon();
        let mut recovered = None;
        for _ in 0..40 {
            match JobLock::acquire(&b, "stock", lease).await {
                Ok(l) => {
                    recovered = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let l = recovered.unwrap_or_else(|| panic!("{}: lock never recovered", t.engine()));
        l.release().await.unwrap();
        // After a clean release it can be taken again at once.
        JobLock::acquire(&a, "stock", lease)
            .await
            .expect("retake")
            .release()
            .await
            .unwrap();
        a.close().await;
        b.close().await;
        t.drop_db().await;
    }
}
