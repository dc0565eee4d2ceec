//! `keepwell init`: a new project that checks and runs at once. With extracts given, each
//! becomes a source, DuckDB's sniffer types their columns, the account key is guessed (and
//! said in a comment), and the entity view, a starter rule set with tests and an escalation
//! list are written from what the files hold. Without, a small sample extract is written.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use duckdb::Connection;

use crate::config::job::is_identifier;

/// Why a project could not be written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("`{0}` already holds a keepwell project ({1}); init writes only where there is none")]
    Exists(String, String),
    #[error("`{0}` does not exist")]
    NoFile(String),
    #[error("`{file}` cannot be read: {message}")]
    Unreadable { file: String, message: String },
    #[error("`{0}` has no columns")]
    NoColumns(String),
    #[error("cannot write `{0}`: {1}")]
    Write(String, std::io::Error),
    #[error("DuckDB failed: {0}")]
    DuckDb(#[from] duckdb::Error),
}

/// One extract as DuckDB reads it.
#[derive(Debug, Clone)]
pub struct Extract {
    /// The source's name in the job.
    pub name: String,
    /// The path as the job gives it: relative to the project when inside it.
    pub path: String,
    pub rows: u64,
    /// Column names and DuckDB types, in file order.
    pub columns: Vec<(String, String)>,
    /// The first column with a distinct value on every row, preferring id-like names.
    pub key: Option<String>,
    /// An id-like column, when there is no key: the accounts the rows belong to.
    pub account: Option<String>,
    pub source_file: PathBuf,
}

/// What `init` wrote and found, for the summary it prints.
#[derive(Debug)]
pub struct Created {
    /// The sample extract, written first (it is inspected like any extract), when no file was given.
    pub sample: Option<String>,
    /// The project's files to write, by path.
    pub files: Vec<(String, String)>,
    pub extracts: Vec<Extract>,
    pub job: String,
}

/// The sample extract a project starts from when no file is given: eight accounts whose
/// logins and renewals are days before and after `today`, so the starter rules have
/// something to find.
pub fn sample_csv(today: NaiveDate) -> String {
    let rows = [
        ("A001", "Acme Travel", "enterprise", "120000.00", 200, 46, -41, 70),
        ("A002", "Globex Health", "mid_market", "54000.00", 80, 71, -2, 300),
        ("A003", "Initech Retail", "smb", "9600.00", 15, 3, -75, 40),
        ("A004", "Umbrella Labs", "enterprise", "250000.00", 400, 350, -1, 420),
        ("A005", "Hooli Media", "mid_market", "38000.00", 60, 12, -33, 150),
        ("A006", "Vandelay Imports", "smb", "7200.00", 10, 9, -5, 200),
        ("A007", "Stark Freight", "enterprise", "180000.00", 300, 95, -12, 25),
        ("A008", "Wayne Security", "mid_market", "61000.00", 90, 88, -3, 360),
    ];
    let owners = ["ann@example.com", "bob@example.com", "ann@example.com", "cat@example.com"];
    let mut csv = String::from("account_id,name,segment,arr,seats,active_users,last_login_at,renewal_date,csm_email\n");
    for (i, (id, name, segment, arr, seats, active, login, renewal)) in rows.into_iter().enumerate() {
        let login = today + chrono::Duration::days(login);
        let renewal = today + chrono::Duration::days(renewal);
        csv.push_str(&format!(
            "{id},{name},{segment},{arr},{seats},{active},{} {:02}:{:02}:00,{renewal},{}\n",
            login.format("%Y-%m-%d"),
            8 + i,
            i * 7 % 60,
            owners[i % owners.len()]
        ));
    }
    csv
}

/// Plans the project at `dir` from `from` (or the sample): every file's text, by path.
pub fn plan(dir: &Path, from: &[PathBuf], job: &str, today: NaiveDate) -> Result<Created, InitError> {
    for existing in ["keepwell.yaml", "jobs", "rules"] {
        if dir.join(existing).exists() {
            return Err(InitError::Exists(dir.display().to_string(), existing.to_string()));
        }
    }
    let mut files: Vec<(String, String)> = Vec::new();
    let conn = Connection::open_in_memory()?;
    let mut extracts = Vec::new();
    let sample = from.is_empty().then(|| "data/accounts.csv".to_string());
    if let Some(path) = &sample {
        write(&dir.join(path), &sample_csv(today))?;
        extracts.push(inspect(&conn, &dir.join(path), dir, &[])?);
    }
    for file in from {
        if !file.is_file() {
            return Err(InitError::NoFile(file.display().to_string()));
        }
        let taken: Vec<String> = extracts.iter().map(|e: &Extract| e.name.clone()).collect();
        extracts.push(inspect(&conn, file, dir, &taken)?);
    }
    let entity = entity_source(&extracts);
    let mut view = super::init_files::entity_view(&extracts, entity);
    super::init_files::describe(&conn, &extracts, &mut view)?;
    let starter = super::init_files::starter(&conn, &view, today)?;
    files.push(("keepwell.yaml".into(), super::init_files::SETTINGS.into()));
    files.push((format!("jobs/{job}.yaml"), super::init_files::job(job, &extracts, &view, today)));
    files.push(("jobs/features/account_features.sql".into(), view.sql.clone()));
    files.push(("rules/starter.yaml".into(), starter.text.clone()));
    files.push((".gitignore".into(), ".keepwell/\n".into()));
    for (name, schema) in super::schema::schemas() {
        files.push((format!("schemas/{name}"), schema));
    }
    files.push((".vscode/settings.json".into(), super::init_files::VSCODE.into()));
    Ok(Created { sample, files, extracts, job: job.to_string() })
}

