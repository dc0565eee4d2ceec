//! The alert channels' part of a run: posts queued in the outbox (only for channels that are
//! on), each tasks output compared with its tasks' last events and the events kept with
//! their webhook posts in one transaction, and the queue sent after the mail.

use super::{RunError, RunOptions, RunReport, TaskCounts};
use crate::config::project::Project;
use crate::outputs::{Output, Post, Rendered, Stamp};
use crate::store::{QueuedPost, Store};

/// Queues the rendered posts and tracks the tasks; on a dry run, keeps both for the preview.
pub(super) fn queue(
    store: &Store,
    outputs: &[Output],
    stamp: &Stamp,
    options: &RunOptions,
    rendered: &mut Rendered,
    report: &mut RunReport,
) -> Result<(), RunError> {
    let posts = std::mem::take(&mut rendered.posts);
    if options.dry_run {
        report.preview_posts = posts;
    } else if !options.no_mail {
        store.enqueue_posts(&stamp.job, stamp.as_of, stamp.run_id, &queued(&posts))?;
    }
    for run in std::mem::take(&mut rendered.tasks) {
        let Some(t) = outputs.iter().filter_map(Output::tasks).find(|t| t.name == run.output) else { continue };
        let tracked = if options.dry_run {
            let tracked = store.track_tasks(&stamp.job, stamp.as_of, stamp.run_id, &run, false, true)?;
            report.preview_posts.extend(crate::outputs::tasks_posts(stamp, t, &tracked.events, &|_| true));
            tracked
        } else if !report.published {
            continue;
        } else {
            let on = |c: &crate::config::channels::Channel| !options.no_mail && c.url().is_some();
            let wanted = t.channels.iter().any(on);
            store.atomically(|s| -> Result<_, RunError> {
                let tracked = s.track_tasks(&stamp.job, stamp.as_of, stamp.run_id, &run, true, wanted)?;
                let posts = crate::outputs::tasks_posts(stamp, t, &tracked.events, &on);
                s.enqueue_posts(&stamp.job, stamp.as_of, stamp.run_id, &queued(&posts))?;
                Ok(tracked)
            })?
        };
        if let Some(last) = tracked.backfill {
            report.warnings.push(format!(
                "tasks `{}` were not tracked: their last events are of {last}, after this run's day (tasks only move forward)",
                t.name
            ));
            continue;
        }
        report.tasks.push(TaskCounts {
            output: t.name.clone(),
            opened: tracked.opened,
            updated: tracked.updated,
            closed: tracked.closed,
        });
    }
    Ok(())
}

fn queued(posts: &[Post]) -> Vec<QueuedPost> {
    posts
        .iter()
        .map(|p| QueuedPost {
            output: p.output.clone(),
            recipient: p.recipient.clone(),
            channel: p.channel.clone(),
            kind: p.kind.as_str().to_string(),
            summary: p.summary.clone(),
            body: p.body.clone(),
        })
        .collect()
}

/// Sends the job's queued posts (earlier failures included) to the channels that are on.
pub(super) fn deliver(project: &Project, store: &Store, job: &str, report: &mut RunReport) -> Result<(), RunError> {
    let flushed = crate::channels::flush_posts(store, &project.channels, Some(job))?;
    report.posts = flushed.sent;
    report.warnings.extend(flushed.failed.iter().map(|f| format!("post not delivered, kept in the outbox: {f}")));
    Ok(())
}
