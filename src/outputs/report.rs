//! The executive report: the summary mail's charts, movements since the previous run, top
//! accounts at risk, renewals this quarter and the full list as CSV. Each section reads the
//! rule sets the job's `report:` names, so the same code serves any playbook.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use minijinja::{Value, context};
use rayon::prelude::*;
use rhai::{Dynamic, Engine, Scope};

use super::charts::{self, Layout, Series};
use super::{Attachment, Inline};
use super::{OutputError, RunView, compile_collecting, safe_file_name, to_csv};
use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::config::job::Job;
use crate::config::job::raw::{RawGradeRef, RawReport};
use crate::rules::engine::number;
use crate::rules::eval::results::{evaluate_condition, fill_scope, reads_of};
use duckdb::arrow::array::{Array, ArrayRef, StringArray};

use crate::config::yaml;
use crate::entity::{ColumnType, Schema, cell, display_value, write_float};
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
}

#[derive(Debug, Clone)]
pub struct GradeRef {
    pub rule_set: String,
    pub grade: String,
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
        Some(GradeRef { rule_set, grade: g.grade.value.clone() })
    };
    let red = raw.red.as_ref().map(|g| grade_ref(g, diags));
    let churn = raw.churn.as_ref().map(|g| grade_ref(g, diags));
    let renewal = match &raw.renewal {
        None => Some(None),
        Some(r) => match schema.get(&r.value) {
            Some(ColumnType::Date) => Some(Some(r.value.clone())),
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
    if !ok {
        return None;
    }
    Some(Report {
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

pub fn build(view: &RunView, report: &Report, output: &str, out_dir: &Path) -> Result<Built, OutputError> {
    let sets = Sets { view };
    let n = view.entity.len();
    let arr_col = view.job.entity.arr.as_deref();
    let arr: Vec<f64> =
        (0..n).into_par_iter().map(|r| arr_col.and_then(|c| number(&view.entity.value(c, r))).unwrap_or(0.0)).collect();
    let name_col = view.job.entity.name.as_deref().and_then(|c| view.entity.column(c));
    let owner_col = view.job.entity.owner.as_deref().and_then(|c| view.entity.column(c));
    let name =
        |r: usize| name_col.map(|c| display_value(&cell(c, r))).unwrap_or_else(|| view.entity.keys[r].to_string());
    let owner = |r: usize| owner_col.map(|c| display_value(&cell(c, r))).unwrap_or_default();
    let account = |r: usize| context! { key => view.entity.keys[r].to_string(), name => name(r), owner => owner(r), arr => arr[r] };
    let mut inline = Vec::new();
    let mut chart = |cid: &str, title: &str, categories: &[String], series: &[Series], layout: Layout| {
        let png = charts::draw(title, categories, series, layout)?;
        inline.push(Inline { cid: cid.to_string(), content_type: "image/png".into(), body: png });
        Ok::<Value, OutputError>(
            context! { cid => cid, title => title, width => charts::WIDTH, height => charts::HEIGHT },
        )
    };
    let mut chart_list = Vec::new();

    // ARR by risk grade within each category.
    let mut breakdown = Value::UNDEFINED;
    if let Some(risk) = report.risk.as_deref().and_then(|r| sets.index(r)) {
        let risk_grades = sets.grades(risk);
        let (categories, cat_of) = categories(sets, report, n);
        let mut cells = vec![vec![0.0; categories.len()]; risk_grades.len()];
        let mut counts = vec![vec![0usize; categories.len()]; risk_grades.len()];
        for (r, (cat, value)) in cat_of.iter().zip(&arr).enumerate() {
            if let (Some(g), Some(c)) = (sets.grade(risk, r).and_then(|g| risk_grades.iter().position(|x| x == g)), cat)
            {
                cells[g][*c] += value;
                counts[g][*c] += 1;
            }
        }
        let series: Vec<Series> = risk_grades
            .iter()
            .enumerate()
            .map(|(i, g)| Series { name: g.clone(), values: cells[i].clone(), color: charts::grade_color(g, i) })
            .collect();
        let category_label = report.category.clone().unwrap_or_default();
        let title = match &report.category {
            Some(c) => format!("ARR by {} grade and {c} category", report.risk.as_deref().unwrap_or("risk")),
            None => format!("ARR by {} grade", report.risk.as_deref().unwrap_or("risk")),
        };
        let labels: Vec<String> = categories
            .iter()
            .map(|c| if report.category.is_some() { format!("{category_label} {c}") } else { c.clone() })
            .collect();
        chart_list.push(chart("arr-by-grade", &title, &labels, &series, Layout::Stacked)?);
        let rows: Vec<Value> = risk_grades
            .iter()
            .enumerate()
            .map(|(i, g)| {
                context! { grade => g, arr => cells[i].clone(), accounts => counts[i].clone(),
                total => cells[i].iter().sum::<f64>(), count => counts[i].iter().sum::<usize>() }
            })
            .collect();
        breakdown = context! { title => title, risk => report.risk.clone(), category => report.category.clone(),
        categories => labels, rows => rows };
    }

    // Red ARR today and over the last runs.
    let mut red = Value::UNDEFINED;
    if let Some(g) = &report.red
        && let Some(set) = sets.index(&g.rule_set)
    {
        let rows: Vec<usize> = (0..n).filter(|&r| sets.grade(set, r) == Some(g.grade.as_str())).collect();
        let today: f64 = rows.iter().map(|&r| arr[r]).sum();
        let mut points: Vec<(String, f64)> = view
            .history
            .get(output)
            .map(|h| h.iter().map(|(d, v)| (d.format("%b %d").to_string(), *v)).collect())
            .unwrap_or_default();
        let previous = points.last().map(|p| p.1);
        points.push((view.as_of.format("%b %d").to_string(), today));
        let keep = points.len().saturating_sub(report.history);
        let points: Vec<(String, f64)> = points.into_iter().skip(keep).collect();
        let title =
            format!("{} ARR ({} {}) over the last {} runs", capitalize(&g.grade), g.rule_set, g.grade, points.len());
        let series = [Series {
            name: format!("{} ARR", g.grade),
            values: points.iter().map(|p| p.1).collect(),
            color: charts::grade_color(&g.grade, 0),
        }];
        let labels: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
        chart_list.push(chart("red-arr-trend", &title, &labels, &series, Layout::Line)?);
        red = context! { grade => g.grade.clone(), rule_set => g.rule_set.clone(), arr => today, accounts => rows.len(),
        previous_arr => previous, change => previous.map(|p| today - p),
        history => points.iter().map(|(d, v)| context! { day => d, arr => v }).collect::<Vec<_>>() };
    }

    // Retained ARR forecast, per category when there is one.
    let mut forecast = Value::UNDEFINED;
    if let Some(set) = report.forecast.as_deref().and_then(|f| sets.index(f)) {
        let (categories, cat_of) = categories(sets, report, n);
        let mut today = vec![0.0; categories.len()];
        let mut kept = vec![0.0; categories.len()];
        for (r, (cat, value)) in cat_of.iter().zip(&arr).enumerate() {
            let (Some(c), Some(score)) = (cat, view.outcomes[set].get(r).score()) else { continue };
            today[*c] += value;
            kept[*c] += value * score / 100.0;
        }
        let label = |c: &String| match &report.category {
            Some(name) => format!("{name} {c}"),
            None => c.clone(),
        };
        let labels: Vec<String> = categories.iter().map(label).collect();
        let series = [
            Series { name: "ARR today".into(), values: today.clone(), color: charts::PALETTE[3] },
            Series { name: "expected to be kept".into(), values: kept.clone(), color: charts::PALETTE[0] },
        ];
        chart_list.push(chart("retained-arr", "Retained ARR forecast", &labels, &series, Layout::Grouped)?);
        let total: f64 = today.iter().sum();
        let retained: f64 = kept.iter().sum();
        forecast = context! {
            arr => total, retained => retained, percent => if total > 0.0 { retained * 100.0 / total } else { 0.0 },
            categories => labels.iter().enumerate().map(|(i, l)| context! { category => l, arr => today[i], retained => kept[i],
                percent => if today[i] > 0.0 { kept[i] * 100.0 / today[i] } else { 0.0 } }).collect::<Vec<_>>(),
        };
    }

    // Movements since the previous run.
    let since = view.previous.as_of();
    let mut movements = Vec::new();
    let mut moved = |title: String, rows: Vec<(usize, String)>| {
        let total: f64 = rows.iter().map(|(r, _)| arr[*r]).sum();
        let count = rows.len();
        let mut rows = rows;
        rows.sort_by(|a, b| arr[b.0].total_cmp(&arr[a.0]));
        let shown: Vec<Value> = rows
            .iter()
            .take(MOVEMENT_ROWS)
            .map(|(r, detail)| context! { account => account(*r), detail => detail })
            .collect();
        movements.push(context! { title => title, count => count, arr => total, accounts => shown, more => count.saturating_sub(MOVEMENT_ROWS) });
    };
    let previous_grade = |set: &str, r: usize| view.previous.get(set, &view.entity.keys[r]).map(|p| p.grade);
    if since.is_some() {
        if let Some(g) = &report.red
            && let Some(set) = sets.index(&g.rule_set)
        {
            let mut new_reds = Vec::new();
            let mut recoveries = Vec::new();
            for r in 0..n {
                let now = sets.grade(set, r) == Some(g.grade.as_str());
                match previous_grade(&g.rule_set, r) {
                    Some(before) if before == Some(g.grade.as_str()) && !now => {
                        recoveries.push((r, format!("now {}", sets.grade(set, r).unwrap_or("ungraded"))))
                    }
                    Some(before) if before != Some(g.grade.as_str()) && now => {
                        new_reds.push((r, format!("was {}", before.unwrap_or("ungraded"))))
                    }
                    None if now => new_reds.push((r, "new account".to_string())),
                    _ => {}
                }
            }
            moved(format!("New {}", g.grade), new_reds);
            moved("Recoveries".to_string(), recoveries);
        }
        if let Some(stage) = report.stage.as_deref().and_then(|s| sets.index(s)) {
            let name = &view.rule_sets[stage].name;
            let changes: Vec<(usize, String)> = (0..n)
                .filter_map(|r| {
                    let before = previous_grade(name, r)??;
                    let now = sets.grade(stage, r)?;
                    (before != now).then(|| (r, format!("{before} → {now}")))
                })
                .collect();
            moved(format!("{} changes", capitalize(name)), changes);
        }
        if let Some(g) = &report.churn
            && let Some(set) = sets.index(&g.rule_set)
        {
            let newly: Vec<(usize, String)> = (0..n)
                .filter(|&r| {
                    sets.grade(set, r) == Some(g.grade.as_str())
                        && previous_grade(&g.rule_set, r) != Some(Some(g.grade.as_str()))
                })
                .map(|r| (r, String::new()))
                .collect();
            moved("Newly expected churn".to_string(), newly);
        }
    }

    // Top accounts at risk.
    let mut top = Vec::new();
    if let Some(t) = &report.top {
        let hits = evaluate_condition(&view.results(), &t.when);
        let mut listed: Vec<usize> = (0..n).filter(|&r| matches!(hits[r], Ok(true))).collect();
        listed.sort_by(|&a, &b| arr[b].total_cmp(&arr[a]));
        listed.truncate(t.limit);
        // Reasons only for the accounts shown.
        let reads = reads_of(t.reasons.as_ref());
        let results = view.results();
        let plan = reads.plan(&results);
        let mut scope = Scope::new();
        let listed: Vec<(usize, Vec<String>)> = listed
            .into_iter()
            .map(|r| {
                fill_scope(&mut scope, &results, r, &plan);
                let reasons = t
                    .reasons
                    .as_ref()
                    .and_then(|e| view.engine.eval_ast_with_scope::<Dynamic>(&mut scope, &e.ast).ok())
                    .map(|v| match v.try_cast::<rhai::Array>() {
                        Some(list) => list.iter().map(display_value).filter(|s| !s.is_empty()).collect(),
                        None => Vec::new(),
                    })
                    .unwrap_or_default();
                (r, reasons)
            })
            .collect();
        let risk = report.risk.as_deref().and_then(|s| sets.index(s));
        top = listed
            .into_iter()
            .map(|(r, reasons)| {
                let more = reasons.len().saturating_sub(TOP_REASONS);
                let reasons = reasons[..reasons.len().min(TOP_REASONS)].to_vec();
                context! { account => account(r), grade => risk.and_then(|s| sets.grade(s, r)), reasons => reasons, more_reasons => more }
            })
            .collect();
    }

    // Renewals this quarter by risk grade.
    let mut renewals = Value::UNDEFINED;
    if let Some(col) = &report.renewal {
        let q0 = (view.as_of.month0() / 3) * 3 + 1;
        let start = NaiveDate::from_ymd_opt(view.as_of.year(), q0, 1).unwrap_or(view.as_of);
        let end = start.checked_add_months(chrono::Months::new(3)).and_then(|d| d.pred_opt()).unwrap_or(view.as_of);
        let risk = report.risk.as_deref().and_then(|s| sets.index(s));
        let mut by_grade: BTreeMap<usize, (String, usize, f64)> = BTreeMap::new();
        let grades = risk.map(|s| sets.grades(s)).unwrap_or_default();
        let mut upcoming = Vec::new();
        for (r, value) in arr.iter().enumerate() {
            let Some(day) = view.entity.value(col, r).try_cast::<NaiveDate>() else { continue };
            if day < start || day > end {
                continue;
            }
            let g = risk.and_then(|s| sets.grade(s, r));
            let pos = g.and_then(|g| grades.iter().position(|x| x == g)).unwrap_or(grades.len());
            let e = by_grade.entry(pos).or_insert_with(|| (g.unwrap_or("ungraded").to_string(), 0, 0.0));
            e.1 += 1;
            e.2 += value;
            upcoming.push((r, day));
        }
        upcoming.sort_by(|a, b| arr[b.0].total_cmp(&arr[a.0]));
        renewals = context! {
            quarter => format!("{} Q{}", start.year(), view.as_of.month0() / 3 + 1), from => start.to_string(), to => end.to_string(),
            accounts => upcoming.len(), arr => upcoming.iter().map(|(r, _)| arr[*r]).sum::<f64>(),
            grades => by_grade.into_values().map(|(grade, accounts, arr)| context! { grade => grade, accounts => accounts, arr => arr }).collect::<Vec<_>>(),
        };
    }

    // The full list, written to the run folder; the mail carries the largest accounts.
    let started = std::time::Instant::now();
    // Largest ARR first, then by key. Sorted as (ARR's order as an integer, row) pairs: a
    // comparison reading ARR by row missed the cache on most reads (0.4 s at 1M accounts).
    // The keys are unique, so the order is total and an unstable sort gives it.
    let mut pairs: Vec<(u64, u32)> = arr
        .par_iter()
        .enumerate()
        .map(|(r, &a)| (!total_order(a), u32::try_from(r).expect("fewer than 4G accounts")))
        .collect();
    pairs.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then_with(|| view.entity.keys[a.1 as usize].cmp(&view.entity.keys[b.1 as usize]))
    });
    let ordered: Vec<usize> = pairs.into_iter().map(|(_, r)| r as usize).collect();
    let mut labels = vec!["account".to_string(), "name".to_string(), "owner".to_string(), "arr".to_string()];
    for set in view.rule_sets {
        labels.push(set.name.clone());
        labels.push(format!("{} score", set.name));
    }
    // Each set's grade and score gathered in the list's order, column by column, a block
    // of the list at a time: the list is in ARR order, and reading the outcomes row by row
    // in that order missed the cache on nearly every read (most of the time the list took at
    // 1M accounts). A gather loop has its misses in flight together; formatting then reads
    // the columns in sequence. (Gathered for the whole list at once they took 0.18 GB.)
    let gather = |rows: &[usize]| -> Vec<SetColumns> {
        view.outcomes
            .par_iter()
            .map(|outcomes| {
                let mut names: Vec<&str> = Vec::new();
                let grades = rows
                    .iter()
                    .map(|&r| match outcomes.get(r).grade() {
                        None => 0,
                        Some(g) => match names.iter().position(|n| *n == g) {
                            Some(i) => i as u32 + 1,
                            None => {
                                names.push(g);
                                names.len() as u32
                            }
                        },
                    })
                    .collect();
                SetColumns { names, grades, scores: rows.iter().map(|&r| outcomes.get(r).score()).collect() }
            })
            .collect()
    };
    // Rows `from..to` of the list as CSV, written field by field (a million accounts are
    // 22 million cells); `by_set` holds the rows from `base`.
    let list_csv = |by_set: &[SetColumns], base: usize, from: usize, to: usize| -> Result<Vec<u8>, OutputError> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        let mut buf = String::new();
        let mut row = |i: usize, r: usize, buf: &mut String| -> csv::Result<()> {
            let key = &*view.entity.keys[r];
            w.write_field(key)?;
            w.write_field(name_col.map_or(key, |c| text_cell(c, r, buf)))?;
            w.write_field(owner_col.map_or("", |c| text_cell(c, r, buf)))?;
            buf.clear();
            let _ = write!(buf, "{:.2}", arr[r]);
            w.write_field(&*buf)?;
            for set in by_set {
                w.write_field(match set.grades[i - base] {
                    0 => "",
                    g => set.names[g as usize - 1],
                })?;
                buf.clear();
                if let Some(x) = set.scores[i - base] {
                    write_cents(buf, x);
                }
                w.write_field(&*buf)?;
            }
            w.write_record(None::<&[u8]>)
        };
        for (i, &r) in ordered[from..to].iter().enumerate() {
            row(from + i, r, &mut buf)?;
        }
        w.into_inner().map_err(|e| OutputError::Csv(e.into_error().into()))
    };
    let dir = out_dir.join(output);
    std::fs::create_dir_all(&dir).map_err(OutputError::create_dir(&dir))?;
    let path = dir.join("accounts.csv");
    // Streamed block by block: a million accounts would otherwise be a gigabyte of cells.
    // Chunks of rows are formatted on every core, then written in order.
    let header = to_csv::<&str>(&labels, &[])?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(OutputError::write(&path))?);
    file.write_all(header.as_bytes()).map_err(OutputError::write(&path))?;
    const BLOCK: usize = 64 * 1024;
    const CHUNK: usize = 4096;
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let by_set = gather(&ordered[start..end]);
        let parts: Vec<Result<Vec<u8>, OutputError>> = (start..end)
            .step_by(CHUNK)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|from| list_csv(&by_set, start, from, (from + CHUNK).min(end)))
            .collect();
        for part in parts {
            file.write_all(&part?).map_err(OutputError::write(&path))?;
        }
    }
    file.flush().map_err(OutputError::write(&path))?;
    drop(file);
    tracing::debug!(rows = n, seconds = started.elapsed().as_secs_f64(), "Full list written.");
    let attached = n.min(report.attach_limit);
    let file_name = format!("{}-{}.csv", safe_file_name(&view.job.name), view.as_of);
    let attachment = if attached > 0 {
        let rows = list_csv(&gather(&ordered[..attached]), 0, 0, attached)?;
        let rows = String::from_utf8(rows)?;
        Some(Attachment {
            file_name: file_name.clone(),
            content_type: "text/csv".into(),
            body: format!("{header}{rows}"),
        })
    } else {
        None
    };

    let context = context! {
        charts => chart_list, breakdown => breakdown, red => red, forecast => forecast,
        since => since.map(|d| d.to_string()), movements => movements, top => top, renewals => renewals,
        attachment => context! { file => file_name, rows => attached, total => n, path => path.display().to_string() },
    };
    Ok(Built { context, inline, attachment, files: vec![path] })
}

