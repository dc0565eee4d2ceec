//! Job files as written: serde structs that only describe the YAML.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A keepwell job (`jobs/*.yaml`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "keepwell job")]
pub struct RawJob {
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    /// Another job file (relative to the project) whose sources, features, entity and rule
    /// sets this job starts from; anything this file sets replaces the base's.
    #[schemars(with = "Option<String>")]
    pub extends: Option<Spanned<String>>,
    #[serde(default)]
    pub sources: IndexMap<String, RawSource>,
    #[schemars(with = "Option<Vec<String>>")]
    pub features: Option<Vec<Spanned<String>>>,
    pub entity: Option<RawEntity>,
    #[schemars(with = "Option<Vec<String>>")]
    pub rule_sets: Option<Vec<Spanned<String>>>,
    /// Population numbers computed every run from the accounts and their results, by
    /// name: SQL aggregates (`count(*)`, `sum(arr)`), kept as a time series in the store's
    /// `metrics` table and shown in the report. A job that `extends` another has its
    /// metrics unless it sets its own.
    pub metrics: Option<IndexMap<String, RawMetric>>,
    /// What happened to accounts: one row per renewal or churn event, read by `keepwell
    /// validate` to measure whether the rules saw it coming. Not loaded by runs.
    pub outcomes: Option<RawOutcomes>,
    /// How `keepwell validate` judges the rule sets against the outcomes.
    pub validation: Option<RawValidation>,
    /// A folder another engine wrote with the script of `keepwell compile` (`entity/` and
    /// `results/`, Parquet): runs take the accounts and their results from it instead of
    /// loading the sources and evaluating the rules, then publish, report and mail as usual.
    #[schemars(with = "Option<String>")]
    pub engine_results: Option<Spanned<String>>,
    /// Who owns the job: mailed when a metric's `alert_when` holds, and when a scheduled run
    /// fails unless `on_failure` names others.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub owners: Vec<Spanned<String>>,
    /// Channels (named in `keepwell.yaml`) that also carry the metric alerts the owners are
    /// mailed.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub alert_channels: Vec<Spanned<String>>,
    #[serde(default)]
    pub outputs: Vec<RawOutput>,
    pub schedule: Option<RawSchedule>,
    /// How long a run may take before it stops and fails, nothing published (`2h`, `90m`);
    /// 1 hour by default.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Who is mailed when a scheduled run fails after its last retry.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub on_failure: Vec<Spanned<String>>,
}

