//! Raw rule files to validated, compiled [`RuleSet`]s, collecting every problem at once.

mod expr;

pub use expr::{compile_expr, compile_script};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use minijinja::Environment;
use rhai::Engine;
use serde_saphyr::Spanned;

use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, Diagnostics, SourceFile, Span, did_you_mean};
use crate::config::yaml::{self, TextMap};
use crate::entity::{ColumnType, Schema};
use crate::rules::raw::{RawPoints, RawRule, RawRuleSet, RawScore};
use crate::rules::{Body, Class, Expr, Grade, Measure, Points, Rule, RuleSet, ScoreRange, Scoring};

/// Names every rule expression may read besides the entity's columns.
pub const AS_OF: &str = "as_of";
pub const PREV: &str = "prev";

/// Parsed rule files, keyed by rule-set name.
#[derive(Debug, Default)]
pub struct RuleSetSources {
    pub sets: Vec<(String, RawRuleSet, SourceFile)>,
    /// Names of rule files that did not parse: already reported, so not "unknown" elsewhere.
    pub broken: Vec<String>,
    /// The project folder: scripts are read only from inside it.
    pub root: std::path::PathBuf,
}

impl RuleSetSources {
    /// Reads every `*.yaml` file in `dir`; a file that does not parse is reported and skipped.
    pub fn load(root: &Path, dir: &Path) -> (Self, Diagnostics) {
        let mut diags = Diagnostics::default();
        let mut sources = RuleSetSources { root: root.to_path_buf(), ..RuleSetSources::default() };
        let mut paths: Vec<_> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect(),
            Err(_) => Vec::new(),
        };
        paths.sort();
        for path in paths {
            let display = crate::config::project::display_path(root, &path);
            // A rule file linked from outside the project is not read (its text could reach
            // a diagnostic).
            if let Err(e) = crate::config::project::inside(root, &path) {
                diags.push(Diagnostic::error(
                    Code::Unreadable,
                    Span::file_only(&display, &path),
                    format!("cannot read `{display}`: {e}"),
                ));
                sources.broken.extend(path.file_stem().map(|s| s.to_string_lossy().to_string()));
                continue;
            }
            match yaml::read::<RawRuleSet>(&path, &display) {
                Ok((raw, file)) => {
                    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                    let name = raw.name.as_ref().map_or(stem, |n| n.value.clone());
                    if let Some((_, _, other)) = sources.sets.iter().find(|(n, _, _)| *n == name) {
                        let span =
                            raw.name.as_ref().map_or_else(|| file.start(), |n| yaml::span_of(&file, n, name.len()));
                        diags.push(
                            Diagnostic::error(Code::Duplicate, span, format!("rule set `{name}` is defined twice"))
                                .with_hint(format!("`{}` defines it too; rename one of them", other.display)),
                        );
                        continue;
                    }
                    sources.sets.push((name, raw, file));
                }
                Err(d) => {
                    diags.push(*d);
                    sources.broken.extend(path.file_stem().map(|s| s.to_string_lossy().to_string()));
                }
            }
        }
        (sources, diags)
    }

    /// Every rule set name, including those whose file did not parse.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sets.iter().map(|(n, _, _)| n.as_str()).chain(self.broken.iter().map(String::as_str))
    }
}

