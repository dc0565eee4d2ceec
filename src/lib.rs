//! keepwell: rules as code for Customer Success and RevOps.
//!
//! The modules follow a run's data flow, each one importing only those before it (a test,
//! `tests/layers.rs`, keeps it so); `src/README.md` maps them.

pub mod authoring;
pub mod channels;
pub mod cli;
pub mod config;
pub mod entity;
pub mod mail;
pub mod metrics;
pub mod outputs;
pub mod rules;
pub mod run;
pub mod scheduler;
pub mod store;
pub mod validation;
pub mod warehouse;
