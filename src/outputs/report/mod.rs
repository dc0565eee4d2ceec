//! The executive report: the summary mail's charts, movements since the previous run, top
//! accounts at risk, renewals this quarter and the full list as CSV. Each section reads the
//! rule sets the job's `report:` names, so the same code serves any playbook. The sections
//! are in `sections.rs`, the full list in `full_list.rs`.

mod full_list;
pub(super) mod metrics;
mod sections;
mod wording;

pub use wording::{Titles, Wording};

use std::path::Path;

use minijinja::{Value, context};
use rayon::prelude::*;
use rhai::Engine;

use super::charts::{self, Layout, Series};
use super::{Attachment, Inline};
use super::{OutputError, RunView, compile_collecting};
use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::config::job::Job;
use crate::config::job::raw::{RawGradeRef, RawReport};
use crate::rules::engine::number;
use duckdb::arrow::array::ArrayRef;

use crate::config::yaml;
use crate::entity::{ColumnType, Schema, cell, display_value};
use crate::rules::{Expr, RuleSet};

/// How many accounts each movement list shows; the counts and ARR cover all of them.
const MOVEMENT_ROWS: usize = 10;
/// How many reasons each top account shows: the first ones, which the `reasons` expression
/// puts first. The attached list and `keepwell explain` have the rest.
const TOP_REASONS: usize = 3;

#[derive(Debug)]
pub struct Report {
    pub risk: Option<String>,
    pub category: Option<String>,
    pub red: Option<GradeRef>,
    pub stage: Option<String>,
    pub churn: Option<GradeRef>,
    pub forecast: Option<String>,
    pub renewal: Option<String>,
    pub top: Option<Top>,
    pub history: usize,
    pub attach_limit: usize,
    /// The metrics on the headline cards, in order.
    pub headline: Vec<String>,
    /// The metrics in the metrics section.
    pub metrics: Vec<String>,
    pub wording: Wording,
}

#[derive(Debug, Clone)]
pub struct GradeRef {
    pub rule_set: String,
    pub grade: String,
    /// The grades from best to worst; moves to a grade not in it are no recovery.
    pub order: Vec<String>,
}

impl GradeRef {
    /// Whether `now` is a better grade than `self.grade` in the order.
    pub fn better(&self, now: Option<&str>) -> bool {
        let at = |g: &str| self.order.iter().position(|x| x == g);
        match (now.and_then(at), at(&self.grade)) {
            (Some(now), Some(this)) => now < this,
            _ => false,
        }
    }
}

#[derive(Debug)]
pub struct Top {
    pub when: Expr,
    pub reasons: Option<Expr>,
    pub limit: usize,
}

