//! A whole rule set as one SQL query, for `keepwell compile`: what the vectorised path
//! evaluates in the warehouse and then assembles in Rust (points summed, measures weighed,
//! the first class, grades, fired rules, tags and reasons), written out in SQL so that
//! another engine can run it. The query reads the entity as `kw_entity e` and each rule set
//! it depends on as the view `kw_rs_<set>`, and gives one row per account: `kw_key`,
//! `score`, `grade`, `fired`, `tags` and `reasons`, as [`crate::rules::eval`] would.
//!
//! What it cannot write is said, located: an expression outside the translatable subset
//! makes the rule set not portable (an error); a reason template that does not translate
//! only leaves that reason out (a warning).

use chrono::NaiveDate;

use super::Want;
use super::semantics::*;
use super::translate::Translator;
use crate::config::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::entity::Schema;
use crate::rules::lookup::Lookups;
use crate::rules::reason::Part;
use crate::rules::{Body, Expr, Points, RuleSet, Scoring};

/// How `as_of` is read by the compiled SQL: DuckDB's variable, which the script sets.
pub const AS_OF_VARIABLE: &str = "getvariable('as_of')";

/// One rule set compiled: its query and the rule sets it reads.
#[derive(Debug)]
pub struct SetQuery {
    pub name: String,
    pub sql: String,
    pub reads: Vec<String>,
}

/// Compiles `set` into one query over the entity whose key column is `key`; `None` when
/// some expression does not translate (each such one is an error in `diags`).
pub fn assemble(
    set: &RuleSet,
    schema: &Schema,
    lookups: &Lookups,
    as_of: NaiveDate,
    key: &str,
    templates: &minijinja::Environment,
    diags: &mut Diagnostics,
) -> Option<SetQuery> {
    let mut t = Translator::new(schema, &set.depends_on, as_of, lookups);
    t.as_of_sql = Some(AS_OF_VARIABLE.to_string());
    t.dep_views = true;
    let mut a = Assembler { t, set, templates, diags, ok: true, first: vec![format!("e.{} AS kw_key", ident(key))] };
    let last = match &set.body {
        Body::Points(_) => a.points(),
        Body::Scorecard(_) => a.scorecard(),
        Body::Classification { .. } => a.classification(),
        Body::Script(s) => a.script(&s.script),
    };
    if !a.ok {
        return None;
    }
    let mut reads: Vec<String> = a.t.deps_used.iter().map(|(s, _)| s.clone()).collect();
    reads.dedup();
    let joins: String = reads
        .iter()
        .map(|dep| {
            let view = ident(&super::dep_view(dep));
            format!("\n    LEFT JOIN {view} ON {view}.kw_key = e.{}", ident(key))
        })
        .collect();
    let first = format!("SELECT\n    {}\n  FROM kw_entity e{joins}", a.first.join(",\n    "));
    let range = set.score;
    let total = "kw_total";
    let score = format!(
        "CASE WHEN {total} IS NULL THEN NULL WHEN {total} < {min} THEN {min} WHEN {total} > {max} THEN {max} ELSE {total} END",
        min = float_literal(range.min).text,
        max = float_literal(range.max).text,
    );
    let mut grade = String::from("CASE WHEN score IS NULL THEN NULL");
    for g in &set.grades {
        let name = text_literal(&g.name).text;
        match g.min {
            Some(min) => grade.push_str(&format!(" WHEN score >= {} THEN {name}", float_literal(min).text)),
            None => grade.push_str(&format!(" ELSE {name}")),
        }
    }
    grade.push_str(" END");
    let sql = format!(
        "SELECT kw_key, score, coalesce(kw_grade, {grade}) AS grade, fired, tags, reasons\nFROM (\n  SELECT kw_key, {score} AS score, kw_grade, fired, tags, reasons\n  FROM (\n  SELECT kw_key, {last}\n  FROM (\n  {first}\n  ) kw_1\n  ) kw_2\n) kw_3"
    );
    Some(SetQuery { name: set.name.clone(), sql, reads })
}

