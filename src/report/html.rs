//! Small self-contained HTML summaries for people: inline CSS, an inline SVG
//! chart, no scripts and no external assets, so the file opens anywhere
//! (a browser, a mail attachment, a shared folder) exactly as written.
//!
//! Every value that reaches the page goes through [`text`] or [`attr`]
//! (`html-escape`): warehouse comments and order ids are untrusted input.
//! Files are written to a temporary name and renamed into place, like the
//! CSV reports.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::config::CsvDialect;
use crate::report::csv::ReportError;

/// Escapes text for an element's content.
pub fn text(s: &str) -> String {
    html_escape::encode_text(s).into_owned()
}

/// Escapes text for a double-quoted attribute value.
pub fn attr(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// Kopecks as roubles for people: a minus sign, thin-space thousands, two
/// decimals (a comma for `excel-ru`, a point otherwise) and `₽`
/// (`-123456` → `−1 234,56 ₽`).
pub fn rub(kop: i64, dialect: CsvDialect) -> String {
    let sign = if kop < 0 { "\u{2212}" } else { "" };
    let abs = kop.unsigned_abs();
    let decimal = match dialect {
        CsvDialect::Rfc4180 => '.',
        CsvDialect::ExcelRu => ',',
    };
    format!(
        "{sign}{}{decimal}{:02}\u{a0}₽",
        group_thousands(abs / 100),
        abs % 100
    )
}

/// Whole roubles, rounded towards zero, for chart labels (`1 234 ₽`).
fn rub_whole(kop: i64) -> String {
    let sign = if kop < 0 { "\u{2212}" } else { "" };
    format!("{sign}{}\u{a0}₽", group_thousands(kop.unsigned_abs() / 100))
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// A count and a sum under a name (an operation type, a class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Total {
    /// What is counted.
    pub name: String,
    /// How many.
    pub count: i64,
    /// Their sum, kopecks.
    pub kop: i64,
}

/// One line of the balance block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRow {
    /// What the figure is.
    pub label: String,
    /// The figure, kopecks (None: unknown).
    pub kop: Option<i64>,
    /// Shown as a problem (a non-zero gap).
    pub bad: bool,
}

/// One day of the chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayBar {
    /// Axis label (`23.11`).
    pub label: String,
    /// Full date for the tooltip (`2026-11-23`).
    pub date: String,
    /// Charges of the day as a positive amount, kopecks.
    pub charges_kop: i64,
    /// Operations of the day.
    pub count: i64,
}

/// One row of the discrepancies table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiscrepancyRow {
    /// Billing line id (empty for an order without a charge or the balance).
    pub id: String,
    /// Local date and time.
    pub date: String,
    /// Operation type name.
    pub type_name: String,
    /// Shop order id.
    pub order_id: String,
    /// WMS order id.
    pub wms_order_id: String,
    /// Amount, kopecks.
    pub amount_kop: Option<i64>,
    /// Expected amount, kopecks.
    pub expected_kop: Option<i64>,
    /// |amount| − expected, kopecks.
    pub difference_kop: Option<i64>,
    /// Class(es), comma-joined.
    pub class: String,
    /// The warehouse's comment or sverka's note.
    pub comment: String,
}