/// The largest number of cents written from integers: below it, the double nearest a number
/// of cents differs from it by under 1e-5, far from any rounding boundary of 4 decimals.
const EXACT_CENTS: f64 = 1e13;

/// Writes `x` rounded to cents as [`write_float`] writes `(x * 100).round() / 100`, from the
/// cents as integers: the list writes a score for each account and rule set, and 9M
/// scores, two in three with cents, averaged 190 ns each as floats and 40 as integers.
fn write_cents(out: &mut String, x: f64) {
    let cents = (x * 100.0).round();
    // Too large, infinite or NaN.
    if cents.is_nan() || cents.abs() >= EXACT_CENTS {
        return write_float(out, cents / 100.0);
    }
    let (sign, c) = if cents <= -1.0 { ("-", -cents as i64) } else { ("", cents as i64) };
    let _ = match c % 100 {
        0 => write!(out, "{sign}{}", c / 100),
        f if f % 10 == 0 => write!(out, "{sign}{}.{}", c / 100, f / 10),
        f => write!(out, "{sign}{}.{f:02}", c / 100),
    };
}

/// `f`'s place in `f64::total_cmp`'s order, as an unsigned integer.
fn total_order(f: f64) -> u64 {
    let bits = f.to_bits();
    // Negative numbers: every bit flipped (larger magnitudes come first); others: the sign bit set.
    if bits >> 63 == 1 { !bits } else { bits | 1 << 63 }
}

