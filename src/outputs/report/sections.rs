//! The report's sections, each from the rule sets the job's `report:` names: ARR by grade
//! and category, the red trend, the retained ARR forecast, movements since the previous
//! run, the top accounts at risk and this quarter's renewals.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use minijinja::{Value, context};
use rhai::Scope;

use super::charts::{self, Layout, Series};
use super::{Charts, Ctx, MOVEMENT_ROWS, TOP_REASONS, capitalize, categories};
use crate::entity::display_value;
use crate::outputs::OutputError;
use crate::rules::eval::results::{evaluate_condition, fill_scope, reads_of};

/// ARR by risk grade within each category, as a stacked chart and a table.
pub(super) fn breakdown(c: Ctx, charts: &mut Charts) -> Result<Value, OutputError> {
    let Ctx { report, sets, n, arr, .. } = c;
    let amount = &report.wording.amount;
    let mut breakdown = Value::UNDEFINED;
    if let Some(risk) = report.risk.as_deref().and_then(|r| sets.index(r)) {
        let risk_grades = sets.grades(risk);
        let (categories, cat_of) = categories(sets, report, n);
        let mut cells = vec![vec![0.0; categories.len()]; risk_grades.len()];
        let mut counts = vec![vec![0usize; categories.len()]; risk_grades.len()];
        for (r, (cat, value)) in cat_of.iter().zip(arr).enumerate() {
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
            Some(c) => format!("{amount} by {} grade and {c} category", report.risk.as_deref().unwrap_or("risk")),
            None => format!("{amount} by {} grade", report.risk.as_deref().unwrap_or("risk")),
        };
        let labels: Vec<String> = categories
            .iter()
            .map(|c| if report.category.is_some() { format!("{category_label} {c}") } else { c.clone() })
            .collect();
        charts.add("arr-by-grade", &title, &labels, &series, Layout::Stacked)?;
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

    Ok(breakdown)
}

/// The red grade's ARR today and over the last runs, with its trend chart.
pub(super) fn red(c: Ctx, charts: &mut Charts) -> Result<Value, OutputError> {
    let Ctx { view, report, sets, n, arr, output, .. } = c;
    let amount = &report.wording.amount;
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
        let title = format!(
            "{} {amount} ({} {}) over the last {} runs",
            capitalize(&g.grade),
            g.rule_set,
            g.grade,
            points.len()
        );
        let series = [Series {
            name: format!("{} {amount}", g.grade),
            values: points.iter().map(|p| p.1).collect(),
            color: charts::grade_color(&g.grade, 0),
        }];
        let labels: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
        charts.add("red-arr-trend", &title, &labels, &series, Layout::Line)?;
        red = context! { grade => g.grade.clone(), rule_set => g.rule_set.clone(), arr => today, accounts => rows.len(),
        previous_arr => previous, change => previous.map(|p| today - p),
        history => points.iter().map(|(d, v)| context! { day => d, arr => v }).collect::<Vec<_>>() };
    }

    Ok(red)
}

/// Retained ARR forecast from the forecast rule set's score, per category when there is one.
pub(super) fn forecast(c: Ctx, charts: &mut Charts) -> Result<Value, OutputError> {
    let Ctx { view, report, sets, n, arr, .. } = c;
    let amount = &report.wording.amount;
    let mut forecast = Value::UNDEFINED;
    if let Some(set) = report.forecast.as_deref().and_then(|f| sets.index(f)) {
        let (categories, cat_of) = categories(sets, report, n);
        let mut today = vec![0.0; categories.len()];
        let mut kept = vec![0.0; categories.len()];
        for (r, (cat, value)) in cat_of.iter().zip(arr).enumerate() {
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
            Series { name: format!("{amount} today"), values: today.clone(), color: charts::PALETTE[3] },
            Series { name: "expected to be kept".into(), values: kept.clone(), color: charts::PALETTE[0] },
        ];
        let title = report.wording.fill(&report.wording.titles.forecast, "", "");
        charts.add("retained-arr", &title, &labels, &series, Layout::Grouped)?;
        let total: f64 = today.iter().sum();
        let retained: f64 = kept.iter().sum();
        forecast = context! {
            arr => total, retained => retained, percent => if total > 0.0 { retained * 100.0 / total } else { 0.0 },
            categories => labels.iter().enumerate().map(|(i, l)| context! { category => l, arr => today[i], retained => kept[i],
                percent => if today[i] > 0.0 { kept[i] * 100.0 / today[i] } else { 0.0 } }).collect::<Vec<_>>(),
        };
    }

    Ok(forecast)
}

