//! Reports: CSV files for people and spreadsheets, and the run summary.

pub mod csv;
pub mod html;
pub mod summary;
