//! `keepwell outbox`: the mail and alert channel posts of every run, and `keepwell outbox
//! retry` for what failed.

use crate::cli::ExitStatus;
use crate::config::project::Project;
use crate::mail::{Transport, flush_outbox};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Only mail with this status.
    #[arg(long, value_parser = ["pending", "sent", "failed"])]
    status: Option<String>,
    /// How many mails to list.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// One JSON object per mail.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Send every mail and post that is pending or failed.
    Retry {
        /// Only this job's mail.
        #[arg(long)]
        job: Option<String>,
    },
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let store = match Store::open(&project.store) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Failure;
        }
    };
    match &args.action {
        Some(Action::Retry { job }) => retry(project, &store, job.as_deref()),
        None => list(&store, args),
    }
}

fn retry(project: &Project, store: &Store, job: Option<&str>) -> ExitStatus {
    let transport = match Transport::from_settings(&project.mail, &project.outbox) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Config;
        }
    };
    let flushed = flush_outbox(store, &transport, job).and_then(|(sent, mut failed)| {
        let posts = crate::channels::flush_posts(store, &project.channels, job)?;
        failed.extend(posts.failed);
        if posts.waiting > 0 {
            let (n, verb) = if posts.waiting == 1 { ("post", "waits") } else { ("posts", "wait") };
            println!("{} {n} {verb} for a channel that is off, or until the time its receiver asked", posts.waiting);
        }
        Ok((sent.len() + posts.sent.len(), failed))
    });
    match flushed {
        Ok((sent, failed)) => {
            println!("{sent} sent, {} still failing", failed.len());
            for f in &failed {
                println!("  {f}");
            }
            if failed.is_empty() { ExitStatus::Success } else { ExitStatus::Failure }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitStatus::Failure
        }
    }
}

fn list(store: &Store, args: &Args) -> ExitStatus {
    let mails = match store.outbox(args.status.as_deref(), args.limit) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitStatus::Failure;
        }
    };
    if args.json {
        for m in &mails {
            println!("{}", serde_json::to_string(m).unwrap_or_default());
        }
        return ExitStatus::Success;
    }
    if mails.is_empty() {
        println!("the outbox is empty");
        return ExitStatus::Success;
    }
    println!(
        "{:<8} {:<14} {:<10} {:<22} {:<10} {:<32} {:>8}  subject / last error",
        "status", "job", "as of", "output", "channel", "recipient", "attempts"
    );
    for m in &mails {
        let detail = match (&m.status[..], &m.last_error) {
            ("sent", _) | (_, None) => m.subject.clone().unwrap_or_default(),
            (_, Some(e)) => e.clone(),
        };
        let channel = m.channel.as_deref().unwrap_or("mail");
        let recipient = m.recipient.strip_prefix(&format!("{channel}:")).unwrap_or(&m.recipient);
        println!(
            "{:<8} {:<14} {:<10} {:<22} {:<10} {:<32} {:>8}  {detail}",
            m.status, m.job, m.as_of, m.output, channel, recipient, m.attempts
        );
    }
    ExitStatus::Success
}
