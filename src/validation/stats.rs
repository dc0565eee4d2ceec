//! The statistics validation reports: a rate with its Wilson interval, the ROC AUC with ties
//! counted half, and the lift of the riskiest tenth.

use serde::Serialize;

/// The normal quantile for a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// `k` of `n` with its 95% Wilson score interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub count: u64,
    pub of: u64,
    pub rate: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl Rate {
    pub fn new(count: u64, of: u64) -> Rate {
        if of == 0 {
            return Rate { count, of, rate: None, low: None, high: None };
        }
        let (n, p, z2) = (of as f64, count as f64 / of as f64, Z95 * Z95);
        let denominator = 1.0 + z2 / n;
        let centre = (p + z2 / (2.0 * n)) / denominator;
        let half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        Rate { count, of, rate: Some(p), low: Some((centre - half).max(0.0)), high: Some((centre + half).min(1.0)) }
    }
}

/// The probability that a churned account ranks riskier than one that stayed, ties counted
/// half (the Mann-Whitney statistic over midranks). `None` without both kinds.
pub fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let positives = scored.iter().filter(|(_, p)| *p).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        // Ranks i+1..=j share their mean.
        let midrank = (i + 1 + j) as f64 / 2.0;
        rank_sum += midrank * sorted[i..j].iter().filter(|(_, p)| *p).count() as f64;
        i = j;
    }
    let p = positives as f64;
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// The ROC curve: (false-positive rate, true-positive rate) at each score threshold, riskiest
/// first, from (0, 0) to (1, 1); at most about 200 points (every tie group kept when fewer).
pub fn roc(scored: &[(f64, bool)]) -> Vec<(f64, f64)> {
    let positives = scored.iter().filter(|(_, p)| *p).count() as f64;
    let negatives = scored.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Vec::new();
    }
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp, mut i) = (0.0, 0.0, 0);
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            if sorted[j].1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            j += 1;
        }
        points.push((fp / negatives, tp / positives));
        i = j;
    }
    let step = points.len().div_ceil(200).max(1);
    let last = points.len() - 1;
    points.into_iter().enumerate().filter(|(k, _)| k % step == 0 || *k == last).map(|(_, p)| p).collect()
}

/// The churn rate among the riskiest tenth of accounts over the churn rate of all. Accounts
/// tied at the cut count in proportion, so the figure does not depend on their order.
pub fn top_decile_lift(scored: &[(f64, bool)]) -> Option<f64> {
    let n = scored.len();
    let churned = scored.iter().filter(|(_, p)| *p).count();
    if n == 0 || churned == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let size = n as f64 / 10.0;
    let (mut taken, mut positives, mut i) = (0.0, 0.0, 0);
    while i < n && taken < size {
        let mut j = i;
        while j < n && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let group = (j - i) as f64;
        let share = ((size - taken) / group).min(1.0);
        positives += share * sorted[i..j].iter().filter(|(_, p)| *p).count() as f64;
        taken += share * group;
        i = j;
    }
    Some((positives / size) / (churned as f64 / n as f64))
}

#[cfg(test)]
mod tests {
    use super::{Rate, auc, roc, top_decile_lift};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn wilson_intervals_match_the_textbook() {
        // 3 of 10: Wilson 95% is 0.1078 to 0.6032 (as SciPy has it).
        let r = Rate::new(3, 10);
        assert!(close(r.rate.unwrap(), 0.3));
        assert!((r.low.unwrap() - 0.107_791_27).abs() < 1e-8, "{r:?}");
        assert!((r.high.unwrap() - 0.603_221_85).abs() < 1e-8, "{r:?}");
        // None of 5 still has an upper bound.
        let r = Rate::new(0, 5);
        assert_eq!(r.low, Some(0.0));
        assert!((r.high.unwrap() - 0.434_482_46).abs() < 1e-8, "{r:?}");
        assert_eq!(Rate::new(0, 0).rate, None);
    }

    #[test]
    fn auc_counts_ties_half() {
        assert_eq!(auc(&[(1.0, false), (2.0, true)]), Some(1.0));
        assert_eq!(auc(&[(2.0, false), (1.0, true)]), Some(0.0));
        assert_eq!(auc(&[(1.0, false), (1.0, true)]), Some(0.5));
        // Pairs: (3 vs 1) win, (3 vs 3) tie, (2 vs 1) win, (2 vs 3) loss: 2.5 of 4.
        let scored = [(3.0, true), (2.0, true), (1.0, false), (3.0, false)];
        assert!(close(auc(&scored).unwrap(), 0.625));
        assert_eq!(auc(&[(1.0, true)]), None);
    }

    #[test]
    fn the_roc_curve_steps_through_each_threshold() {
        let scored = [(3.0, true), (2.0, true), (1.0, false), (3.0, false)];
        assert_eq!(roc(&scored), [(0.0, 0.0), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert!(roc(&[(1.0, true)]).is_empty());
    }

    #[test]
    fn the_top_decile_shares_ties_at_the_cut() {
        // 20 accounts, 2 churned, both riskiest: the top tenth is all churn, lift 10.
        let mut scored: Vec<(f64, bool)> = (0..18).map(|i| (i as f64, false)).collect();
        scored.extend([(100.0, true), (99.0, true)]);
        assert!(close(top_decile_lift(&scored).unwrap(), 10.0));
        // Four tied at the top, one churned; the tenth (2 accounts) takes half of them.
        let mut scored: Vec<(f64, bool)> = (0..16).map(|i| (i as f64, false)).collect();
        scored.extend([(50.0, true), (50.0, false), (50.0, false), (50.0, false), (0.0, true)]);
        // n = 21: the tenth is 2.1 accounts, all from the tie (0.525 each): 0.525 churned.
        let lift = top_decile_lift(&scored).unwrap();
        assert!(close(lift, (0.525 / 2.1) / (2.0 / 21.0)), "{lift}");
    }
}