/// Checks a `report:` section against the job's rule sets, their grades and the entity.
pub fn compile(
    job: &Job,
    raw: &RawReport,
    schema: &Schema,
    rule_sets: &[RuleSet],
    names: &[&str],
    engine: &Engine,
    diags: &mut Diagnostics,
) -> Option<Report> {
    let file = &job.file;
    let mut ok = true;
    let mut set = |v: &serde_saphyr::Spanned<String>, diags: &mut Diagnostics| -> Option<String> {
        let name = &v.value;
        if rule_sets.iter().any(|r| &r.name == name) {
            return Some(name.clone());
        }
        // A listed rule set that failed to compile has its own errors already.
        if job.rule_sets.iter().any(|r| &r.value == name) && names.contains(&name.as_str()) {
            return None;
        }
        let mut d = Diagnostic::error(
            Code::UnknownRuleSet,
            yaml::span_of(file, v, name.len()),
            format!("the report reads rule set `{name}`, which this job does not run"),
        );
        if let Some(hint) = did_you_mean(name, rule_sets.iter().map(|r| r.name.as_str())) {
            d = d.with_hint(hint);
        } else if names.contains(&name.as_str()) {
            d = d.with_hint(format!("add `{name}` to the job's `rule_sets`"));
        }
        diags.push(d);
        ok = false;
        None
    };
    let risk = raw.risk.as_ref().and_then(|v| set(v, diags));
    let category = raw.category.as_ref().and_then(|v| set(v, diags));
    let stage = raw.stage.as_ref().and_then(|v| set(v, diags));
    let forecast = raw.forecast.as_ref().and_then(|v| set(v, diags));
    let mut grade_ref = |g: &RawGradeRef, diags: &mut Diagnostics| -> Option<GradeRef> {
        let rule_set = set(&g.rule_set, diags)?;
        let compiled = rule_sets.iter().find(|r| r.name == rule_set)?;
        let grades = compiled.grade_names();
        if !grades.iter().any(|x| **x == *g.grade.value) {
            let mut d = Diagnostic::error(
                Code::UnknownGrade,
                yaml::span_of(file, &g.grade, g.grade.value.len()),
                format!("rule set `{rule_set}` has no grade `{}`", g.grade.value),
            );
            d = d.with_hint(did_you_mean(&g.grade.value, grades.iter().map(|x| &**x)).unwrap_or_else(|| {
                format!("its grades are {}", grades.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", "))
            }));
            diags.push(d);
            return None;
        }
        let order: Vec<String> = match &g.order {
            Some(order) => {
                for o in order.iter().filter(|o| !grades.iter().any(|x| **x == *o.value)) {
                    diags.push(
                        Diagnostic::error(
                            Code::UnknownGrade,
                            yaml::span_of(file, o, o.value.len()),
                            format!("rule set `{rule_set}` has no grade `{}`", o.value),
                        )
                        .with_hint(
                            did_you_mean(&o.value, grades.iter().map(|x| &**x)).unwrap_or_else(|| {
                                let all: Vec<String> = grades.iter().map(|x| format!("`{x}`")).collect();
                                format!("its grades are {}", all.join(", "))
                            }),
                        ),
                    );
                }
                order.iter().map(|o| o.value.clone()).collect()
            }
            // As listed, turned round when the grade followed comes first (risk's `high`).
            None => {
                let mut listed: Vec<String> = grades.iter().map(|x| x.to_string()).collect();
                if listed.first() == Some(&g.grade.value) {
                    listed.reverse();
                }
                listed
            }
        };
        Some(GradeRef { rule_set, grade: g.grade.value.clone(), order })
    };
    let red = raw.red.as_ref().map(|g| grade_ref(g, diags));
    let churn = raw.churn.as_ref().map(|g| grade_ref(g, diags));
    let renewal = match &raw.renewal {
        None => Some(None),
        Some(r) => match schema.get(&r.value) {
            Some(ColumnType::Date | ColumnType::Timestamp) => Some(Some(r.value.clone())),
            found => {
                let message = match found {
                    Some(t) => {
                        format!("renewal column `{}` holds {}, not dates", r.value, format!("{t:?}").to_lowercase())
                    }
                    None => format!("the entity has no column `{}` for renewals", r.value),
                };
                let mut d = Diagnostic::error(Code::UnknownColumn, yaml::span_of(file, r, r.value.len()), message);
                if let Some(h) = did_you_mean(&r.value, schema.names()) {
                    d = d.with_hint(h);
                }
                diags.push(d);
                None
            }
        },
    };
    let expr = |src: &serde_saphyr::Spanned<String>, what: &str, diags: &mut Diagnostics| {
        compile_collecting(engine, file, src, schema, names, &format!("{what} of the report's `top`"), diags)
    };
    let top = match &raw.top {
        None => Some(None),
        Some(t) => {
            let when = expr(&t.when, "`when`", diags);
            let reasons = t.reasons.as_ref().map(|r| expr(r, "`reasons`", diags));
            match (when, reasons) {
                (Some(when), None) => Some(Some(Top { when, reasons: None, limit: t.limit.unwrap_or(10) })),
                (Some(when), Some(Some(r))) => Some(Some(Top { when, reasons: Some(r), limit: t.limit.unwrap_or(10) })),
                _ => None,
            }
        }
    };
    let metric = |m: &serde_saphyr::Spanned<String>, diags: &mut Diagnostics| -> Option<String> {
        if crate::metrics::find(&job.metrics, &m.value).is_some() {
            return Some(m.value.clone());
        }
        let d = Diagnostic::error(
            Code::Metric,
            yaml::span_of(file, m, m.value.len()),
            format!("the report shows metric `{}`, which the job does not define", m.value),
        );
        diags.push(match did_you_mean(&m.value, job.metrics.iter().map(|m| m.name.as_str())) {
            Some(h) => d.with_hint(h),
            None if job.metrics.is_empty() => d.with_hint("define it under `metrics:` in the job"),
            None => d.with_hint(format!(
                "the job's metrics are {}",
                job.metrics.iter().map(|m| format!("`{}`", m.name)).collect::<Vec<_>>().join(", ")
            )),
        });
        None
    };
    let headline: Vec<Option<String>> = raw.headline.iter().map(|m| metric(m, diags)).collect();
    let shown: Option<Vec<Option<String>>> = raw.metrics.as_ref().map(|l| l.iter().map(|m| metric(m, diags)).collect());
    let wording = wording::compile(file, raw, diags);
    if !ok || headline.iter().any(Option::is_none) || shown.as_ref().is_some_and(|l| l.iter().any(Option::is_none)) {
        return None;
    }
    Some(Report {
        headline: headline.into_iter().flatten().collect(),
        metrics: match shown {
            Some(l) => l.into_iter().flatten().collect(),
            None => job.metrics.iter().map(|m| m.name.clone()).collect(),
        },
        wording: wording?,
        risk,
        category,
        red: red.flatten(),
        stage,
        churn: churn.flatten(),
        forecast,
        renewal: renewal?,
        top: top?,
        history: raw.history.unwrap_or(12).max(2),
        attach_limit: raw.attach_limit.unwrap_or(20_000),
    })
}