/// A metric: one SQL aggregate (`value:`), or a rate as `numerator:` over `denominator:`,
/// over every account of the run (one row each, with the entity's columns and each rule
/// set's results as `risk.grade`, `risk.score`, `risk.tags`, `risk.fired`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetric {
    /// How the report names it (by default the metric's name in words).
    pub title: Option<String>,
    /// One aggregate: `sum(arr * forecast.score / 100)`, `count(*) FILTER (WHERE ...)`.
    #[schemars(with = "Option<String>")]
    pub value: Option<Spanned<String>>,
    /// A rate's numerator, an aggregate: the value is numerator / denominator, and both are
    /// kept so rates add up across segments and runs.
    #[schemars(with = "Option<String>")]
    pub numerator: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub denominator: Option<Spanned<String>>,
    /// What a rate is of, in words (`of ARR`, `of accounts in the window`): the report
    /// writes it after the percentage.
    pub of: Option<String>,
    /// How a rate's numerator and denominator read beside it: `money`, `count` or `number`
    /// (`count` when both are whole numbers, unless set).
    #[schemars(with = "Option<String>")]
    pub parts: Option<Spanned<String>>,
    /// Only the accounts where this SQL condition holds.
    #[serde(rename = "where")]
    #[schemars(with = "Option<String>")]
    pub filter: Option<Spanned<String>>,
    /// A column (or SQL expression) to split the metric by: one value per segment, beside
    /// the total.
    #[schemars(with = "Option<String>")]
    pub by: Option<Spanned<String>>,
    /// `percent`, `money`, `count` or `number`; a rate is a percent and a value a number
    /// unless set.
    #[schemars(with = "Option<String>")]
    pub format: Option<Spanned<String>>,
    /// A SQL condition on `value`, `previous` (the previous run's value) and `change`
    /// (value - previous): when it holds, the metric leads the report and the job's
    /// owners are mailed. Percents are fractions here: `change > 0.02` is two points.
    #[schemars(with = "Option<String>")]
    pub alert_when: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub format: Option<Spanned<String>>,
    /// Column types that override what is inferred from the file (`arr: DECIMAL(18,2)`);
    /// every column of the file is loaded, typed as DuckDB reads it unless declared here.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub columns: IndexMap<String, Spanned<String>>,
    /// Only the declared columns are loaded, with exactly the declared types, and the file
    /// must have each (today's contract for teams that want every column named).
    #[serde(default)]
    pub strict: bool,
    #[schemars(with = "Option<KeyColumns>")]
    pub primary_key: Option<Spanned<KeyColumns>>,
    pub max_rejects: Option<u64>,
    /// The fewest rows a good extract has (default 1): fewer stop the run before anything
    /// is published, so an empty extract never empties the results.
    pub min_rows: Option<u64>,
    /// How much smaller than in the last published run the extract may be (`50%` by
    /// default; `100%` allows any drop): a larger drop stops the run before publishing.
    #[schemars(with = "Option<String>")]
    pub max_drop: Option<Spanned<String>>,
    /// How old the data may be (`26h`, `2d`): by the file's modification time, or by the
    /// newest value of `loaded_at` when given.
    #[schemars(with = "Option<String>")]
    pub max_age: Option<Spanned<String>>,
    /// A timestamp column saying when the extract was made, for `max_age`.
    pub loaded_at: Option<String>,
    /// `fail` (default) stops the run when the data is older than `max_age`; `warn` goes on.
    #[schemars(with = "Option<String>")]
    pub on_stale: Option<Spanned<String>>,
    pub delimiter: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum KeyColumns {
    One(String),
    Many(Vec<String>),
}

impl KeyColumns {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            KeyColumns::One(c) => vec![c.clone()],
            KeyColumns::Many(cs) => cs.clone(),
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEntity {
    /// The feature view with one row per account.
    #[schemars(with = "String")]
    pub view: Spanned<String>,
    #[schemars(with = "String")]
    pub key: Spanned<String>,
    /// Columns reports use: the account's name, its ARR and its owner's email address.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub arr: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawOutput {
    Escalation(Box<RawEscalation>),
    Summary(Box<RawSummary>),
    Calibration(Box<RawCalibration>),
    Tasks(Box<RawTasks>),
}

/// Tasks that open and close themselves: one per account, rule set and fired rule (or tag)
/// while `when` holds, sent as `task.opened`, `task.updated` (its state changed) and
/// `task.closed` (the condition cleared) events to webhook channels, and kept in the store's
/// `tasks` table.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTasks {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    pub title: Option<String>,
    /// The rule sets whose fired rules (or tags) open tasks.
    #[schemars(with = "Vec<String>")]
    pub rule_sets: Vec<Spanned<String>>,
    /// `reason` (a task per fired rule, the default) or `tag` (a task per tag).
    #[schemars(with = "Option<String>")]
    pub by: Option<Spanned<String>>,
    /// Only accounts this holds for have tasks: an expression over the account and its results.
    #[schemars(with = "Option<String>")]
    pub when: Option<Spanned<String>>,
    /// Who the task is for: an expression (the entity's owner column by default).
    #[schemars(with = "Option<String>")]
    pub owner: Option<Spanned<String>>,
    /// More of the task's state, like columns: a change in any of them (or in the rule
    /// set's grade or the owner) sends `task.updated`.
    #[serde(default)]
    #[schemars(with = "Vec<RawColumn>")]
    pub fields: Vec<Spanned<RawColumn>>,
    /// A closed task does not open again for this long (`14d`).
    #[schemars(with = "Option<String>")]
    pub cooldown: Option<Spanned<String>>,
    /// Webhook channels the events go to (named in `keepwell.yaml`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub channels: Vec<Spanned<String>>,
    /// Events per webhook request (100 by default).
    pub batch: Option<usize>,
}

