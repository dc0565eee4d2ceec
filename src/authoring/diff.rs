//! What a rule change does before it goes live: the base rules (a git revision or a folder)
//! and the working-tree rules, evaluated on the same rows, compared account by account.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::config::project::Project;
use crate::entity::{Entity, display_value};
use crate::rules::RuleSetSources;
use crate::rules::eval::Evaluator;
use crate::rules::outcomes::Outcome;
use crate::rules::previous::Previous;
use crate::rules::{OutcomeRef, SetOutcomes};
use crate::run::ENTITY_SNAPSHOT;
use crate::run::plan::Plan;
use crate::store::Store;
use crate::warehouse::{self, Warehouse};

#[derive(Debug, Serialize)]
pub struct Diff {
    pub base: String,
    pub job: String,
    /// Where the rows came from: a run's snapshot or freshly loaded sources.
    pub data: String,
    pub as_of: chrono::NaiveDate,
    pub accounts: usize,
    pub rule_sets: Vec<SetDiff>,
}

#[derive(Debug, Serialize)]
pub struct SetDiff {
    pub rule_set: String,
    /// `changed`, `added` (only in the working tree) or `removed` (only in the base).
    pub status: &'static str,
    pub grades: Vec<String>,
    /// `matrix[i][j]`: accounts that move from `grades[i]` to `grades[j]`.
    pub matrix: Vec<Vec<usize>>,
    pub moved: usize,
    pub moved_arr: f64,
    pub score_changed: usize,
    pub accounts: Vec<AccountChange>,
}

#[derive(Debug, Serialize)]
pub struct AccountChange {
    pub account: String,
    pub name: Option<String>,
    pub arr: Option<f64>,
    pub before_grade: Option<String>,
    pub after_grade: Option<String>,
    pub before_score: Option<f64>,
    pub after_score: Option<f64>,
    /// Rules that fire now and did not before (`+id`), and the reverse (`-id`).
    pub rules: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("{0}")]
    Config(crate::config::diagnostic::Diagnostics),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Loading the sources or reading the last run's rows failed, as it would in a run.
    #[error(transparent)]
    Data(#[from] crate::run::RunError),
    #[error("`{base}` is neither a folder nor a git revision of {}", root.display())]
    NoBase { base: String, root: std::path::PathBuf },
    #[error("revision `{base}` has no rules/ folder: {message}")]
    NoRules { base: String, message: String },
    #[error("cannot run {tool}: {source}")]
    Tool { tool: &'static str, source: std::io::Error },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("could not unpack the base rules")]
    Unpack,
}

pub struct DiffOptions<'a> {
    pub base: &'a str,
    /// The job file.
    pub job: &'a std::path::Path,
    /// Load the sources now instead of using the last run's rows.
    pub fresh: bool,
}