/// A built report: the template context, the charts to inline and the CSV to attach.
pub struct Built {
    pub context: Value,
    pub inline: Vec<Inline>,
    pub attachment: Option<Attachment>,
    pub files: Vec<std::path::PathBuf>,
}

/// Reads the outcomes of one rule set by row.
#[derive(Clone, Copy)]
struct Sets<'a> {
    view: &'a RunView<'a>,
}

impl<'a> Sets<'a> {
    fn index(&self, name: &str) -> Option<usize> {
        self.view.rule_sets.iter().position(|s| s.name == name)
    }
    fn grade(&self, set: usize, row: usize) -> Option<&'a str> {
        self.view.outcomes[set].get(row).grade()
    }
    fn grades(&self, set: usize) -> Vec<String> {
        self.view.rule_sets[set].grade_names().iter().map(|g| g.to_string()).collect()
    }
}

/// What every section reads: the run, the report's settings and each account's ARR.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    view: &'a RunView<'a>,
    report: &'a Report,
    /// The summary output's name.
    output: &'a str,
    sets: Sets<'a>,
    n: usize,
    arr: &'a [f64],
    name_col: Option<&'a ArrayRef>,
    owner_col: Option<&'a ArrayRef>,
}

impl Ctx<'_> {
    /// An account as the templates show it.
    fn account(&self, r: usize) -> Value {
        let name =
            self.name_col.map(|c| display_value(&cell(c, r))).unwrap_or_else(|| self.view.entity.keys[r].to_string());
        let owner = self.owner_col.map(|c| display_value(&cell(c, r))).unwrap_or_default();
        context! { key => self.view.entity.keys[r].to_string(), name => name, owner => owner, arr => self.arr[r] }
    }
}

