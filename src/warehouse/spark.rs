//! DuckDB SQL written as Spark SQL, for `keepwell compile --target spark`: the feature
//! queries people write in DuckDB's dialect and the rule sets keepwell translates, parsed
//! with `sqlparser` (DuckDB's dialect), rewritten where the two engines differ, and printed
//! back. What has no Spark equivalent known here is an error at the place it is written, so
//! a query fails on this machine rather than on the cluster.
//!
//! Where the dialects differ:
//! - `getvariable('as_of')` is the day of the run, given as Spark SQL;
//! - `::` casts become `CAST`; `VARCHAR` is `STRING`, `T[]` is `ARRAY<T>`, `HUGEINT` and
//!   `UBIGINT` are decimals;
//! - `[a, b]` is `array(a, b)`, `MAP {k: v}` is `map(k, v)`, `x[k]` is `try_element_at(x, k)`;
//! - `//` is `DIV`; `list_contains` is `array_contains`, `len` is `size`, `list` is
//!   `collect_list` (sorted with `array_sort` when ordered by itself), `arg_max` is `max_by`,
//!   `string_split` is `split` (whose separator is a pattern), `strftime` is `date_format`,
//!   `epoch_us` is `unix_micros`, `to_days` and `to_months` are `make_interval`,
//!   `format('{:,}', n)` is `format_number(n, 0)`, `date_diff('day', a, b)` is
//!   `datediff(b, a)`;
//! - identifiers are quoted with backticks, and text literals escape `'` and `\` with `\`.
//!
//! Functions named the same in both (`coalesce`, `count`, `sum`, `round`, `greatest`...) are
//! kept; any other is an error.

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, AccessExpr, ArrayElemTypeDef, BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArguments, ObjectNamePart, Spanned, Statement, Subscript, Value, VisitMut,
};
use sqlparser::dialect::{DuckDbDialect, GenericDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

/// Why a query could not be written for Spark, and where (1-based line and column in the
/// query's text; 0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Untranslatable {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why one piece of a query has no Spark SQL known here.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unsupported {
    #[error("function `{0}` is not known to translate to Spark")]
    Function(String),
    #[error("only `x[key]` subscripts translate to Spark")]
    Subscript,
    #[error("lambda functions do not translate to Spark")]
    Lambda,
    #[error("only the variable `as_of` is known to Spark")]
    Variable,
    #[error("`{0}` takes one argument")]
    Arguments(&'static str),
    #[error("`list(x ORDER BY ...)` translates only ordered by `x` itself, ascending")]
    ListOrder,
    #[error("`{0}` translates only with a literal {1}")]
    Literal(&'static str, &'static str),
    #[error("`format` translates only as `format('{{:,}}', n)`")]
    Format,
    #[error("`date_diff` translates only in days: `date_diff('day', a, b)`")]
    DateDiff,
    #[error("the type `{0}` is not known to translate to Spark")]
    Type(String),
    #[error("the format `{0}` has text Spark would read as a pattern")]
    PatternText(String),
    #[error("`%{code}` in `{format}` does not translate to Spark")]
    PatternCode { code: char, format: String },
    #[error("{0}")]
    Parse(#[from] sqlparser::parser::ParserError),
}

/// Functions Spark has under the same name, with the same meaning for the arguments DuckDB
/// takes.
const SAME: &[&str] = &[
    "abs",
    "avg",
    "ceil",
    "ceiling",
    "coalesce",
    "concat",
    "cos",
    "count",
    "count_if",
    "date_trunc",
    "exp",
    "flatten",
    "floor",
    "greatest",
    "isnan",
    "least",
    "length",
    "ln",
    "log10",
    "lower",
    "ltrim",
    "max",
    "max_by",
    "min",
    "min_by",
    "month",
    "nullif",
    "power",
    "pow",
    "quarter",
    "replace",
    "round",
    "rtrim",
    "sign",
    "sin",
    "sqrt",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "substring",
    "sum",
    "trim",
    "upper",
    "var_pop",
    "var_samp",
    "year",
    "day",
    "dayofweek",
    "dayofyear",
    "hour",
    "minute",
    "second",
    "bool_and",
    "bool_or",
    "median",
    "mode",
    "array_sort",
    "split",
    "array_contains",
    "size",
    "datediff",
    "date_format",
    "unix_micros",
    "make_interval",
    "format_number",
    "try_element_at",
    "map",
    "array",
    "collect_list",
    "any_value",
    "first",
    "last",
    "lpad",
    "rpad",
    "left",
    "right",
    "array_join",
    "current_date",
];

/// `sql` (one query or statement in DuckDB's dialect) as Spark SQL, where `as_of` is the
/// Spark SQL of the run's day.
pub fn to_spark(sql: &str, as_of: &str) -> Result<String, Vec<Untranslatable>> {
    let at = |line: u64, column: u64, message: String| Untranslatable {
        line: line as usize,
        column: column as usize,
        message,
    };
    let mut statements = Parser::parse_sql(&DuckDbDialect {}, sql).map_err(|e| vec![at(0, 0, e.to_string())])?;
    let mut rewrite = Rewrite { as_of, errors: Vec::new() };
    for statement in &mut statements {
        let _ = statement.visit(&mut rewrite);
        if !matches!(statement, Statement::Query(_)) {
            let span = statement.span();
            rewrite.errors.push(at(span.start.line, span.start.column, "only a query can be compiled".into()));
        }
    }
    if !rewrite.errors.is_empty() {
        return Err(rewrite.errors);
    }
    let text: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
    Ok(spark_tokens(&text.join(";\n")))
}

struct Rewrite<'a> {
    as_of: &'a str,
    errors: Vec<Untranslatable>,
}

impl ast::VisitorMut for Rewrite<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let span = expr.span();
        if let Err(why) = self.expr(expr) {
            self.errors.push(Untranslatable {
                line: span.start.line as usize,
                column: span.start.column as usize,
                message: why.to_string(),
            });
        }
        ControlFlow::Continue(())
    }
}

