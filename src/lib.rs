//! sverka reconciles an online shop's database with its fulfillment warehouse
//! (IMSKLAD or EGON) and its RetailCRM account.
//!
//! Data flows one way: connectors → frames → reconcile → plan → apply (journal) → report.
//! Only the two ends do I/O; [`reconcile`] is pure.

pub mod app;
pub mod apply;
pub mod bench;
pub mod check;
pub mod cli;
pub mod config;
pub mod connectors;
pub mod db;
pub mod demo;
pub mod errors;
pub mod exit;
pub mod jobs;
pub mod json_canon;
pub mod lenient;
pub mod listener;
pub mod map_import;
pub mod money;
pub mod net;
pub mod options;
pub mod progress;
pub mod reconcile;
pub mod report;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod shop;
pub mod vendor_docs;
