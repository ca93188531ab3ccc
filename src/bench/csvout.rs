//! Writes generated frames as CSV for the baselines (polars' own CSV writer
//! is a feature sverka keeps off). Nulls are empty fields, booleans
//! `true`/`false`.

use anyhow::{bail, Context as _, Result};
use polars::prelude::*;
use std::path::Path;

enum Values<'a> {
    Text(Vec<Option<&'a str>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
}

impl Values<'_> {
    fn cell(&self, row: usize) -> String {
        match self {
            Values::Text(v) => v[row].unwrap_or("").to_owned(),
            Values::Int(v) => v[row].map(|x| x.to_string()).unwrap_or_default(),
            Values::Bool(v) => v[row].map(|x| x.to_string()).unwrap_or_default(),
        }
    }
}

/// Writes every column of `df` (String, integer or Boolean) to `path`.
pub fn write_frame(df: &DataFrame, path: &Path) -> Result<()> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let mut columns = Vec::with_capacity(names.len());
    for (name, column) in names.iter().zip(df.columns()) {
        let values = match column.dtype() {
            DataType::String => Values::Text(column.str()?.iter().collect()),
            DataType::Null => Values::Text(vec![None; column.len()]),
            DataType::Boolean => Values::Bool(column.bool()?.iter().collect()),
            d if d.is_integer() => {
                let wide = column.strict_cast(&DataType::Int64)?;
                Values::Int(wide.i64()?.iter().collect())
            }
            other => bail!("column {name}: cannot write dtype {other} as CSV"),
        };
        columns.push(values);
    }
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("creating {}", path.display()))?;
    w.write_record(&names)?;
    let mut record = Vec::with_capacity(columns.len());
    for row in 0..df.height() {
        record.clear();
        record.extend(columns.iter().map(|c| c.cell(row)));
        w.write_record(&record)?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
