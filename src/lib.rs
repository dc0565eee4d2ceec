//! keepwell: rules as code for Customer Success and RevOps.
//!
//! The modules follow a run's data flow; `src/README.md` maps them.

pub mod cli;
pub mod delivery;
pub mod demo_data;
pub mod diagnostic;
pub mod diff;
pub mod explain;
pub mod freshness;
pub mod job;
pub mod keys;
pub mod outputs;
pub mod plan;
pub mod project;
pub mod rules;
pub mod runner;
pub mod scheduler;
pub mod store;
pub mod warehouse;
pub mod yaml;
