//! The mail to a job's owners when a metric's `alert_when` holds: one mail a run, every
//! alert in it (the total's and each segment's), sent through the outbox like the rest.

use minijinja::{Value, context};

use super::report::metrics::{segment_name, value_of};
use super::{Mail, Output, OutputError, RunView, render_one};
use crate::metrics::find;

/// The output name alert mail is kept under in the outbox.
pub const ALERTS_OUTPUT: &str = "metric_alerts";

/// The alert mail, when an alert holds and the job has owners.
pub(super) fn mail(view: &RunView, outputs: &[Output]) -> Result<Option<Mail>, OutputError> {
    if view.metrics.alerts.is_empty() || view.job.owners.is_empty() {
        return Ok(None);
    }
    let alerts: Vec<Value> = contexts(view, outputs).into_iter().map(|(v, _)| v).collect();
    let ctx = context! {
        job => view.job.name.clone(), as_of => view.as_of.to_string(), run_id => view.run_id, alerts => alerts,
    };
    Ok(Some(Mail {
        output: ALERTS_OUTPUT.to_string(),
        to: view.job.owners.clone(),
        cc: Vec::new(),
        subject: render_one(view.templates, "alert.subject", &ctx)?,
        text: render_one(view.templates, "alert.txt", &ctx)?,
        html: render_one(view.templates, "alert.html", &ctx)?,
        inline: Vec::new(),
        attachments: Vec::new(),
    }))
}

/// The alerts for the job's `alert_channels` that `carries` says to render.
pub(super) fn posts(
    view: &RunView,
    outputs: &[Output],
    carries: &dyn Fn(&crate::config::channels::Channel) -> bool,
) -> Vec<super::Post> {
    if view.metrics.alerts.is_empty() || !view.job.alert_channels.iter().any(carries) {
        return Vec::new();
    }
    let alerts: Vec<(serde_json::Value, &crate::metrics::Alert)> =
        contexts(view, outputs).into_iter().map(|(v, a)| (serde_json::to_value(&v).unwrap_or_default(), a)).collect();
    let mut posts = super::posts::alerts(view, ALERTS_OUTPUT, &alerts);
    posts.retain(|p| view.job.alert_channels.iter().any(|c| c.name == p.channel && carries(c)));
    posts
}

/// Each alert's context, as the mail shows it, beside the alert.
fn contexts<'v>(view: &'v RunView, outputs: &[Output]) -> Vec<(Value, &'v crate::metrics::Alert)> {
    // Amounts in the currency of the job's report, when it sets one.
    let currency = outputs
        .iter()
        .find_map(|o| match o {
            Output::Summary(s) => s.report.as_ref().map(|r| r.wording.currency.clone()),
            Output::Escalation(_) | Output::Calibration(_) | Output::Tasks(_) => None,
        })
        .unwrap_or_else(|| "$".to_string());
    view.metrics
        .alerts
        .iter()
        .filter_map(|a| {
            let m = find(&view.job.metrics, &a.value.metric)?;
            let segment = (!a.value.is_total()).then(|| segment_name(&a.value));
            let ctx = context! {
                title => m.title.clone(), alert_when => m.alert_when.as_ref().map(|w| w.text.clone()),
                segment_by => a.value.segment_by.clone(), segment => segment,
                ..value_of(view.metrics, m, &a.value, &currency)
            };
            Some((ctx, a))
        })
        .collect()
}
