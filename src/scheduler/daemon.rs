//! `keepwell serve`: runs every job that has a `schedule:`.
//!
//! One daemon per store, enforced by a lock file. A job never overlaps itself: a fire while
//! it still runs is skipped and logged. Failed runs are retried with backoff, then the job's
//! `on_failure` recipients are mailed. SIGTERM or SIGINT lets running jobs finish (published
//! results are all or nothing anyway); SIGHUP reloads the job files.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};

use super::{as_of, missed_fire, next_fire};
use crate::config::diagnostic::{Code, Diagnostics, Severity};
use crate::config::job::Job;
use crate::config::project::Project;
use crate::mail::Transport;
use crate::outputs::Mail;
use crate::run::{self, RunOptions, RunStatus};
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Config(Diagnostics),
    #[error("another keepwell serve is already running on the store `{store}` (lock file `{lock}`{holder})")]
    Locked { store: PathBuf, lock: PathBuf, holder: String },
    #[error("{0}")]
    Failed(String),
}

/// A fire of a job's schedule.
struct Fire {
    job: String,
    at: DateTime<Tz>,
    /// A missed fire time run at start: the next one is already scheduled.
    catch_up: bool,
}

/// Holds the store's daemon lock while the daemon lives.
pub struct DaemonLock {
    _file: File,
}

pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".serve.lock");
    store.with_file_name(name)
}

/// Takes the store's daemon lock, or says who holds it.
pub fn acquire_lock(store: &Path) -> Result<DaemonLock, ServeError> {
    let path = lock_path(store);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ServeError::Failed(format!("cannot create `{}`: {e}", dir.display())))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| ServeError::Failed(format!("cannot open `{}`: {e}", path.display())))?;
    if file.try_lock().is_err() {
        let holder =
            std::fs::read_to_string(&path).map(|pid| format!(", held by process {}", pid.trim())).unwrap_or_default();
        return Err(ServeError::Locked { store: store.to_path_buf(), lock: path, holder });
    }
    let _ = file.set_len(0);
    let _ = std::fs::write(&path, std::process::id().to_string());
    Ok(DaemonLock { _file: file })
}

/// Every job file that has a schedule.
pub fn scheduled_jobs(project: &Project) -> Result<Vec<(PathBuf, Job)>, ServeError> {
    let mut jobs = Vec::new();
    let mut diags = Diagnostics::default();
    for path in project.job_paths() {
        match Job::load(project, &path) {
            Ok((job, _, d)) if !d.has_errors() => {
                if job.schedule.is_some() {
                    jobs.push((path, job));
                }
            }
            Ok((_, _, d)) | Err(d) => diags.extend(d),
        }
    }
    if diags.has_errors() {
        return Err(ServeError::Config(diags));
    }
    Ok(jobs)
}

pub fn serve(project: &Project) -> Result<(), ServeError> {
    let _lock = acquire_lock(&project.store)?;
    let jobs = scheduled_jobs(project)?;
    let last_runs = {
        let store = Store::open(&project.store).map_err(|e| ServeError::Failed(e.to_string()))?;
        let recovered = store.recover_interrupted().map_err(|e| ServeError::Failed(e.to_string()))?;
        if recovered > 0 {
            tracing::warn!(runs = recovered, "Runs interrupted by an earlier stop were marked failed.");
        }
        let mut last = HashMap::new();
        for (_, job) in &jobs {
            last.insert(
                job.name.clone(),
                store.last_run_started(&job.name).map_err(|e| ServeError::Failed(e.to_string()))?,
            );
        }
        last
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| ServeError::Failed(e.to_string()))?;
    runtime.block_on(run_daemon(project.clone(), jobs, last_runs))
}