/// Everything the billing summary page shows.
#[derive(Debug, Clone)]
pub struct BillingPage {
    /// Page title.
    pub title: String,
    /// The period in words (`2026-11-23 – 2026-11-29, Europe/Moscow`).
    pub period: String,
    /// When and by which run the page was made.
    pub generated: String,
    /// Decimal separator of money.
    pub dialect: CsvDialect,
    /// Totals per operation type.
    pub kinds: Vec<Total>,
    /// Totals per class (`ok` included).
    pub classes: Vec<Total>,
    /// The balance arithmetic.
    pub balance: Vec<BalanceRow>,
    /// Whether the balance check passed.
    pub balance_ok: bool,
    /// A sentence about the balance check.
    pub balance_note: String,
    /// Charges per day.
    pub days: Vec<DayBar>,
    /// Every discrepancy.
    pub discrepancies: Vec<DiscrepancyRow>,
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font:14px/1.45 -apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#1f2933;background:#f5f7fa;margin:0;padding:24px}\
main{max-width:1120px;margin:0 auto}\
h1{font-size:22px;margin:0 0 4px}\
h2{font-size:16px;margin:0 0 12px}\
.sub{color:#52606d;margin:0 0 20px}\
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}\
.card{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:12px 16px;min-width:170px;flex:1}\
.card .k{color:#52606d;font-size:12px;text-transform:uppercase;letter-spacing:.04em}\
.card .v{font-size:20px;font-weight:600;margin-top:2px;white-space:nowrap}\
section{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:16px;margin-bottom:16px}\
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin-bottom:16px}\
.grid section{margin-bottom:0}\
table{border-collapse:collapse;width:100%}\
th,td{padding:5px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}\
th{font-size:12px;color:#52606d;font-weight:600;background:#f8fafc}\
td.n,th.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}\
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}\
.good{background:#e3f9e5;color:#1f7a33}\
.bad{background:#ffe3e3;color:#b42318}\
tr.bad td{color:#b42318;font-weight:600}\
table.disc{font-size:13px}\
table.disc td:nth-child(-n+6),table.disc th{white-space:nowrap}\
.cls{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}\
.muted{color:#7b8794}\
svg text{font-family:inherit}\
";

/// Renders the billing summary page.
pub fn render_billing(page: &BillingPage) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"ru\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", text(&page.title));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>\n<main>");
    let _ = writeln!(out, "<h1>{}</h1>", text(&page.title));
    let _ = writeln!(
        out,
        "<p class=\"sub\">{} · {}</p>",
        text(&page.period),
        text(&page.generated)
    );
    cards(&mut out, page);
    let _ = writeln!(
        out,
        "<section>\n<h2>Charges per day</h2>\n{}</section>",
        bar_chart(&page.days)
    );
    out.push_str("<div class=\"grid\">\n");
    totals_table(
        &mut out,
        "By operation type",
        "type",
        &page.kinds,
        page.dialect,
    );
    totals_table(&mut out, "By class", "class", &page.classes, page.dialect);
    out.push_str("</div>\n");
    balance_section(&mut out, page);
    discrepancies_section(&mut out, page);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn cards(out: &mut String, page: &BillingPage) {
    let lines: i64 = page.kinds.iter().map(|k| k.count).sum();
    let charges: i64 = page.days.iter().map(|d| d.charges_kop).sum();
    let found = page.discrepancies.len();
    let badge = |ok: bool, yes: &str, no: &str| {
        if ok {
            format!("<span class=\"badge good\">{}</span>", text(yes))
        } else {
            format!("<span class=\"badge bad\">{}</span>", text(no))
        }
    };
    out.push_str("<div class=\"cards\">\n");
    for (k, v) in [
        ("Operations", lines.to_string()),
        ("Charges", text(&rub(-charges, page.dialect))),
        (
            "Discrepancies",
            badge(found == 0, "none", &found.to_string()),
        ),
        ("Balance check", badge(page.balance_ok, "ok", "gap")),
    ] {
        let _ = writeln!(
            out,
            "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{v}</div></div>",
            text(k)
        );
    }
    out.push_str("</div>\n");
}

/// A "nice" axis maximum (1, 2 or 5 × 10ⁿ) at or above `max`.
fn nice_ceiling(max: i64) -> i64 {
    let max = max.max(1);
    let mut step: i64 = 1;
    loop {
        for m in [1, 2, 5] {
            let candidate = step.saturating_mul(m);
            if candidate >= max {
                return candidate;
            }
        }
        if step > i64::MAX / 10 {
            return max;
        }
        step *= 10;
    }
}

/// Geometry of the per-day bar chart, in SVG user units.
const CHART_W: i64 = 1060;
const CHART_H: i64 = 260;
const CHART_LEFT: i64 = 90;
const CHART_RIGHT: i64 = 10;
const CHART_TOP: i64 = 24;
const CHART_BOTTOM: i64 = 40;
const PLOT_H: i64 = CHART_H - CHART_TOP - CHART_BOTTOM;

/// The value scale of the chart: `top_kop` at the top of the plot, 0 at the
/// bottom.
struct Scale {
    top_kop: i64,
}

impl Scale {
    /// The y coordinate of an amount, clamped to the plot.
    fn y_of(&self, kop: i64) -> i64 {
        CHART_TOP + PLOT_H
            - (kop.clamp(0, self.top_kop) as i128 * PLOT_H as i128 / self.top_kop as i128) as i64
    }
}

/// The per-day charges as an inline SVG bar chart (one `<rect>` per day).
pub fn bar_chart(days: &[DayBar]) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {CHART_W} {CHART_H}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        attr("Charges per day")
    );
    if days.is_empty() {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#7b8794\">no days</text>\n</svg>",
            CHART_W / 2,
            CHART_H / 2
        );
        return svg;
    }
    let scale = Scale {
        top_kop: nice_ceiling(days.iter().map(|d| d.charges_kop).max().unwrap_or(0) / 100)
            .saturating_mul(100),
    };
    y_axis(&mut svg, &scale);
    let n = days.len() as i64;
    let slot = (CHART_W - CHART_LEFT - CHART_RIGHT) / n.max(1);
    // At most 64 px wide, so a short period does not draw slabs.
    let bar_w = (slot * 7 / 10).clamp(1, 64);
    let label_every = (n / 16 + 1).max(1);
    for (i, d) in days.iter().enumerate() {
        let i = i as i64;
        let x = CHART_LEFT + i * slot + (slot - bar_w) / 2;
        day_bar(&mut svg, &scale, d, x, bar_w, n <= 16, i % label_every == 0);
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{CHART_LEFT}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#9aa5b1\"/>\n</svg>",
        CHART_W - CHART_RIGHT,
        CHART_TOP + PLOT_H,
        CHART_TOP + PLOT_H
    );
    svg
}

