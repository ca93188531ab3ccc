//! The architecture's rules, checked on the source tree (ARCHITECTURE.md):
//!
//! - dependencies point one way: a top-level module imports (`crate::x`) only
//!   modules of a lower rank ([`RANKS`]); `reconcile` imports only the
//!   foundation, the sandbox (a fake vendor) no client logic;
//! - `journal::plan` / `journal::settle` are called only by the apply path;
//! - no production file (the part before `#[cfg(test)]`) is over 1,000 lines.
//!
//! Test-only code (`#[cfg(test)]` items) and comments are not imports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its rank: a module may import only
/// modules of strictly lower rank.
const RANKS: &[(&str, u8)] = &[
    // Foundation: no imports from the rest of the crate.
    ("lenient", 0),
    ("options", 2),
    ("secret", 0),
    ("progress", 0),
    ("money", 0),
    ("net", 0),
    ("server", 0),
    ("json_canon", 0),
    ("exit", 0),
    ("errors", 0),
    ("vendor_docs", 0),
    ("config", 1),
    ("db", 2),
    ("connectors", 3),
    ("shop", 4),
    // Pure reconciliation (foundation only) and report writers.
    ("reconcile", 5),
    ("report", 5),
    ("apply", 6),
    ("jobs", 7),
    // Edges.
    ("listener", 8),
    ("sandbox", 8),
    ("demo", 9),
    ("bench", 9),
    ("check", 9),
    ("map_import", 9),
    ("cli", 10),
    ("app", 11),
    ("main", 12),
    ("lib", 12),
];

/// What the sandbox may import: it states its own reading of the vendors'
/// documents, so no connector, reconcile or job logic.
const SANDBOX_MAY_IMPORT: &[&str] = &[
    "lenient",
    "secret",
    "progress",
    "money",
    "net",
    "server",
    "json_canon",
    "exit",
    "errors",
    "vendor_docs",
    "config",
    "db",
    "shop",
];

/// Imports that break the rules today, each with why it is still there. A new
/// backward import fails the test; fixing one of these fails it too, until
/// the line is removed here.
const KNOWN_EXCEPTIONS: &[(&str, &str, &str)] = &[(
    "sandbox",
    "connectors",
    "the sandbox shares the connectors' wire types",
)];

fn rank(module: &str) -> Option<u8> {
    RANKS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

/// One source file: its path under `src/` and its text.
struct Source {
    path: String,
    text: String,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("reading src/") {
            let path: PathBuf = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).expect("under src/");
                out.push(Source {
                    path: rel.to_string_lossy().replace('\\', "/"),
                    text: std::fs::read_to_string(&path).expect("reading a source file"),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The top-level module a file under `src/` belongs to.
fn top_module(path: &str) -> String {
    let first = path.split('/').next().unwrap_or(path);
    first.trim_end_matches(".rs").to_string()
}

/// The code lines of `text` without comments and without `#[cfg(test)]` items.
fn production_code(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            // Skip the item that follows: to its closing brace, or its `;`.
            let mut depth = 0i32;
            let mut opened = false;
            for item in lines.by_ref() {
                let code = strip_comment(item);
                depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
                opened |= code.contains('{');
                if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
                    break;
                }
            }
            continue;
        }
        out.push(strip_comment(line).to_string());
    }
    out
}

fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The top-level modules `code` names as `crate::x` (not `$crate::x`).
fn imported_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = &rest[..i];
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let word_start = !before
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
        if word_start && !name.is_empty() {
            out.insert(name);
        }
        rest = after;
    }
    out
}

/// Every import that breaks the rank rules, as `from -> to (file)`.
fn violations(files: &[Source]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let from = top_module(&f.path);
        let Some(from_rank) = rank(&from) else {
            out.push(format!("{from} ({}): module has no rank in RANKS", f.path));
            continue;
        };
        let code = production_code(&f.text).join("\n");
        for to in imported_modules(&code) {
            if to == from {
                continue;
            }
            let Some(to_rank) = rank(&to) else {
                out.push(format!("{from} -> {to} ({}): {to} has no rank", f.path));
                continue;
            };
            let allowed = match from.as_str() {
                "reconcile" => to_rank == 0,
                "sandbox" => SANDBOX_MAY_IMPORT.contains(&to.as_str()),
                _ => to_rank < from_rank,
            };
            if !allowed {
                out.push(format!("{from} -> {to} ({})", f.path));
            }
        }
    }
    out
}