/// Compiles the rule sets `wanted` names (and what they depend on), in dependency order.
pub fn compile_rule_sets(
    sources: &RuleSetSources,
    wanted: &[Spanned<String>],
    wanted_file: Option<&SourceFile>,
    schema: &Schema,
    engine: &Engine,
    templates: &mut Environment<'static>,
) -> (Vec<RuleSet>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let by_name: HashMap<&str, usize> = sources.sets.iter().enumerate().map(|(i, (n, _, _))| (n.as_str(), i)).collect();

    for w in wanted {
        if !by_name.contains_key(w.value.as_str()) && !sources.broken.contains(&w.value) {
            let span = wanted_file.map_or_else(Span::none, |f| yaml::span_of(f, w, w.value.len()));
            diags.push(
                Diagnostic::error(Code::UnknownRuleSet, span, format!("unknown rule set `{}`", w.value)).with_hint_opt(
                    did_you_mean(&w.value, sources.names())
                        .or_else(|| Some("rule sets are the files in rules/".into())),
                ),
            );
        }
    }
    check_dependencies(sources, &by_name, &mut diags);
    // With a cycle, the sets are still compiled (in file order) so every other problem shows.
    let order = topological_order(sources, &by_name, &mut diags).unwrap_or_else(|| (0..sources.sets.len()).collect());
    let needed = needed_sets(sources, &by_name, wanted);
    let mut compiled = Vec::new();
    for i in order.into_iter().filter(|i| needed.contains(i)) {
        let (name, raw, file) = &sources.sets[i];
        let mut compiler = SetCompiler {
            name,
            file,
            schema,
            engine,
            templates,
            diags: &mut diags,
            deps: &raw.depends_on,
            root: &sources.root,
        };
        if let Some(set) = compiler.compile(raw) {
            compiled.push(set);
        }
    }
    (compiled, diags)
}

fn check_dependencies(sources: &RuleSetSources, by_name: &HashMap<&str, usize>, diags: &mut Diagnostics) {
    for (name, raw, file) in &sources.sets {
        for dep in &raw.depends_on {
            if sources.broken.contains(&dep.value) {
                continue;
            }
            if !by_name.contains_key(dep.value.as_str()) {
                diags.push(
                    Diagnostic::error(
                        Code::UnknownRuleSet,
                        yaml::span_of(file, dep, dep.value.len()),
                        format!("rule set `{name}` depends on unknown rule set `{}`", dep.value),
                    )
                    .with_hint_opt(did_you_mean(&dep.value, by_name.keys().copied())),
                );
            } else if dep.value == *name {
                diags.push(Diagnostic::error(
                    Code::Cycle,
                    yaml::span_of(file, dep, dep.value.len()),
                    format!("rule set `{name}` depends on itself"),
                ));
            }
        }
    }
}

/// Kahn's algorithm over `depends_on`; a cycle is reported once, naming its members.
fn topological_order(
    sources: &RuleSetSources,
    by_name: &HashMap<&str, usize>,
    diags: &mut Diagnostics,
) -> Option<Vec<usize>> {
    let n = sources.sets.len();
    let deps: Vec<Vec<usize>> = sources
        .sets
        .iter()
        .map(|(_, raw, _)| raw.depends_on.iter().filter_map(|d| by_name.get(d.value.as_str()).copied()).collect())
        .collect();
    let mut remaining: Vec<usize> = deps.iter().map(|d| d.iter().filter(|&&x| x != usize::MAX).count()).collect();
    let mut order = Vec::with_capacity(n);
    let mut done = vec![false; n];
    loop {
        let ready: Vec<usize> = (0..n).filter(|&i| !done[i] && remaining[i] == 0).collect();
        if ready.is_empty() {
            break;
        }
        for i in ready {
            done[i] = true;
            order.push(i);
            for (j, d) in deps.iter().enumerate() {
                remaining[j] -= d.iter().filter(|&&x| x == i).count();
            }
        }
    }
    if order.len() == n {
        return Some(order);
    }
    let in_cycle: Vec<usize> = (0..n).filter(|&i| !done[i] && deps[i].iter().any(|&d| d != i)).collect();
    let Some(&first) = in_cycle.first() else {
        return None; // only self-dependencies, already reported
    };
    let path = cycle_path(first, &deps, &done);
    let names: Vec<&str> = path.iter().map(|&i| sources.sets[i].0.as_str()).collect();
    let (name, raw, file) = &sources.sets[path[0]];
    let next = sources.sets[path[1 % path.len()]].0.as_str();
    let span = raw
        .depends_on
        .iter()
        .find(|d| d.value == next)
        .map_or_else(|| file.start(), |d| yaml::span_of(file, d, d.value.len()));
    diags.push(
        Diagnostic::error(
            Code::Cycle,
            span,
            format!("rule sets depend on each other in a cycle: {}", names.join(" -> ")),
        )
        .with_hint(format!("remove one of these dependencies, for example `{next}` from the depends_on of `{name}`")),
    );
    None
}

