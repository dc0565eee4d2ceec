//! The alert channels' part of a run: each tasks output compared with its tasks' last events
//! and the events kept with their webhook posts in one transaction, the other posts queued
//! in the outbox (only for channels that are on), and the queue sent after the mail.

use super::{RunError, RunOptions, RunReport, TaskCounts};
use crate::config::project::Project;
use crate::outputs::{Post, Rendered, Stamp, Tasks};
use crate::store::{QueuedPost, Store, TaskRun};

/// Queues the rendered posts; on a dry run, keeps them for the preview.
pub(super) fn queue(
    store: &Store,
    stamp: &Stamp,
    options: &RunOptions,
    rendered: &mut Rendered,
    report: &mut RunReport,
) -> Result<(), RunError> {
    let posts = std::mem::take(&mut rendered.posts);
    if options.dry_run {
        report.preview_posts.extend(posts);
    } else if !options.no_mail {
        store.enqueue_posts(&stamp.job, stamp.as_of, stamp.run_id, &queued(&posts))?;
    }
    Ok(())
}

/// Every tasks output's keys compared with the store (see [`track`]).
pub(super) fn track_all(
    store: &Store,
    outputs: &[crate::outputs::Output],
    stamp: &Stamp,
    options: &RunOptions,
    rendered: &mut Rendered,
    report: &mut RunReport,
) -> Result<(), RunError> {
    for run in std::mem::take(&mut rendered.tasks) {
        let Some(t) = outputs.iter().filter_map(crate::outputs::Output::tasks).find(|t| t.name == run.output) else {
            continue;
        };
        if let Some((counts, posts)) = track(store, t, run, stamp, options, report.published)? {
            report.tasks.push(counts);
            report.preview_posts.extend(posts);
        }
    }
    Ok(())
}

/// One tasks output's keys compared with its tasks' last events. A published run keeps the
/// events with the posts that carry them (to the channels that are on) in one transaction;
/// a dry run keeps nothing and returns the posts every channel would get, for the preview.
fn track(
    store: &Store,
    t: &Tasks,
    run: TaskRun,
    stamp: &Stamp,
    options: &RunOptions,
    published: bool,
) -> Result<Option<(TaskCounts, Vec<Post>)>, RunError> {
    let (tracked, preview) = if options.dry_run {
        let tracked = store.track_tasks(&stamp.job, stamp.as_of, stamp.run_id, run, false)?;
        let posts = crate::outputs::tasks_posts(stamp, t, &tracked.events, &|_| true);
        (tracked, posts)
    } else if !published {
        return Ok(None);
    } else {
        let on = |c: &crate::config::channels::Channel| !options.no_mail && c.url().is_some();
        let tracked = store.atomically(|s| -> Result<_, RunError> {
            let tracked = s.track_tasks(&stamp.job, stamp.as_of, stamp.run_id, run, true)?;
            let posts = crate::outputs::tasks_posts(stamp, t, &tracked.events, &on);
            s.enqueue_posts(&stamp.job, stamp.as_of, stamp.run_id, &queued(&posts))?;
            Ok(tracked)
        })?;
        (tracked, Vec::new())
    };
    // A backfilled day is no fault of the run: it is said, not warned about.
    let counts = TaskCounts {
        output: t.name.clone(),
        opened: tracked.opened,
        updated: tracked.updated,
        closed: tracked.closed,
        behind: tracked.backfill,
    };
    Ok(Some((counts, preview)))
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
