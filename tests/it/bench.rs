//! `sverka bench` end to end at a tiny size, so its code paths cannot rot
//! (no wall-clock limits are asserted: the figures are for `--release`).

use serde_json::Value;
use std::process::Command;

fn bench(args: &[&str], work: &std::path::Path) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sverka"));
    cmd.arg("bench")
        .args(args)
        .arg("--work-dir")
        .arg(work)
        .arg("--json")
        .env("RUST_LOG", "warn")
        .env_remove("SVERKA_BENCH_POSTGRES_URL");
    if let Ok(url) = std::env::var("SVERKA_TEST_POSTGRES_URL") {
        if !url.is_empty() {
            cmd.arg("--postgres").arg(url);
        }
    }
    let out = cmd.output().expect("sverka bench runs");
    assert!(
        out.status.success(),
        "sverka bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

#[test]
fn every_figure_runs_at_a_tiny_size() {
    let work = tempfile::tempdir().expect("temp dir");
    let report = bench(
        &[
            "--sizes",
            "1000",
            "--e2e-sizes",
            "300",
            "--local-sizes",
            "300",
            "--repeat",
            "2",
            "--latency-ms",
            "5",
            "--clients",
            "4",
            "--callbacks",
            "200",
            "--no-baseline",
        ],
        work.path(),
    );
    let reconcile = report["reconcile"].as_array().expect("reconcile rows");
    assert_eq!(reconcile.len(), 3, "{report:#}");
    for row in reconcile {
        let rust = &row["rust"];
        assert_eq!(rust["size"], 1000);
        assert_eq!(rust["seconds"].as_array().map(Vec::len), Some(2));
        assert!(rust["peak_mib"].as_f64().unwrap_or(0.0) > 0.0, "{rust}");
        let counts = rust["counts"].as_object().expect("counts");
        assert!(counts.contains_key("ok"), "{counts:?}");
        // `--no-baseline`: the baselines have their own test below.
        assert!(row["pandas"].is_null() && row["duckdb"].is_null(), "{row}");
    }
    let load = report["load"].as_array().expect("load rows");
    assert!(!load.is_empty());
    assert_eq!(load[0]["engine"], "sqlite");
    assert_eq!(load[0]["stock_rows"], 1000);
    assert!(load[0]["order_rows"].as_u64().unwrap_or(0) >= 1000);

    let e2e = &report["e2e"][0];
    assert_eq!(e2e["skus"], 300, "{report:#}");
    assert_eq!(e2e["crm_rejected"], 0);
    assert!(e2e["crm_max_per_second"].as_u64().unwrap_or(99) <= 10);
    assert_eq!(
        e2e["crm_reads"].as_u64().unwrap_or(0) + e2e["crm_uploads"].as_u64().unwrap_or(0),
        e2e["min_requests"].as_u64().unwrap_or(1),
        "the job makes the minimum number of RetailCRM requests: {e2e}"
    );
    assert!(e2e["ratio"].as_f64().unwrap_or(0.0) > 0.0);

    // Figure 6: the delta run after the full one reads and uploads the minimum.
    let delta = &report["delta"][0];
    assert_eq!(delta["skus"], 300, "{report:#}");
    assert!(delta["drifted"].as_u64().unwrap_or(0) >= 1, "{delta}");
    assert_eq!(delta["moved"], delta["drifted"], "{delta}");
    let d = &delta["delta"];
    assert_eq!(d["crm_rejected"], 0);
    assert_eq!(
        d["crm_reads"].as_u64().unwrap_or(0) + d["crm_uploads"].as_u64().unwrap_or(0),
        d["min_requests"].as_u64().unwrap_or(0),
        "{delta}"
    );
    assert!(delta["full"]["crm_reads"].as_u64().unwrap_or(0) >= 1);
    // The local work of a stock run, from the job's own spans, against the
    // sandbox as another process.
    let local = &report["local"][0];
    assert_eq!(local["engine"], "sqlite", "{report:#}");
    assert_eq!(local["skus"], 300);
    let phases = local["phases"].as_object().expect("phases");
    for phase in [
        "shop_read",
        "wms_crm_read",
        "classify",
        "snapshot",
        "crm_uploads",
        "journal",
        "report",
    ] {
        assert!(
            phases.get(phase).and_then(Value::as_f64).is_some(),
            "{phase}: {local}"
        );
    }
    let local_s = local["local_s"].as_f64().unwrap_or(0.0);
    assert!(local_s > 0.0 && local_s <= local["seconds"].as_f64().unwrap_or(0.0) * 2.0);
    assert!(local["crm_offers"].as_u64().unwrap_or(0) > 0, "{local}");

    let listener = report["listener"].as_array().expect("listener rows");
    assert!(!listener.is_empty());
    assert_eq!(listener[0]["callbacks"], 200);
    assert!(
        listener[0]["p99_ms"].as_f64().unwrap_or(-1.0)
            >= listener[0]["p50_ms"].as_f64().unwrap_or(0.0)
    );
}

#[test]
fn readme_block_is_regenerated_between_the_markers() {
    let work = tempfile::tempdir().expect("temp dir");
    let readme = work.path().join("README.md");
    let begin = sverka::bench::table::BEGIN;
    let end = sverka::bench::table::END;
    std::fs::write(
        &readme,
        format!("# x\n\n{begin}\nold numbers\n{end}\n\n## Layout\n"),
    )
    .unwrap();
    let readme_arg = readme.display().to_string();
    bench(
        &[
            "--only",
            "stock",
            "--sizes",
            "500",
            "--repeat",
            "1",
            "--no-baseline",
            "--readme",
            &readme_arg,
        ],
        work.path(),
    );
    let text = std::fs::read_to_string(&readme).unwrap();
    assert!(!text.contains("old numbers"), "{text}");
    assert!(text.contains("| stock | 500 |"), "{text}");
    assert!(text.starts_with("# x\n\n") && text.ends_with(&format!("{end}\n\n## Layout\n")));
}

/// The pandas and DuckDB baselines run on the same data and compute the same
/// class counts as sverka (needs Python with `benches/baseline/requirements.txt`).
#[test]
fn the_baselines_compute_the_same_counts() {
    let python = match crate::optional::python_with_baselines() {
        Ok(p) => p,
        Err(why) => return crate::optional::skip("the_baselines_compute_the_same_counts", &why),
    };
    let work = tempfile::tempdir().expect("temp dir");
    let report = bench(
        &[
            "--only",
            "stock,orders,billing",
            "--sizes",
            "1000",
            "--repeat",
            "1",
            "--python",
            &python,
        ],
        work.path(),
    );
    let reconcile = report["reconcile"].as_array().expect("reconcile rows");
    assert_eq!(reconcile.len(), 3, "{report:#}");
    for row in reconcile {
        for engine in ["pandas", "duckdb"] {
            let b = &row[engine];
            assert_eq!(b["status"], "ran", "{engine}: {b}");
            assert_eq!(b["counts_match"], true, "{engine}: {b}");
            assert!(!b["seconds"].as_array().expect("seconds").is_empty(), "{b}");
        }
    }
}

/// Without pandas the bench still runs and says why the baselines were skipped.
#[test]
fn a_python_without_pandas_skips_the_baselines_with_a_reason() {
    let work = tempfile::tempdir().expect("temp dir");
    let report = bench(
        &[
            "--only",
            "stock",
            "--sizes",
            "500",
            "--repeat",
            "1",
            "--python",
            "/nonexistent/python3",
        ],
        work.path(),
    );
    let skipped = report["skipped"].as_array().expect("skipped list");
    assert!(
        skipped.iter().any(|s| s
            .as_str()
            .is_some_and(|s| s.contains("/nonexistent/python3"))),
        "{report:#}"
    );
    assert_eq!(report["reconcile"][0]["rust"]["size"], 500, "{report:#}");
}