/// The playbook's calibration, mailed every run: the job's `keepwell validate` figures with a
/// chart of churn by grade and the ROC curves, and the root-cause review. The figures are
/// also kept in the store's `calibration` table, so the scoring's quality has a history.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCalibration {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    pub title: Option<String>,
    #[schemars(with = "Vec<String>")]
    pub to: Vec<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub subject: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    pub title: Option<String>,
    /// Which accounts to list: an expression over the account and its rule-set results.
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    /// Who receives each account: an expression giving an email address.
    #[schemars(with = "String")]
    pub owner: Spanned<String>,
    #[schemars(with = "Vec<RawColumn>")]
    pub columns: Vec<Spanned<RawColumn>>,
    /// Largest first: an expression to sort each owner's list by.
    #[schemars(with = "Option<String>")]
    pub order_by: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub subject: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub cc: Vec<Spanned<String>>,
    /// An account already listed whose row has not changed is left out until this long has
    /// passed (`7d`); without it, every listed account is sent every run.
    #[schemars(with = "Option<String>")]
    pub remind_after: Option<Spanned<String>>,
    /// A manager roll-up: an expression giving each account's manager address; each manager
    /// also gets one mail listing the accounts of all their owners.
    #[schemars(with = "Option<String>")]
    pub rollup: Option<Spanned<String>>,
    /// Channels (named in `keepwell.yaml`) that also carry each owner's list.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub channels: Vec<Spanned<String>>,
}

/// A listed column: an expression, or `{ label: expression }`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawColumn {
    Expression(String),
    Labeled(IndexMap<String, String>),
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSummary {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    pub title: Option<String>,
    #[schemars(with = "Vec<String>")]
    pub to: Vec<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub subject: Option<Spanned<String>>,
    /// The executive report's sections: charts, movements since the previous run, top
    /// accounts, renewals. Each names the rule set (and grade) it reads; a section left out
    /// is not shown.
    pub report: Option<RawReport>,
    /// Channels (named in `keepwell.yaml`) that also carry the summary's headline.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub channels: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    /// The rule set whose grades split ARR (risk): the ARR chart and renewals this quarter.
    #[schemars(with = "Option<String>")]
    pub risk: Option<Spanned<String>>,
    /// The rule set whose grades are the chart's categories (impact).
    #[schemars(with = "Option<String>")]
    pub category: Option<Spanned<String>>,
    /// The grade followed as red: red ARR over the last runs, new reds and recoveries.
    pub red: Option<RawGradeRef>,
    /// The rule set whose grade changes are listed as stage changes.
    #[schemars(with = "Option<String>")]
    pub stage: Option<Spanned<String>>,
    /// The grade that means a manager expects the account to churn.
    pub churn: Option<RawGradeRef>,
    /// The rule set whose score is the percent of ARR expected to be kept.
    #[schemars(with = "Option<String>")]
    pub forecast: Option<Spanned<String>>,
    /// The entity column holding each account's renewal date.
    #[schemars(with = "Option<String>")]
    pub renewal: Option<Spanned<String>>,
    /// The accounts listed as most at risk, largest ARR first.
    pub top: Option<RawTop>,
    /// How many runs the red ARR chart covers (12 unless set).
    pub history: Option<usize>,
    /// The most accounts the attached CSV lists, largest ARR first (20000 unless set); the
    /// run folder always holds the full list.
    pub attach_limit: Option<usize>,
    /// The job's metrics that fill the headline cards, in order (a metric whose alert holds
    /// joins them).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub headline: Vec<Spanned<String>>,
    /// The metrics shown with their trend in the metrics section; all the job's metrics
    /// unless set (`[]` shows none).
    #[schemars(with = "Option<Vec<String>>")]
    pub metrics: Option<Vec<Spanned<String>>>,
    /// The currency of amounts: an ISO code (`USD`, `EUR`, `GBP`...) or the symbol to
    /// write (`$` unless set).
    #[schemars(with = "Option<String>")]
    pub currency: Option<Spanned<String>>,
    /// What the amount column is called in the report: `ARR` unless set (`MRR`, `revenue`).
    pub amount: Option<String>,
    /// Section titles in the team's words; a section not named keeps its title.
    pub titles: Option<RawTitles>,
}