struct Assembler<'a, 'd> {
    t: Translator<'a>,
    set: &'a RuleSet,
    templates: &'a minijinja::Environment<'a>,
    diags: &'d mut Diagnostics,
    ok: bool,
    /// The innermost select's columns, over the entity: each condition's flag, each
    /// value, each reason.
    first: Vec<String>,
}

/// A list of text built from entries kept when their condition holds, in order.
fn list(entries: &[(String, String)]) -> String {
    if entries.is_empty() {
        return EMPTY.to_string();
    }
    let items: Vec<String> =
        entries.iter().map(|(when, item)| format!("CASE WHEN {when} THEN [{item}] ELSE {EMPTY} END")).collect();
    format!("flatten([{}])", items.join(", "))
}

/// Terms added left to right, as Rust adds them: `(a + b + c)`, which both dialects read as
/// `((a + b) + c)` without the nested brackets that slow Spark's parser down.
fn sum(terms: &[String]) -> String {
    format!("({})", terms.join(" + "))
}

const EMPTY: &str = "CAST([] AS VARCHAR[])";

impl Assembler<'_, '_> {
    /// The SQL of `e` for the role it plays, or an error located at it.
    fn translate(&mut self, e: &Expr, want: Want, id: &str) -> String {
        let sql = match want {
            Want::Condition => self.t.condition(e),
            Want::Number => self.t.number(e),
            Want::Text => self.t.text(e),
        };
        sql.unwrap_or_else(|| {
            self.not_portable(e, id);
            "NULL".into()
        })
    }

    fn not_portable(&mut self, e: &Expr, id: &str) {
        self.ok = false;
        self.diags.push(
            Diagnostic::error(
                Code::NotPortable,
                e.map.start(e.source.trim().chars().count().max(1)),
                format!(
                    "`{id}` of rule set `{}` is not portable: `{}` is outside what keepwell writes as SQL",
                    self.set.name,
                    e.source.trim()
                ),
            )
            .with_hint("docs/scale-out.md lists what translates; `keepwell explain` shows which rules run in rhai"),
        );
    }

    /// A column of the first select, named `name`.
    fn column(&mut self, sql: String, name: String) -> String {
        self.first.push(format!("{sql} AS {name}"));
        name
    }

    fn flag(&mut self, e: &Expr, id: &str, i: usize) -> String {
        let sql = self.translate(e, Want::Condition, id);
        self.column(format!("(CASE WHEN {sql} THEN true ELSE false END)"), format!("kw_f{i}"))
    }

    /// The reason `template` as SQL in the first select, where `points` is its points;
    /// `None` (with a warning) when it does not translate.
    fn reason(&mut self, template: &str, at: &Expr, id: &str, points: &Points2, i: usize) -> Option<String> {
        let parts = match self.set.reason_parts.get(template) {
            Some(parts) => Some(parts.clone()),
            None => self
                .templates
                .get_template(template)
                .ok()
                .and_then(|t| crate::rules::reason::parse(t.source().trim_end_matches('\n'))),
        };
        let sql = parts.and_then(|parts| self.parts(&parts, points));
        match sql {
            Some(sql) => Some(self.column(sql, format!("kw_r{i}"))),
            None => {
                self.diags.push(
                    Diagnostic::warning(
                        Code::NotPortable,
                        at.map.start(at.source.trim().chars().count().max(1)),
                        format!(
                            "the reason of `{id}` in rule set `{}` does not translate to SQL: the compiled results leave it out",
                            self.set.name
                        ),
                    )
                    .with_hint("plain text, values, `| money` and `-value` translate; `if`, `join` and filters do not"),
                );
                None
            }
        }
    }

