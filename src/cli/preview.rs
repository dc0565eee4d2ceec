//! `keepwell preview <job>`: every mail the job would send, written to a folder as HTML (to
//! open in a browser) and `.eml` (to open in a mail client), and every alert channel's post
//! as `.json` (on or off), without sending or recording.

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::cli::ExitStatus;
use crate::config::project::Project;
use crate::run::{self, RunOptions, RunStatus};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job: a name in jobs/ or a path (default: the project's only job).
    job: Option<String>,
    /// The day to preview (default: today).
    #[arg(long, value_name = "YYYY-MM-DD")]
    as_of: Option<NaiveDate>,
    /// Where to write the mail (default: .keepwell/preview/<job>).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn execute(project: &Project, args: &Args) -> ExitStatus {
    let options = RunOptions {
        as_of: args.as_of.unwrap_or_else(|| chrono::Local::now().date_naive()),
        dry_run: true,
        no_mail: false,
    };
    let path = match crate::cli::job_path(project, args.job.as_deref()) {
        Ok(path) => path,
        Err(status) => return status,
    };
    let report = match run::run(project, &path, options) {
        Ok(r) => r,
        Err(d) => {
            eprintln!("{d}");
            return ExitStatus::Config;
        }
    };
    if report.status == RunStatus::Failed {
        eprintln!("error: {}", report.error.unwrap_or_default());
        return ExitStatus::Failure;
    }
    let out = args.out.clone().unwrap_or_else(|| project.root.join(".keepwell/preview").join(&report.job));
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("error: cannot create {}: {e}", out.display());
        return ExitStatus::Failure;
    }
    let from = match project.mail.from.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: mail.from `{}` is not an address: {e}", project.mail.from);
            return ExitStatus::Config;
        }
    };
    for mail in &report.preview {
        let recipient = mail.to.first().map(|m| m.email.to_string()).unwrap_or_default();
        let name = crate::mail::file_stem(&mail.output, &recipient);
        let eml =
            match mail.to_message(&from, &crate::mail::mail_key(&report.job, report.as_of, &mail.output, &recipient)) {
                Ok(m) => m.formatted(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitStatus::Failure;
                }
            };
        // The browser cannot follow `cid:` links: write the images next to the page.
        let mut html = mail.html.clone();
        for part in &mail.inline {
            let file = format!("{name}--{}.png", part.cid);
            html = html.replace(&format!("cid:{}", part.cid), &file);
            if let Err(e) = std::fs::write(out.join(&file), &part.body) {
                eprintln!("error: cannot write to {}: {e}", out.display());
                return ExitStatus::Failure;
            }
        }
        let written = std::fs::write(out.join(format!("{name}.html")), &html)
            .and_then(|()| std::fs::write(out.join(format!("{name}.txt")), &mail.text))
            .and_then(|()| std::fs::write(out.join(format!("{name}.eml")), eml));
        if let Err(e) = written {
            eprintln!("error: cannot write to {}: {e}", out.display());
            return ExitStatus::Failure;
        }
    }
    for post in &report.preview_posts {
        let recipient = post.recipient.strip_prefix(&format!("{}:", post.channel)).unwrap_or("");
        let name = match recipient {
            "" => format!("{}--{}.json", post.output, post.channel),
            r => format!("{}--{}--{}.json", post.output, post.channel, crate::outputs::file_name(r)),
        };
        let pretty = serde_json::from_str::<serde_json::Value>(&post.body)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| post.body.clone());
        if let Err(e) = std::fs::write(out.join(&name), pretty + "\n") {
            eprintln!("error: cannot write to {}: {e}", out.display());
            return ExitStatus::Failure;
        }
    }
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let posts = match report.preview_posts.len() {
        0 => String::new(),
        n => format!(" and {}", plural(n, "channel post")),
    };
    println!(
        "{}{posts} of job {} for {} written to {} (nothing was sent)",
        plural(report.preview.len(), "mail"),
        report.job,
        report.as_of,
        project.display(&out)
    );
    for post in &report.preview_posts {
        let on = project.channels.iter().find(|c| c.name == post.channel).is_some_and(|c| c.url().is_some());
        println!(
            "  {} {} → {} ({}): {}",
            post.output,
            post.kind.as_str(),
            post.channel,
            if on { "on" } else { "off: its URL variable is not set" },
            post.summary
        );
    }
    ExitStatus::Success
}
