//! Input validation and errors shared by the stock, orders and billing
//! reconciliations: [`ReconcileError`], the crate-internal `Input` reader
//! (typed, validated column reads naming the frame and column) and frame
//! building helpers.

use polars::prelude::*;

/// Everything that can go wrong while reconciling frames.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A required column is absent from an input frame.
    #[error("frame `{frame}`: missing column `{column}`")]
    MissingColumn {
        /// Name of the input frame (e.g. `wms`).
        frame: &'static str,
        /// The column that was expected.
        column: &'static str,
    },
    /// A column has a data type that cannot be read as the documented one.
    #[error("frame `{frame}`: column `{column}` has dtype {found}, expected {expected}")]
    WrongDtype {
        /// Name of the input frame.
        frame: &'static str,
        /// The offending column.
        column: &'static str,
        /// The documented dtype.
        expected: &'static str,
        /// The dtype found in the frame.
        found: String,
    },
    /// A column documented as non-nullable contains a null.
    #[error("frame `{frame}`: column `{column}` has a null at row {row}")]
    UnexpectedNull {
        /// Name of the input frame.
        frame: &'static str,
        /// The offending column.
        column: &'static str,
        /// First row holding a null.
        row: usize,
    },
    /// A key that must be unique within a frame appears more than once.
    #[error("frame `{frame}`: duplicate key `{key}` in column `{column}`")]
    DuplicateKey {
        /// Name of the input frame.
        frame: &'static str,
        /// The key column.
        column: &'static str,
        /// The duplicated key value.
        key: String,
    },
    /// A value outside the documented domain (e.g. an unknown order stage).
    #[error("frame `{frame}`: column `{column}` holds unsupported value `{value}`")]
    InvalidValue {
        /// Name of the input frame.
        frame: &'static str,
        /// The offending column.
        column: &'static str,
        /// The value found.
        value: String,
    },
    /// A money or quantity sum does not fit in 64 bits.
    #[error("frame `{frame}`: sum of column `{column}` overflows i64")]
    Overflow {
        /// Name of the input frame.
        frame: &'static str,
        /// The summed column.
        column: &'static str,
    },
    /// Polars failed while building or reordering a frame.
    #[error("{context}: {source}")]
    Polars {
        /// What was being done.
        context: &'static str,
        /// The Polars error.
        #[source]
        source: PolarsError,
    },
}

/// Result alias for the reconcile modules.
pub type Result<T, E = ReconcileError> = std::result::Result<T, E>;

/// Wraps a Polars error with a short description of the step that failed.
pub(crate) fn polars_ctx(context: &'static str) -> impl FnOnce(PolarsError) -> ReconcileError {
    move |source| ReconcileError::Polars { context, source }
}

/// Validated, typed reads of one input frame's columns; every error names the
/// frame and the column.
pub(crate) struct Input<'a> {
    df: &'a DataFrame,
    frame: &'static str,
}

impl<'a> Input<'a> {
    /// Wraps `df`, calling it `frame` in errors.
    pub(crate) fn new(df: &'a DataFrame, frame: &'static str) -> Self {
        Self { df, frame }
    }