/// The charts drawn so far: inlined in the mail, listed in the context.
struct Charts {
    inline: Vec<Inline>,
    list: Vec<Value>,
    currency: String,
}

impl Charts {
    fn add(
        &mut self,
        cid: &str,
        title: &str,
        categories: &[String],
        series: &[Series],
        layout: Layout,
    ) -> Result<(), OutputError> {
        let png = charts::draw(title, categories, series, layout, &self.currency)?;
        self.inline.push(Inline { cid: cid.to_string(), content_type: "image/png".into(), body: png });
        self.list.push(context! { cid => cid, title => title, width => charts::WIDTH, height => charts::HEIGHT });
        Ok(())
    }
}

/// Builds the report for `output`, writing its full list under `out_dir`.
pub fn build(view: &RunView, report: &Report, output: &str, out_dir: &Path) -> Result<Built, OutputError> {
    let n = view.entity.len();
    let arr_col = view.job.entity.arr.as_deref();
    let arr: Vec<f64> =
        (0..n).into_par_iter().map(|r| arr_col.and_then(|c| number(&view.entity.value(c, r))).unwrap_or(0.0)).collect();
    let c = Ctx {
        view,
        report,
        output,
        sets: Sets { view },
        n,
        arr: &arr,
        name_col: view.job.entity.name.as_deref().and_then(|c| view.entity.column(c)),
        owner_col: view.job.entity.owner.as_deref().and_then(|c| view.entity.column(c)),
    };
    let mut charts = Charts { inline: Vec::new(), list: Vec::new(), currency: report.wording.currency.clone() };
    let breakdown = sections::breakdown(c, &mut charts)?;
    let red = sections::red(c, &mut charts)?;
    let forecast = sections::forecast(c, &mut charts)?;
    let (headline, metrics) = metrics::build(c, &mut charts)?;
    let list = full_list::write(c, out_dir)?;
    let context = context! {
        charts => charts.list, headline => headline, headline_set => !report.headline.is_empty(), metrics => metrics,
        breakdown => breakdown, red => red, forecast => forecast,
        since => view.previous.as_of().map(|d| d.to_string()), movements => sections::movements(c),
        top => sections::top(c), renewals => sections::renewals(c),
        attachment => context! {
            file => list.file_name, rows => list.attached, total => n, path => list.path.display().to_string()
        },
    };
    Ok(Built { context, inline: charts.inline, attachment: list.attachment, files: vec![list.path] })
}

/// The report's categories (the category rule set's grades, or one for all accounts) and
/// each row's category.
fn categories(sets: Sets, report: &Report, n: usize) -> (Vec<String>, Vec<Option<usize>>) {
    match report.category.as_deref().and_then(|c| sets.index(c)) {
        Some(cat) => {
            let names = natural_order(sets.grades(cat));
            let of = (0..n).map(|r| sets.grade(cat, r).and_then(|g| names.iter().position(|x| x == g))).collect();
            (names, of)
        }
        None => (vec!["all accounts".to_string()], vec![Some(0); n]),
    }
}

/// Category names in their natural order: numerically when they are all numbers (impact
/// categories `1`, `2`, `3`), else as the rule set lists them.
fn natural_order(mut names: Vec<String>) -> Vec<String> {
    if names.iter().all(|n| n.parse::<f64>().is_ok()) {
        names.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
    }
    names
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod grade_order_tests {
    use super::GradeRef;

    #[test]
    fn a_recovery_is_a_move_to_a_better_grade_in_the_order() {
        let churned = GradeRef {
            rule_set: "lifecycle".into(),
            grade: "churned".into(),
            order: vec!["active".into(), "at_risk".into(), "churned".into()],
        };
        assert!(churned.better(Some("active")) && churned.better(Some("at_risk")));
        // Out of the order, or no grade: not a recovery.
        assert!(!churned.better(Some("not_in_window")) && !churned.better(None));
        assert!(!churned.better(Some("churned")));
    }
}