/// A text column's value as text, read in place when the column holds text.
fn text_cell<'a>(column: &'a ArrayRef, row: usize, buf: &'a mut String) -> &'a str {
    if let Some(a) = column.as_any().downcast_ref::<StringArray>() {
        return if a.is_null(row) { "" } else { a.value(row) };
    }
    *buf = display_value(&cell(column, row));
    buf
}

/// One rule set's grades and scores in the list's order: `grades` index `names` from 1
/// (0: no grade).
struct SetColumns<'a> {
    names: Vec<&'a str>,
    grades: Vec<u32>,
    scores: Vec<Option<f64>>,
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
mod tests {
    use super::{total_order, write_cents};
    use crate::entity::format_float;
    use proptest::prelude::*;

    /// Cents written from integers read exactly as the float formatting they replace.
    fn check_cents(x: f64) {
        let mut cents = String::new();
        write_cents(&mut cents, x);
        assert_eq!(cents, format_float((x * 100.0).round() / 100.0), "cents {x:?}");
    }

    #[test]
    fn cents_match_float_formatting() {
        for x in [
            0.0,
            -0.0,
            0.004,
            -0.004,
            0.005,
            -0.005,
            0.01,
            -0.05,
            0.1,
            0.125,
            1.0,
            12.5,
            -12.5,
            3000.0,
            3e6,
            1234.56,
            -1234.56,
            99.995,
            1e10 + 0.01,
            9.99e10,
            1e11,
            1e13,
            -1e14,
            1.5e300,
            1e-300,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ] {
            check_cents(x);
        }
    }

    proptest! {
        #[test]
        fn cents_match_for_any_number(x in any::<f64>()) {
            check_cents(x);
        }

        #[test]
        fn cents_match_for_decimals(cents in -10_000_000_000_000i64..10_000_000_000_000i64, scale in 0u32..4) {
            check_cents(cents as f64 / 10f64.powi(scale as i32));
        }
    }

    /// The integer order is `f64::total_cmp`'s, signed zeros, infinities and NaN included.
    #[test]
    fn total_order_is_total_cmp() {
        let values = [
            f64::NEG_INFINITY,
            -3e6,
            -1.5,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            0.01,
            3000.0,
            3_000.000_000_1,
            3e6,
            f64::INFINITY,
            f64::NAN,
            -f64::NAN,
        ];
        for a in values {
            for b in values {
                assert_eq!(total_order(a).cmp(&total_order(b)), a.total_cmp(&b), "{a} against {b}");
            }
        }
    }
}