    fn parts(&mut self, parts: &[Part], points: &Points2) -> Option<String> {
        let mut out = Vec::new();
        for part in parts {
            out.push(match part {
                Part::Text(text) => text_literal(text).text,
                Part::Value(name) => match name.as_str() {
                    "points" => points.text(),
                    _ => shown(&self.value(name)?)?,
                },
                Part::Neg(name) => {
                    let v = self.value(name)?;
                    shown(&Sql::new(format!("(- {})", v.text), v.ty, true))?
                }
                Part::Money(name) => {
                    let v = self.value(name)?;
                    if !v.ty.numeric() {
                        return None;
                    }
                    money(&format!("coalesce(CAST({} AS DOUBLE), 0.0)", v.text))
                }
                Part::Join(name, separator) => {
                    let v = self.value(name)?;
                    if v.ty != Ty::TextList {
                        return None;
                    }
                    format!("coalesce(array_to_string({}, {}), '')", v.text, text_literal(separator).text)
                }
                Part::If(test, then, otherwise) => {
                    let v = self.value(test)?;
                    // As the template engine tests a value: empty text, zero, false, a
                    // missing value and an empty list are false.
                    let truthy = match v.ty {
                        Ty::Text => format!("coalesce({}, '') <> ''", v.text),
                        Ty::Int | Ty::Float => format!("coalesce({} <> 0, false)", v.text),
                        Ty::Bool => format!("coalesce({}, false)", v.text),
                        Ty::Date | Ty::Timestamp => format!("{} IS NOT NULL", v.text),
                        Ty::TextList => format!("coalesce(len({}), 0) > 0", v.text),
                        Ty::Null => "false".into(),
                    };
                    let (then, otherwise) = (self.parts(then, points)?, self.parts(otherwise, points)?);
                    format!("(CASE WHEN {truthy} THEN {then} ELSE {otherwise} END)")
                }
            });
        }
        Some(if out.is_empty() { "''".into() } else { format!("concat({})", out.join(", ")) })
    }

    /// A value a reason shows: a column or a field of a rule set read.
    fn value(&mut self, name: &str) -> Option<Sql> {
        match name.split_once('.') {
            Some((set, field)) => self.t.field(set, field),
            None if self.t.schema.get(name) == Some(&crate::entity::ColumnType::List) => {
                Some(Sql::new(format!("e.{}", ident(name)), Ty::TextList, true))
            }
            None => self.t.variable(name),
        }
    }