impl Rewrite<'_> {
    fn expr(&mut self, expr: &mut Expr) -> Result<(), Unsupported> {
        match expr {
            Expr::Cast { kind, data_type, .. } => {
                if matches!(kind, CastKind::DoubleColon) {
                    *kind = CastKind::Cast;
                }
                *data_type = spark_type(data_type)?;
            }
            Expr::Array(array) => *expr = call("array", std::mem::take(&mut array.elem)),
            Expr::Map(map) => {
                let args = std::mem::take(&mut map.entries).into_iter().flat_map(|e| [*e.key, *e.value]).collect();
                *expr = call("map", args);
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                let mut value = std::mem::replace(root.as_mut(), Expr::value(Value::Null));
                for access in std::mem::take(access_chain) {
                    match access {
                        AccessExpr::Subscript(Subscript::Index { index }) => {
                            value = call("try_element_at", vec![value, index]);
                        }
                        _ => return Err(Unsupported::Subscript),
                    }
                }
                *expr = value;
            }
            Expr::BinaryOp { op, .. } => {
                if matches!(op, BinaryOperator::DuckIntegerDivide) {
                    *op = BinaryOperator::MyIntegerDivide;
                }
            }
            Expr::Lambda(_) => return Err(Unsupported::Lambda),
            Expr::Function(_) => self.function(expr)?,
            _ => {}
        }
        Ok(())
    }

    fn function(&mut self, expr: &mut Expr) -> Result<(), Unsupported> {
        let Expr::Function(f) = expr else { return Ok(()) };
        let name = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(i)] => i.value.to_lowercase(),
            _ => return Err(Unsupported::Function(f.name.to_string())),
        };
        let mut args = plain_args(&f.args);
        let rename = |f: &mut ast::Function, to: &str| f.name = ast::ObjectName::from(vec![ast::Ident::new(to)]);
        match name.as_str() {
            "getvariable" => match args.as_deref() {
                Some([Expr::Value(v)]) if v.value == Value::SingleQuotedString("as_of".into()) => {
                    *expr =
                        Parser::new(&GenericDialect {}).try_with_sql(self.as_of).and_then(|mut p| p.parse_expr())?;
                }
                _ => return Err(Unsupported::Variable),
            },
            "list_contains" | "array_has" | "list_has" => rename(f, "array_contains"),
            "len" | "array_length" | "list_length" => rename(f, "size"),
            "arg_max" | "argmax" => rename(f, "max_by"),
            "arg_min" | "argmin" => rename(f, "min_by"),
            "epoch_us" => rename(f, "unix_micros"),
            "chr" => rename(f, "char"),
            "array_to_string" | "list_aggr_string" => rename(f, "array_join"),
            "list" | "array_agg" => {
                // Ordered by itself: sorted afterwards (`collect_list` keeps no order).
                let FunctionArguments::List(list) = &mut f.args else { return Err(Unsupported::Arguments("list")) };
                let order = list.clauses.iter().position(|c| matches!(c, FunctionArgumentClause::OrderBy(_)));
                let sorted = match order {
                    None => false,
                    Some(i) => {
                        let FunctionArgumentClause::OrderBy(by) = list.clauses.remove(i) else { unreachable!() };
                        let first = args.as_ref().and_then(|a| a.first()).map(|a| a.to_string());
                        let plain = by.len() == 1
                            && matches!(by[0].options.sort, None | Some(ast::OrderBySort::Asc))
                            && first.as_deref() == Some(by[0].expr.to_string().as_str());
                        if !plain {
                            return Err(Unsupported::ListOrder);
                        }
                        true
                    }
                };
                rename(f, "collect_list");
                if sorted {
                    let inner = std::mem::replace(expr, Expr::value(Value::Null));
                    *expr = call("array_sort", vec![inner]);
                }
            }
            "string_split" | "str_split" | "string_to_array" => match args.as_deref_mut() {
                Some([s, Expr::Value(sep)]) if matches!(sep.value, Value::SingleQuotedString(_)) => {
                    let Value::SingleQuotedString(text) = &sep.value else { unreachable!() };
                    let pattern = Expr::value(Value::SingleQuotedString(regex_quote(text)));
                    *expr = call("split", vec![std::mem::replace(s, Expr::value(Value::Null)), pattern]);
                }
                _ => return Err(Unsupported::Literal("string_split", "separator")),
            },
            "strftime" => match args.as_deref_mut() {
                Some([x, Expr::Value(format)]) if matches!(format.value, Value::SingleQuotedString(_)) => {
                    let Value::SingleQuotedString(text) = &format.value else { unreachable!() };
                    let pattern = Expr::value(Value::SingleQuotedString(date_pattern(text)?));
                    *expr = call("date_format", vec![std::mem::replace(x, Expr::value(Value::Null)), pattern]);
                }
                _ => return Err(Unsupported::Literal("strftime", "format")),
            },
            "to_days" | "to_months" | "to_hours" => {
                let Some([n]) = args.as_deref_mut() else {
                    return Err(Unsupported::Arguments(match name.as_str() {
                        "to_days" => "to_days",
                        "to_months" => "to_months",
                        _ => "to_hours",
                    }));
                };
                let zero = || Expr::value(Value::Number("0".into(), false));
                let n = std::mem::replace(n, Expr::value(Value::Null));
                let parts = match name.as_str() {
                    "to_months" => vec![zero(), n],
                    "to_days" => vec![zero(), zero(), zero(), n],
                    _ => vec![zero(), zero(), zero(), zero(), n],
                };
                *expr = call("make_interval", parts);
            }
            "format" => match args.as_deref_mut() {
                Some([Expr::Value(f), n]) if f.value == Value::SingleQuotedString("{:,}".into()) => {
                    let n = std::mem::replace(n, Expr::value(Value::Null));
                    *expr = call("format_number", vec![n, Expr::value(Value::Number("0".into(), false))]);
                }
                _ => return Err(Unsupported::Format),
            },
            "date_diff" | "datediff" => match args.as_deref_mut() {
                Some([Expr::Value(part), a, b]) if matches!(&part.value, Value::SingleQuotedString(p) if p.eq_ignore_ascii_case("day") || p.eq_ignore_ascii_case("days")) =>
                {
                    let (a, b) = (
                        std::mem::replace(a, Expr::value(Value::Null)),
                        std::mem::replace(b, Expr::value(Value::Null)),
                    );
                    *expr = call("datediff", vec![b, a]);
                }
                _ => return Err(Unsupported::DateDiff),
            },
            "today" | "current_date" => *expr = call("current_date", Vec::new()),
            name if SAME.contains(&name) => {}
            name => return Err(Unsupported::Function(name.to_string())),
        }
        Ok(())
    }
}