fn excepted(v: &str) -> bool {
    KNOWN_EXCEPTIONS
        .iter()
        .any(|(from, to, _)| v.starts_with(&format!("{from} -> {to} (")))
}

#[test]
fn dependencies_point_one_way() {
    let all = violations(&sources());
    let new: Vec<&String> = all.iter().filter(|v| !excepted(v)).collect();
    assert!(
        new.is_empty(),
        "imports against the layer rules (ARCHITECTURE.md, tests/it/layers.rs RANKS):\n  {}",
        new.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    let stale: Vec<String> = KNOWN_EXCEPTIONS
        .iter()
        .filter(|(from, to, _)| {
            !all.iter()
                .any(|v| v.starts_with(&format!("{from} -> {to} (")))
        })
        .map(|(from, to, _)| format!("{from} -> {to}"))
        .collect();
    assert!(
        stale.is_empty(),
        "fixed, remove from KNOWN_EXCEPTIONS: {stale:?}"
    );
}

#[test]
fn the_checker_flags_a_backward_import_and_ignores_tests_and_comments() {
    let file = |path: &str, text: &str| Source {
        path: path.to_string(),
        text: text.to_string(),
    };
    let files = [
        file("reconcile/x.rs", "use crate::db::Db;\nuse crate::lenient::opt_id;\n"),
        file("db/y.rs", "/// See [`crate::jobs::Context`].\nuse crate::config::Config;\n#[cfg(test)]\nmod tests {\n    use crate::jobs::Context;\n}\nfn z() { crate::jobs::run(); }\n"),
        file("sandbox/z.rs", "use crate::connectors::egon::Card;\nuse crate::db::Db;\n"),
        file("connectors/w.rs", "macro_rules! m { () => { $crate::app::x() } }\n"),
    ];
    assert_eq!(
        violations(&files),
        [
            "reconcile -> db (reconcile/x.rs)",
            "db -> jobs (db/y.rs)",
            "sandbox -> connectors (sandbox/z.rs)",
        ]
    );
}

#[test]
fn journal_plan_and_settle_are_called_only_by_the_apply_path() {
    let mut found = Vec::new();
    for f in sources() {
        if f.path == "apply.rs" || f.path == "db/journal.rs" {
            continue;
        }
        for (i, line) in f.text.lines().enumerate() {
            let code = strip_comment(line);
            if code.contains("journal::plan(")
                || code.contains("journal::settle(")
                || (code.contains("journal::{")
                    && (code.contains(" plan")
                        || code.contains(" settle")
                        || code.contains("{plan")
                        || code.contains("{settle")))
            {
                found.push(format!("{}:{}: {}", f.path, i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "corrections are journaled only through crate::apply::Writer:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn no_production_file_is_over_1000_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter_map(|f| {
            let n = f
                .text
                .lines()
                .take_while(|l| l.trim() != "#[cfg(test)]")
                .count();
            (n > 1000).then(|| format!("{} ({n} lines before #[cfg(test)])", f.path))
        })
        .collect();
    assert!(long.is_empty(), "split along its seams: {long:?}");
}

/// Functions in `text` (before its first `#[cfg(test)]`) longer than
/// `limit` lines, as `(name, first line, lines)`: from the `fn` line to the
/// closing brace at the same indentation.
fn long_functions(text: &str, limit: usize) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let head = line.trim_start();
        // `pub`, `pub(crate)`, `pub(in path)` …
        let head = match head.strip_prefix("pub") {
            Some(rest) if rest.starts_with('(') => {
                rest.split_once(") ").map_or(head, |(_, after)| after)
            }
            Some(rest) => rest.strip_prefix(' ').unwrap_or(head),
            None => head,
        };
        let head = head.strip_prefix("async ").unwrap_or(head);
        let head = head.strip_prefix("const ").unwrap_or(head);
        let Some(rest) = head.strip_prefix("fn ") else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue; // a declaration in a trait
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{}}}", " ".repeat(indent));
        let end = lines[i + 1..]
            .iter()
            .position(|l| l.trim_end() == close)
            .map_or(lines.len(), |j| i + 1 + j);
        let n = end - i + 1;
        if n > limit {
            out.push((name, i + 1, n));
        }
    }
    out
}

