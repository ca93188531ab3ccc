//! The CSV writer every job uses.
//!
//! RFC 4180 UTF-8 with a header row by default; the `excel-ru` dialect writes
//! `;` separators, a BOM and decimal commas so a Russian Excel opens the file
//! directly. Text cells that a spreadsheet would read as a formula (`=`, `+`,
//! `-`, `@`, tab, CR first) are neutralised with a leading `'`; numbers stay
//! numbers. Files are written to a temp file and renamed into place.

use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::config::CsvDialect;

/// One report cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Free text (neutralised against formula injection).
    Text(String),
    /// An integer.
    Int(i64),
    /// Money in kopecks, written as rubles with two decimals.
    Money(i64),
    /// A measured number (never money).
    Float(f64),
    /// Nothing.
    Empty,
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_string())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(v)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Cell::Empty)
    }
}

/// Errors writing a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// File system trouble.
    #[error("cannot write report {path}")]
    Io {
        /// The report's final path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// CSV encoding trouble.
    #[error("cannot write report {path}")]
    Csv {
        /// The report's final path.
        path: PathBuf,
        /// The csv error.
        #[source]
        source: ::csv::Error,
    },
    /// A row with the wrong number of cells.
    #[error("report {path}: row has {got} cells, header has {want}")]
    Width {
        /// The report.
        path: PathBuf,
        /// Cells in the row.
        got: usize,
        /// Cells in the header.
        want: usize,
    },
}

/// Prefixes text a spreadsheet would evaluate as a formula with `'`.
pub fn neutralise(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{text}")),
        _ => std::borrow::Cow::Borrowed(text),
    }
}

/// Renders kopecks as rubles with two decimals (`-12345` → `-123.45`).
pub fn money(kop: i64, dialect: CsvDialect) -> String {
    let sign = if kop < 0 { "-" } else { "" };
    let abs = kop.unsigned_abs();
    let sep = match dialect {
        CsvDialect::Rfc4180 => '.',
        CsvDialect::ExcelRu => ',',
    };
    format!("{sign}{}{sep}{:02}", abs / 100, abs % 100)
}

fn render(cell: &Cell, dialect: CsvDialect) -> String {
    match cell {
        Cell::Text(t) => neutralise(t).into_owned(),
        Cell::Int(v) => v.to_string(),
        Cell::Money(k) => money(*k, dialect),
        Cell::Float(f) => {
            let s = format!("{f}");
            match dialect {
                CsvDialect::Rfc4180 => s,
                CsvDialect::ExcelRu => s.replace('.', ","),
            }
        }
        Cell::Empty => String::new(),
    }
}

/// A report being written; call [`CsvReport::finish`] to put it in place.
pub struct CsvReport {
    path: PathBuf,
    width: usize,
    dialect: CsvDialect,
    rows: u64,
    writer: ::csv::Writer<tempfile::NamedTempFile>,
}

impl std::fmt::Debug for CsvReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvReport")
            .field("path", &self.path)
            .field("rows", &self.rows)
            .finish()
    }
}

