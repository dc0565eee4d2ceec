//! When scheduled jobs fire: cron in the job's time zone, correct across daylight-saving
//! changes (croner computes each next fire time in local time; the daemon schedules it as a
//! one-shot), and which missed fire time, if any, to catch up from the run history.

pub mod daemon;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::config::job::{CatchUp, Schedule};

/// The first fire time strictly after `after`, in the schedule's time zone.
pub fn next_fire(schedule: &Schedule, after: DateTime<Utc>) -> Option<DateTime<Tz>> {
    schedule.cron.find_next_occurrence(&after.with_timezone(&schedule.timezone), false).ok()
}

/// The latest fire time in `(last_run, now]`, when the policy asks to catch it up. With no run
/// history nothing was missed: a new job waits for its first fire time.
pub fn missed_fire(schedule: &Schedule, last_run: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
    if schedule.catch_up == CatchUp::None {
        return None;
    }
    let last = last_run?;
    let latest = schedule.cron.find_previous_occurrence(&now.with_timezone(&schedule.timezone), true).ok()?;
    (latest.with_timezone(&Utc) > last).then_some(latest)
}

/// A run fired at `fire` is for that local day.
pub fn as_of(fire: &DateTime<Tz>) -> NaiveDate {
    fire.date_naive()
}
