//! `keepwell schema`: JSON Schemas for job and rule files, generated from the same types that
//! parse them, for editors' YAML extensions.

use std::path::PathBuf;

use crate::cli::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write `job.schema.json`, `rule-set.schema.json` and `webhook.schema.json`.
    #[arg(long, default_value = "docs/schemas")]
    out: PathBuf,
}

pub use crate::authoring::schema::{payload_schemas, schemas};

pub fn execute(args: &Args) -> ExitStatus {
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: cannot create {}: {e}", args.out.display());
        return ExitStatus::Failure;
    }
    for (name, schema) in schemas().into_iter().chain(payload_schemas()) {
        let path = args.out.join(name);
        if let Err(e) = std::fs::write(&path, schema) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return ExitStatus::Failure;
        }
        println!("{}", path.display());
    }
    ExitStatus::Success
}
