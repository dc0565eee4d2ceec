//! Job files as written: serde structs that only describe the YAML.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub sources: IndexMap<String, RawSource>,
    #[serde(default)]
    pub features: Vec<Spanned<String>>,
    pub entity: RawEntity,
    pub rule_sets: Vec<Spanned<String>>,
    #[serde(default)]
    pub outputs: Vec<RawOutput>,
    pub schedule: Option<RawSchedule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub path: Spanned<String>,
    pub format: Option<Spanned<String>>,
    pub columns: IndexMap<String, Spanned<String>>,
    pub primary_key: Option<Spanned<KeyColumns>>,
    pub max_rejects: Option<u64>,
    pub max_age: Option<Spanned<String>>,
    pub delimiter: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEntity {
    /// The feature view with one row per account.
    pub view: Spanned<String>,
    pub key: Spanned<String>,
    /// Columns reports use: the account's name, its ARR and its owner's email address.
    pub name: Option<Spanned<String>>,
    pub arr: Option<Spanned<String>>,
    pub owner: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum RawOutput {
    Escalation(Box<RawEscalation>),
    Summary(RawSummary),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEscalation {
    pub name: Spanned<String>,
    pub title: Option<String>,
    /// Which accounts to list: an expression over the account and its rule-set results.
    pub when: Spanned<String>,
    /// Who receives each account: an expression giving an email address.
    pub owner: Spanned<String>,
    pub columns: Vec<Spanned<RawColumn>>,
    /// Largest first: an expression to sort each owner's list by.
    pub order_by: Option<Spanned<String>>,
    pub subject: Option<Spanned<String>>,
    #[serde(default)]
    pub cc: Vec<Spanned<String>>,
}

/// A listed column: an expression, or `{ label: expression }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawColumn {
    Expression(String),
    Labeled(IndexMap<String, String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSummary {
    pub name: Spanned<String>,
    pub title: Option<String>,
    pub to: Vec<Spanned<String>>,
    pub subject: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub cron: Spanned<String>,
    pub timezone: Option<Spanned<String>>,
}