/// Five horizontal grid lines with their amounts, 0 to the scale's top.
fn y_axis(svg: &mut String, scale: &Scale) {
    for tick in 0..=4 {
        let kop = scale.top_kop / 4 * tick;
        let y = scale.y_of(kop);
        let _ = writeln!(
            svg,
            "<line x1=\"{CHART_LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#e4e7eb\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\" fill=\"#52606d\">{}</text>",
            CHART_W - CHART_RIGHT,
            CHART_LEFT - 8,
            y + 4,
            text(&rub_whole(kop))
        );
    }
}

/// One day's bar at `x` with its tooltip, its amount above it when
/// `value_label` and its date below it when `date_label`.
fn day_bar(
    svg: &mut String,
    scale: &Scale,
    d: &DayBar,
    x: i64,
    bar_w: i64,
    value_label: bool,
    date_label: bool,
) {
    let y = scale.y_of(d.charges_kop);
    let h = (CHART_TOP + PLOT_H - y).max(0);
    let tip = format!(
        "{}: {} in {} operations",
        d.date,
        rub_whole(-d.charges_kop),
        d.count
    );
    let _ = writeln!(
        svg,
        "<rect x=\"{x}\" y=\"{y}\" width=\"{bar_w}\" height=\"{h}\" rx=\"2\" fill=\"#d64545\"><title>{}</title></rect>",
        text(&tip)
    );
    if value_label && d.charges_kop > 0 {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#1f2933\">{}</text>",
            x + bar_w / 2,
            y - 5,
            text(&rub_whole(d.charges_kop))
        );
    }
    if date_label {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#52606d\">{}</text>",
            x + bar_w / 2,
            CHART_TOP + PLOT_H + 18,
            text(&d.label)
        );
    }
}

