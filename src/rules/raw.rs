//! Rule files as written: serde structs that only describe the YAML.

use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleSet {
    /// Defaults to the file name without its extension.
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    pub score: RawScore,
    #[serde(default)]
    pub grades: Vec<RawGrade>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScore {
    pub base: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrade {
    pub grade: Spanned<String>,
    pub min: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Spanned<String>,
    pub description: Option<String>,
    pub when: Spanned<String>,
    pub points: Option<Spanned<RawPoints>>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub reason: Option<Spanned<String>>,
    pub enabled: Option<bool>,
}

/// Points are a number or an expression that computes one.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawPoints {
    Number(f64),
    Expression(String),
}