/// Movements since the previous run: new reds, recoveries, stage changes, newly expected churn.
pub(super) fn movements(c: Ctx) -> Vec<Value> {
    let Ctx { view, report, sets, n, arr, .. } = c;
    let words = &report.wording;
    let mut movements = Vec::new();
    let mut moved = |title: String, rows: Vec<(usize, String)>| {
        let total: f64 = rows.iter().map(|(r, _)| arr[*r]).sum();
        let count = rows.len();
        let mut rows = rows;
        rows.sort_by(|a, b| arr[b.0].total_cmp(&arr[a.0]));
        let shown: Vec<Value> = rows
            .iter()
            .take(MOVEMENT_ROWS)
            .map(|(r, detail)| context! { account => c.account(*r), detail => detail })
            .collect();
        movements.push(context! { title => title, count => count, arr => total, accounts => shown, more => count.saturating_sub(MOVEMENT_ROWS) });
    };
    let previous_grade = |set: &str, r: usize| view.previous.get(set, &view.entity.keys[r]).map(|p| p.grade);
    if view.previous.as_of().is_some() {
        if let Some(g) = &report.red
            && let Some(set) = sets.index(&g.rule_set)
        {
            let mut new_reds = Vec::new();
            let mut recoveries = Vec::new();
            for r in 0..n {
                let now = sets.grade(set, r) == Some(g.grade.as_str());
                match previous_grade(&g.rule_set, r) {
                    // A recovery is a move to a better grade, not out of the order
                    // (`churned` to `not_in_window` is no recovery).
                    Some(before) if before == Some(g.grade.as_str()) && g.better(sets.grade(set, r)) => {
                        recoveries.push((r, format!("now {}", sets.grade(set, r).unwrap_or("ungraded"))))
                    }
                    Some(before) if before != Some(g.grade.as_str()) && now => {
                        new_reds.push((r, format!("was {}", before.unwrap_or("ungraded"))))
                    }
                    None if now => new_reds.push((r, "new account".to_string())),
                    _ => {}
                }
            }
            moved(words.fill(&words.titles.new_red, &g.grade, &g.rule_set), new_reds);
            moved(words.fill(&words.titles.recoveries, &g.grade, &g.rule_set), recoveries);
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
            moved(words.fill(&words.titles.stage_changes, "", name), changes);
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
            moved(words.fill(&words.titles.newly_expected_churn, &g.grade, &g.rule_set), newly);
        }
    }

    movements
}

/// The accounts at risk with the most ARR, each with its first reasons.
pub(super) fn top(c: Ctx) -> Vec<Value> {
    let Ctx { view, report, sets, n, arr, .. } = c;
    let mut top = Vec::new();
    if let Some(t) = &report.top {
        let results = view.results();
        let hits = evaluate_condition(&results, &t.when);
        let mut listed: Vec<usize> = (0..n).filter(|&r| matches!(hits[r], Ok(true))).collect();
        listed.sort_by(|&a, &b| arr[b].total_cmp(&arr[a]));
        listed.truncate(t.limit);
        // Reasons only for the accounts shown.
        let reads = reads_of(t.reasons.as_ref());
        let plan = reads.plan(&results);
        let mut scope = Scope::new();
        let listed: Vec<(usize, Vec<String>)> = listed
            .into_iter()
            .map(|r| {
                fill_scope(&mut scope, &results, r, &plan);
                let reasons = t
                    .reasons
                    .as_ref()
                    .and_then(|e| results.eval(e, &mut scope).ok())
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
                context! { account => c.account(r), grade => risk.and_then(|s| sets.grade(s, r)), reasons => reasons, more_reasons => more }
            })
            .collect();
    }

    top
}

/// Renewals this quarter, by risk grade.
pub(super) fn renewals(c: Ctx) -> Value {
    let Ctx { view, report, sets, arr, .. } = c;
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
            let Some(day) = crate::rules::time::moment(&view.entity.value(col, r)).map(|t| t.date()) else { continue };
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

    renewals
}