pub fn diff(project: &Project, options: &DiffOptions) -> Result<Diff, DiffError> {
    let base_rules = base_rules_dir(project, options.base)?;
    let (base_sources, d) = RuleSetSources::load(&project.root, &base_rules);
    if d.has_errors() {
        return Err(DiffError::Config(d));
    }
    let (work_sources, d) = RuleSetSources::load(&project.root, &project.rules_dir());
    if d.has_errors() {
        return Err(DiffError::Config(d));
    }
    let job_path = options.job.to_path_buf();
    let (job, _, _) = crate::config::job::Job::load(project, &job_path).map_err(DiffError::Config)?;
    let store = Store::open(&project.store)?;
    let run = if options.fresh { None } else { store.find_run(None, Some(&job.name))? };
    let as_of = run.as_ref().map_or_else(|| chrono::Local::now().date_naive(), |r| r.as_of);
    let work = Plan::compile(project, &job_path, &work_sources, as_of).map_err(DiffError::Config)?;
    let base = Plan::compile(project, &job_path, &base_sources, as_of).map_err(DiffError::Config)?;
    let (entity, data) = match &run {
        Some(r) => {
            let path = project.runs.join(r.run_id.to_string()).join(ENTITY_SNAPSHOT);
            let entity = Warehouse::read_snapshot(&path, &work.job.entity, work.schema.clone())
                .map_err(crate::run::RunError::from)?;
            (entity, format!("the rows of run {}", r.run_id))
        }
        None => (fresh_entity(project, &work, as_of)?, "freshly loaded sources".to_string()),
    };
    let previous = match &run {
        Some(_) => store.previous(&work.job.name, as_of, work.reads_prev())?,
        None => Previous::default(),
    };
    let evaluate = |plan: &Plan| {
        let evaluator = Evaluator { engine: &plan.engine, templates: &plan.templates, as_of };
        evaluator.evaluate_all(&plan.rule_sets, &entity, &previous)
    };
    let (base_out, work_out) = (evaluate(&base), evaluate(&work));
    let mut names: Vec<&str> = work.rule_sets.iter().map(|s| s.name.as_str()).collect();
    for s in &base.rule_sets {
        if !names.contains(&s.name.as_str()) {
            names.push(&s.name);
        }
    }
    fn find<'o>(plan: &Plan, out: &'o [SetOutcomes], name: &str) -> Side<'o> {
        let i = plan.rule_sets.iter().position(|s| s.name == name)?;
        Some((plan.rule_sets[i].grades.iter().map(|g| g.name.to_string()).collect(), &out[i]))
    }
    let rule_sets = names
        .into_iter()
        .map(|name| set_diff(name, find(&base, &base_out, name), find(&work, &work_out, name), &entity, &work))
        .collect();
    Ok(Diff {
        base: options.base.to_string(),
        job: work.job.name.clone(),
        data,
        as_of,
        accounts: entity.len(),
        rule_sets,
    })
}

type Side<'a> = Option<(Vec<String>, &'a SetOutcomes)>;

fn set_diff<'a>(name: &str, base: Side<'a>, work: Side<'a>, entity: &Entity, plan: &Plan) -> SetDiff {
    let status = match (&base, &work) {
        (None, _) => "added",
        (_, None) => "removed",
        _ => "changed",
    };
    let mut grades: Vec<String> = Vec::new();
    for side in [&base, &work].into_iter().flatten() {
        for g in &side.0 {
            if !grades.contains(g) {
                grades.push(g.clone());
            }
        }
    }
    grades.push("none".into());
    let nothing = Outcome::default();
    let (before, after) = (base.as_ref().map(|b| b.1), work.as_ref().map(|w| w.1));
    let index = |g: Option<&str>| grades.iter().position(|x| Some(x.as_str()) == g).unwrap_or(grades.len() - 1);
    let mut matrix = vec![vec![0usize; grades.len()]; grades.len()];
    let (mut moved, mut moved_arr, mut score_changed) = (0, 0.0, 0);
    let mut accounts = Vec::new();
    for row in 0..entity.len() {
        let side = |s: Option<&'a SetOutcomes>| s.map_or(OutcomeRef::from(&nothing), |o| o.get(row));
        let (b, a) = (side(before), side(after));
        matrix[index(b.grade())][index(a.grade())] += 1;
        let grade_moved = b.grade() != a.grade();
        let (b_score, a_score) = (b.score(), a.score());
        let score_moved =
            b_score.zip(a_score).is_some_and(|(x, y)| (x - y).abs() > 1e-9) || b_score.is_some() != a_score.is_some();
        if !grade_moved && !score_moved && b.fired() == a.fired() {
            continue;
        }
        let arr = plan.job.entity.arr.as_deref().and_then(|c| crate::rules::engine::number(&entity.value(c, row)));
        if grade_moved {
            moved += 1;
            moved_arr += arr.unwrap_or(0.0);
        }
        if score_moved {
            score_changed += 1;
        }
        let mut rules: Vec<String> =
            a.fired().iter().filter(|f| !b.fired().contains(f)).map(|f| format!("+{f}")).collect();
        rules.extend(b.fired().iter().filter(|f| !a.fired().contains(f)).map(|f| format!("-{f}")));
        if rules.is_empty() {
            // The same rules fired: a threshold or a rule's points changed.
            rules.push(if b_score == a_score { "(grade thresholds)".into() } else { "(points)".into() });
        }
        accounts.push(AccountChange {
            account: entity.keys[row].to_string(),
            name: plan.job.entity.name.as_deref().map(|c| display_value(&entity.value(c, row))),
            arr,
            before_grade: b.grade().map(str::to_string),
            after_grade: a.grade().map(str::to_string),
            before_score: b_score,
            after_score: a_score,
            rules,
        });
    }
    // Grade moves first, then by ARR, largest first.
    accounts.sort_by(|x, y| {
        let moved = |c: &AccountChange| c.before_grade != c.after_grade;
        moved(y)
            .cmp(&moved(x))
            .then(y.arr.unwrap_or(0.0).total_cmp(&x.arr.unwrap_or(0.0)))
            .then(x.account.cmp(&y.account))
    });
    SetDiff { rule_set: name.to_string(), status, grades, matrix, moved, moved_arr, score_changed, accounts }
}

