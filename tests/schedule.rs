//! Fire times in the job's time zone, across daylight-saving changes, and which missed fire
//! time the daemon catches up.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use keepwell::config::job::{CatchUp, Schedule};
use keepwell::scheduler::{missed_fire, next_fire};

fn schedule(cron: &str, catch_up: CatchUp) -> Schedule {
    Schedule {
        cron: cron.parse().expect("cron"),
        cron_text: cron.into(),
        timezone: chrono_tz::Europe::London,
        retries: 0,
        retry_delay: Duration::from_secs(60),
        catch_up,
    }
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("valid time")
}

/// The next `n` fire times after `from`, in UTC.
fn fires(s: &Schedule, from: DateTime<Utc>, n: usize) -> Vec<String> {
    let mut at = from;
    (0..n)
        .map(|_| {
            let next = next_fire(s, at).expect("a next fire").with_timezone(&Utc);
            at = next;
            next.format("%Y-%m-%d %H:%M UTC").to_string()
        })
        .collect()
}

#[test]
fn local_time_holds_across_the_spring_change() {
    // London moves from GMT to BST on 2026-03-29: 05:30 local is 05:30 UTC, then 04:30 UTC.
    let s = schedule("30 5 * * *", CatchUp::Latest);
    assert_eq!(
        fires(&s, utc(2026, 3, 27, 12, 0), 3),
        ["2026-03-28 05:30 UTC", "2026-03-29 04:30 UTC", "2026-03-30 04:30 UTC"]
    );
}

#[test]
fn local_time_holds_across_the_autumn_change() {
    // Back to GMT on 2026-10-25: 05:30 local is 04:30 UTC, then 05:30 UTC.
    let s = schedule("30 5 * * *", CatchUp::Latest);
    assert_eq!(
        fires(&s, utc(2026, 10, 23, 12, 0), 3),
        ["2026-10-24 04:30 UTC", "2026-10-25 05:30 UTC", "2026-10-26 05:30 UTC"]
    );
}

#[test]
fn weekdays_and_seconds_fields_work() {
    let s = schedule("30 5 * * 1-5", CatchUp::Latest);
    // 2026-11-27 is a Friday: the next fire after it is Monday the 30th.
    assert_eq!(fires(&s, utc(2026, 11, 27, 6, 0), 1), ["2026-11-30 05:30 UTC"]);
    let every_two_seconds = schedule("*/2 * * * * *", CatchUp::Latest);
    let next = next_fire(&every_two_seconds, utc(2026, 11, 27, 6, 0)).expect("next");
    assert_eq!(next.with_timezone(&Utc), utc(2026, 11, 27, 6, 0) + chrono::Duration::seconds(2));
}

#[test]
fn the_latest_missed_fire_time_is_caught_up_and_only_when_missed() {
    let s = schedule("30 5 * * *", CatchUp::Latest);
    let now = utc(2026, 11, 25, 12, 0);
    // Last run two days ago: today's 05:30 was missed.
    let missed = missed_fire(&s, Some(utc(2026, 11, 23, 5, 30)), now).expect("missed");
    assert_eq!(missed.with_timezone(&Utc), utc(2026, 11, 25, 5, 30));
    // Last run after today's fire time: nothing missed.
    assert_eq!(missed_fire(&s, Some(utc(2026, 11, 25, 5, 31)), now), None);
    // No history: nothing to catch up.
    assert_eq!(missed_fire(&s, None, now), None);
    // The policy `none` never catches up.
    assert_eq!(missed_fire(&schedule("30 5 * * *", CatchUp::None), Some(utc(2026, 11, 1, 5, 30)), now), None);
}