/// The arguments of a call when they are plain expressions.
fn plain_args(args: &FunctionArguments) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = args else { return None };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// A call of `name` with `args`.
fn call(name: &str, args: Vec<Expr>) -> Expr {
    let mut parsed =
        Parser::new(&GenericDialect {}).try_with_sql(&format!("{name}()")).and_then(|mut p| p.parse_expr()).ok();
    match parsed.as_mut() {
        Some(Expr::Function(f)) => {
            if let FunctionArguments::List(list) = &mut f.args {
                list.args = args.into_iter().map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a))).collect();
            }
        }
        _ => unreachable!("`{name}()` parses as a call"),
    }
    parsed.unwrap_or(Expr::value(Value::Null))
}

fn spark_type(t: &DataType) -> Result<DataType, Unsupported> {
    Ok(match t {
        DataType::Varchar(_) | DataType::Text | DataType::String(_) | DataType::CharVarying(_) => {
            DataType::String(None)
        }
        DataType::Array(ArrayElemTypeDef::SquareBracket(inner, _))
        | DataType::Array(ArrayElemTypeDef::AngleBracket(inner)) => {
            DataType::Array(ArrayElemTypeDef::AngleBracket(Box::new(spark_type(inner)?)))
        }
        DataType::HugeInt => DataType::Decimal(ast::ExactNumberInfo::PrecisionAndScale(38, 0)),
        DataType::UBigInt => DataType::Decimal(ast::ExactNumberInfo::PrecisionAndScale(20, 0)),
        DataType::Custom(name, _) if name.to_string().eq_ignore_ascii_case("timestamptz") => {
            DataType::Timestamp(None, ast::TimezoneInfo::None)
        }
        DataType::Integer(_)
        | DataType::Int(_)
        | DataType::BigInt(_)
        | DataType::SmallInt(_)
        | DataType::TinyInt(_)
        | DataType::Double(_)
        | DataType::DoublePrecision
        | DataType::Float(_)
        | DataType::Real
        | DataType::Boolean
        | DataType::Bool
        | DataType::Date
        | DataType::Timestamp(..)
        | DataType::Decimal(_)
        | DataType::Numeric(_) => t.clone(),
        other => return Err(Unsupported::Type(other.to_string())),
    })
}

