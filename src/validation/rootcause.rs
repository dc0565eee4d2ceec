//! The root-cause review (DOMAIN.md §6): the reasons given for churned and downsold accounts,
//! overall and within each segment, each systemic (it recurs: at least `count` accounts
//! that are at least `share` of the lost accounts or of the ARR lost) or a one-off.

use std::collections::BTreeMap;

use serde::Serialize;

use super::events::Event;

#[derive(Debug, Serialize)]
pub struct RootCause {
    /// Churned and downsold accounts.
    pub accounts: u64,
    pub lost_arr: f64,
    pub systemic_count: u64,
    pub systemic_share: f64,
    pub overall: Vec<ReasonRow>,
    pub segments: Vec<SegmentReview>,
}

#[derive(Debug, Serialize)]
pub struct SegmentReview {
    /// What splits: an entity column, `owner` or `set.grade`.
    pub by: String,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Serialize)]
pub struct Segment {
    pub segment: String,
    pub accounts: u64,
    pub lost_arr: f64,
    pub reasons: Vec<ReasonRow>,
}

#[derive(Debug, Serialize)]
pub struct ReasonRow {
    pub reason: String,
    pub accounts: u64,
    /// Of the lost accounts in scope.
    pub share: f64,
    pub lost_arr: f64,
    /// Of the ARR lost in scope.
    pub arr_share: Option<f64>,
    pub systemic: bool,
    pub account_ids: Vec<String>,
}

/// The reasons of `lost` (churned and downsold events), in the order of `reasons`; an event
/// without a reason counts as `unstated`.
fn review(lost: &[&Event], reasons: &[String], count: u64, share: f64) -> Vec<ReasonRow> {
    let total = lost.len() as f64;
    // `+ 0.0`: an empty sum of floats is -0.0.
    let total_arr: f64 = lost.iter().map(|e| e.lost_arr()).sum::<f64>() + 0.0;
    let unstated = "unstated".to_string();
    reasons
        .iter()
        .chain(std::iter::once(&unstated))
        .filter_map(|r| {
            let giving: Vec<&&Event> = lost
                .iter()
                .filter(|e| if *r == unstated { e.reasons.is_empty() } else { e.reasons.contains(r) })
                .collect();
            if giving.is_empty() {
                return None;
            }
            let n = giving.len() as u64;
            let arr: f64 = giving.iter().map(|e| e.lost_arr()).sum::<f64>() + 0.0;
            let share_accounts = n as f64 / total;
            let arr_share = (total_arr > 0.0).then(|| arr / total_arr);
            let systemic = *r != unstated
                && n >= count
                && (share_accounts >= share - 1e-12 || arr_share.is_some_and(|a| a >= share - 1e-12));
            let mut account_ids: Vec<String> = giving.iter().map(|e| e.account.clone()).collect();
            account_ids.sort();
            account_ids.dedup();
            Some(ReasonRow {
                reason: r.clone(),
                accounts: n,
                share: share_accounts,
                lost_arr: arr,
                arr_share,
                systemic,
                account_ids,
            })
        })
        .collect()
}

/// `segment_of[d][i]`: lost event `i`'s value for segment dimension `d`.
pub fn root_cause(
    lost: &[&Event],
    reasons: &[String],
    dimensions: &[(String, Vec<String>)],
    count: u64,
    share: f64,
) -> RootCause {
    let segments = dimensions
        .iter()
        .map(|(by, values)| {
            let mut groups: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
            for (event, value) in lost.iter().zip(values) {
                groups.entry(value.as_str()).or_default().push(event);
            }
            let mut segments: Vec<Segment> = groups
                .into_iter()
                .map(|(segment, events)| Segment {
                    segment: segment.to_string(),
                    accounts: events.len() as u64,
                    lost_arr: events.iter().map(|e| e.lost_arr()).sum::<f64>() + 0.0,
                    reasons: review(&events, reasons, count, share),
                })
                .collect();
            segments.sort_by(|a, b| b.accounts.cmp(&a.accounts).then(a.segment.cmp(&b.segment)));
            SegmentReview { by: by.clone(), segments }
        })
        .collect();
    RootCause {
        accounts: lost.len() as u64,
        lost_arr: lost.iter().map(|e| e.lost_arr()).sum::<f64>() + 0.0,
        systemic_count: count,
        systemic_share: share,
        overall: review(lost, reasons, count, share),
        segments,
    }
}