/// Follows unfinished dependencies from `start` until a set repeats; returns the loop, closed.
fn cycle_path(start: usize, deps: &[Vec<usize>], done: &[bool]) -> Vec<usize> {
    let mut path = vec![start];
    let mut current = start;
    loop {
        let Some(&next) = deps[current].iter().find(|&&d| !done[d] && d != current) else {
            return path;
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next);
        current = next;
    }
}

fn needed_sets(sources: &RuleSetSources, by_name: &HashMap<&str, usize>, wanted: &[Spanned<String>]) -> HashSet<usize> {
    let mut needed = HashSet::new();
    let mut stack: Vec<usize> = wanted.iter().filter_map(|w| by_name.get(w.value.as_str()).copied()).collect();
    while let Some(i) = stack.pop() {
        if needed.insert(i) {
            stack.extend(sources.sets[i].1.depends_on.iter().filter_map(|d| by_name.get(d.value.as_str()).copied()));
        }
    }
    needed
}

struct SetCompiler<'a> {
    name: &'a str,
    file: &'a SourceFile,
    schema: &'a Schema,
    engine: &'a Engine,
    templates: &'a mut Environment<'static>,
    diags: &'a mut Diagnostics,
    deps: &'a [Spanned<String>],
    root: &'a Path,
}