fn totals_table(out: &mut String, title: &str, what: &str, rows: &[Total], dialect: CsvDialect) {
    let _ = writeln!(
        out,
        "<section>\n<h2>{}</h2>\n<table>\n<tr><th>{}</th><th class=\"n\">count</th><th class=\"n\">amount</th></tr>",
        text(title),
        text(what)
    );
    for t in rows {
        let bad = what == "class" && t.name != "ok";
        let _ = writeln!(
            out,
            "<tr{}><td class=\"cls\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            if bad { " class=\"bad\"" } else { "" },
            text(&t.name),
            t.count,
            text(&rub(t.kop, dialect))
        );
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"3\" class=\"muted\">nothing</td></tr>\n");
    }
    out.push_str("</table>\n</section>\n");
}

fn balance_section(out: &mut String, page: &BillingPage) {
    let badge = if page.balance_ok {
        "<span class=\"badge good\">ok</span>"
    } else {
        "<span class=\"badge bad\">gap</span>"
    };
    let _ = writeln!(
        out,
        "<section>\n<h2>Balance {badge}</h2>\n<p class=\"muted\">{}</p>\n<table>",
        text(&page.balance_note)
    );
    for row in &page.balance {
        let value = row
            .kop
            .map_or_else(|| "—".to_string(), |k| rub(k, page.dialect));
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td class=\"n\">{}</td></tr>",
            if row.bad { " class=\"bad\"" } else { "" },
            text(&row.label),
            text(&value)
        );
    }
    out.push_str("</table>\n</section>\n");
}

fn discrepancies_section(out: &mut String, page: &BillingPage) {
    let _ = writeln!(
        out,
        "<section>\n<h2>Discrepancies ({})</h2>",
        page.discrepancies.len()
    );
    if page.discrepancies.is_empty() {
        out.push_str("<p class=\"muted\">No discrepancies: every operation matches the shop's orders and the tariffs.</p>\n</section>\n");
        return;
    }
    out.push_str("<table class=\"disc\">\n<tr><th>class</th><th>line</th><th>date</th><th>type</th><th>order</th><th>WMS order</th><th class=\"n\">amount</th><th class=\"n\">expected</th><th class=\"n\">difference</th><th>comment</th></tr>\n");
    let money = |kop: Option<i64>| kop.map_or_else(String::new, |k| rub(k, page.dialect));
    for d in &page.discrepancies {
        let _ = writeln!(
            out,
            "<tr><td class=\"cls\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            text(&d.class),
            text(&d.id),
            text(&d.date),
            text(&d.type_name),
            text(&d.order_id),
            text(&d.wms_order_id),
            text(&money(d.amount_kop)),
            text(&money(d.expected_kop)),
            text(&money(d.difference_kop)),
            text(&d.comment)
        );
    }
    out.push_str("</table>\n</section>\n");
}

