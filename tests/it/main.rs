//! Black-box tests: one binary, one module per area.

mod support;

mod bench;
mod billing;
mod cli;
mod db;
mod egon;
mod fixtures;
mod imshop;
mod imsklad;
mod listener;
mod orders;
mod protocol;
mod reconcile;
mod retailcrm;
mod scans;
mod schedule;
mod stock;