    fn points(&mut self) -> String {
        let Body::Points(rules) = &self.set.body else { unreachable!("a points rule set") };
        let (mut total, mut fired, mut tags, mut reasons) =
            (vec![float_literal(self.set.score.base).text], Vec::new(), Vec::new(), Vec::new());
        let rules: Vec<_> = rules.iter().filter(|r| r.enabled).collect();
        let mut flags = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let f = self.flag(&rule.when, &rule.id, i);
            let points = match &rule.points {
                Points::Fixed(p) => Points2::Fixed(*p),
                Points::Computed(e) => {
                    let sql = self.translate(e, Want::Number, &rule.id);
                    Points2::Column(self.column(format!("coalesce(CAST({sql} AS DOUBLE), 0.0)"), format!("kw_p{i}")))
                }
            };
            total.push(format!("CASE WHEN {f} THEN {} ELSE 0.0 END", points.sql()));
            fired.push((f.clone(), text_literal(&rule.id).text));
            // A tag is listed once, where the first rule that fired carries it.
            let mut seen: Vec<&str> = Vec::new();
            for tag in &rule.tags {
                if seen.contains(&&**tag) {
                    continue;
                }
                seen.push(tag);
                let earlier: Vec<&String> =
                    rules[..i].iter().zip(&flags).filter(|(r, _)| r.tags.contains(tag)).map(|(_, f)| f).collect();
                let when = match earlier.is_empty() {
                    true => f.clone(),
                    false => {
                        format!("{f} AND NOT ({})", earlier.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(" OR "))
                    }
                };
                tags.push((when, text_literal(tag).text));
            }
            if let Some(template) = &rule.reason
                && let Some(r) = self.reason(template, &rule.when, &rule.id, &points, i)
            {
                reasons.push((f.clone(), r));
            }
            flags.push(f);
        }
        format!(
            "{} AS kw_total, CAST(NULL AS VARCHAR) AS kw_grade, {} AS fired, {} AS tags, {} AS reasons",
            sum(&total),
            list(&fired),
            list(&tags),
            list(&reasons)
        )
    }

    fn scorecard(&mut self) -> String {
        let Body::Scorecard(measures) = &self.set.body else { unreachable!("a scorecard") };
        let (mut weighted, mut weights) = (vec!["0.0".to_string()], vec!["0.0".to_string()]);
        let (mut fired, mut reasons, mut wrong) = (Vec::new(), Vec::new(), Vec::new());
        for (i, m) in measures.iter().enumerate() {
            let clamp = |s: f64| float_literal(s.clamp(0.0, 100.0)).text;
            let score = match &m.scoring {
                Scoring::Direct(e) => {
                    let v = self.translate(e, Want::Number, &m.id);
                    format!(
                        "CASE WHEN {v} IS NULL THEN NULL WHEN {v} < 0.0 THEN 0.0 WHEN {v} > 100.0 THEN 100.0 ELSE {v} END"
                    )
                }
                Scoring::Bands { value, bands } => {
                    let v = self.translate(value, Want::Number, &m.id);
                    let mut case = format!("CASE WHEN {v} IS NULL THEN NULL");
                    for (min, s) in bands {
                        match min {
                            Some(min) => {
                                case.push_str(&format!(" WHEN {v} >= {} THEN {}", float_literal(*min).text, clamp(*s)))
                            }
                            None => case.push_str(&format!(" ELSE {}", clamp(*s))),
                        }
                    }
                    case + " END"
                }
                Scoring::Map { value, map } => {
                    let v = self.translate(value, Want::Text, &m.id);
                    let keys: Vec<String> = map.iter().map(|(k, _)| text_literal(k).text).collect();
                    // A value the map does not list is an error for the account in rhai:
                    // no score and no grade.
                    if !keys.is_empty() {
                        wrong.push(self.column(
                            format!("({v} IS NOT NULL AND {v} NOT IN ({}))", keys.join(", ")),
                            format!("kw_x{i}"),
                        ));
                    }
                    let mut case = format!("CASE WHEN {v} IS NULL THEN NULL");
                    for (k, s) in map {
                        case.push_str(&format!(" WHEN {v} = {} THEN {}", text_literal(k).text, clamp(*s)));
                    }
                    case + " END"
                }
            };
            let s = self.column(format!("CAST({score} AS DOUBLE)"), format!("kw_m{i}"));
            let w = float_literal(m.weight).text;
            weighted.push(format!("CASE WHEN {s} IS NULL THEN 0.0 ELSE {s} * {w} END"));
            weights.push(format!("CASE WHEN {s} IS NULL THEN 0.0 ELSE {w} END"));
            let below = format!("{s} < {}", float_literal(m.reason_below).text);
            fired.push((below.clone(), text_literal(&m.id).text));
            if let Some(template) = &m.reason
                && let Some(r) = self.reason(template, m.scoring.expr(), &m.id, &Points2::Column(s.clone()), i)
            {
                reasons.push((below, r));
            }
        }
        let wrong = match wrong.is_empty() {
            true => String::new(),
            false => format!("WHEN {} THEN NULL ", wrong.join(" OR ")),
        };
        let (weighted, weights) = (sum(&weighted), sum(&weights));
        format!(
            "CASE {wrong}WHEN {weights} > 0.0 THEN {weighted} / {weights} END AS kw_total, CAST(NULL AS VARCHAR) AS kw_grade, {} AS fired, {EMPTY} AS tags, {} AS reasons",
            list(&fired),
            list(&reasons)
        )
    }

    fn classification(&mut self) -> String {
        let Body::Classification { classes, default, default_reason } = &self.set.body else {
            unreachable!("a classification")
        };
        let (mut grade, mut fired, mut reasons) = (String::from("CASE"), String::from("CASE"), String::from("CASE"));
        for (i, c) in classes.iter().enumerate() {
            let f = self.flag(&c.when, &c.id, i);
            let id = text_literal(&c.id).text;
            grade.push_str(&format!(" WHEN {f} THEN {id}"));
            fired.push_str(&format!(" WHEN {f} THEN [{id}]"));
            let reason = c.reason.as_ref().and_then(|t| self.reason(t, &c.when, &c.id, &Points2::Fixed(0.0), i));
            match reason {
                Some(r) => reasons.push_str(&format!(" WHEN {f} THEN [{r}]")),
                None => reasons.push_str(&format!(" WHEN {f} THEN {EMPTY}")),
            }
        }
        let default_grade = default.as_ref().map_or("CAST(NULL AS VARCHAR)".into(), |d| text_literal(d).text);
        let default_reason = default_reason
            .as_ref()
            .and_then(|t| {
                let at = classes.last().map(|c| &c.when)?;
                self.reason(t, at, "default", &Points2::Fixed(0.0), classes.len())
            })
            .map_or(EMPTY.to_string(), |r| format!("[{r}]"));
        if classes.is_empty() {
            return format!(
                "CAST(NULL AS DOUBLE) AS kw_total, {default_grade} AS kw_grade, {EMPTY} AS fired, {EMPTY} AS tags, {default_reason} AS reasons"
            );
        }
        format!(
            "CAST(NULL AS DOUBLE) AS kw_total, {grade} ELSE {default_grade} END AS kw_grade, {fired} ELSE {EMPTY} END AS fired, {EMPTY} AS tags, {reasons} ELSE {default_reason} END AS reasons"
        )
    }

    fn script(&mut self, script: &Expr) -> String {
        let Some(s) = self.t.script(script) else {
            self.not_portable(script, "script");
            return String::new();
        };
        let score = s.score.clone().unwrap_or_else(|| "CAST(NULL AS DOUBLE)".into());
        let grade = s.grade.clone().unwrap_or_else(|| "CAST(NULL AS VARCHAR)".into());
        self.column(score, "kw_s".into());
        self.column(grade, "kw_g".into());
        let mut lists = Vec::new();
        for field in [super::ListField::Fired, super::ListField::Tags, super::ListField::Reasons] {
            let name = match field {
                super::ListField::Fired => "fired",
                super::ListField::Tags => "tags",
                super::ListField::Reasons => "reasons",
            };
            let sql = s.lists.iter().find(|(f, _)| *f == field).map(|(_, sql)| sql.clone());
            let column = self
                .column(sql.map_or(EMPTY.to_string(), |sql| format!("coalesce({sql}, {EMPTY})")), format!("kw_{name}"));
            lists.push(format!("{column} AS {name}"));
        }
        // Neither a score nor a grade is an error for the account: no results.
        format!("kw_s AS kw_total, kw_g AS kw_grade, {}", lists.join(", "))
    }
}

