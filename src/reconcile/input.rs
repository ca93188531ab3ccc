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
    #[error("{context}")]
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

/// Runs `a` and `b`, on two threads when `parallel` (`a` on the calling
/// one), and returns both results; a panic in either is resumed here.
pub(crate) fn both<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|s| {
        let handle = s.spawn(b);
        let a = a();
        let b = handle
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}

/// The error for a frame whose `order_id` repeats: it names the first id
/// (in row order) that is seen twice.
pub(crate) fn repeated_order_id(frame: &'static str, ids: &[&str]) -> ReconcileError {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    let key = ids
        .iter()
        .find(|id| !seen.insert(**id))
        .copied()
        .unwrap_or_default();
    ReconcileError::DuplicateKey {
        frame,
        column: "order_id",
        key: key.to_owned(),
    }
}

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
        self.null_in_row(column, row)
    }

    fn null_in_row(&self, column: &'static str, row: usize) -> ReconcileError {
        ReconcileError::UnexpectedNull {
            frame: self.frame,
            column,
            row,
        }
    }

    /// An error for the first null of `ca`, if it has one.
    fn reject_nulls<T: PolarsDataType>(
        &self,
        column: &'static str,
        ca: &ChunkedArray<T>,
    ) -> Result<()> {
        if ca.null_count() == 0 {
            return Ok(());
        }
        let row = ca
            .is_null()
            .iter()
            .position(|null| null == Some(true))
            .unwrap_or(0);
        Err(self.null_in_row(column, row))
    }

    /// The String column `column`, or None for an all-null `Null` column.
    fn str_column(&self, column: &'static str) -> Result<Option<&'a StringChunked>> {
        let col = self.column(column)?;
        match col.dtype() {
            DataType::String => col
                .str()
                .map(Some)
                .map_err(|_| self.wrong_dtype(column, "String", col.dtype())),
            DataType::Null => Ok(None),
            other => Err(self.wrong_dtype(column, "String", other)),
        }
    }

    /// The String column `column` without nulls; None when it is empty and
    /// typed `Null` (a non-empty `Null` column has its first null at row 0).
    fn non_null_str_column(&self, column: &'static str) -> Result<Option<&'a StringChunked>> {
        match self.str_column(column)? {
            Some(ca) => {
                self.reject_nulls(column, ca)?;
                Ok(Some(ca))
            }
            None if self.column(column)?.is_empty() => Ok(None),
            None => Err(self.null_in_row(column, 0)),
        }
    }

    /// The integer column `column` widened to Int64 (any integer dtype that
    /// fits losslessly), or None for an all-null `Null` column.
    fn int64_column(&self, column: &'static str) -> Result<Option<Int64Chunked>> {
        let col = self.column(column)?;
        let dtype = col.dtype();
        if matches!(dtype, DataType::Null) {
            return Ok(None);
        }
        if !dtype.is_integer() {
            return Err(self.wrong_dtype(column, "Int64", dtype));
        }
        let wide = col
            .strict_cast(&DataType::Int64)
            .map_err(|_| self.wrong_dtype(column, "Int64", dtype))?;
        wide.i64()
            .cloned()
            .map(Some)
            .map_err(|_| self.wrong_dtype(column, "Int64", dtype))
    }

    /// A String column that may hold nulls (an all-null `Null` column is accepted).
    pub(crate) fn opt_strings(&self, column: &'static str) -> Result<Vec<Option<&'a str>>> {
        Ok(match self.str_column(column)? {
            Some(ca) => ca.iter().collect(),
            None => vec![None; self.column(column)?.len()],
        })
    }

    /// A String column without nulls (collected once: no intermediate
    /// vector of options).
    pub(crate) fn strings(&self, column: &'static str) -> Result<Vec<&'a str>> {
        Ok(match self.non_null_str_column(column)? {
            Some(ca) => ca.iter().flatten().collect(),
            None => Vec::new(),
        })
    }

    /// An integer column that may hold nulls, widened to i64. Any integer
    /// dtype that fits losslessly is accepted (e.g. Int32 or UInt32 from a
    /// database driver); an all-null `Null` column reads as all `None`.
    pub(crate) fn opt_ints(&self, column: &'static str) -> Result<Vec<Option<i64>>> {
        Ok(match self.int64_column(column)? {
            Some(ca) => ca.iter().collect(),
            None => vec![None; self.column(column)?.len()],
        })
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
        Ok(match self.non_null_str_column(column)? {
            Some(ca) => ca.rechunk().into_owned(),
            None => StringChunked::full_null(column.into(), 0),
        })
    }

    /// An integer column widened to Int64 as one contiguous chunk; nulls are
    /// rejected unless `nullable` (an all-null `Null` column reads as nulls).
    pub(crate) fn int_chunk(&self, column: &'static str, nullable: bool) -> Result<Int64Chunked> {
        let Some(ca) = self.int64_column(column)? else {
            let len = self.column(column)?.len();
            if !nullable && len > 0 {
                return Err(self.null_in_row(column, 0));
            }
            return Ok(Int64Chunked::full_null(column.into(), len));
        };
        if !nullable {
            self.reject_nulls(column, &ca)?;
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
