//! Pure reconciliation: DataFrames in, classified DataFrames and correction plans out.
//! Nothing in here does I/O or async.

pub mod billing;
pub mod cost;
pub mod input;
pub mod orders;
pub mod stock;