/// The base rules: `rules/` of a folder (or the folder itself), or of a git revision.
pub(crate) fn base_rules_dir(project: &Project, base: &str) -> Result<PathBuf, DiffError> {
    let as_dir = Path::new(base);
    let as_dir = if as_dir.is_absolute() {
        as_dir.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(as_dir)
    };
    if as_dir.is_dir() {
        return Ok(if as_dir.join("rules").is_dir() { as_dir.join("rules") } else { as_dir });
    }
    let git = |args: &[&str]| Command::new("git").arg("-C").arg(&project.root).args(args).output();
    let verify = git(&["rev-parse", "--verify", "--quiet", &format!("{base}^{{commit}}")])
        .map_err(|source| DiffError::Tool { tool: "git", source })?;
    if !verify.status.success() {
        return Err(DiffError::NoBase { base: base.to_string(), root: project.root.clone() });
    }
    let prefix = git(&["rev-parse", "--show-prefix"])?;
    let prefix = String::from_utf8_lossy(&prefix.stdout).trim().to_string();
    let commit = String::from_utf8_lossy(&verify.stdout).trim().to_string();
    let out = project.root.join(".keepwell/diff").join(&commit);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let tree = format!("{commit}:{prefix}rules");
    let archive = Command::new("git")
        .arg("-C")
        .arg(&project.root)
        .args(["archive", "--format=tar", &tree])
        .output()
        .map_err(|source| DiffError::Tool { tool: "git", source })?;
    if !archive.status.success() {
        return Err(DiffError::NoRules {
            base: base.to_string(),
            message: String::from_utf8_lossy(&archive.stderr).trim().to_string(),
        });
    }
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| DiffError::Tool { tool: "tar", source })?;
    if let Some(stdin) = tar.stdin.as_mut() {
        std::io::Write::write_all(stdin, &archive.stdout)?;
    }
    let status = tar.wait()?;
    if !status.success() {
        return Err(DiffError::Unpack);
    }
    Ok(out)
}

/// Loads the job's sources now, for a diff before the job has ever run.
fn fresh_entity(project: &Project, plan: &Plan, as_of: chrono::NaiveDate) -> Result<Entity, DiffError> {
    let spill = project.runs.join("diff-spill");
    std::fs::create_dir_all(&spill)?;
    let mut found = warehouse::Found::default();
    let warehouse =
        warehouse::load(&project.warehouse, &plan.job, as_of, Some(&spill), warehouse::Sources::Loaded, &mut found)
            .map_err(crate::run::RunError::from)?;
    Ok(warehouse.build_entity(&plan.job, plan.schema.clone()).map_err(crate::run::RunError::from)?)
}

/// Grade transitions as text rows: `from \ to` headers, then counts.
pub fn matrix_rows(s: &SetDiff) -> Vec<Vec<String>> {
    let used: Vec<usize> = (0..s.grades.len())
        .filter(|&i| s.matrix[i].iter().sum::<usize>() > 0 || s.matrix.iter().any(|r| r[i] > 0))
        .collect();
    let mut rows =
        vec![std::iter::once("before \\ after".to_string()).chain(used.iter().map(|&j| s.grades[j].clone())).collect()];
    for &i in &used {
        rows.push(
            std::iter::once(s.grades[i].clone()).chain(used.iter().map(|&j| s.matrix[i][j].to_string())).collect(),
        );
    }
    rows
}