/// Writes what [`plan`] made, never over an existing file.
pub fn write_all(dir: &Path, created: &Created) -> Result<(), InitError> {
    for (path, text) in &created.files {
        let full = dir.join(path);
        if full.exists() {
            return Err(InitError::Exists(dir.display().to_string(), path.clone()));
        }
        write(&full, text)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), InitError> {
    let fail = |e| InitError::Write(path.display().to_string(), e);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)
}

/// The reader DuckDB's sniffer types a file with.
pub(super) fn reader_of(path: &Path) -> String {
    let p = path.display().to_string();
    let quoted = format!("'{}'", p.replace('\'', "''"));
    let lower = p.to_ascii_lowercase();
    if lower.ends_with(".parquet") {
        format!("read_parquet({quoted})")
    } else if lower.ends_with(".json") || lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
        format!("read_json({quoted}, format = 'auto')")
    } else {
        format!("read_csv({quoted}, header = true)")
    }
}

fn inspect(conn: &Connection, file: &Path, dir: &Path, taken: &[String]) -> Result<Extract, InitError> {
    let shown = file.display().to_string();
    let unreadable = |e: duckdb::Error| InitError::Unreadable {
        file: shown.clone(),
        message: e.to_string().lines().next().unwrap_or_default().to_string(),
    };
    let read = reader_of(file);
    let mut stmt = conn.prepare(&format!("DESCRIBE SELECT * FROM {read}")).map_err(unreadable)?;
    let columns: Vec<(String, String)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(unreadable)?.collect::<Result<_, _>>()?;
    if columns.is_empty() {
        return Err(InitError::NoColumns(shown));
    }
    let rows =
        conn.query_row(&format!("SELECT count(*) FROM {read}"), [], |r| r.get::<_, i64>(0)).map_err(unreadable)?;
    let mut candidates: Vec<&String> = columns.iter().map(|(n, _)| n).collect();
    candidates.sort_by_key(|n| id_rank(n));
    let mut key = None;
    for c in candidates.iter().filter(|n| id_rank(n) < 4) {
        let q = quote(c);
        let distinct: bool = conn.query_row(
            &format!("SELECT count(DISTINCT {q}) = count(*) AND count({q}) = count(*) AND count(*) > 0 FROM {read}"),
            [],
            |r| r.get(0),
        )?;
        if distinct {
            key = Some(c.to_string());
            break;
        }
    }
    let account = match key {
        Some(_) => None,
        None => candidates.iter().find(|n| id_rank(n) < 3).map(|n| n.to_string()),
    };
    let canonical_dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let canonical = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    let path = match canonical.strip_prefix(&canonical_dir) {
        Ok(inside) => inside.display().to_string(),
        Err(_) => canonical.display().to_string(),
    };
    let stem = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "source".into());
    let mut name = identifier(&stem);
    // The entity view's name is taken.
    if name == "account_features" {
        name.push_str("_source");
    }
    let base = name.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    Ok(Extract { name, path, rows: rows as u64, columns, key, account, source_file: file.to_path_buf() })
}

/// How much a column's name looks like an account's id: 0 is most (`account_id`), 4 not.
fn id_rank(name: &str) -> u8 {
    let n = name.to_ascii_lowercase().replace([' ', '-'], "_");
    match n.as_str() {
        "account_id" | "customer_id" | "customerid" | "accountid" => 0,
        "id" | "company_id" | "client_id" | "org_id" | "organization_id" | "tenant_id" | "user_id" => 1,
        _ if n.ends_with("_id") || n.ends_with("id") && n.len() > 2 => 2,
        _ if n.contains("id") || n.contains("key") || n.contains("code") => 3,
        _ => 4,
    }
}

/// The extract the accounts come from: the first with a key, else the first.
fn entity_source(extracts: &[Extract]) -> usize {
    extracts.iter().position(|e| e.key.is_some()).unwrap_or(0)
}

/// `name` as a rule can read it: letters, digits and `_`, not starting with a digit, and not
/// a word of the rule language.
pub fn identifier(name: &str) -> String {
    let mut out: String = name
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "c_");
    }
    if RESERVED.contains(&out.as_str()) || !is_identifier(&out) {
        out.push('_');
    }
    out
}

/// Words rhai keeps for itself, which cannot name a column a rule reads.
const RESERVED: [&str; 40] = [
    "if", "else", "let", "in", "for", "while", "loop", "fn", "return", "true", "false", "switch", "do", "until",
    "const", "import", "export", "as", "private", "this", "global", "is", "new", "case", "default", "var", "static",
    "shared", "with", "throw", "try", "catch", "break", "continue", "null", "nil", "match", "use", "async", "await",
];

pub(super) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(super) fn is_time(t: &str) -> bool {
    t == "DATE" || t.starts_with("TIMESTAMP")
}

pub(super) fn is_number(t: &str) -> bool {
    matches!(t, "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "FLOAT" | "DOUBLE" | "UBIGINT" | "UINTEGER")
        || t.starts_with("DECIMAL")
}

pub(super) fn is_integer(t: &str) -> bool {
    matches!(t, "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "UBIGINT" | "UINTEGER")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_identifiers_rules_can_read() {
        let cases = [
            ("Customer ID", "customer_id"),
            ("customerID", "customerid"),
            ("2024 revenue", "c_2024_revenue"),
            ("if", "if_"),
            ("ARR ($)", "arr"),
            ("", "c_"),
        ];
        for (name, id) in cases {
            assert_eq!(identifier(name), id, "{name}");
        }
    }

    #[test]
    fn id_like_names_rank_first() {
        let ranks: Vec<u8> = ["account_id", "customerID", "user id", "zip_code", "name"].map(id_rank).to_vec();
        assert_eq!(ranks, [0, 0, 1, 3, 4]);
    }
}
