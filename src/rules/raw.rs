//! Rule files as written: serde structs that only describe the YAML.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A keepwell rule set (`rules/*.yaml`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "keepwell rule set")]
pub struct RawRuleSet {
    /// Defaults to the file name without its extension.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    pub score: RawScore,
    #[serde(default)]
    pub grades: Vec<RawGrade>,
    /// Points rules: each adds its points when its condition holds.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Scorecard measures: each scored 0-100 and weighted.
    #[serde(default)]
    pub measures: Vec<RawMeasure>,
    /// Classification: the first class whose condition holds, else `default`.
    #[serde(default)]
    pub classes: Vec<RawClass>,
    #[schemars(with = "Option<String>")]
    pub default: Option<Spanned<String>>,
    /// The reason written when the default class applies.
    #[schemars(with = "Option<String>")]
    pub default_reason: Option<Spanned<String>>,
    /// A rhai script (path relative to the rule file) for logic YAML cannot express.
    #[schemars(with = "Option<String>")]
    pub script: Option<Spanned<String>>,
    /// Unit tests: given rows, expected results.
    #[serde(default)]
    pub tests: Vec<RawTest>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMeasure {
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    pub description: Option<String>,
    #[schemars(with = "f64")]
    pub weight: Spanned<f64>,
    /// An expression giving the measure's score, 0 to 100.
    #[schemars(with = "Option<String>")]
    pub score: Option<Spanned<String>>,
    /// An expression whose value is scored by `bands` or `map`.
    #[schemars(with = "Option<String>")]
    pub value: Option<Spanned<String>>,
    #[serde(default)]
    pub bands: Vec<RawBand>,
    pub map: Option<indexmap::IndexMap<String, f64>>,
    /// Entered by a person (such as CSM sentiment) rather than measured.
    #[serde(default)]
    pub manual: bool,
    /// Written when the measure scores below `reason_below` (default 50).
    #[schemars(with = "Option<String>")]
    pub reason: Option<Spanned<String>>,
    pub reason_below: Option<f64>,
}

/// A band scores values at or above `min`; the last band may leave `min` out.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBand {
    #[schemars(with = "Option<f64>")]
    pub min: Option<Spanned<f64>>,
    pub score: f64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClass {
    #[schemars(with = "String")]
    pub class: Spanned<String>,
    pub description: Option<String>,
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    #[schemars(with = "Option<String>")]
    pub reason: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// The entity row; columns left out are missing.
    #[serde(default)]
    pub row: indexmap::IndexMap<String, serde_json::Value>,
    /// This rule set's previous result.
    pub prev: Option<RawGiven>,
    /// Results of rule sets this one depends on, instead of evaluating them on `row`.
    #[serde(default)]
    pub given: indexmap::IndexMap<String, RawGiven>,
    /// The day the test runs as of (default: today): what `today()` and `days_since` count from.
    pub as_of: Option<chrono::NaiveDate>,
    pub expect: RawExpect,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGiven {
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub days_in_grade: Option<i64>,
    /// For `prev`: the scores of the last runs, oldest first.
    #[serde(default)]
    pub scores: Vec<f64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub fired: Vec<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub score: Option<f64>,
    pub grade: Option<String>,
    /// For classifications: the class (the same as `grade`).
    pub class: Option<String>,
    pub fired: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub reasons: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScore {
    #[schemars(with = "Option<f64>")]
    pub base: Option<Spanned<f64>>,
    #[schemars(with = "Option<f64>")]
    pub min: Option<Spanned<f64>>,
    #[schemars(with = "Option<f64>")]
    pub max: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawGrade {
    #[schemars(with = "String")]
    pub grade: Spanned<String>,
    #[schemars(with = "Option<f64>")]
    pub min: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    pub description: Option<String>,
    #[schemars(with = "String")]
    pub when: Spanned<String>,
    #[schemars(with = "Option<RawPoints>")]
    pub points: Option<Spanned<RawPoints>>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[schemars(with = "Option<String>")]
    pub reason: Option<Spanned<String>>,
    pub enabled: Option<bool>,
}

/// Points are a number or an expression that computes one.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawPoints {
    Number(f64),
    Expression(String),
}
