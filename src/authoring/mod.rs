//! The rule author's tools, on top of a run: `explain` one account, `diff` rule changes on
//! the same rows, the `tests:` runner, a new project (`init`), read-only SQL over the store
//! (`query`), the rule sets measured against outcomes (`validate`), the editor schemas, the
//! job compiled for another engine (`compile`), and the demo data generator.

pub mod compile;
pub mod demo_data;
pub mod diff;
pub mod explain;
pub mod init;
mod init_files;
pub mod query;
pub mod schema;
pub mod testing;
pub mod validate;
