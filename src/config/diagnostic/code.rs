//! Stable codes for every kind of problem `check` reports, so editors, CI and people can
//! refer to one kind of mistake whatever its message says. A code is never reused for
//! another kind; `docs/diagnostics.md` explains each (a test holds the two together).

/// The kind of a diagnostic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// A file cannot be read.
    Unreadable,
    /// YAML that does not parse, or fields that do not fit the file's schema.
    Yaml,
    /// A name that cannot be a table, view or file name.
    BadName,
    /// The same name (rule set, rule, grade, view) defined twice.
    Duplicate,
    /// A column the entity view or the source does not have.
    UnknownColumn,
    /// A rule set the project does not have, or the job does not run.
    UnknownRuleSet,
    /// A grade the rule set does not give.
    UnknownGrade,
    /// A lookup table or lookup column that does not exist, or a lookup file that is wrong.
    Lookup,
    /// A setting with a value outside the ones it takes.
    UnknownValue,
    /// Text that is not a duration.
    Duration,
    /// A cron expression or time zone that does not parse.
    Schedule,
    /// Text that is not an email address.
    Address,
    /// A job that misses what every job needs, or extends itself.
    Job,
    /// The entity view is missing or cannot be read.
    EntityView,
    /// A rule expression or script that does not parse.
    Syntax,
    /// A comparison of values of different types.
    Type,
    /// Rule sets that depend on each other in a cycle.
    Cycle,
    /// A rule set that is not exactly one kind, or a measure without a way to score.
    RuleSetKind,
    /// A weight that is not above zero.
    Weight,
    /// Grades or bands out of order, or scores that get no grade.
    Bands,
    /// A reason or mail template that does not parse.
    Template,
    /// A score's base or bounds that are not numbers, or bounds the wrong way round.
    ScoreRange,
    /// A function that rules cannot call, or a call with the wrong number of arguments.
    UnknownFunction,
    /// A column type DuckDB does not know.
    ColumnType,
    /// A source that cannot be declared in the warehouse.
    Source,
    /// A feature view's SQL that fails.
    Feature,
    /// The warehouse itself failed while checking.
    Warehouse,
    /// A source whose path or glob matches no file, or whose file cannot be read.
    SourceFile,
    /// A declared column (or key) the source's file does not have.
    SourceColumn,
    /// A metric without a value, or whose SQL fails over the accounts.
    Metric,
    /// An outcomes file or a `validation:` setting that cannot be read as written.
    Outcomes,
    /// A channel (Slack, Teams, webhook) or a task output that cannot be used as written.
    Channel,
    /// A rule, reason or feature query `keepwell compile` cannot write for its target.
    NotPortable,
}

impl Code {
    /// Every code, in order.
    pub const ALL: [Code; 33] = [
        Code::Unreadable,
        Code::Yaml,
        Code::BadName,
        Code::Duplicate,
        Code::UnknownColumn,
        Code::UnknownRuleSet,
        Code::UnknownGrade,
        Code::Lookup,
        Code::UnknownValue,
        Code::Duration,
        Code::Schedule,
        Code::Address,
        Code::Job,
        Code::EntityView,
        Code::Syntax,
        Code::Type,
        Code::Cycle,
        Code::RuleSetKind,
        Code::Weight,
        Code::Bands,
        Code::Template,
        Code::ScoreRange,
        Code::UnknownFunction,
        Code::ColumnType,
        Code::Source,
        Code::Feature,
        Code::Warehouse,
        Code::SourceFile,
        Code::SourceColumn,
        Code::Metric,
        Code::Outcomes,
        Code::Channel,
        Code::NotPortable,
    ];

    /// The stable code, `KW` and three digits.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unreadable => "KW001",
            Code::Yaml => "KW002",
            Code::BadName => "KW010",
            Code::Duplicate => "KW011",
            Code::UnknownColumn => "KW012",
            Code::UnknownRuleSet => "KW013",
            Code::UnknownGrade => "KW014",
            Code::Lookup => "KW015",
            Code::UnknownValue => "KW016",
            Code::Duration => "KW017",
            Code::Schedule => "KW018",
            Code::Address => "KW019",
            Code::Job => "KW020",
            Code::EntityView => "KW021",
            Code::Syntax => "KW030",
            Code::Type => "KW031",
            Code::Cycle => "KW032",
            Code::RuleSetKind => "KW033",
            Code::Weight => "KW034",
            Code::Bands => "KW035",
            Code::Template => "KW036",
            Code::ScoreRange => "KW037",
            Code::UnknownFunction => "KW038",
            Code::ColumnType => "KW040",
            Code::Source => "KW041",
            Code::Feature => "KW042",
            Code::Warehouse => "KW043",
            Code::SourceFile => "KW044",
            Code::SourceColumn => "KW045",
            Code::Metric => "KW046",
            Code::Outcomes => "KW047",
            Code::Channel => "KW048",
            Code::NotPortable => "KW049",
        }
    }

    /// A short name for the kind, as `docs/diagnostics.md` heads it.
    pub fn title(self) -> &'static str {
        match self {
            Code::Unreadable => "unreadable file",
            Code::Yaml => "invalid YAML",
            Code::BadName => "bad name",
            Code::Duplicate => "defined twice",
            Code::UnknownColumn => "unknown column",
            Code::UnknownRuleSet => "unknown rule set",
            Code::UnknownGrade => "unknown grade",
            Code::Lookup => "lookup table",
            Code::UnknownValue => "unknown setting value",
            Code::Duration => "bad duration",
            Code::Schedule => "bad schedule",
            Code::Address => "bad email address",
            Code::Job => "incomplete job",
            Code::EntityView => "entity view",
            Code::Syntax => "expression does not parse",
            Code::Type => "type mismatch",
            Code::Cycle => "dependency cycle",
            Code::RuleSetKind => "rule set kind",
            Code::Weight => "bad weight",
            Code::Bands => "grades or bands out of order",
            Code::Template => "template does not parse",
            Code::ScoreRange => "bad score range",
            Code::UnknownFunction => "unknown function",
            Code::ColumnType => "bad column type",
            Code::Source => "source cannot be declared",
            Code::Feature => "feature view fails",
            Code::Warehouse => "warehouse failure",
            Code::SourceFile => "source file not found",
            Code::SourceColumn => "column not in the file",
            Code::Metric => "metric fails",
            Code::Outcomes => "outcomes cannot be read",
            Code::Channel => "channel cannot be used",
            Code::NotPortable => "not portable",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(s.len() == 5 && s.starts_with("KW") && s[2..].bytes().all(|b| b.is_ascii_digit()), "{s}");
            assert!(seen.insert(s), "{s} is used twice");
        }
    }
}
