//! Black-box tests: one binary, one module per area.

mod optional;
mod support;

mod atomic;
mod bench;
mod billing;
mod cli;
mod db;
mod egon;
mod fixtures;
mod imshop;
mod imsklad;
mod layers;
mod listener;
mod orders;
mod progress;
mod protocol;
mod reconcile;
mod retailcrm;
mod safety;
mod scans;
mod schedule;
mod serve;
mod shop_read;
mod stock;
mod stock_cost;
mod stock_delta;
