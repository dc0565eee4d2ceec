//! The project: a folder with `jobs/`, `rules/`, and an optional `keepwell.yaml` of settings.
//!
//! With no settings file keepwell keeps its store in `.keepwell/keepwell.duckdb` and writes
//! mail as `.eml` files to `.keepwell/outbox/`; adding `mail.smtp.host` sends real mail.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::config::yaml;

pub const SETTINGS_FILE: &str = "keepwell.yaml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    store: Option<String>,
    outbox: Option<String>,
    runs: Option<String>,
    #[serde(default)]
    mail: RawMail,
    #[serde(default)]
    warehouse: RawWarehouse,
    /// Slack, Teams and webhook channels by name (`channels.rs`).
    #[serde(default)]
    channels: indexmap::IndexMap<String, super::channels::RawChannel>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMail {
    from: Option<String>,
    smtp: Option<RawSmtp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    tls: Option<String>,
    user: Option<String>,
    password_env: Option<String>,
    /// How long to wait for the relay (`10m` by default: RFC 5321's wait for the end of a
    /// message).
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWarehouse {
    threads: Option<u32>,
    memory_limit: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub store: PathBuf,
    pub outbox: PathBuf,
    pub runs: PathBuf,
    pub mail: MailSettings,
    pub warehouse: WarehouseSettings,
    pub channels: Vec<super::channels::Channel>,
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub from: String,
    pub smtp: Option<SmtpSettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption: only for a relay on localhost or in tests.
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: Option<String>,
    /// The name of the environment variable that holds the password; never the password.
    pub password_env: String,
    /// How long to wait for the relay before giving up on a mail.
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, Default)]
pub struct WarehouseSettings {
    pub threads: Option<u32>,
    pub memory_limit: Option<String>,
}

impl Project {
    /// Finds the project at `dir` or the nearest parent with `keepwell.yaml` or `jobs/`.
    pub fn discover(dir: &Path) -> Result<Project, Diagnostics> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let root = dir
            .ancestors()
            .find(|d| d.join(SETTINGS_FILE).is_file() || d.join("jobs").is_dir())
            .unwrap_or(&dir)
            .to_path_buf();
        Project::open(&root)
    }

    pub fn open(root: &Path) -> Result<Project, Diagnostics> {
        let path = root.join(SETTINGS_FILE);
        let (mut raw, file): (RawSettings, SourceFile) = if path.is_file() {
            yaml::read(&path, SETTINGS_FILE).map_err(|d| Diagnostics(vec![*d]))?
        } else {
            (RawSettings::default(), SourceFile::new(SETTINGS_FILE, &path, ""))
        };
        let (channels, problems) = super::channels::compile(root, &file, std::mem::take(&mut raw.channels));
        if problems.has_errors() {
            return Err(problems);
        }
        let at = |p: Option<String>, default: &str| root.join(p.unwrap_or_else(|| default.to_string()));
        let smtp = match raw.mail.smtp {
            None => None,
            Some(s) => {
                let tls = match s.tls.as_deref() {
                    None | Some("starttls") => TlsMode::StartTls,
                    Some("implicit") | Some("tls") => TlsMode::Implicit,
                    Some("none") => TlsMode::None,
                    Some(other) => {
                        return Err(Diagnostics(vec![
                            Diagnostic::error(
                                Code::UnknownValue,
                                file.start(),
                                format!("unknown mail.smtp.tls mode `{other}`"),
                            )
                            .with_hint("use `starttls` (port 587), `implicit` (port 465) or `none` (a local relay)"),
                        ]));
                    }
                };
                let default_port = match tls {
                    TlsMode::StartTls => 587,
                    TlsMode::Implicit => 465,
                    TlsMode::None => 25,
                };
                let timeout = match s.timeout.as_deref() {
                    None => std::time::Duration::from_secs(600),
                    Some(t) => match crate::config::job::parse_duration(t).filter(|d| !d.is_zero()) {
                        Some(d) => d,
                        None => {
                            return Err(Diagnostics(vec![
                                Diagnostic::error(
                                    Code::Duration,
                                    file.start(),
                                    format!("mail.smtp.timeout `{t}` is not a duration"),
                                )
                                .with_hint("write a number above 0 and a unit: `10m`, `90s`"),
                            ]));
                        }
                    },
                };
                Some(SmtpSettings {
                    timeout,
                    host: s.host,
                    port: s.port.unwrap_or(default_port),
                    tls,
                    user: s.user,
                    password_env: s.password_env.unwrap_or_else(|| "KEEPWELL_SMTP_PASSWORD".into()),
                })
            }
        };
        let store = std::env::var("KEEPWELL_STORE")
            .ok()
            .map(PathBuf::from)
            .unwrap_or_else(|| at(raw.store, ".keepwell/keepwell.duckdb"));
        Ok(Project {
            root: root.to_path_buf(),
            store,
            outbox: at(raw.outbox, ".keepwell/outbox"),
            runs: at(raw.runs, ".keepwell/runs"),
            mail: MailSettings { from: raw.mail.from.unwrap_or_else(|| "keepwell <keepwell@localhost>".into()), smtp },
            warehouse: WarehouseSettings { threads: raw.warehouse.threads, memory_limit: raw.warehouse.memory_limit },
            channels,
        })
    }

    pub fn jobs_dir(&self) -> PathBuf {
        self.root.join("jobs")
    }

    pub fn rules_dir(&self) -> PathBuf {
        self.root.join("rules")
    }

    /// A job given by name (`nightly`) or by path (`jobs/nightly.yaml`).
    pub fn job_path(&self, job: &str) -> PathBuf {
        let as_path = Path::new(job);
        if job.ends_with(".yaml") || job.ends_with(".yml") || job.contains('/') {
            if as_path.is_absolute() { as_path.to_path_buf() } else { self.root.join(as_path) }
        } else {
            self.jobs_dir().join(format!("{job}.yaml"))
        }
    }

    /// Every job file, sorted.
    pub fn job_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.jobs_dir())
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        paths
    }

    pub fn display(&self, path: &Path) -> String {
        display_path(&self.root, path)
    }
}

/// A path as shown to users: relative to the project root when it is inside it.
pub fn display_path(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// Why a file the project names could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it lies outside the project folder")]
    Outside,
}

impl ReadError {
    pub fn not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads a file the project names (a script, feature SQL, a lookup table, a template). It
/// must lie inside the project folder once `..` and symlinks are resolved: a project's
/// files name its own files, never the machine's (an env file's secret would otherwise
/// reach a diagnostic's snippet). Sources are not read through this: extracts often live
/// elsewhere.
pub fn read_inside(root: &Path, path: &Path) -> Result<String, ReadError> {
    Ok(std::fs::read_to_string(inside(root, path)?)?)
}

/// `path` with `..` and symlinks resolved, when that lies inside the project folder.
pub fn inside(root: &Path, path: &Path) -> Result<PathBuf, ReadError> {
    let real = path.canonicalize()?;
    if !real.starts_with(root.canonicalize()?) {
        return Err(ReadError::Outside);
    }
    Ok(real)
}