impl SetCompiler<'_> {
    /// The score's base and bounds: numbers, and the bounds in order (clamping a score
    /// between bounds the wrong way round has no answer).
    fn score_range(&mut self, raw: &RawScore) -> ScoreRange {
        let value = |v: &Option<Spanned<f64>>| v.as_ref().map(|s| s.value);
        let mut range = ScoreRange {
            base: value(&raw.base).unwrap_or(0.0),
            min: value(&raw.min).unwrap_or(f64::NEG_INFINITY),
            max: value(&raw.max).unwrap_or(f64::INFINITY),
        };
        for (field, v) in [("base", &raw.base), ("min", &raw.min), ("max", &raw.max)] {
            if let Some(v) = v.as_ref().filter(|v| v.value.is_nan() || (field == "base" && v.value.is_infinite())) {
                self.diags.push(Diagnostic::error(
                    Code::ScoreRange,
                    yaml::span_of(self.file, v, 1),
                    format!("the score's {field} of rule set `{}` is not a number", self.name),
                ));
                range = ScoreRange { base: 0.0, min: f64::NEG_INFINITY, max: f64::INFINITY };
            }
        }
        if let (Some(min), Some(max)) = (&raw.min, &raw.max)
            && min.value > max.value
        {
            self.diags.push(
                Diagnostic::error(
                    Code::ScoreRange,
                    yaml::span_of(self.file, min, 1),
                    format!(
                        "the score's min ({}) of rule set `{}` is above its max ({})",
                        min.value, self.name, max.value
                    ),
                )
                .with_hint("swap them: `min` is the lowest score the set gives, `max` the highest"),
            );
            range = ScoreRange { base: range.base, min: f64::NEG_INFINITY, max: f64::INFINITY };
        }
        range
    }

    fn compile(&mut self, raw: &RawRuleSet) -> Option<RuleSet> {
        let errors_before = self.diags.errors();
        let score = self.score_range(&raw.score);
        let grades = self.grades(raw);
        let body = self.body(raw)?;
        let mut set = RuleSet {
            name: self.name.to_string(),
            description: raw.description.clone(),
            file: self.file.clone(),
            depends_on: raw.depends_on.iter().map(|d| d.value.clone()).collect(),
            score,
            grades,
            body,
            inputs: Vec::new(),
            reason_vars: HashMap::new(),
            reason_parts: HashMap::new(),
            reads_prev: false,
        };
        let mut inputs: Vec<String> = Vec::new();
        for e in set.expressions() {
            for r in &e.reads {
                if self.schema.get(r).is_some() && !inputs.contains(r) {
                    inputs.push(r.clone());
                }
            }
        }
        let mut reads_prev = set.expressions().iter().any(|e| e.reads.iter().any(|r| r == PREV));
        let mut reason_vars = HashMap::new();
        let mut reason_parts = HashMap::new();
        for name in set.reason_templates() {
            if let Ok(t) = self.templates.get_template(name) {
                if let Some(parts) = super::reason::parse(t.source()) {
                    reason_parts.insert(name.to_string(), parts);
                }
                let mut vars: Vec<String> = t.undeclared_variables(false).into_iter().collect();
                vars.sort();
                for v in &vars {
                    if self.schema.get(v).is_some() && !inputs.contains(v) {
                        inputs.push(v.clone());
                    }
                }
                reads_prev |= vars.iter().any(|v| v == PREV);
                reason_vars.insert(name.to_string(), vars);
            }
        }
        set.inputs = inputs;
        set.reason_vars = reason_vars;
        set.reason_parts = reason_parts;
        set.reads_prev = reads_prev;
        (self.diags.errors() == errors_before).then_some(set)
    }

    /// Exactly one of `rules`, `measures`, `classes` and `script` says what the set computes.
    fn body(&mut self, raw: &RawRuleSet) -> Option<Body> {
        let kinds: Vec<&str> = [
            (!raw.rules.is_empty(), "rules"),
            (!raw.measures.is_empty(), "measures"),
            (!raw.classes.is_empty(), "classes"),
            (raw.script.is_some(), "script"),
        ]
        .into_iter()
        .filter_map(|(present, k)| present.then_some(k))
        .collect();
        if kinds.len() > 1 {
            // Point at the second kind's key, which is the one to move elsewhere.
            let key = format!("{}:", kinds[1]);
            let span = self
                .file
                .text
                .lines()
                .position(|l| l.starts_with(&key))
                .map_or_else(|| self.file.start(), |i| self.file.span(i + 1, 1, kinds[1].len()));
            self.diags.push(
                Diagnostic::error(Code::RuleSetKind, span, format!("rule set `{}` has {}", self.name, kinds.join(" and ")))
                    .with_hint("a rule set is one kind: points `rules`, scorecard `measures`, classification `classes`, or a `script`; split it in two"),
            );
            return None;
        }
        match kinds.first().copied() {
            Some("measures") => self.measures(raw).map(Body::Scorecard),
            Some("classes") => self.classes(raw),
            Some("script") => self.script(raw.script.as_ref().expect("script is set")),
            _ => Some(Body::Points(self.rules(raw))),
        }
    }

    fn rules(&mut self, raw: &RawRuleSet) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for r in &raw.rules {
            if !self.unique_id(&mut seen, &r.id, "rule") {
                continue;
            }
            if let Some(rule) = self.rule(r) {
                rules.push(rule);
            }
        }
        rules
    }

    /// Reports a repeated id; `true` when `id` is new.
    fn unique_id(&mut self, seen: &mut HashMap<String, usize>, id: &Spanned<String>, what: &str) -> bool {
        if let Some(line) = seen.get(&id.value) {
            self.diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    yaml::span_of(self.file, id, id.value.len()),
                    format!("duplicate {what} id `{}` in rule set `{}`", id.value, self.name),
                )
                .with_hint(format!("the first {what} with this id is on line {line}")),
            );
            return false;
        }
        seen.insert(id.value.clone(), id.referenced.line() as usize);
        true
    }

    fn measures(&mut self, raw: &RawRuleSet) -> Option<Vec<Measure>> {
        let mut measures = Vec::new();
        let mut seen = HashMap::new();
        let mut ok = true;
        for m in &raw.measures {
            if !self.unique_id(&mut seen, &m.id, "measure") {
                ok = false;
                continue;
            }
            let what = format!("measure `{}`", m.id.value);
            if m.weight.value <= 0.0 {
                self.diags.push(
                    Diagnostic::error(
                        Code::Weight,
                        yaml::span_of(self.file, &m.weight, m.weight.value.to_string().len()),
                        format!("the weight of {what} must be above 0"),
                    )
                    .with_hint("to switch a measure off, delete it or comment it out"),
                );
                ok = false;
            }
            let scoring = match (&m.score, &m.value, m.bands.is_empty(), &m.map) {
                (Some(score), None, true, None) => self.expression(score, &what).map(Scoring::Direct),
                (None, Some(value), false, None) => {
                    let bands = self.bands(&m.bands, &what);
                    self.expression(value, &what).zip(bands).map(|(value, bands)| Scoring::Bands { value, bands })
                }
                (None, Some(value), true, Some(map)) => self
                    .expression(value, &what)
                    .map(|value| Scoring::Map { value, map: map.iter().map(|(k, v)| (k.clone(), *v)).collect() }),
                _ => {
                    self.diags.push(
                        Diagnostic::error(Code::RuleSetKind, yaml::span_of(self.file, &m.id, m.id.value.len()), format!("{what} needs `score`, or `value` with `bands` or `map`"))
                            .with_hint("`score: pct(active_users, seats)`, or `value: nps` with `bands: [{ min: 9, score: 100 }, { score: 0 }]`"),
                    );
                    None
                }
            };
            let reason = m.reason.as_ref().and_then(|t| self.template(t, &m.id.value));
            match scoring {
                Some(scoring) if m.reason.is_none() || reason.is_some() => measures.push(Measure {
                    id: Arc::from(m.id.value.as_str()),
                    description: m.description.clone(),
                    weight: m.weight.value,
                    scoring,
                    manual: m.manual,
                    reason,
                    reason_below: m.reason_below.unwrap_or(50.0),
                }),
                _ => ok = false,
            }
        }
        ok.then_some(measures)
    }

    fn bands(&mut self, raw: &[super::raw::RawBand], what: &str) -> Option<Vec<(Option<f64>, f64)>> {
        let mut previous: Option<f64> = None;
        let mut ok = true;
        for (i, b) in raw.iter().enumerate() {
            match &b.min {
                Some(min) => {
                    if previous.is_some_and(|p| min.value >= p) {
                        self.diags.push(
                            Diagnostic::error(
                                Code::Bands,
                                yaml::span_of(self.file, min, min.value.to_string().len()),
                                format!(
                                    "the bands of {what} are out of order: {} is not below the band above it",
                                    min.value
                                ),
                            )
                            .with_hint("list bands from the highest `min` down"),
                        );
                        ok = false;
                    }
                    previous = Some(min.value);
                }
                None if i + 1 < raw.len() => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::Bands,
                            self.file.start(),
                            format!("only the last band of {what} may leave out `min`"),
                        )
                        .with_hint("the bands after it could never be reached"),
                    );
                    ok = false;
                }
                None => {}
            }
        }
        ok.then(|| raw.iter().map(|b| (b.min.as_ref().map(|m| m.value), b.score)).collect())
    }

    fn classes(&mut self, raw: &RawRuleSet) -> Option<Body> {
        let mut classes = Vec::new();
        let mut seen = HashMap::new();
        let mut ok = true;
        for c in &raw.classes {
            if !self.unique_id(&mut seen, &c.class, "class") {
                ok = false;
                continue;
            }
            let what = format!("class `{}`", c.class.value);
            let when = self.expression(&c.when, &what);
            let reason = c.reason.as_ref().and_then(|t| self.template(t, &c.class.value));
            match when {
                Some(when) if c.reason.is_none() || reason.is_some() => classes.push(Class {
                    id: Arc::from(c.class.value.as_str()),
                    description: c.description.clone(),
                    when,
                    reason,
                }),
                _ => ok = false,
            }
        }
        let default = raw.default.as_ref().map(|d| Arc::from(d.value.as_str()));
        let default_reason = match &raw.default_reason {
            Some(t) => {
                let name = self.template(t, raw.default.as_ref().map_or("default", |d| d.value.as_str()));
                ok &= name.is_some();
                name
            }
            None => None,
        };
        ok.then_some(Body::Classification { classes, default, default_reason })
    }

    /// A script file next to the rule file, compiled with statements and loops allowed.
    fn script(&mut self, path: &Spanned<String>) -> Option<Body> {
        let full = self.file.path.parent().unwrap_or(Path::new(".")).join(&path.value);
        let text = match crate::config::project::read_inside(self.root, &full) {
            Ok(t) => t,
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(
                        Code::Unreadable,
                        yaml::span_of(self.file, path, path.value.len()),
                        format!("cannot read script `{}`: {e}", path.value),
                    )
                    .with_hint("script paths are relative to the rule file"),
                );
                return None;
            }
        };
        let display =
            Path::new(&self.file.display).parent().unwrap_or(Path::new("")).join(&path.value).display().to_string();
        let file = SourceFile::new(display, &full, text.clone());
        let spanned = Spanned {
            value: text,
            referenced: serde_saphyr::Location::UNKNOWN,
            defined: serde_saphyr::Location::UNKNOWN,
        };
        let mut names: Vec<&str> = self.deps.iter().map(|d| d.value.as_str()).collect();
        names.extend([PREV, AS_OF]);
        let what = format!("the script of rule set `{}`", self.name);
        match compile_script(self.engine, &file, &spanned, self.schema, &names, &what) {
            Ok(script) => Some(Body::Script(Box::new(super::Script { script, file }))),
            Err(d) => {
                self.diags.push(*d);
                None
            }
        }
    }

    fn grades(&mut self, raw: &RawRuleSet) -> Vec<Grade> {
        let mut grades = Vec::new();
        let mut previous: Option<f64> = None;
        for (i, g) in raw.grades.iter().enumerate() {
            let last = i + 1 == raw.grades.len();
            match &g.min {
                Some(min) => {
                    if let Some(p) = previous
                        && min.value >= p
                    {
                        self.diags.push(
                            Diagnostic::error(
                                Code::Bands,
                                yaml::span_of(self.file, min, min.value.to_string().len()),
                                format!(
                                    "grade `{}` starts at {} but the grade above it starts at {}",
                                    g.grade.value, min.value, p
                                ),
                            )
                            .with_hint(
                                "list grades from the highest threshold down, each `min` lower than the one before",
                            ),
                        );
                    }
                    if last {
                        self.diags.push(
                            Diagnostic::error(
                                Code::Bands,
                                yaml::span_of(self.file, &g.grade, g.grade.value.len()),
                                format!("scores below {} get no grade in rule set `{}`", min.value, self.name),
                            )
                            .with_hint("leave out `min` on the last grade so it catches every remaining score"),
                        );
                    }
                    previous = Some(min.value);
                }
                None if !last => {
                    self.diags.push(
                        Diagnostic::error(
                            Code::Bands,
                            yaml::span_of(self.file, &g.grade, g.grade.value.len()),
                            format!("grade `{}` has no `min` but is not the last grade", g.grade.value),
                        )
                        .with_hint(
                            "only the last grade may leave out `min`; the grades after it could never be reached",
                        ),
                    );
                }
                None => {}
            }
            if grades.iter().any(|x: &Grade| *x.name == *g.grade.value) {
                self.diags.push(Diagnostic::error(
                    Code::Duplicate,
                    yaml::span_of(self.file, &g.grade, g.grade.value.len()),
                    format!("grade `{}` is listed twice", g.grade.value),
                ));
            }
            grades.push(Grade { name: Arc::from(g.grade.value.as_str()), min: g.min.as_ref().map(|m| m.value) });
        }
        grades
    }

    /// Points that are a column of text, dates or booleans: they can never be a number.
    fn not_a_number(&mut self, points: &Spanned<String>, what: &str) {
        let name = points.value.trim();
        let kind = match self.schema.get(name) {
            Some(ColumnType::Text) => "text",
            Some(ColumnType::Date) => "dates",
            Some(ColumnType::Timestamp) => "timestamps",
            Some(ColumnType::Bool) => "true or false",
            _ => return,
        };
        self.diags.push(
            Diagnostic::error(
                Code::Type,
                yaml::span_of(self.file, points, points.value.len()),
                format!("the points of {what} are `{name}`, a column of {kind}, not a number"),
            )
            .with_hint("points are a number or an expression that gives one, such as `arr / 10000`"),
        );
    }

    fn rule(&mut self, r: &RawRule) -> Option<Rule> {
        let what = format!("rule `{}`", r.id.value);
        let when = self.expression(&r.when, &what);
        let points = match &r.points {
            None => Some(Points::Fixed(0.0)),
            Some(p) => match &p.value {
                RawPoints::Number(n) => Some(Points::Fixed(*n)),
                RawPoints::Expression(src) => {
                    let spanned = Spanned { value: src.clone(), referenced: p.referenced, defined: p.defined };
                    self.not_a_number(&spanned, &what);
                    self.expression(&spanned, &what).map(|e| Points::Computed(Box::new(e)))
                }
            },
        };
        let reason = r.reason.as_ref().and_then(|t| self.template(t, &r.id.value));
        let reason_ok = r.reason.is_none() || reason.is_some();
        match (when, points) {
            (Some(when), Some(points)) if reason_ok => Some(Rule {
                id: Arc::from(r.id.value.as_str()),
                description: r.description.clone(),
                when,
                points,
                tags: r.tags.iter().map(|t| Arc::from(t.as_str())).collect(),
                reason,
                enabled: r.enabled.unwrap_or(true),
            }),
            _ => None,
        }
    }

    fn expression(&mut self, src: &Spanned<String>, what: &str) -> Option<Expr> {
        let mut names: Vec<&str> = self.deps.iter().map(|d| d.value.as_str()).collect();
        names.extend([PREV, AS_OF]);
        let what = format!("{what} of rule set `{}`", self.name);
        match compile_expr(self.engine, self.file, src, self.schema, &names, &what) {
            Ok((expr, problems)) => {
                for d in problems {
                    self.diags.push(d);
                }
                Some(expr)
            }
            Err(d) => {
                self.diags.push(*d);
                None
            }
        }
    }

    /// Reason templates are minijinja templates over the account's values.
    fn template(&mut self, src: &Spanned<String>, rule_id: &str) -> Option<String> {
        let name = format!("{}/{}/reason", self.name, rule_id);
        let map = TextMap::new(self.file, src);
        if let Err(e) = self.templates.add_template_owned(name.clone(), src.value.clone()) {
            let span = match e.range() {
                Some(r) => map.span_at_offset(&src.value, r.start, (r.end - r.start).max(1)),
                None => map.span(e.line().unwrap_or(1), 1, 1),
            };
            self.diags.push(
                Diagnostic::error(Code::Template, span, format!("the reason of rule `{rule_id}` does not parse: {}", e.detail().unwrap_or("syntax error")))
                    .with_hint("reasons are templates: `{{ column }}` inserts a value, `{% if ... %}` ... `{% endif %}` chooses text"),
            );
            return None;
        }
        let tmpl = self.templates.get_template(&name).ok()?;
        let mut unknown: Vec<String> = tmpl
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| {
                self.schema.get(v).is_none()
                    && !self.deps.iter().any(|d| d.value == *v)
                    && v != PREV
                    && v != AS_OF
                    && v != "points"
            })
            .collect();
        unknown.sort();
        for v in unknown {
            let offset = src.value.find(&v).unwrap_or(0);
            self.diags.push(
                Diagnostic::error(
                    Code::UnknownColumn,
                    map.span_at_offset(&src.value, offset, v.len()),
                    format!("unknown column `{v}` in the reason of rule `{rule_id}`"),
                )
                .with_hint_opt(did_you_mean(&v, self.schema.names())),
            );
        }
        Some(name)
    }
}
