//! The house as drawn: each top-level module of `src/` imports only the modules before it in
//! the data flow. A crate boundary would make a wrong import impossible; this test reads every
//! `crate::` path in `src/` and stands in for one.

use std::path::{Path, PathBuf};

/// The layers, first to last. A module may use its own items and those of earlier layers;
/// modules in one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["config"],
    &["entity"],
    &["warehouse"],
    &["rules"],
    &["metrics"],
    &["store"],
    &["validation"],
    &["outputs"],
    &["mail", "channels"],
    &["run"],
    &["authoring", "scheduler"],
    &["cli"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file under `src/` belongs to (`None` for `lib.rs` and `main.rs`).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The top-level modules named by `crate::` paths in `text`, with their line numbers:
/// `crate::a::B`, and each name of a group `crate::{a::B, c}`.
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            push_name(&group[start..i], n + 1, &mut found);
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            push_name(&group[start..i], n + 1, &mut found);
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
            } else {
                push_name(after, n + 1, &mut found);
            }
            rest = after;
        }
    }
    found
}

fn push_name(path: &str, line: usize, found: &mut Vec<(usize, String)>) {
    let name: String = path.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if !name.is_empty() && name != "self" {
        found.push((line, name));
    }
}

/// Every import in `text` (of `file`, under `src/`) that runs against the layer order.
fn violations(file: &Path, text: &str) -> Vec<String> {
    let Some(module) = module_of(file) else {
        return Vec::new();
    };
    let Some(own) = layer(&module) else {
        return vec![format!("src/{}: module `{module}` is in no layer of tests/layers.rs", file.display())];
    };
    let mut out = Vec::new();
    for (line, target) in imports(text) {
        if target == module {
            continue;
        }
        match layer(&target) {
            Some(l) if l < own => {}
            Some(_) => out.push(format!(
                "src/{}:{line}: `{module}` imports `crate::{target}`, which comes after it in the data flow \
                 (or beside it); move the item down or the import up",
                file.display()
            )),
            // Not a module: an item of the crate root, such as a macro.
            None => {}
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("an entry of src/").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_import_follows_the_data_flow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("a source file is readable");
        problems.extend(violations(path.strip_prefix(&src).expect("under src/"), &text));
    }
    assert!(problems.is_empty(), "imports against the layer order:\n{}", problems.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let modules: Vec<&str> = lib.lines().filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';')).collect();
    assert!(modules.len() >= 10, "lib.rs declares its modules with `pub mod name;`");
    let missing: Vec<&&str> = modules.iter().filter(|m| layer(m).is_none()).collect();
    assert!(missing.is_empty(), "modules in no layer: {missing:?}");
}

#[test]
fn a_forbidden_import_is_named_with_its_file_and_line() {
    let text = "//! The store.\n\nuse crate::rules::RuleSet;\nuse crate::{entity::Entity, outputs::Escalated};\n";
    assert_eq!(
        violations(Path::new("store/escalations.rs"), text),
        ["src/store/escalations.rs:4: `store` imports `crate::outputs`, which comes after it in the data flow \
          (or beside it); move the item down or the import up"]
    );
    let beside = "fn f() { crate::scheduler::next(); }";
    assert_eq!(violations(Path::new("authoring/diff.rs"), beside).len(), 1, "modules of one layer stay apart");
    let comment = "// crate::cli is named here only in a comment";
    assert!(violations(Path::new("config/yaml.rs"), comment).is_empty());
    assert!(violations(Path::new("cli/run.rs"), "use crate::run::{self, RunOptions};").is_empty());
}

#[test]
fn src_readme_names_every_module_and_file() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let readme = std::fs::read_to_string(src.join("README.md")).expect("src/README.md");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut missing = Vec::new();
    for path in &files {
        let relative = path.strip_prefix(&src).expect("under src/");
        let Some(module) = module_of(relative) else { continue };
        if !readme.contains(&format!("`{module}/`")) {
            missing.push(format!("module `{module}/`"));
        }
        let name = relative.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // The CLI has a file per command, named after it; `mod.rs` is its folder.
        if module != "cli"
            && name != "mod.rs"
            && relative.components().count() > 1
            && !readme.contains(&format!("`{name}`"))
        {
            missing.push(format!("file `{}`", relative.display()));
        }
    }
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "src/README.md does not name: {}", missing.join(", "));
}