/// The report's section titles.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTitles {
    pub metrics: Option<String>,
    pub movements: Option<String>,
    pub new_red: Option<String>,
    pub recoveries: Option<String>,
    pub stage_changes: Option<String>,
    pub newly_expected_churn: Option<String>,
    pub top: Option<String>,
    pub renewals: Option<String>,
    pub forecast: Option<String>,
    pub grades: Option<String>,
    pub escalations: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGradeRef {
    #[schemars(with = "String")]
    pub rule_set: Spanned<String>,
    #[schemars(with = "String")]
    pub grade: Spanned<String>,
    /// The rule set's grades from best to worst, for movements: a recovery is a move to a
    /// better grade in this order, never to a grade left out of it. By default the rule
    /// set's grades as listed, read so that this grade is the worst.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub order: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTop {
    /// Which accounts count as at risk: an expression, as in an escalation's `when`.
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    /// Why, shown next to each account: an expression giving a list of reasons.
    #[schemars(with = "Option<String>")]
    pub reasons: Option<Spanned<String>>,
    /// How many accounts to list (10 unless set).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    #[schemars(with = "String")]
    pub cron: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub timezone: Option<Spanned<String>>,
    /// Retries of a failed scheduled run (default 0).
    pub retries: Option<u32>,
    /// The wait before the first retry (`30s`, `5m`); it doubles for each further retry.
    #[schemars(with = "Option<String>")]
    pub retry_delay: Option<Spanned<String>>,
    /// Fire times missed while the daemon was down: `latest` runs the latest one once when
    /// the daemon starts, `none` skips them.
    #[schemars(with = "Option<String>")]
    pub catch_up: Option<Spanned<String>>,
}

/// The outcomes extract: one row per renewal or churn event.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutcomes {
    /// The file (CSV, Parquet or JSON), relative to the project folder.
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// The file's column for each field where its name differs: `account` (`account_id`),
    /// `date`, `outcome` (`renewed`, `churned`, `downsold` or `expanded`), `arr_before`,
    /// `arr_after`, `reasons` (codes separated by `|`, `;` or `,`) and `note`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, String>")]
    pub columns: IndexMap<String, Spanned<String>>,
    /// The reason codes the team records; DOMAIN.md's ten churn reasons unless set.
    #[schemars(with = "Option<Vec<String>>")]
    pub reasons: Option<Vec<Spanned<String>>>,
}

/// How `keepwell validate` reads the rule sets against the outcomes.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawValidation {
    /// The rule sets to judge; every rule set of the job unless set.
    #[schemars(with = "Option<Vec<String>>")]
    pub rule_sets: Option<Vec<Spanned<String>>>,
    /// How long before its outcome an account's grade is read (`90d` unless set).
    #[schemars(with = "Option<String>")]
    pub horizon: Option<Spanned<String>>,
    /// Fewer accounts than this in a grade or among those a rule fired on reads "too few to
    /// tell" (10 unless set).
    pub min_count: Option<u64>,
    /// Rule sets whose higher score means a healthier account (health, adoption); for the
    /// others a higher score means more risk.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub higher_is_healthier: Vec<Spanned<String>>,
    /// The rule set whose score is the share of ARR expected to be kept, in percent.
    #[schemars(with = "Option<String>")]
    pub forecast: Option<Spanned<String>>,
    /// The rule set whose grade is the account's impact category, to split the forecast by.
    #[schemars(with = "Option<String>")]
    pub category: Option<Spanned<String>>,
    /// What the root-cause review splits reasons by: entity columns (`industry`), a rule
    /// set's grade (`stage.grade`) or `owner`.
    #[schemars(with = "Option<Vec<String>>")]
    pub segments: Option<Vec<Spanned<String>>>,
    /// When a churn reason is systemic rather than a one-off.
    pub systemic: Option<RawSystemic>,
}

/// A reason is systemic when at least `count` accounts give it and they are at least
/// `share` of the churned accounts or of the ARR lost, overall or within a segment.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSystemic {
    pub count: Option<u64>,
    /// A percentage (`20%`) or a fraction (`0.2`).
    #[schemars(with = "Option<String>")]
    pub share: Option<Spanned<String>>,
}