async fn run_daemon(
    project: Project,
    mut jobs: Vec<(PathBuf, Job)>,
    last_runs: HashMap<String, Option<DateTime<Utc>>>,
) -> Result<(), ServeError> {
    let fail = |e: &dyn std::fmt::Display| ServeError::Failed(e.to_string());
    let (tx, mut rx) = unbounded_channel::<Fire>();
    let mut scheduler = JobScheduler::new().await.map_err(|e| fail(&e))?;
    scheduler.start().await.map_err(|e| fail(&e))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| fail(&e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| fail(&e))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| fail(&e))?;
    let stopping = Arc::new(AtomicBool::new(false));
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();

    let now = Utc::now();
    for (_, job) in &jobs {
        let schedule = job.schedule.as_ref().expect("scheduled jobs have a schedule");
        if let Some(missed) = missed_fire(schedule, last_runs.get(&job.name).copied().flatten(), now) {
            tracing::info!(job = %job.name, missed = %missed, "Catching up a fire time missed while the daemon was down.");
            let _ = tx.send(Fire { job: job.name.clone(), at: missed, catch_up: true });
        }
    }
    let mut scheduled = schedule_all(&scheduler, &jobs, &tx, now).await;
    tracing::info!(jobs = jobs.len(), "The daemon is running.");

    loop {
        tokio::select! {
            Some(fire) = rx.recv() => {
                let Some((path, job)) = jobs.iter().find(|(_, j)| j.name == fire.job) else { continue };
                if !fire.catch_up
                    && let Some(id) = schedule_next(&scheduler, job, &tx, fire.at.with_timezone(&Utc)).await {
                        scheduled.insert(job.name.clone(), id);
                    }
                if running.get(&job.name).is_some_and(|h| !h.is_finished()) {
                    tracing::warn!(job = %job.name, fire = %fire.at, "Skipped: the previous run of this job is still going.");
                    continue;
                }
                let (project, path, job, stopping) = (project.clone(), path.clone(), job.name.clone(), stopping.clone());
                let schedule = jobs.iter().find(|(_, j)| j.name == job).and_then(|(_, j)| j.schedule.clone()).expect("schedule");
                let on_failure = jobs.iter().find(|(_, j)| j.name == job).map(|(_, j)| j.on_failure.clone()).unwrap_or_default();
                let day = as_of(&fire.at);
                let handle = tokio::task::spawn_blocking(move || {
                    run_with_retries(&project, &path, &job, day, &schedule, &on_failure, &stopping);
                });
                running.insert(fire.job.clone(), handle);
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the job files.");
                match scheduled_jobs(&project) {
                    Ok(reloaded) => {
                        for (_, id) in scheduled.drain() {
                            let _ = scheduler.remove(&id).await;
                        }
                        jobs = reloaded;
                        scheduled = schedule_all(&scheduler, &jobs, &tx, Utc::now()).await;
                    }
                    Err(e) => tracing::error!(error = %e, "The job files have errors; keeping the previous schedules."),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    stopping.store(true, Ordering::SeqCst);
    let busy: Vec<&String> = running.iter().filter(|(_, h)| !h.is_finished()).map(|(j, _)| j).collect();
    if !busy.is_empty() {
        tracing::info!(jobs = ?busy, "Stopping: waiting for running jobs to finish.");
    }
    for (_, handle) in running {
        let _ = handle.await;
    }
    let _ = scheduler.shutdown().await;
    tracing::info!("The daemon stopped.");
    Ok(())
}

async fn schedule_all(
    scheduler: &JobScheduler,
    jobs: &[(PathBuf, Job)],
    tx: &UnboundedSender<Fire>,
    now: DateTime<Utc>,
) -> HashMap<String, uuid::Uuid> {
    let mut ids = HashMap::new();
    for (_, job) in jobs {
        if let Some(id) = schedule_next(scheduler, job, tx, now).await {
            ids.insert(job.name.clone(), id);
        }
    }
    ids
}

/// Schedules the job's next fire after `after` as a one-shot, and logs it.
async fn schedule_next(
    scheduler: &JobScheduler,
    job: &Job,
    tx: &UnboundedSender<Fire>,
    after: DateTime<Utc>,
) -> Option<uuid::Uuid> {
    let schedule = job.schedule.as_ref()?;
    let Some(at) = next_fire(schedule, after) else {
        tracing::warn!(job = %job.name, "The schedule has no future fire time.");
        return None;
    };
    let wait = (at.with_timezone(&Utc) - Utc::now()).to_std().unwrap_or_default();
    let (tx, name) = (tx.clone(), job.name.clone());
    let one_shot = CronJob::new_one_shot_at_instant_async(Instant::now() + wait, move |_, _| {
        let (tx, name) = (tx.clone(), name.clone());
        Box::pin(async move {
            let _ = tx.send(Fire { job: name, at, catch_up: false });
        })
    });
    match one_shot {
        Ok(j) => match scheduler.add(j).await {
            Ok(id) => {
                tracing::info!(job = %job.name, next = %at, cron = %schedule.cron_text, timezone = %schedule.timezone, "Next fire time.");
                Some(id)
            }
            Err(e) => {
                tracing::error!(job = %job.name, error = %e, "Could not schedule the job.");
                None
            }
        },
        Err(e) => {
            tracing::error!(job = %job.name, error = %e, "Could not schedule the job.");
            None
        }
    }
}

/// Runs a job, retrying failures with backoff; after the last failure, mails `on_failure`.
fn run_with_retries(
    project: &Project,
    path: &Path,
    job: &str,
    day: chrono::NaiveDate,
    schedule: &crate::config::job::Schedule,
    on_failure: &[lettre::message::Mailbox],
    stopping: &AtomicBool,
) {
    let options = RunOptions { as_of: day, dry_run: false, no_mail: false };
    let mut last_error = String::new();
    for attempt in 0..=schedule.retries {
        if attempt > 0 {
            let delay = schedule.retry_delay * 2u32.saturating_pow(attempt - 1);
            tracing::warn!(job, attempt, delay = ?delay, error = %last_error, "The run failed; retrying after a pause.");
            if !sleep_unless_stopping(delay, stopping) {
                tracing::info!(job, "Stopping: the remaining retries are cancelled.");
                return;
            }
        }
        tracing::info!(job, as_of = %day, attempt = attempt + 1, "Scheduled run started.");
        match run::run(project, path, options) {
            Ok(report) if report.status != RunStatus::Failed => return,
            Ok(report) => last_error = report.error.unwrap_or_else(|| "the run failed".into()),
            Err(diags) => {
                // A missing extract, or one without a column, may be late or being
                // rewritten: retried. Any other error is in the project's files.
                let data = [Code::SourceFile, Code::SourceColumn];
                let waiting = diags.0.iter().filter(|d| d.severity == Severity::Error).all(|d| data.contains(&d.code));
                if waiting {
                    last_error = format!("the job's extracts are not ready:\n{diags}");
                } else {
                    last_error = format!("the job's files have errors:\n{diags}");
                    break;
                }
            }
        }
    }
    tracing::error!(job, as_of = %day, error = %last_error, "The run failed after its last retry.");
    if !on_failure.is_empty() {
        alert(project, job, day, schedule.retries + 1, &last_error, on_failure);
    }
}

/// Sleeps `total`, waking early (returning `false`) when the daemon stops.
fn sleep_unless_stopping(total: Duration, stopping: &AtomicBool) -> bool {
    let until = Instant::now() + total;
    while Instant::now() < until {
        if stopping.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100).min(until.saturating_duration_since(Instant::now())));
    }
    !stopping.load(Ordering::SeqCst)
}

fn alert(
    project: &Project,
    job: &str,
    day: chrono::NaiveDate,
    attempts: u32,
    error: &str,
    to: &[lettre::message::Mailbox],
) {
    let text = format!(
        "The scheduled run of job `{job}` for {day} failed after {attempts} attempt(s).\n\nLast error:\n{error}\n\n\
         No results were published and no mail was sent for this run; yesterday's results stay current.\n\
         See `keepwell runs --job {job}` and the run folder under {}.\n",
        project.display(&project.runs)
    );
    let html =
        format!("<pre style=\"font-family:monospace\">{}</pre>", text.replace('&', "&amp;").replace('<', "&lt;"));
    let mail = Mail {
        output: "failure".into(),
        to: to.to_vec(),
        cc: Vec::new(),
        subject: format!("keepwell: job {job} failed for {day}"),
        text,
        html,
        inline: Vec::new(),
        attachments: Vec::new(),
    };
    let sent = Transport::from_settings(&project.mail, &project.outbox).and_then(|t| {
        let from =
            project.mail.from.parse().map_err(|e| crate::mail::DeliveryError::Settings(format!("mail.from: {e}")))?;
        let recipient = to.first().map(|m| m.email.to_string()).unwrap_or_default();
        let message = mail.to_message(&from, &crate::mail::mail_key(job, day, "failure", &recipient))?;
        t.send(&message, &Path::new(job).join(day.to_string()), &crate::mail::file_stem("failure", &recipient))
    });
    match sent {
        Ok(where_to) => tracing::info!(job, to = %where_to, "Failure alert sent."),
        Err(e) => tracing::error!(job, error = %e, "The failure alert could not be sent."),
    }
}