    fn column(&self, column: &'static str) -> Result<&'a Column> {
        self.df
            .column(column)
            .map_err(|_| ReconcileError::MissingColumn {
                frame: self.frame,
                column,
            })
    }

    fn wrong_dtype(
        &self,
        column: &'static str,
        expected: &'static str,
        found: &DataType,
    ) -> ReconcileError {
        ReconcileError::WrongDtype {
            frame: self.frame,
            column,
            expected,
            found: found.to_string(),
        }
    }

    fn null_at<T>(&self, column: &'static str, values: &[Option<T>]) -> ReconcileError {
        let row = values.iter().position(Option::is_none).unwrap_or(0);
        ReconcileError::UnexpectedNull {
            frame: self.frame,
            column,
            row,
        }
    }

    /// A String column that may hold nulls (an all-null `Null` column is accepted).
    pub(crate) fn opt_strings(&self, column: &'static str) -> Result<Vec<Option<&'a str>>> {
        let col = self.column(column)?;
        match col.dtype() {
            DataType::String => {
                let ca = col
                    .str()
                    .map_err(|_| self.wrong_dtype(column, "String", col.dtype()))?;
                Ok(ca.iter().collect())
            }
            DataType::Null => Ok(vec![None; col.len()]),
            other => Err(self.wrong_dtype(column, "String", other)),
        }
    }

    /// A String column without nulls (collected once: no intermediate
    /// vector of options).
    pub(crate) fn strings(&self, column: &'static str) -> Result<Vec<&'a str>> {
        let col = self.column(column)?;
        match col.dtype() {
            DataType::String => {
                let ca = col
                    .str()
                    .map_err(|_| self.wrong_dtype(column, "String", col.dtype()))?;
                if ca.null_count() > 0 {
                    let row = ca.iter().position(|v| v.is_none()).unwrap_or(0);
                    return Err(ReconcileError::UnexpectedNull {
                        frame: self.frame,
                        column,
                        row,
                    });
                }
                Ok(ca.iter().flatten().collect())
            }
            // As `opt_strings` reads it: all null, the first null at row 0.
            DataType::Null if col.is_empty() => Ok(Vec::new()),
            DataType::Null => Err(ReconcileError::UnexpectedNull {
                frame: self.frame,
                column,
                row: 0,
            }),
            other => Err(self.wrong_dtype(column, "String", other)),
        }
    }

    /// An integer column that may hold nulls, widened to i64. Any integer
    /// dtype that fits losslessly is accepted (e.g. Int32 or UInt32 from a
    /// database driver); an all-null `Null` column reads as all `None`.
    pub(crate) fn opt_ints(&self, column: &'static str) -> Result<Vec<Option<i64>>> {
        let col = self.column(column)?;
        let dtype = col.dtype();
        if matches!(dtype, DataType::Null) {
            return Ok(vec![None; col.len()]);
        }
        if !dtype.is_integer() {
            return Err(self.wrong_dtype(column, "Int64", dtype));
        }
        let wide = col
            .strict_cast(&DataType::Int64)
            .map_err(|_| self.wrong_dtype(column, "Int64", dtype))?;
        let ca = wide
            .i64()
            .map_err(|_| self.wrong_dtype(column, "Int64", dtype))?;
        Ok(ca.iter().collect())
    }

    /// An integer column without nulls, widened to i64.
    pub(crate) fn ints(&self, column: &'static str) -> Result<Vec<i64>> {
        let values = self.opt_ints(column)?;
        values
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.null_at(column, &values))
    }

    /// A Boolean column that may hold nulls.
    pub(crate) fn opt_bools(&self, column: &'static str) -> Result<Vec<Option<bool>>> {
        let col = self.column(column)?;
        match col.dtype() {
            DataType::Boolean => {
                let ca = col
                    .bool()
                    .map_err(|_| self.wrong_dtype(column, "Boolean", col.dtype()))?;
                Ok(ca.iter().collect())
            }
            DataType::Null => Ok(vec![None; col.len()]),
            other => Err(self.wrong_dtype(column, "Boolean", other)),
        }
    }

    /// A Boolean column without nulls.
    pub(crate) fn bools(&self, column: &'static str) -> Result<Vec<bool>> {
        let values = self.opt_bools(column)?;
        values
            .iter()
            .copied()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.null_at(column, &values))
    }

    /// A String column without nulls, as one contiguous chunk (zero-copy
    /// when the column already is one).
    pub(crate) fn string_chunk(&self, column: &'static str) -> Result<StringChunked> {
        let col = self.column(column)?;
        match col.dtype() {
            DataType::String => {}
            DataType::Null if col.is_empty() => {
                return Ok(StringChunked::full_null(column.into(), 0));
            }
            DataType::Null => {
                return Err(ReconcileError::UnexpectedNull {
                    frame: self.frame,
                    column,
                    row: 0,
                })
            }
            other => return Err(self.wrong_dtype(column, "String", other)),
        }
        let ca = col
            .str()
            .map_err(|_| self.wrong_dtype(column, "String", col.dtype()))?;
        if ca.null_count() > 0 {
            let row = ca.iter().position(|v| v.is_none()).unwrap_or(0);
            return Err(ReconcileError::UnexpectedNull {
                frame: self.frame,
                column,
                row,
            });
        }
        Ok(ca.rechunk().into_owned())
    }

    /// An integer column widened to Int64 as one contiguous chunk; nulls are
    /// rejected unless `nullable` (an all-null `Null` column reads as nulls).
    pub(crate) fn int_chunk(&self, column: &'static str, nullable: bool) -> Result<Int64Chunked> {
        let col = self.column(column)?;
        let dtype = col.dtype();
        if matches!(dtype, DataType::Null) {
            if !nullable && !col.is_empty() {
                return Err(ReconcileError::UnexpectedNull {
                    frame: self.frame,
                    column,
                    row: 0,
                });
            }
            return Ok(Int64Chunked::full_null(column.into(), col.len()));
        }
        if !dtype.is_integer() {
            return Err(self.wrong_dtype(column, "Int64", dtype));
        }
        let wide = col
            .strict_cast(&DataType::Int64)
            .map_err(|_| self.wrong_dtype(column, "Int64", dtype))?;
        let ca = wide
            .i64()
            .map_err(|_| self.wrong_dtype(column, "Int64", dtype))?;
        if !nullable && ca.null_count() > 0 {
            let row = ca.iter().position(|v| v.is_none()).unwrap_or(0);
            return Err(ReconcileError::UnexpectedNull {
                frame: self.frame,
                column,
                row,
            });
        }
        Ok(ca.rechunk().into_owned())
    }
}

/// Builds a frame from columns, naming the step in a Polars error.
pub(crate) fn frame(
    height: usize,
    columns: Vec<Column>,
    context: &'static str,
) -> Result<DataFrame> {
    DataFrame::new(height, columns).map_err(polars_ctx(context))
}
