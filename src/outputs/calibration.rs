//! The calibration mail: the job's validation figures (churn by grade with intervals and
//! lift, AUC, the weakest rules, escalations, the forecast, what was seen coming) with a chart
//! of churn by grade per rule set and their ROC curves, and the root-cause review.

use minijinja::{Value, context};

use super::charts::{self, RateBar, grade_color};
use super::message::Inline;
use super::{Calibration, Mail, OutputError, RunView, render_one};
use crate::validation::text::{auc, interval, pct, times};
use crate::validation::{Rate, Validation};

fn rate(r: &Rate) -> Value {
    context! { accounts => r.of, churned => r.count, rate => pct(r.rate), interval => interval(r) }
}

/// The mail, or `None` without figures (the run said why in a warning).
pub(super) fn mail(view: &RunView, c: &Calibration) -> Result<Option<Mail>, OutputError> {
    let Some(v) = view.calibration else { return Ok(None) };
    let mut inline = Vec::new();
    let chart = |inline: &mut Vec<Inline>, cid: String, png: Result<Vec<u8>, charts::ChartError>| {
        png.map(|body| {
            inline.push(Inline { cid: cid.clone(), content_type: "image/png".into(), body });
            cid
        })
    };
    let mut sets = Vec::new();
    for (i, s) in v.figures.rule_sets.iter().enumerate() {
        let bars: Vec<RateBar> = s
            .grades
            .iter()
            .enumerate()
            .filter_map(|(k, g)| {
                Some(RateBar {
                    grade: g.grade.clone(),
                    rate: g.churn.rate?,
                    low: g.churn.low?,
                    high: g.churn.high?,
                    color: grade_color(&g.grade, k),
                })
            })
            .collect();
        let title = format!("{}: churn rate by grade, {} days before", s.rule_set, v.horizon_days);
        let cid = chart(&mut inline, format!("calibration-{i}"), charts::rates(&title, &bars, s.base_rate))?;
        // The rules that say the least: fired on enough accounts, churn no likelier than average.
        let weak: Vec<String> = s
            .rules
            .iter()
            .filter(|r| !r.too_few && r.lift.is_some_and(|l| l <= 1.0))
            .map(|r| format!("{} ({} when fired)", r.rule, times(r.lift)))
            .collect();
        sets.push(context! {
            rule_set => s.rule_set.clone(),
            healthier => s.direction == "health",
            accounts => s.accounts, churned => s.churned, base_rate => pct(s.base_rate),
            auc => auc(s.auc), top_decile_lift => times(s.top_decile_lift), chart => cid,
            grades => s.grades.iter().map(|g| context! {
                grade => g.grade.clone(), lift => times(g.lift), churned_arr => pct(g.churned_arr_share),
                too_few => g.too_few, ..rate(&g.churn)
            }).collect::<Vec<_>>(),
            never_on_churned => s.never_on_churned.clone(), weak => weak,
        });
    }
    let curves: Vec<(String, Vec<(f64, f64)>)> =
        v.figures.rule_sets.iter().filter(|s| !s.roc.is_empty()).map(|s| (s.rule_set.clone(), s.roc.clone())).collect();
    let roc = match curves.is_empty() {
        true => None,
        false => Some(chart(
            &mut inline,
            "calibration-roc".into(),
            charts::roc_curves(&format!("ROC curves, {} days before the outcome", v.horizon_days), &curves),
        )?),
    };
    let ctx = context! {
        job => view.job.name.clone(), as_of => view.as_of.to_string(), run_id => view.run_id,
        title => c.title.clone(), horizon_days => v.horizon_days, outcomes_file => v.outcomes_file.clone(),
        coverage => context! {
            events => v.coverage.events, scored => v.coverage.scored, renewed => v.coverage.renewed,
            churned => v.coverage.churned, downsold => v.coverage.downsold, expanded => v.coverage.expanded,
        }, sets => sets, roc => roc,
        escalations => v.figures.escalations.iter().flatten().flat_map(|e| e.horizons.iter().map(|h| context! {
            output => e.output.clone(), days => h.days, flagged => h.flagged, churned => h.churned, caught => h.caught,
            precision => pct(h.precision), recall => pct(h.recall),
        })).collect::<Vec<_>>(),
        forecast => v.figures.forecast.as_ref().map(|f| f.rows.iter().chain(std::iter::once(&f.overall)).map(|r| context! {
            category => r.category.clone(), accounts => r.accounts,
            expected => crate::rules::engine::money(r.expected), actual => crate::rules::engine::money(r.actual),
            error => pct(r.error_share),
        }).collect::<Vec<_>>()),
        foreseen => v.figures.foreseen.iter().map(|f| context! {
            reason => f.reason.clone(), accounts => f.accounts, seen => f.seen, share => pct(f.share),
            lead => f.median_lead_days, no_signal => f.no_signal,
        }).collect::<Vec<_>>(),
        root_cause => root_cause(v),
    };
    Ok(Some(Mail {
        output: c.name.clone(),
        to: c.to.clone(),
        cc: Vec::new(),
        subject: render_one(view.templates, &c.subject, &ctx)?,
        text: render_one(view.templates, "calibration.txt", &ctx)?,
        html: render_one(view.templates, "calibration.html", &ctx)?,
        inline,
        attachments: Vec::new(),
    }))
}

fn root_cause(v: &Validation) -> Value {
    let r = &v.root_cause;
    let systemic: Vec<String> = r
        .segments
        .iter()
        .flat_map(|d| {
            d.segments.iter().flat_map(move |s| {
                s.reasons.iter().filter(|x| x.systemic).map(move |x| {
                    format!("{} {}: {} ({} of {} accounts)", d.by, s.segment, x.reason, x.accounts, s.accounts)
                })
            })
        })
        .collect();
    context! {
        accounts => r.accounts, lost_arr => crate::rules::engine::money(r.lost_arr),
        count => r.systemic_count, share => pct(Some(r.systemic_share)),
        reasons => r.overall.iter().map(|x| context! {
            reason => x.reason.clone(), accounts => x.accounts, share => pct(Some(x.share)),
            lost_arr => crate::rules::engine::money(x.lost_arr), arr_share => pct(x.arr_share),
            systemic => x.systemic, account_ids => x.account_ids.join(" "),
        }).collect::<Vec<_>>(),
        systemic_segments => systemic,
    }
}