/// `text` as a Java regular expression that matches it literally.
fn regex_quote(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if !c.is_alphanumeric() && c != ' ' && c != '_' {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

/// A `strftime` format as a Spark date pattern.
fn date_pattern(format: &str) -> Result<String, Unsupported> {
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            if c.is_ascii_alphabetic() || c == '\'' {
                return Err(Unsupported::PatternText(format.to_string()));
            }
            out.push(c);
            continue;
        }
        out.push_str(match chars.next() {
            Some('Y') => "yyyy",
            Some('m') => "MM",
            Some('d') => "dd",
            Some('H') => "HH",
            Some('M') => "mm",
            Some('S') => "ss",
            other => {
                return Err(Unsupported::PatternCode { code: other.unwrap_or(' '), format: format.to_string() });
            }
        });
    }
    Ok(out)
}

/// The printed query with Spark's quoting: identifiers in backticks, text literals with `'`
/// and `\` escaped by `\` (Spark reads `''` as two literals side by side).
fn spark_tokens(sql: &str) -> String {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else { return sql.to_string() };
    let mut out = String::with_capacity(sql.len());
    for token in tokens {
        match token {
            Token::Word(w) if w.quote_style == Some('"') => {
                out.push('`');
                out.push_str(&w.value.replace('`', "``"));
                out.push('`');
            }
            Token::SingleQuotedString(s) => {
                out.push('\'');
                out.push_str(&s.replace('\\', "\\\\").replace('\'', "\\'"));
                out.push('\'');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_spark;

    /// Each DuckDB query and the Spark SQL it becomes, exactly.
    #[test]
    fn queries_translate_exactly() {
        let as_of = "DATE '2026-12-07'";
        let cases = [
            ("SELECT x::VARCHAR FROM t", "SELECT CAST(x AS STRING) FROM t"),
            ("SELECT CAST([] AS VARCHAR[]) AS l", "SELECT CAST(array() AS ARRAY<STRING>) AS l"),
            ("SELECT ['a', 'b'] AS l", "SELECT array('a', 'b') AS l"),
            ("SELECT (MAP {'a': 1, 'b': 2}[k]) AS v", "SELECT (try_element_at(map('a', 1, 'b', 2), k)) AS v"),
            ("SELECT a // b, a % b FROM t", "SELECT a DIV b, a % b FROM t"),
            ("SELECT \"e\".\"col\" FROM t \"e\"", "SELECT `e`.`col` FROM t `e`"),
            ("SELECT 'it''s \\ here'", "SELECT 'it\\'s \\\\ here'"),
            (
                "SELECT d > getvariable('as_of') - INTERVAL 90 DAY FROM t",
                "SELECT d > DATE '2026-12-07' - INTERVAL 90 DAY FROM t",
            ),
            ("SELECT list(m ORDER BY m) FROM t GROUP BY a", "SELECT array_sort(collect_list(m)) FROM t GROUP BY a"),
            (
                "SELECT list_contains(string_split(s, '|'), v), len(l) FROM t",
                "SELECT array_contains(split(s, '\\\\|'), v), size(l) FROM t",
            ),
            (
                "SELECT arg_max(score, at) FILTER (WHERE kind = 'nps') FROM t",
                "SELECT max_by(score, at) FILTER (WHERE kind = 'nps') FROM t",
            ),
            ("SELECT strftime(d, '%Y-%m-%d')", "SELECT date_format(d, 'yyyy-MM-dd')"),
            ("SELECT format('{:,}', abs(n))", "SELECT format_number(abs(n), 0)"),
            (
                "SELECT CAST(d + to_days(CAST(n AS INTEGER)) AS DATE)",
                "SELECT CAST(d + make_interval(0, 0, 0, CAST(n AS INTEGER)) AS DATE)",
            ),
            ("SELECT date_diff('day', a, b)", "SELECT datediff(b, a)"),
            ("SELECT array_to_string(l, ', ')", "SELECT array_join(l, ', ')"),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(duckdb, spark)| {
                let got = to_spark(duckdb, as_of);
                (got.as_deref() != Ok(*spark)).then(|| format!("{duckdb}\n  want {spark}\n  got  {got:?}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// What does not translate is located.
    #[test]
    fn untranslatable_is_located() {
        let cases = [
            ("SELECT\n  regexp_extract_all(s, 'x') FROM t", 2, 3, "function `regexp_extract_all`"),
            ("SELECT list_filter(l, x -> x > 1) FROM t", 1, 8, "function `list_filter`"),
            ("SELECT strftime(d, '%j') FROM t", 1, 8, "`%j`"),
            ("SELECT getvariable('other')", 1, 8, "only the variable `as_of`"),
            ("SELECT list(m ORDER BY n DESC) FROM t", 1, 8, "ordered by `x` itself"),
        ];
        let mut wrong = Vec::new();
        for (sql, line, column, message) in cases {
            match to_spark(sql, "DATE '2026-12-07'") {
                Ok(got) => wrong.push(format!("{sql}: translated as {got}")),
                Err(errors) => {
                    let located =
                        errors.iter().any(|e| (e.line, e.column) == (line, column) && e.message.contains(message));
                    if !located {
                        wrong.push(format!("{sql}: {errors:?}"));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
