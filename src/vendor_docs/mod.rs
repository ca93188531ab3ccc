//! Verbatim data of the vendors' documents: the codes, names and texts the
//! client reads and the sandbox answers with, stated once.
//!
//! Only constants and tables copied from the documents live here, never a
//! reading of them: the connectors and the sandbox each keep their own logic.

pub mod egon;
pub mod imsklad;
