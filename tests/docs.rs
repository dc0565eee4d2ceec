//! The rule-language reference runs: every ```lang file=PATH block of docs/rules.md is laid
//! out as a project, which must check clean and pass every test its rule files carry.

mod common;

use common::Project;

fn doc_files() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md")).expect("docs/rules.md");
    let mut files = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(path) =
            line.strip_prefix("```").and_then(|info| info.split_once(" file=")).map(|(_, p)| p.trim().to_string())
        else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| !l.starts_with("```")).collect();
        files.push((path, body.join("\n") + "\n"));
    }
    files
}

#[test]
fn the_reference_examples_check_clean_and_their_tests_pass() {
    let files = doc_files();
    assert!(files.len() >= 10, "found only {} example files", files.len());
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in &files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    }
    let p = Project { dir };
    let check = p.keepwell(&["check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    let tests: usize =
        files.iter().filter(|(p, _)| p.ends_with(".yaml")).map(|(_, t)| t.matches("\n  - name: ").count()).sum();
    let out = p.keepwell(&["test"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.ends_with(&format!("\n{tests} passed, 0 failed\n")), "{}", out.stdout);
}

#[test]
fn every_diagnostic_code_is_documented_once_with_its_title() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/diagnostics.md"))
        .expect("docs/diagnostics.md");
    let headings: Vec<&str> = doc.lines().filter_map(|l| l.strip_prefix("## ")).collect();
    let expected: Vec<String> =
        keepwell::config::diagnostic::Code::ALL.iter().map(|c| format!("{} {}", c.as_str(), c.title())).collect();
    assert_eq!(headings, expected);
}
