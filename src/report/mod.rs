//! Reports: CSV files for people and spreadsheets, the billing HTML page, and
//! the run summary.
//!
//! Every report file is written to a temporary name in its folder and renamed
//! into place once complete ([`stage`], [`put_in_place`]), so a reader — or a
//! spreadsheet with the file open — never sees half a report.

pub mod csv;
pub mod html;
pub mod summary;

use std::path::{Path, PathBuf};

use self::csv::ReportError;

/// Creates `dir` if needed and a temporary file in it for the report `name`;
/// returns the report's final path with the file.
pub(crate) fn stage(
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, tempfile::NamedTempFile), ReportError> {
    let path = dir.join(name);
    let io = |source| ReportError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    Ok((path, tmp))
}

/// Syncs a [`stage`]d file and renames it to `path`, replacing an older report.
pub(crate) fn put_in_place(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}
