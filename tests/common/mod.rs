//! A test project laid out in a temporary folder, and the real binary run against it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Project {
    pub dir: tempfile::TempDir,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub const ACCOUNTS_CSV: &str = "\
account_id,name,industry,arr,seats,active_users,csm_email
A1,Acme,travel,120000.00,100,20,ann@example.com
A2,Globex,healthcare,50000.00,40,38,bob@example.com
A3,Initech,retail,8000.00,10,2,ann@example.com
";

pub const JOB: &str = "\
name: nightly
sources:
  accounts:
    path: data/accounts.csv
    primary_key: account_id
    columns:
      account_id: VARCHAR
      name: VARCHAR
      industry: VARCHAR
      arr: DECIMAL(18,2)
      seats: INTEGER
      active_users: INTEGER
      csm_email: VARCHAR
features:
  - sql/account_features.sql
entity:
  view: account_features
  key: account_id
  name: name
  arr: arr
  owner: csm_email
rule_sets: [risk, health]
outputs:
  - escalation:
      name: at_risk
      when: risk.grade == \"high\" || health.grade == \"red\"
      owner: csm_email
      order_by: arr
      columns:
        - Account: name
        - ARR: arr
        - Why: risk.reasons + health.reasons
  - summary:
      name: summary
      to: [\"lead@example.com\"]
";

pub const FEATURES_SQL: &str = "\
SELECT *, round(100.0 * active_users / seats, 1) AS utilisation
FROM accounts
";

pub const RISK: &str = "\
score: { base: 0, min: 0, max: 100 }
grades:
  - { grade: high, min: 50 }
  - { grade: low }
rules:
  - id: hard_hit_industry
    when: industry in [\"travel\", \"retail\"]
    points: 60
    reason: \"{{ industry }} is hit hard\"
";

pub const HEALTH: &str = "\
depends_on: [risk]
score: { base: 100, min: 0, max: 100 }
grades:
  - { grade: green, min: 70 }
  - { grade: red }
rules:
  - id: low_utilisation
    when: utilisation < 40
    points: -40
    reason: \"{{ utilisation }}% of seats in use\"
  - id: risky_and_small
    when: risk.grade == \"high\" && arr < 10000
    points: -10
";

impl Project {
    /// The standard small project; `files` adds or replaces files.
    pub fn new(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let defaults = [
            ("data/accounts.csv", ACCOUNTS_CSV),
            ("jobs/nightly.yaml", JOB),
            ("sql/account_features.sql", FEATURES_SQL),
            ("rules/risk.yaml", RISK),
            ("rules/health.yaml", HEALTH),
        ];
        let project = Project { dir };
        for (path, text) in defaults {
            project.write(path, text);
        }
        for (path, text) in files {
            project.write(path, text);
        }
        project
    }

    /// A copy of the shipped project (its settings and `folders`, e.g. jobs, rules and
    /// fixtures) in a temporary folder.
    pub fn shipped(folders: &[&str]) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for folder in folders {
            copy_dir(&root.join(folder), &dir.path().join(folder));
        }
        std::fs::copy(root.join("keepwell.yaml"), dir.path().join("keepwell.yaml")).expect("copy the settings");
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, text: &str) {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    }

    pub fn keepwell(&self, args: &[&str]) -> Output {
        self.keepwell_with(args, &[])
    }

    /// Starts `keepwell -C <project> args` without waiting for it (to stop it mid-run).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_keepwell"))
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .spawn()
            .expect("keepwell")
    }

    /// [`Project::keepwell`] with environment variables set.
    pub fn keepwell_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_keepwell"))
            .arg("-C")
            .arg(self.dir.path())
            .args(args)
            .env_remove("KEEPWELL_STORE")
            .env_remove("KEEPWELL_LOG")
            .env_remove("KEEPWELL_VECTORISE")
            .envs(env.iter().copied())
            .output()
            .expect("run keepwell");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn store(&self) -> duckdb::Connection {
        duckdb::Connection::open(self.dir.path().join(".keepwell/keepwell.duckdb")).expect("open store")
    }

    /// Rows of a query against the store, each as `|`-joined text.
    pub fn query(&self, sql: &str) -> Vec<String> {
        let conn = self.store();
        let sql = format!("SELECT CAST(COLUMNS(*) AS VARCHAR) FROM ({sql})");
        let mut stmt = conn.prepare(&sql).expect("prepare");
        let mut rows = stmt.query([]).expect("query");
        let mut out = Vec::new();
        while let Some(row) = rows.next().expect("row") {
            let n = row.as_ref().column_count();
            let cells: Vec<String> = (0..n)
                .map(|i| row.get::<_, Option<String>>(i).expect("cell").unwrap_or_else(|| "NULL".into()))
                .collect();
            out.push(cells.join("|"));
        }
        out
    }

    pub fn files_under(&self, dir: &str) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut stack = vec![self.dir.path().join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push(p.strip_prefix(self.dir.path()).expect("inside").to_path_buf());
                }
            }
        }
        files.sort();
        files
    }
}

/// The real binary run in `cwd` with no project named (as `keepwell init` is run).
pub fn keepwell_in(cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_keepwell"))
        .current_dir(cwd)
        .args(args)
        .env_remove("KEEPWELL_PROJECT")
        .env_remove("KEEPWELL_STORE")
        .env_remove("KEEPWELL_LOG")
        .output()
        .expect("run keepwell");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `from` and everything under it copied to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}