#[test]
fn no_production_function_is_over_80_lines() {
    let long: Vec<String> = sources()
        .iter()
        .flat_map(|f| {
            long_functions(&f.text, 80)
                .into_iter()
                .map(move |(name, at, n)| format!("{}:{at} {name} ({n} lines)", f.path))
        })
        .collect();
    assert!(long.is_empty(), "split along its seams: {long:?}");
}

#[test]
fn the_function_length_checker_counts_to_the_closing_brace() {
    let body: String = (0..81).map(|i| format!("    let _x{i} = {i};\n")).collect();
    let text = format!(
        "/// Doc.\npub async fn long() {{\n{body}}}\n\nfn short() {{\n    1;\n}}\n\
         impl X {{\n    pub(super) fn inner() {{\n{body}    }}\n}}\n#[cfg(test)]\nfn ignored() {{\n{body}}}\n"
    );
    let long = long_functions(&text, 80);
    let names: Vec<&str> = long.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["long", "inner"], "{long:?}");
    assert_eq!(long[0].2, 83);
}

/// The error variants (file:line and name) whose `#[error("…")]` message
/// prints the error's own source: `{source}`, `{0}` of a `#[from]`/`#[source]`
/// field, or a `#[source]` field by name. Under `{:#}` (anyhow, the CLI, run
/// records) the source prints again after the message, so such a message
/// would say its cause twice.
fn messages_printing_their_source(file: &Source) -> Vec<String> {
    let lines: Vec<&str> = file.text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(at) = line.find("#[error(\"") else {
            continue;
        };
        let message = &line[at..];
        // The variant: its name and fields, up to the next attribute at the
        // variant's indentation or the end of the enum.
        let indent = line.len() - line.trim_start().len();
        let mut body = String::new();
        for next in &lines[i + 1..] {
            let trimmed = next.trim_start();
            let next_indent = next.len() - trimmed.len();
            if next_indent < indent
                || (next_indent == indent
                    && (trimmed.starts_with("#[") || trimmed.starts_with("///"))
                    && !body.is_empty())
            {
                break;
            }
            if !trimmed.starts_with("///") {
                body.push_str(trimmed);
                body.push('\n');
            }
        }
        let tuple_source =
            (body.contains("(#[from]") || body.contains("(#[source]")) && message.contains("{0}");
        let named_source = body.contains("\nsource:")
            || body.starts_with("source:")
            || body.contains("{\nsource:")
            || body.contains(" source:");
        let named = named_source && message.contains("{source}");
        let tagged = body
            .split("#[source]")
            .nth(1)
            .and_then(|rest| rest.trim_start().split(':').next())
            .map(|field| field.trim().trim_start_matches("pub ").to_string())
            .is_some_and(|field| !field.is_empty() && message.contains(&format!("{{{field}}}")));
        if tuple_source || named || tagged {
            let name = body
                .split(['{', '(', ',', '\n'])
                .next()
                .unwrap_or("")
                .trim();
            out.push(format!("{}:{} {name}", file.path, i + 1));
        }
    }
    out
}

/// One error style for every layer: a message says what failed and the
/// cause comes once, either in the message (no `source`) or as the source
/// (not in the message).
#[test]
fn no_error_message_prints_its_source_twice() {
    let found: Vec<String> = sources()
        .iter()
        .flat_map(messages_printing_their_source)
        .collect();
    assert!(
        found.is_empty(),
        "these messages print their source, which `{{:#}}` prints again: {found:#?}"
    );
}

#[test]
fn the_error_style_checker_flags_a_message_that_prints_its_source() {
    let bad = Source {
        path: "x.rs".into(),
        text: "enum E {\n    /// A.\n    #[error(\"reading {path}: {source}\")]\n    Read {\n        path: String,\n        source: std::io::Error,\n    },\n    #[error(\"shop: {0}\")]\n    Shop(#[from] ShopError),\n    #[error(\"reading {path}: {cause}\")]\n    Fine {\n        path: String,\n        cause: String,\n    },\n    #[error(\"shop\")]\n    AlsoFine(#[from] ShopError),\n}\n".into(),
    };
    assert_eq!(
        messages_printing_their_source(&bad),
        vec!["x.rs:3 Read".to_string(), "x.rs:8 Shop".to_string()]
    );
}
