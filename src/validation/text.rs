//! How the figures read, the same in `keepwell validate` and the calibration mail.

use super::Rate;

/// A share as a percentage; adding zero turns an empty sum's `-0` into `0`.
pub fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0 + 0.0))
}

/// A ratio as a multiple: `2.67x`.
pub fn times(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}x"))
}

/// A rate's 95% interval: `15.0-85.0%`.
pub fn interval(r: &Rate) -> String {
    match (r.low, r.high) {
        (Some(l), Some(h)) => format!("{:.1}-{:.1}%", l * 100.0, h * 100.0),
        _ => "-".into(),
    }
}

/// An AUC to three places.
pub fn auc(v: Option<f64>) -> String {
    v.map_or("-".into(), |a| format!("{a:.3}"))
}
