//! Hostile and careless input, on the real binary: each class of the hardening issue has a
//! test here that fails if keepwell lets it through (see docs/reliability.md).

mod common;

use common::{JOB, Project};

/// Column types that try to leave the type they are written into. Each is refused at
/// `check` and at `run`, located at the type, and nothing is written.
#[test]
fn column_types_cannot_inject_sql() {
    let outside = tempfile::tempdir().expect("temp dir");
    let target = outside.path().join("pwned.csv");
    let target = target.display();
    let injections = [
        format!("\"VARCHAR); COPY (SELECT 1) TO '{target}'; SELECT CAST(NULL AS VARCHAR\""),
        "\"INTEGER GENERATED ALWAYS AS (read_text(chr(47)))\"".to_string(),
        "\"INTEGER, pwned VARCHAR\"".to_string(),
        "\"VARCHAR -- the rest is a comment\"".to_string(),
    ];
    for injected in &injections {
        let p = Project::new(&[("jobs/nightly.yaml", &JOB.replace("seats: INTEGER", &format!("seats: {injected}")))]);
        for command in [&["check"][..], &["run", "nightly"][..]] {
            let out = p.keepwell(command);
            assert_eq!(out.code, 2, "{command:?} with {injected}: {}", out.stderr);
            assert!(
                out.stderr.contains("is not a DuckDB type (column `seats` of source `accounts`)")
                    && out.stderr.contains(" --> jobs/nightly.yaml:")
                    && out.stderr.contains("= code: KW040"),
                "{command:?} with {injected}: {}",
                out.stderr
            );
        }
        assert!(std::fs::read_dir(outside.path()).expect("dir").next().is_none(), "{injected} wrote a file");
        assert!(!p.path().join(".keepwell/keepwell.duckdb").exists(), "{injected}: a run was recorded");
    }
}