/// The points a reason shows: the rule's fixed points, or the column holding them.
enum Points2 {
    Fixed(f64),
    Column(String),
}

impl Points2 {
    fn sql(&self) -> String {
        match self {
            Points2::Fixed(p) => float_literal(*p).text,
            Points2::Column(c) => c.clone(),
        }
    }

    /// As reasons write a number: whole numbers without a decimal point.
    fn text(&self) -> String {
        match self {
            Points2::Fixed(p) => {
                let mut out = String::new();
                crate::rules::reason::write_number(&mut out, *p);
                text_literal(&out).text
            }
            Points2::Column(c) => float_text(c),
        }
    }
}

/// A value as a reason writes it; a missing one reads `none`, as the template engine has it.
fn shown(v: &Sql) -> Option<String> {
    let text = match v.ty {
        Ty::Text => v.text.clone(),
        Ty::Int => format!("CAST({} AS VARCHAR)", v.text),
        Ty::Date => format!("strftime({}, '%Y-%m-%d')", v.text),
        Ty::Float => return Some(float_text(&v.text)),
        _ => return None,
    };
    Some(format!("coalesce({text}, 'none')"))
}

/// A double as reasons write it: whole numbers (below 10^15) without a decimal point, others
/// in their shortest form.
fn float_text(x: &str) -> String {
    format!(
        "(CASE WHEN {x} IS NULL THEN 'none' WHEN abs({x}) < 1e15 AND {x} % 1 = 0 THEN CAST(CAST({x} AS BIGINT) AS VARCHAR) ELSE CAST({x} AS VARCHAR) END)"
    )
}

/// `money`: whole units, rounded half away from zero, with thousands separators.
fn money(x: &str) -> String {
    let n = format!("round({x})");
    format!("concat(CASE WHEN {n} < 0 THEN '-' ELSE '' END, '$', format('{{:,}}', abs(CAST({n} AS BIGINT))))")
}