/// Writes `html` to `dir/name` atomically (temporary file, then rename).
pub fn write(dir: &Path, name: &str, html: &str) -> Result<PathBuf, ReportError> {
    let (path, mut tmp) = super::stage(dir, name)?;
    tmp.write_all(html.as_bytes())
        .map_err(|source| ReportError::Io {
            path: path.clone(),
            source,
        })?;
    super::put_in_place(tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "<script>alert(\"x\")</script> & 'q' <img src=x onerror=1>";

    fn page() -> BillingPage {
        BillingPage {
            title: "Billing <2026-11-23>".into(),
            period: "2026-11-23 – 2026-11-25, Europe/Moscow".into(),
            generated: "run #7".into(),
            dialect: CsvDialect::ExcelRu,
            kinds: vec![Total {
                name: "assembly".into(),
                count: 3,
                kop: -13_500,
            }],
            classes: vec![
                Total {
                    name: "ok".into(),
                    count: 2,
                    kop: -9_000,
                },
                Total {
                    name: "duplicate_charge".into(),
                    count: 1,
                    kop: -4_500,
                },
            ],
            balance: vec![
                BalanceRow {
                    label: "closing".into(),
                    kop: Some(123_456_789),
                    bad: false,
                },
                BalanceRow {
                    label: "gap".into(),
                    kop: None,
                    bad: true,
                },
            ],
            balance_ok: false,
            balance_note: EVIL.into(),
            days: vec![
                DayBar {
                    label: "23.11".into(),
                    date: "2026-11-23".into(),
                    charges_kop: 10_000,
                    count: 2,
                },
                DayBar {
                    label: "24.11".into(),
                    date: "2026-11-24".into(),
                    charges_kop: 0,
                    count: 0,
                },
                DayBar {
                    label: "25.11".into(),
                    date: "2026-11-25".into(),
                    charges_kop: 4_500,
                    count: 1,
                },
            ],
            discrepancies: vec![DiscrepancyRow {
                id: "30012".into(),
                date: "2026-11-25 12:15:00".into(),
                type_name: "assembly".into(),
                order_id: "ORD-\"1\"<b>".into(),
                wms_order_id: "100012".into(),
                amount_kop: Some(-4_500),
                expected_kop: Some(4_500),
                difference_kop: Some(0),
                class: "duplicate_charge".into(),
                comment: EVIL.into(),
            }],
        }
    }

    #[test]
    fn every_value_is_escaped() {
        let html = render_billing(&page());
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; 'q'"));
        assert!(html.contains("ORD-\"1\"&lt;b&gt;"));
        assert!(html.contains("<title>Billing &lt;2026-11-23&gt;</title>"));
        assert_eq!(attr("a\"b<c"), "a&quot;b&lt;c");
        assert_eq!(text("a<b>&c"), "a&lt;b&gt;&amp;c");
    }

    #[test]
    fn the_page_is_self_contained_and_complete() {
        let html = render_billing(&page());
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"ru\">"));
        assert!(html.trim_end().ends_with("</html>"));
        for forbidden in [
            "<script", "<link", "<img", "<iframe", " src=\"", " href=\"", "@import", "url(",
        ] {
            assert!(!html.contains(forbidden), "{forbidden} in the page");
        }
        assert_eq!(html.matches("<svg").count(), 1);
        assert_eq!(html.matches("<rect").count(), 3, "one bar per day");
        assert_eq!(html.matches("<style>").count(), 1);
        // The discrepancies table: a header and one row.
        assert!(html.contains("Discrepancies (1)"));
        assert!(html.contains("<td class=\"cls\">duplicate_charge</td><td>30012</td>"));
        // Money with decimal commas and thin-space thousands for excel-ru.
        assert!(html.contains("1\u{202f}234\u{202f}567,89\u{a0}₽"), "{html}");
        assert!(html.contains("\u{2212}45,00\u{a0}₽"));
        assert!(html.contains("<span class=\"badge bad\">gap</span>"));
        assert!(html.contains("<tr class=\"bad\"><td>gap</td><td class=\"n\">—</td></tr>"));
    }

    #[test]
    fn bars_scale_to_a_nice_axis() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(90), 100);
        assert_eq!(nice_ceiling(101), 200);
        assert_eq!(nice_ceiling(4_999), 5_000);
        assert_eq!(nice_ceiling(i64::MAX), i64::MAX);
        let svg = bar_chart(&page().days);
        // The tallest bar reaches the top of the plot (y = 24) on a 100 ₽ axis.
        assert!(svg.contains("y=\"24\" width="), "{svg}");
        assert!(svg.contains("height=\"0\""), "an empty day is a flat bar");
        assert!(bar_chart(&[]).contains("no days"));
        let one = bar_chart(&page().days[..1]);
        assert!(
            one.contains("width=\"64\""),
            "a lone bar stays narrow: {one}"
        );
    }

    #[test]
    fn money_for_people() {
        assert_eq!(rub(0, CsvDialect::Rfc4180), "0.00\u{a0}₽");
        assert_eq!(rub(-5, CsvDialect::ExcelRu), "\u{2212}0,05\u{a0}₽");
        assert_eq!(
            rub(10_000_000, CsvDialect::Rfc4180),
            "100\u{202f}000.00\u{a0}₽"
        );
        assert_eq!(rub_whole(-12_345_678), "\u{2212}123\u{202f}456\u{a0}₽");
    }

    #[test]
    fn writes_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "x.html", "<p>1</p>").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<p>1</p>");
        write(dir.path(), "x.html", "<p>2</p>").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "<p>2</p>");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