impl CsvReport {
    /// Starts `dir/name` with a header row (the folder is created if needed).
    pub fn create(
        dir: &Path,
        name: &str,
        dialect: CsvDialect,
        header: &[&str],
    ) -> Result<CsvReport, ReportError> {
        let (path, mut tmp) = super::stage(dir, name)?;
        if dialect == CsvDialect::ExcelRu {
            tmp.write_all("\u{feff}".as_bytes())
                .map_err(|source| ReportError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        let delimiter = match dialect {
            CsvDialect::Rfc4180 => b',',
            CsvDialect::ExcelRu => b';',
        };
        let mut writer = ::csv::WriterBuilder::new()
            .delimiter(delimiter)
            .terminator(::csv::Terminator::CRLF)
            .from_writer(tmp);
        writer
            .write_record(header.iter().map(|h| neutralise(h).into_owned()))
            .map_err(|source| ReportError::Csv {
                path: path.clone(),
                source,
            })?;
        Ok(CsvReport {
            path,
            width: header.len(),
            dialect,
            rows: 0,
            writer,
        })
    }

    /// Appends one row.
    pub fn row(&mut self, cells: &[Cell]) -> Result<(), ReportError> {
        if cells.len() != self.width {
            return Err(ReportError::Width {
                path: self.path.clone(),
                got: cells.len(),
                want: self.width,
            });
        }
        let dialect = self.dialect;
        self.writer
            .write_record(cells.iter().map(|c| render(c, dialect)))
            .map_err(|source| ReportError::Csv {
                path: self.path.clone(),
                source,
            })?;
        self.rows += 1;
        Ok(())
    }

    /// Rows written so far (header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes, syncs and renames the file into place; returns its path.
    pub fn finish(self) -> Result<PathBuf, ReportError> {
        let path = self.path;
        let tmp = self.writer.into_inner().map_err(|e| ReportError::Io {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        super::put_in_place(tmp, &path)?;
        Ok(path)
    }
}

/// `<job>-<YYYY-MM-DD>-<run>.csv`
pub fn file_name(job: &str, date: chrono::NaiveDate, run_id: i64) -> String {
    format!("{job}-{}-{run_id}.csv", date.format("%Y-%m-%d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(path: &Path, delimiter: u8) -> (Vec<u8>, Vec<Vec<String>>) {
        let bytes = std::fs::read(path).unwrap();
        let body = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(&bytes);
        let mut rdr = ::csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .from_reader(body);
        let rows = rdr
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        (bytes, rows)
    }

    #[test]
    fn formulas_are_neutralised_and_numbers_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut r =
            CsvReport::create(dir.path(), "t.csv", CsvDialect::Rfc4180, &["a", "b", "c"]).unwrap();
        for danger in [
            "=1+1",
            "+7",
            "-3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "=HYPERLINK(\"http://x\")",
        ] {
            r.row(&[danger.into(), Cell::Int(-5), Cell::Money(-1050)])
                .unwrap();
        }
        r.row(&[
            "plain, with \"quotes\"".into(),
            Cell::Empty,
            Cell::Float(1.5),
        ])
        .unwrap();
        let path = r.finish().unwrap();
        let (_, rows) = read_back(&path, b',');
        assert_eq!(rows[0], ["a", "b", "c"]);
        for row in &rows[1..8] {
            assert!(row[0].starts_with('\''), "{row:?}");
            assert_eq!(row[1], "-5");
            assert_eq!(row[2], "-10.50");
        }
        assert_eq!(rows[1][0], "'=1+1");
        assert_eq!(rows[8], ["plain, with \"quotes\"", "", "1.5"]);
    }

    #[test]
    fn excel_ru_has_bom_semicolons_and_decimal_commas() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = CsvReport::create(
            dir.path(),
            "b.csv",
            CsvDialect::ExcelRu,
            &["сумма", "текст"],
        )
        .unwrap();
        r.row(&[Cell::Money(-123456), "Сборка; заказ".into()])
            .unwrap();
        r.row(&[Cell::Money(5), Cell::Float(0.25)]).unwrap();
        let path = r.finish().unwrap();
        let (bytes, rows) = read_back(&path, b';');
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "BOM");
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        assert!(text.starts_with("сумма;текст\r\n"), "{text}");
        assert_eq!(rows[1], ["-1234,56", "Сборка; заказ"]);
        assert_eq!(rows[2], ["0,05", "0,25"]);
    }

    #[test]
    fn writes_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = CsvReport::create(dir.path(), "x.csv", CsvDialect::Rfc4180, &["a"]).unwrap();
        r.row(&["1".into()]).unwrap();
        assert!(
            !dir.path().join("x.csv").exists(),
            "nothing visible before finish"
        );
        drop(r);
        assert!(!dir.path().join("x.csv").exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp file cleaned up"
        );
        let mut r = CsvReport::create(dir.path(), "x.csv", CsvDialect::Rfc4180, &["a"]).unwrap();
        r.row(&["1".into()]).unwrap();
        r.finish().unwrap();
        assert!(dir.path().join("x.csv").exists());
    }

    #[test]
    fn row_width_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut r =
            CsvReport::create(dir.path(), "w.csv", CsvDialect::Rfc4180, &["a", "b"]).unwrap();
        assert!(matches!(
            r.row(&[Cell::Empty]),
            Err(ReportError::Width { .. })
        ));
    }

    #[test]
    fn money_is_exact() {
        assert_eq!(money(0, CsvDialect::Rfc4180), "0.00");
        assert_eq!(money(-1, CsvDialect::Rfc4180), "-0.01");
        assert_eq!(
            money(i64::MIN, CsvDialect::Rfc4180),
            "-92233720368547758.08"
        );
        assert_eq!(money(1999, CsvDialect::ExcelRu), "19,99");
    }

    #[test]
    fn file_names_carry_job_date_and_run() {
        let d = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(file_name("stock", d, 7), "stock-2026-11-22-7.csv");
    }
}
