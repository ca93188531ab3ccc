//! Clients for the outside systems: one module per vendor, plus the shared HTTP policy.

pub mod egon;
pub mod http;
pub mod imshop;
pub mod imsklad;
pub mod retailcrm;
