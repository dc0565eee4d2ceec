//! Vectorised evaluation: rule expressions that fall in a translatable subset are compiled
//! to DuckDB SQL and evaluated in the warehouse as whole columns; everything else runs in
//! rhai, row by row. Both paths give the same results.
//!
//! The subset: literals, columns, `as_of`, other rule sets' `grade`, `score`, `tags` and
//! `fired`; `+ - * /` and unary minus; comparisons; `&& || !`; `in` lists and `??`; the
//! helpers `is_missing`, `present`, `coalesce`, `days_since`, `days_until`,
//! `days_between`, `same_quarter`, `quarter`, `add_days`, `clamp`, `round`, `abs`, `min`,
//! `max`, `pct`, `lower`, `upper`, `in_list`, `date`, `today`, `money` and `lookup` (a table
//! column with a text key, read from a MAP literal of the table). Scripts made of `let`
//! bindings and a final result map translate too (see [`Translator::script`]).
//!
//! How the rhai semantics carry over:
//! - a comparison with a missing value is false: every comparison is `coalesce(.., false)`;
//! - arithmetic with a missing value is missing: SQL's NULL propagation;
//! - `/` divides exactly and by zero gives a missing value: `CAST(a AS DOUBLE) / nullif(b, 0)`;
//! - integers are 64-bit in both; where rhai would stop with an error for one account (an
//!   overflow), the SQL raises an error too, and the whole rule set falls back to rhai,
//!   which records the error against that account; `&&`, `||` and `!` on a value that can
//!   be missing (a bare boolean column) stay in rhai, where that is an error;
//! - text compares byte by byte in both; `round` uses the same formula (`round(x * 10^d) /
//!   10^d`, halves away from zero).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use duckdb::Connection;
use duckdb::arrow::array::{Array, AsArray};
use duckdb::arrow::datatypes::DataType;
use rhai::{Dynamic, Expr as RhaiExpr, Stmt};

use super::lookup::Lookups;
use super::{Body, Expr, Points, RuleSet, Scoring, SetOutcomes};
use crate::entity::{ColumnType, Schema};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ty {
    Int,
    Float,
    Text,
    Bool,
    Date,
    TextList,
    Null,
}

impl Ty {
    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Null)
    }
}

/// A translated expression: its SQL, its type, and for booleans whether it can be NULL.
#[derive(Debug, Clone)]
struct Sql {
    text: String,
    ty: Ty,
    nullable: bool,
}

impl Sql {
    fn new(text: impl Into<String>, ty: Ty, nullable: bool) -> Sql {
        Sql { text: text.into(), ty, nullable }
    }
}

/// Translates one rule set's expressions; knows the columns, the rule sets it may read and
/// the lookup tables.
pub struct Translator<'a> {
    pub schema: &'a Schema,
    pub depends_on: &'a [String],
    pub as_of: NaiveDate,
    pub lookups: &'a Lookups,
    /// The fields of other rule sets' results the translated SQL reads.
    pub deps_used: BTreeSet<(String, String)>,
    /// Integer arithmetic, selected on its own for every row: rhai evaluates every operand
    /// and stops on an overflow, while SQL may skip an operand (`coalesce`, `CASE`, folding),
    /// so each is computed where nothing can skip it and an overflow fails the query.
    pub checks: Vec<String>,
    /// A script's `let` bindings so far, latest last (a name may be bound again).
    bindings: Vec<(String, Sql)>,
}

/// A script translated: the SQL of each field of the map it returns (`None`: absent).
#[derive(Debug, Default, Clone)]
pub struct ScriptSql {
    score: Option<String>,
    grade: Option<String>,
    lists: Vec<(ListField, String)>,
}

/// The list fields of a script's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListField {
    Fired,
    Reasons,
    Tags,
}

impl<'a> Translator<'a> {
    pub fn new(schema: &'a Schema, depends_on: &'a [String], as_of: NaiveDate, lookups: &'a Lookups) -> Self {
        Translator {
            schema,
            depends_on,
            as_of,
            lookups,
            deps_used: BTreeSet::new(),
            checks: Vec::new(),
            bindings: Vec::new(),
        }
    }

    /// A script made of `let` bindings and a final map literal (`#{ score: .., reasons:
    /// [..], tags: .. }`), each value in the subset, plus `if` expressions, string
    /// interpolation of text, integers, booleans and dates, list literals of text, and
    /// `money`. Anything else (loops, functions, assignments, floats in interpolation)
    /// keeps the script in rhai.
    pub fn script(&mut self, e: &Expr) -> Option<ScriptSql> {
        self.bindings.clear();
        let (last, lets) = e.ast.statements().split_last()?;
        for stmt in lets {
            let Stmt::Var(x, _, _) = stmt else { return None };
            let value = self.expr(&x.1)?;
            self.bindings.push((x.0.name.to_string(), value));
        }
        let Stmt::Expr(map) = last else { return None };
        let RhaiExpr::Map(map, _) = map.as_ref() else { return None };
        let mut fields: Vec<(String, Sql)> = Vec::new();
        for (key, value) in &map.0 {
            fields.push((key.name.to_string(), self.expr(value)?));
        }
        // Constant values the optimiser left in the map's template.
        for (key, value) in &map.1 {
            if !value.is_unit() && !fields.iter().any(|(k, _)| k == key.as_str()) {
                fields.push((key.to_string(), self.constant(value)?));
            }
        }
        self.bindings.clear();
        let mut out = ScriptSql::default();
        for (key, sql) in fields {
            match key.as_str() {
                "score" if sql.ty.numeric() => out.score = Some(format!("CAST({} AS DOUBLE)", sql.text)),
                "grade" if matches!(sql.ty, Ty::Text | Ty::Null) => {
                    out.grade = Some(format!("CAST({} AS VARCHAR)", sql.text))
                }
                "fired" | "reasons" | "tags" if sql.ty == Ty::TextList => {
                    let field = match key.as_str() {
                        "fired" => ListField::Fired,
                        "reasons" => ListField::Reasons,
                        _ => ListField::Tags,
                    };
                    out.lists.push((field, sql.text));
                }
                "score" | "grade" | "fired" | "reasons" | "tags" => return None,
                // Other fields are not read; they only had to evaluate without an error.
                _ => {}
            }
        }
        Some(out)
    }

    /// A condition: SQL that is true exactly when rhai fires it, and false or NULL when it
    /// does not (a missing result does not fire; a non-boolean result is an error in rhai, so
    /// it is not translated). It is read as `CASE WHEN`, where NULL does not fire either, so
    /// the comparisons under `&&` and `||` need no `coalesce`, which costs DuckDB more than the
    /// comparison itself.
    pub fn condition(&mut self, e: &Expr) -> Option<String> {
        let s = match e.ast.statements() {
            [] => return None,
            statements => self.lax_block(statements)?,
        };
        match s.ty {
            Ty::Bool => Some(s.text),
            Ty::Null => Some("false".into()),
            _ => None,
        }
    }

    /// A boolean whose NULL stands for false: `&&`, `||`, comparisons and `in` lists, which
    /// rhai never leaves missing, written without turning NULL into false. Only `AND`, `OR`
    /// and `CASE WHEN` may read it; anything else reads [`Translator::expr`]'s strict form.
    /// `nullable` is set only for a value rhai itself can leave missing (a bare column).
    fn lax(&mut self, e: &RhaiExpr) -> Option<Sql> {
        match e {
            RhaiExpr::And(list, _) | RhaiExpr::Or(list, _) => {
                let op = if matches!(e, RhaiExpr::And(..)) { " AND " } else { " OR " };
                let parts: Option<Vec<String>> = list.iter().map(|x| self.lax_operand(x)).collect();
                Some(Sql::new(format!("({})", parts?.join(op)), Ty::Bool, false))
            }
            RhaiExpr::FnCall(f, _) if lax_call(&f.name, f.args.len()) => self.lax_call(f),
            RhaiExpr::Stmt(block) => self.lax_block(block.statements()),
            _ => self.expr(e),
        }
    }

    fn lax_block(&mut self, statements: &[Stmt]) -> Option<Sql> {
        match statements {
            [Stmt::Expr(x)] => self.lax(x),
            [Stmt::FnCall(f, _)] if lax_call(&f.name, f.args.len()) => self.lax_call(f),
            _ => self.block(statements),
        }
    }

    /// A comparison or an `in` list (see [`lax_call`]), NULL when a side is missing.
    fn lax_call(&mut self, f: &rhai::FnCallExpr) -> Option<Sql> {
        let args = f.args.as_slice();
        let text = match (f.name.as_str(), args) {
            (name, [a, b]) if comparison_op(name).is_some() => {
                let (x, y) = (self.expr(a)?, self.expr(b)?);
                self.comparison(name, &x, &y, (numeric_constant(a), numeric_constant(b)))?
            }
            ("contains", [list, x]) | ("in_list", [x, list]) => {
                let x = self.expr(x)?;
                self.contains(list, &x)?
            }
            _ => return None,
        };
        Some(Sql::new(text, Ty::Bool, false))
    }

    /// An operand of `&&` or `||` (or an `if`'s condition), NULL standing for false. A
    /// missing one is an error in rhai, which SQL cannot reproduce faithfully (DuckDB folds
    /// `x OR true` without evaluating `x`), so an operand that can be missing (a bare
    /// boolean column) is not translated.
    fn lax_operand(&mut self, e: &RhaiExpr) -> Option<String> {
        let s = self.lax(e)?;
        (s.ty == Ty::Bool && !s.nullable).then_some(s.text)
    }

    /// A number (points, a measure's value or score): DOUBLE, NULL when missing.
    pub fn number(&mut self, e: &Expr) -> Option<String> {
        let s = self.root(e)?;
        s.ty.numeric().then(|| format!("CAST({} AS DOUBLE)", s.text))
    }

    /// Text, for a measure's map.
    pub fn text(&mut self, e: &Expr) -> Option<String> {
        let s = self.root(e)?;
        matches!(s.ty, Ty::Text | Ty::Null).then(|| format!("CAST({} AS VARCHAR)", s.text))
    }

    fn root(&mut self, e: &Expr) -> Option<Sql> {
        match e.ast.statements() {
            [] => None,
            statements => self.block(statements),
        }
    }

    fn expr(&mut self, e: &RhaiExpr) -> Option<Sql> {
        match e {
            RhaiExpr::IntegerConstant(i, _) => Some(int_literal(*i)),
            RhaiExpr::FloatConstant(f, _) => Some(float_literal(**f)),
            RhaiExpr::BoolConstant(b, _) => Some(Sql::new(b.to_string(), Ty::Bool, false)),
            RhaiExpr::StringConstant(s, _) => Some(text_literal(s)),
            RhaiExpr::Unit(_) => Some(Sql::new("NULL", Ty::Null, true)),
            RhaiExpr::DynamicConstant(d, _) => self.constant(d),
            RhaiExpr::Variable(v, _, _) => self.variable(&v.1),
            RhaiExpr::Dot(x, _, _) => match (&x.lhs, &x.rhs) {
                (RhaiExpr::Variable(v, _, _), RhaiExpr::Property(p, _)) => self.field(&v.1, &p.2),
                _ => None,
            },
            RhaiExpr::And(..) | RhaiExpr::Or(..) => {
                let lax = self.lax(e)?;
                Some(Sql::new(format!("({}) IS TRUE", lax.text), Ty::Bool, false))
            }
            RhaiExpr::Coalesce(list, _) => {
                let parts: Option<Vec<Sql>> = list.iter().map(|x| self.expr(x)).collect();
                coalesce(parts?)
            }
            RhaiExpr::FnCall(f, _) => self.call(&f.name, &f.args),
            RhaiExpr::Stmt(block) => self.block(block.statements()),
            RhaiExpr::InterpolatedString(parts, _) => {
                let parts: Option<Vec<String>> = parts.iter().map(|p| self.piece(p)).collect();
                Some(Sql::new(format!("concat({})", parts?.join(", ")), Ty::Text, false))
            }
            RhaiExpr::Array(items, _) => {
                let items: Option<Vec<Sql>> = items.iter().map(|i| self.expr(i)).collect();
                text_list(items?)
            }
            _ => None,
        }
    }

    /// The value of a block in expression position: one expression, or an `if`.
    fn block(&mut self, statements: &[Stmt]) -> Option<Sql> {
        match statements {
            [] => Some(Sql::new("NULL", Ty::Null, true)),
            [Stmt::Expr(x)] => self.expr(x),
            [Stmt::FnCall(f, _)] => self.call(&f.name, &f.args),
            [Stmt::If(flow, _)] => {
                // rhai stops on a condition that is not a boolean (a missing one included).
                let cond = self.lax_operand(&flow.expr)?;
                let then = self.block(flow.body.statements())?;
                let other = self.block(flow.branch.statements())?;
                let ty = match (then.ty, other.ty) {
                    (a, b) if a == b => a,
                    (Ty::Null, b) => b,
                    (a, Ty::Null) if a != Ty::TextList => a,
                    // An integer on one side and a float on the other: rhai's result changes
                    // type from row to row, which one SQL column cannot.
                    _ => return None,
                };
                if ty == Ty::TextList && (then.ty == Ty::Null || other.ty == Ty::Null) {
                    return None;
                }
                let nullable = then.nullable || other.nullable;
                Some(Sql::new(format!("(CASE WHEN {cond} THEN {} ELSE {} END)", then.text, other.text), ty, nullable))
            }
            _ => None,
        }
    }

    /// One part of an interpolated string, as rhai's `to_string` writes it: a missing value
    /// as nothing. Floats are not translated (rhai writes `1.0`, `1e20` its own way).
    fn piece(&mut self, e: &RhaiExpr) -> Option<String> {
        let s = self.expr(e)?;
        let text = match s.ty {
            Ty::Text => s.text,
            Ty::Int | Ty::Bool => format!("CAST({} AS VARCHAR)", s.text),
            Ty::Date => format!("strftime({}, '%Y-%m-%d')", s.text),
            Ty::Null => return Some("''".into()),
            Ty::Float | Ty::TextList => return None,
        };
        Some(format!("coalesce({text}, '')"))
    }

    /// The operand of `!`: false when rhai's is false, so not NULL. A missing one is an error
    /// in rhai (see [`Translator::lax_operand`]), so a bare boolean column is not translated.
    fn strict_bool(&mut self, e: &RhaiExpr) -> Option<String> {
        let s = self.expr(e)?;
        (s.ty == Ty::Bool && !s.nullable).then_some(s.text)
    }

    fn constant(&mut self, d: &Dynamic) -> Option<Sql> {
        if d.is_unit() {
            return Some(Sql::new("NULL", Ty::Null, true));
        }
        if let Ok(i) = d.as_int() {
            return Some(int_literal(i));
        }
        if let Ok(f) = d.as_float() {
            return Some(float_literal(f));
        }
        if let Ok(b) = d.as_bool() {
            return Some(Sql::new(b.to_string(), Ty::Bool, false));
        }
        if let Some(s) = d.read_lock::<rhai::ImmutableString>() {
            return Some(text_literal(&s));
        }
        if let Some(day) = d.read_lock::<NaiveDate>() {
            return Some(date_literal(*day));
        }
        if let Some(items) = d.read_lock::<rhai::Array>() {
            let items: Option<Vec<Sql>> = items.iter().map(|i| self.constant(i)).collect();
            return text_list(items?);
        }
        None
    }

    fn variable(&mut self, name: &str) -> Option<Sql> {
        if let Some((_, bound)) = self.bindings.iter().rev().find(|(n, _)| n == name) {
            return Some(Sql::new(format!("({})", bound.text), bound.ty, bound.nullable));
        }
        if name == super::compile::AS_OF {
            return Some(date_literal(self.as_of));
        }
        let col = format!("e.{}", ident(name));
        match self.schema.get(name)? {
            ColumnType::Integer => Some(Sql::new(format!("CAST({col} AS BIGINT)"), Ty::Int, true)),
            ColumnType::Float => Some(Sql::new(format!("CAST({col} AS DOUBLE)"), Ty::Float, true)),
            ColumnType::Text => Some(Sql::new(format!("CAST({col} AS VARCHAR)"), Ty::Text, true)),
            ColumnType::Bool => Some(Sql::new(col, Ty::Bool, true)),
            ColumnType::Date => Some(Sql::new(format!("CAST({col} AS DATE)"), Ty::Date, true)),
            _ => None,
        }
    }

    /// `risk.grade`, `risk.score`, `risk.tags`, `risk.fired` of a rule set this one depends on.
    fn field(&mut self, set: &str, field: &str) -> Option<Sql> {
        if !self.depends_on.iter().any(|d| d == set) {
            return None;
        }
        let col = format!("{}.{}", ident(&dep_table(set, field)), ident(field));
        let sql = match field {
            "grade" => Sql::new(col, Ty::Text, true),
            "score" => Sql::new(col, Ty::Float, true),
            "tags" | "fired" => Sql::new(col, Ty::TextList, false),
            _ => return None,
        };
        self.deps_used.insert((set.to_string(), field.to_string()));
        Some(sql)
    }

    fn call(&mut self, name: &str, args: &[RhaiExpr]) -> Option<Sql> {
        // Helpers whose arguments are all constants are evaluated once, as rhai would.
        match (name, args) {
            ("lookup", [RhaiExpr::StringConstant(t, _), key, RhaiExpr::StringConstant(c, _)]) => {
                return self.lookup(t, key, c);
            }
            ("date", [RhaiExpr::StringConstant(s, _)]) => {
                return Some(match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                    Ok(d) => date_literal(d),
                    Err(_) => Sql::new("NULL", Ty::Null, true),
                });
            }
            ("today", []) => return Some(date_literal(self.as_of)),
            _ => {}
        }
        if let ("contains" | "in_list", [first, second]) = (name, args) {
            let (list, x) = if name == "contains" { (first, second) } else { (second, first) };
            let x = self.expr(x)?;
            return Some(Sql::new(format!("({}) IS TRUE", self.contains(list, &x)?), Ty::Bool, false));
        }
        let a: Vec<Sql> = args.iter().map(|x| self.expr(x)).collect::<Option<_>>()?;
        let as_of = date_literal(self.as_of).text;
        match (name, a.as_slice()) {
            ("-", [x]) if x.ty.numeric() => Some(self.checked(Sql::new(format!("(- {})", x.text), x.ty, true))),
            ("!", [_]) => {
                let inner = self.strict_bool(&args[0])?;
                Some(Sql::new(format!("(NOT {inner})"), Ty::Bool, false))
            }
            ("+" | "-" | "*", [x, y]) if x.ty.numeric() && y.ty.numeric() => {
                let ty = if x.ty == Ty::Float || y.ty == Ty::Float { Ty::Float } else { Ty::Int };
                Some(self.checked(Sql::new(format!("({} {name} {})", x.text, y.text), ty, true)))
            }
            ("+", [x, y]) if x.ty == Ty::Text && y.ty == Ty::Text => {
                Some(Sql::new(format!("({} || {})", x.text, y.text), Ty::Text, true))
            }
            ("-", [x, y]) if x.ty == Ty::Date && y.ty == Ty::Date => {
                Some(Sql::new(format!("CAST({} - {} AS BIGINT)", x.text, y.text), Ty::Int, true))
            }
            ("/", [x, y]) if x.ty.numeric() && y.ty.numeric() => Some(Sql::new(
                format!("(CAST({} AS DOUBLE) / nullif(CAST({} AS DOUBLE), 0))", x.text, y.text),
                Ty::Float,
                true,
            )),
            ("==" | "!=" | "<" | "<=" | ">" | ">=", [x, y]) => {
                let constants = (numeric_constant(&args[0]), numeric_constant(&args[1]));
                let lax = self.comparison(name, x, y, constants)?;
                Some(Sql::new(format!("({lax}) IS TRUE"), Ty::Bool, false))
            }
            ("is_missing", [x]) => Some(Sql::new(format!("({} IS NULL)", x.text), Ty::Bool, false)),
            ("present", [x]) => Some(Sql::new(format!("({} IS NOT NULL)", x.text), Ty::Bool, false)),
            ("coalesce", [x, y]) => coalesce(vec![x.clone(), y.clone()]),
            ("days_since", [d]) if d.ty == Ty::Date => {
                Some(Sql::new(format!("CAST({as_of} - {} AS BIGINT)", d.text), Ty::Int, true))
            }
            ("days_until", [d]) if d.ty == Ty::Date => {
                Some(Sql::new(format!("CAST({} - {as_of} AS BIGINT)", d.text), Ty::Int, true))
            }
            ("days_between", [x, y]) if x.ty == Ty::Date && y.ty == Ty::Date => {
                Some(Sql::new(format!("CAST({} - {} AS BIGINT)", y.text, x.text), Ty::Int, true))
            }
            ("same_quarter", [x, y]) if x.ty == Ty::Date && y.ty == Ty::Date => Some(Sql::new(
                format!("coalesce(date_trunc('quarter', {}) = date_trunc('quarter', {}), false)", x.text, y.text),
                Ty::Bool,
                false,
            )),
            ("quarter", [d]) if d.ty == Ty::Date => {
                Some(Sql::new(format!("CAST(quarter({}) AS BIGINT)", d.text), Ty::Int, true))
            }
            ("add_days", [d, n]) if d.ty == Ty::Date && n.ty == Ty::Int => Some(Sql::new(
                format!("CAST({} + to_days(CAST({} AS INTEGER)) AS DATE)", d.text, n.text),
                Ty::Date,
                true,
            )),
            ("clamp", [x, lo, hi]) if x.ty.numeric() && lo.ty.numeric() && hi.ty.numeric() => {
                // `x.max(lo).min(hi)` in Rust.
                let [x, lo, hi] = [x, lo, hi].map(|v| format!("CAST({} AS DOUBLE)", v.text));
                let clamped = rust_float("least", &rust_float("greatest", &x, &lo), &hi);
                Some(Sql::new(
                    format!("(CASE WHEN {x} IS NULL OR {lo} IS NULL OR {hi} IS NULL THEN NULL ELSE {clamped} END)"),
                    Ty::Float,
                    true,
                ))
            }
            ("round", [x, _])
                if (x.ty == Ty::Float || x.ty == Ty::Null) && matches!(args[1], RhaiExpr::IntegerConstant(..)) =>
            {
                let RhaiExpr::IntegerConstant(digits, _) = args[1] else { return None };
                let f = 10f64.powi(digits as i32);
                let f = float_literal(f).text;
                Some(Sql::new(format!("(round({} * {f}) / {f})", x.text), Ty::Float, true))
            }
            ("abs", [x]) if x.ty.numeric() => Some(self.checked(Sql::new(format!("abs({})", x.text), x.ty, true))),
            ("min" | "max", [x, y]) if x.ty.numeric() && y.ty.numeric() && x.ty != Ty::Null && y.ty != Ty::Null => {
                let chosen = if x.ty == Ty::Float || y.ty == Ty::Float {
                    // rhai: `if x <= y { x } else { y }` (`>=` for max), a NaN never comparing;
                    // DuckDB orders NaN above every number.
                    let (x, y) = (format!("CAST({} AS DOUBLE)", x.text), format!("CAST({} AS DOUBLE)", y.text));
                    let op = if name == "min" { "<=" } else { ">=" };
                    format!("(CASE WHEN {x} {op} {y} AND NOT isnan({x}) AND NOT isnan({y}) THEN {x} ELSE {y} END)")
                } else {
                    format!("{}({}, {})", if name == "min" { "least" } else { "greatest" }, x.text, y.text)
                };
                let ty = if x.ty == Ty::Float || y.ty == Ty::Float { Ty::Float } else { Ty::Int };
                Some(Sql::new(
                    format!("(CASE WHEN {} IS NULL OR {} IS NULL THEN NULL ELSE {chosen} END)", x.text, y.text),
                    ty,
                    true,
                ))
            }
            ("pct", [x, y]) if x.ty.numeric() && y.ty.numeric() => Some(Sql::new(
                format!("(CAST({} AS DOUBLE) / nullif(CAST({} AS DOUBLE), 0) * 100.0)", x.text, y.text),
                Ty::Float,
                true,
            )),
            ("money", [x]) if x.ty.numeric() => {
                // `(x as f64).round() as i64`, then `-$1,234`; a missing value is empty text.
                let n = format!("round(CAST({} AS DOUBLE))", x.text);
                Some(Sql::new(
                    format!(
                        "(CASE WHEN {n} IS NULL THEN '' ELSE (CASE WHEN {n} < 0 THEN '-' ELSE '' END) || '$' || \
                         format('{{:,}}', abs(CAST({n} AS BIGINT))) END)"
                    ),
                    Ty::Text,
                    false,
                ))
            }
            ("lower" | "upper", [x]) if x.ty == Ty::Text => {
                Some(Sql::new(format!("{name}({})", x.text), Ty::Text, true))
            }
            _ => None,
        }
    }

    /// A comparison, NULL when either side is missing (see [`Translator::lax`]). `constants`
    /// holds either side's value when it is a number literal.
    fn comparison(&mut self, name: &str, x: &Sql, y: &Sql, constants: (Option<f64>, Option<f64>)) -> Option<String> {
        let op = comparison_op(name)?;
        let comparable = (x.ty.numeric() && y.ty.numeric())
            || x.ty == y.ty && matches!(x.ty, Ty::Text | Ty::Date | Ty::Bool)
            || (x.ty == Ty::Null || y.ty == Ty::Null) && !matches!(x.ty, Ty::TextList) && !matches!(y.ty, Ty::TextList);
        let ordered = !matches!(op, "=" | "<>");
        if !comparable || (ordered && (x.ty == Ty::Bool || y.ty == Ty::Bool)) {
            return None;
        }
        if x.ty == Ty::Float || y.ty == Ty::Float {
            return Some(float_comparison(name, x, y, constants));
        }
        Some(format!("{} {op} {}", x.text, y.text))
    }

    fn checked(&mut self, sql: Sql) -> Sql {
        if sql.ty == Ty::Int {
            self.checks.push(sql.text.clone());
        }
        sql
    }

    /// `x in [..]` and `in_list(x, [..])` with literals of `x`'s kind; `"t" in set.tags`.
    /// NULL when `x` is missing (see [`Translator::lax`]).
    fn contains(&mut self, list_expr: &RhaiExpr, x: &Sql) -> Option<String> {
        let items: Vec<Sql> = match list_expr {
            RhaiExpr::Dot(..) => {
                let list = self.expr(list_expr)?;
                if list.ty == Ty::TextList && x.ty == Ty::Text {
                    return Some(format!("list_contains({}, {})", list.text, x.text));
                }
                return None;
            }
            RhaiExpr::Array(items, _) => items.iter().map(|i| self.expr(i)).collect::<Option<_>>()?,
            RhaiExpr::DynamicConstant(d, _) => {
                let array = d.read_lock::<rhai::Array>()?;
                array.iter().map(|i| self.constant(i)).collect::<Option<_>>()?
            }
            _ => return None,
        };
        if items.is_empty() {
            return Some("false".into());
        }
        // rhai compares floats in a list with its tolerance (see `float_comparison`): only
        // integers and text are translated.
        let same_kind = items.iter().all(|i| match x.ty {
            Ty::Int => i.ty == Ty::Int,
            Ty::Text => i.ty == Ty::Text,
            _ => false,
        });
        if !same_kind {
            return None;
        }
        let list: Vec<String> = items.into_iter().map(|i| i.text).collect();
        Some(format!("{} IN ({})", x.text, list.join(", ")))
    }

    /// `lookup("table", key, "column")`: a text key (or a constant one) and a column whose
    /// values are all of one kind.
    fn lookup(&mut self, table: &str, key: &RhaiExpr, column: &str) -> Option<Sql> {
        let t = self.lookups.table(table)?;
        let index = t.columns.iter().skip(1).position(|c| c == column)?;
        let values: Vec<&Dynamic> = t.values(index).filter(|v| !v.is_unit()).collect();
        let ty = if values.iter().all(|v| v.is_int()) {
            Ty::Int
        } else if values.iter().all(|v| v.is_float()) {
            Ty::Float
        } else if values.iter().all(|v| v.is_bool()) {
            Ty::Bool
        } else if values.iter().all(|v| v.is_string()) {
            Ty::Text
        } else {
            return None;
        };
        let key = self.expr(key)?;
        if key.ty != Ty::Text && key.ty != Ty::Null {
            return None;
        }
        // The table as a MAP literal: lookup tables are small, and a map is read in place
        // where a subquery would be a join, once for every use of the value.
        let sql_type = match ty {
            Ty::Int => "BIGINT",
            Ty::Float => "DOUBLE",
            Ty::Bool => "BOOLEAN",
            _ => "VARCHAR",
        };
        let mut entries: Vec<(&String, String)> = t
            .rows()
            .map(|(k, row)| {
                let v = &row[index];
                let value = if v.is_unit() { format!("CAST(NULL AS {sql_type})") } else { self.constant(v)?.text };
                Some((k, value))
            })
            .collect::<Option<_>>()?;
        if entries.is_empty() {
            return Some(Sql::new(format!("CAST(NULL AS {sql_type})"), ty, true));
        }
        entries.sort();
        let entries: Vec<String> =
            entries.into_iter().map(|(k, v)| format!("{}: CAST({v} AS {sql_type})", text_literal(k).text)).collect();
        Some(Sql::new(format!("(MAP {{{}}}[{}])", entries.join(", "), key.text), ty, true))
    }
}

/// Rust's `f64::max` (`greatest`) or `f64::min` (`least`) of two doubles: a NaN is passed
/// over, where DuckDB orders it above every number.
fn rust_float(f: &str, a: &str, b: &str) -> String {
    format!("(CASE WHEN isnan({a}) THEN {b} WHEN isnan({b}) THEN {a} ELSE {f}({a}, {b}) END)")
}

/// Whether a call is a comparison or an `in` list, which [`Translator::lax`] writes without
/// turning NULL into false.
fn lax_call(name: &str, args: usize) -> bool {
    args == 2 && (comparison_op(name).is_some() || matches!(name, "contains" | "in_list"))
}

/// The SQL operator of a rhai comparison.
fn comparison_op(name: &str) -> Option<&'static str> {
    Some(match name {
        "==" => "=",
        "!=" => "<>",
        "<" => "<",
        "<=" => "<=",
        ">" => ">",
        ">=" => ">=",
        _ => return None,
    })
}

/// The value of a number literal, as rhai converts it to compare it with a float.
fn numeric_constant(e: &RhaiExpr) -> Option<f64> {
    match e {
        RhaiExpr::IntegerConstant(i, _) => Some(*i as f64),
        RhaiExpr::FloatConstant(f, _) => Some(**f),
        RhaiExpr::DynamicConstant(d, _) => d.as_float().ok().or_else(|| d.as_int().ok().map(|i| i as f64)),
        _ => None,
    }
}

/// rhai compares a float with a relative tolerance of `f64::EPSILON` (an absolute one when
/// either side is zero), so `1e-17 <= 0.0` is true there; the SQL does the same, NULL when
/// either side is missing. Against a number literal, the values the comparison accepts are
/// one range of doubles, found once here, so each row costs one `BETWEEN`; otherwise each
/// row computes rhai's formula.
fn float_comparison(name: &str, x: &Sql, y: &Sql, constants: (Option<f64>, Option<f64>)) -> String {
    let (x, y) = (format!("CAST({} AS DOUBLE)", x.text), format!("CAST({} AS DOUBLE)", y.text));
    let range = match constants {
        (None, Some(c)) => AcceptedRange::find(name, |v| rhai_float_compare(name, v, c), c).map(|r| (r, &x)),
        (Some(c), None) => {
            // `c < v` accepts what `v > c` does.
            let mirrored = match name {
                "<" => ">",
                "<=" => ">=",
                ">" => "<",
                ">=" => "<=",
                same => same,
            };
            AcceptedRange::find(mirrored, |v| rhai_float_compare(name, c, v), c).map(|r| (r, &y))
        }
        _ => None,
    };
    if let Some((range, value)) = range {
        return range.sql(value);
    }
    let eps = float_literal(f64::EPSILON).text;
    // Rust's `max` passes over a NaN, where DuckDB's `greatest` returns it.
    let max = format!(
        "(CASE WHEN {x} * {y} = 0 THEN 1.0 WHEN isnan(abs({x})) THEN abs({y}) WHEN isnan(abs({y})) THEN abs({x}) \
         ELSE greatest(abs({x}), abs({y})) END)"
    );
    // NaN (from an infinity or a NaN) is rejected by rhai's `>`; DuckDB orders it above every number.
    let above = |v: String, bound: &str| format!("(NOT isnan({v}) AND {v} > {bound})");
    let zero = matches!(name, "==" | ">=" | "<=");
    let test = match name {
        "==" => format!("abs({x} - {y}) / {max} <= {eps}"),
        "!=" => above(format!("abs({x} - {y}) / {max}"), &eps),
        ">" => above(format!("({x} - {y}) / {max}"), &eps),
        ">=" => above(format!("({x} - {y}) / {max}"), &format!("-{eps}")),
        "<" => above(format!("({y} - {x}) / {max}"), &eps),
        _ => above(format!("({y} - {x}) / {max}"), &format!("-{eps}")),
    };
    // A zero `max` (NaN against zero) is rhai's own case; `greatest` passes over a missing
    // value, so that is tested first.
    format!("(CASE WHEN {x} IS NULL OR {y} IS NULL THEN NULL WHEN {max} = 0 THEN {zero} ELSE {test} END)")
}

/// rhai's comparison of two floats (`rhai::func::builtin`, checked arithmetic), to the bit.
fn rhai_float_compare(name: &str, x: f64, y: f64) -> bool {
    let max = if x * y == 0.0 { 1.0 } else { x.abs().max(y.abs()) };
    if max == 0.0 {
        return matches!(name, "==" | ">=" | "<=");
    }
    match name {
        "==" => (x - y).abs() / max <= f64::EPSILON,
        "!=" => (x - y).abs() / max > f64::EPSILON,
        ">" => (x - y) / max > f64::EPSILON,
        ">=" => (x - y) / max > -f64::EPSILON,
        "<" => (y - x) / max > f64::EPSILON,
        _ => (y - x) / max > -f64::EPSILON,
    }
}

/// The finite doubles a comparison with a constant accepts: from `lo` to `hi`, or all but
/// those (`!=`). Infinities and NaN are never accepted (rhai's formula gives NaN for them).
#[derive(Debug, Clone, Copy, PartialEq)]
struct AcceptedRange {
    lo: f64,
    hi: f64,
    outside: bool,
}

impl AcceptedRange {
    /// The range `accepts` describes around the constant `c`, comparing a value with `c` by
    /// `op` (the constant on the right), or `None` when `c` is outside
    /// the magnitudes whose shape is known (near zero the tolerance is absolute) or the
    /// range found does not agree with `accepts` on every value checked: then the formula
    /// runs row by row.
    fn find(op: &str, accepts: impl Fn(f64) -> bool, c: f64) -> Option<AcceptedRange> {
        if !(1e-10..=1e300).contains(&c.abs())
            || [f64::INFINITY, f64::NEG_INFINITY, f64::NAN].iter().any(|v| accepts(*v))
        {
            return None;
        }
        // The last value on the same side as `v`, walking from `v` a few ulps at a time.
        let edge = |mut v: f64, step: fn(f64) -> f64| -> Option<f64> {
            let inside = accepts(v);
            for _ in 0..64 {
                let next = step(v);
                if accepts(next) != inside {
                    return Some(v);
                }
                v = next;
            }
            None
        };
        type Step = fn(f64) -> f64;
        let (down, up): (Step, Step) = (f64::next_down, f64::next_up);
        let at_c = accepts(c);
        let range = match (op, at_c) {
            (">" | ">=", true) => AcceptedRange { lo: edge(c, down)?, hi: f64::MAX, outside: false },
            (">" | ">=", false) => AcceptedRange { lo: edge(c, up)?.next_up(), hi: f64::MAX, outside: false },
            ("<" | "<=", true) => AcceptedRange { lo: f64::MIN, hi: edge(c, up)?, outside: false },
            ("<" | "<=", false) => AcceptedRange { lo: f64::MIN, hi: edge(c, down)?.next_down(), outside: false },
            ("==", true) => AcceptedRange { lo: edge(c, down)?, hi: edge(c, up)?, outside: false },
            ("!=", false) => AcceptedRange { lo: edge(c, down)?, hi: edge(c, up)?, outside: true },
            _ => return None,
        };
        let mut samples =
            vec![0.0, -0.0, f64::MIN_POSITIVE, 5e-324, 1e-300, 1e-10, f64::EPSILON, 0.5, 1.0, 1e300, f64::MAX];
        samples.extend([c, c / 2.0, c * 2.0, c * (1.0 + 1e-15), c * (1.0 - 1e-15), range.lo, range.hi]);
        samples.extend(samples.clone().iter().map(|v| -v));
        for bound in [range.lo, range.hi, c] {
            let (mut down, mut up) = (bound, bound);
            for _ in 0..256 {
                (down, up) = (down.next_down(), up.next_up());
                samples.extend([down, up]);
            }
        }
        // And doubles spread over every magnitude, from a fixed sequence.
        let mut bits = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..2048 {
            bits = bits.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            samples.push(f64::from_bits(bits));
        }
        let agrees = samples.iter().filter(|v| v.is_finite()).all(|v| accepts(*v) == range.contains(*v));
        agrees.then_some(range)
    }

    fn contains(&self, v: f64) -> bool {
        v.is_finite() && ((self.lo..=self.hi).contains(&v) != self.outside)
    }

    /// DuckDB orders NaN above every number, so the finite bounds keep it out too.
    fn sql(&self, value: &str) -> String {
        let between =
            |lo: f64, hi: f64| format!("{value} BETWEEN {} AND {}", float_literal(lo).text, float_literal(hi).text);
        if self.outside {
            format!("({} AND NOT ({}))", between(f64::MIN, f64::MAX), between(self.lo, self.hi))
        } else {
            format!("({})", between(self.lo, self.hi))
        }
    }
}

/// A list literal of text (or missing values, which rhai's results show as empty text).
fn text_list(items: Vec<Sql>) -> Option<Sql> {
    if !items.iter().all(|i| matches!(i.ty, Ty::Text | Ty::Null)) {
        return None;
    }
    let items: Vec<String> = items.into_iter().map(|i| format!("coalesce(CAST({} AS VARCHAR), '')", i.text)).collect();
    Some(Sql::new(format!("CAST([{}] AS VARCHAR[])", items.join(", ")), Ty::TextList, false))
}

fn coalesce(parts: Vec<Sql>) -> Option<Sql> {
    let kinds: BTreeSet<_> = parts.iter().map(|p| p.ty).filter(|t| *t != Ty::Null).collect();
    if kinds.len() > 1 || kinds.contains(&Ty::TextList) {
        return None;
    }
    let ty = kinds.into_iter().next().unwrap_or(Ty::Null);
    let nullable = parts.iter().all(|p| p.nullable);
    let texts: Vec<String> = parts.into_iter().map(|p| p.text).collect();
    Some(Sql::new(format!("coalesce({})", texts.join(", ")), ty, nullable))
}

fn int_literal(i: i64) -> Sql {
    Sql::new(format!("CAST({i} AS BIGINT)"), Ty::Int, false)
}

/// A double as DuckDB reads it back to the bit: from text. A literal with a decimal point
/// would be read as a DECIMAL first, and its conversion rounds twice: one in 70 doubles of 16
/// or 17 digits, such as the `0.3333333333333333` rhai folds `1.0 / 3.0` into, came back one
/// ulp away.
fn float_literal(f: f64) -> Sql {
    let text = if f.is_finite() { format!("{f:?}") } else { f.to_string() };
    Sql::new(format!("CAST('{text}' AS DOUBLE)"), Ty::Float, false)
}

fn text_literal(s: &str) -> Sql {
    Sql::new(format!("'{}'", s.replace('\'', "''")), Ty::Text, false)
}

fn date_literal(d: NaiveDate) -> Sql {
    Sql::new(format!("DATE '{}'", d.format("%Y-%m-%d")), Ty::Date, false)
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The columns of one rule set's translated expressions, by expression.
#[derive(Debug, Default)]
pub struct Columns {
    /// By the expression's address; a set has a handful, so a list is searched faster than
    /// a hash map is hashed (this is read for every expression of every account).
    by_expr: Vec<(usize, Column)>,
    /// A translated script's results.
    script: Option<ScriptColumns>,
}

#[derive(Debug)]
pub enum Column {
    Bool(Vec<bool>),
    /// One bit of a mask per row: conditions come back from the warehouse 64 to a column.
    Bit(Arc<Vec<u64>>, u32),
    /// A column of masks, before it is shared out among its conditions.
    Masks(Vec<u64>),
    Number(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    List(Vec<Vec<String>>),
}

/// A condition's results, row by row.
#[derive(Debug, Clone, Copy)]
pub enum Flags<'a> {
    Bools(&'a [bool]),
    Bits(&'a [u64], u32),
}

#[inline]
fn is_set(word: u64, bit: u32) -> bool {
    word >> bit & 1 == 1
}

impl Flags<'_> {
    #[inline]
    pub fn get(self, row: usize) -> bool {
        match self {
            Flags::Bools(v) => v[row],
            Flags::Bits(words, bit) => is_set(words[row], bit),
        }
    }

    pub fn len(self) -> usize {
        match self {
            Flags::Bools(v) => v.len(),
            Flags::Bits(words, _) => words.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl Column {
    fn len(&self) -> usize {
        match self {
            Column::Bool(v) => v.len(),
            Column::Bit(words, _) => words.len(),
            Column::Masks(words) => words.len(),
            Column::Number(v) => v.len(),
            Column::Text(v) => v.len(),
            Column::List(v) => v.len(),
        }
    }
}

/// The fields of a translated script's result, as columns.
#[derive(Debug, Default)]
struct ScriptColumns {
    score: Option<Column>,
    grade: Option<Column>,
    lists: Vec<(ListField, Column)>,
}

fn key(e: &Expr) -> usize {
    e as *const Expr as usize
}

impl Columns {
    fn get(&self, e: &Expr) -> Option<&Column> {
        let k = key(e);
        self.by_expr.iter().find(|(x, _)| *x == k).map(|(_, c)| c)
    }

    pub fn condition(&self, e: &Expr, row: usize) -> Option<bool> {
        match self.get(e)? {
            Column::Bool(v) => v.get(row).copied(),
            Column::Bit(words, bit) => Some(is_set(*words.get(row)?, *bit)),
            _ => None,
        }
    }

    pub fn value(&self, e: &Expr, row: usize) -> Option<Dynamic> {
        match self.get(e)? {
            Column::Number(v) => Some(v.get(row)?.map_or(Dynamic::UNIT, Dynamic::from_float)),
            Column::Text(v) => Some(v.get(row)?.as_ref().map_or(Dynamic::UNIT, |s| Dynamic::from(s.clone()))),
            Column::Bool(v) => Some(Dynamic::from_bool(*v.get(row)?)),
            Column::Bit(words, bit) => Some(Dynamic::from_bool(is_set(*words.get(row)?, *bit))),
            Column::List(_) | Column::Masks(_) => None,
        }
    }

    /// The script's result for one row, when the script was translated.
    pub fn script_result(&self, row: usize) -> Option<super::outcomes::ScriptResult> {
        let s = self.script.as_ref()?;
        let mut result = super::outcomes::ScriptResult::default();
        if let Some(Column::Number(v)) = &s.score {
            result.score = *v.get(row)?;
        }
        if let Some(Column::Text(v)) = &s.grade {
            result.grade = v.get(row)?.clone();
        }
        for (field, column) in &s.lists {
            let Column::List(v) = column else { return None };
            let items = v.get(row)?.clone();
            match field {
                ListField::Fired => result.fired = items,
                ListField::Reasons => result.reasons = items,
                ListField::Tags => result.tags = items,
            }
        }
        Some(result)
    }

    /// An expression's column, when it was translated.
    pub fn column(&self, e: &Expr) -> Option<&Column> {
        self.get(e)
    }

    /// A condition's column, when it was translated.
    pub fn flags(&self, e: &Expr) -> Option<Flags<'_>> {
        match self.get(e)? {
            Column::Bool(v) => Some(Flags::Bools(v)),
            Column::Bit(words, bit) => Some(Flags::Bits(words, *bit)),
            _ => None,
        }
    }

    /// A number's column, when it was translated.
    pub fn numbers(&self, e: &Expr) -> Option<&[Option<f64>]> {
        match self.get(e)? {
            Column::Number(v) => Some(v),
            _ => None,
        }
    }

    pub fn has(&self, e: &Expr) -> bool {
        self.get(e).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.by_expr.is_empty() && self.script.is_none()
    }
}

/// What kind of result an expression gives where the rule set uses it.
#[derive(Clone, Copy)]
enum Want {
    Condition,
    Number,
    Text,
}

/// Every expression of a rule set with the role it plays.
fn expressions(set: &RuleSet) -> Vec<(&Expr, Want)> {
    let mut out = Vec::new();
    match &set.body {
        Body::Points(rules) => {
            for r in rules.iter().filter(|r| r.enabled) {
                out.push((&r.when, Want::Condition));
                if let Points::Computed(e) = &r.points {
                    out.push((e, Want::Number));
                }
            }
        }
        Body::Scorecard(measures) => {
            for m in measures {
                match &m.scoring {
                    Scoring::Direct(e) | Scoring::Bands { value: e, .. } => out.push((e, Want::Number)),
                    Scoring::Map { value, .. } => out.push((value, Want::Text)),
                }
            }
        }
        Body::Classification { classes, .. } => out.extend(classes.iter().map(|c| (&c.when, Want::Condition))),
        Body::Script(_) => {}
    }
    out
}

/// Every expression of a rule set except a script's.
pub fn expressions_of(set: &RuleSet) -> Vec<&Expr> {
    expressions(set).into_iter().map(|(e, _)| e).collect()
}

/// Which of a rule set's expressions translate to SQL, by rule id: for `explain`.
pub fn paths(set: &RuleSet, schema: &Schema, as_of: NaiveDate, lookups: &Lookups) -> HashMap<String, bool> {
    let mut t = Translator::new(schema, &set.depends_on, as_of, lookups);
    let mut out = HashMap::new();
    let mut note = |id: &str, ok: bool| {
        let e = out.entry(id.to_string()).or_insert(true);
        *e = *e && ok;
    };
    match &set.body {
        Body::Points(rules) => {
            for r in rules {
                let mut ok = t.condition(&r.when).is_some();
                if let Points::Computed(e) = &r.points {
                    ok = ok && t.number(e).is_some();
                }
                note(&r.id, ok);
            }
        }
        Body::Scorecard(measures) => {
            for m in measures {
                let ok = match &m.scoring {
                    Scoring::Direct(e) | Scoring::Bands { value: e, .. } => t.number(e).is_some(),
                    Scoring::Map { value, .. } => t.text(value).is_some(),
                };
                note(&m.id, ok);
            }
        }
        Body::Classification { classes, .. } => {
            for c in classes {
                note(&c.id, t.condition(&c.when).is_some());
            }
        }
        Body::Script(s) => note("script", t.script(&s.script).is_some()),
    }
    out
}

/// Evaluates the translatable expressions of `set` in the warehouse. `done` holds the
/// outcomes of the rule sets evaluated before, to upload those this one reads. An error
/// (an overflow, a missing value where rhai would stop) gives no columns: the set then
/// runs in rhai.
pub fn evaluate(
    v: &Vectorise,
    set: &RuleSet,
    as_of: NaiveDate,
    done: &[(&str, &SetOutcomes)],
    rows: usize,
    uploaded: &mut BTreeSet<String>,
) -> Columns {
    let (conn, schema, lookups) = (v.conn, v.schema, v.lookups);
    let mut t = Translator::new(schema, &set.depends_on, as_of, lookups);
    let mut selected: Vec<(&Expr, Want, String)> = Vec::new();
    for (e, want) in expressions(set) {
        let sql = match want {
            Want::Condition => t.condition(e),
            Want::Number => t.number(e),
            Want::Text => t.text(e),
        };
        match sql {
            Some(sql) => selected.push((e, want, sql)),
            None => tracing::debug!(rule_set = %set.name, expression = %e.source, "Runs in rhai."),
        }
    }
    let mut total = expressions(set).len();
    let script = match &set.body {
        Body::Script(s) => {
            total += 1;
            let sql = t.script(&s.script);
            if sql.is_none() {
                tracing::debug!(rule_set = %set.name, "The script runs in rhai.");
            }
            sql
        }
        _ => None,
    };
    if selected.is_empty() && script.is_none() {
        return Columns::default();
    }
    let vectorised = selected.len() + usize::from(script.is_some());
    match run(conn, &t, &selected, script.as_ref(), done, rows, uploaded) {
        Ok(columns) => {
            tracing::debug!(rule_set = %set.name, vectorised, expressions = total, "Evaluated in the warehouse.");
            columns
        }
        Err(e) => {
            tracing::debug!(rule_set = %set.name, error = %e, "Vectorised evaluation failed; the rule set runs in rhai.");
            Columns::default()
        }
    }
}

fn run(
    conn: &Connection,
    t: &Translator,
    selected: &[(&Expr, Want, String)],
    script: Option<&ScriptSql>,
    done: &[(&str, &SetOutcomes)],
    rows: usize,
    uploaded: &mut BTreeSet<String>,
) -> Result<Columns, String> {
    let err = |e: duckdb::Error| e.to_string();
    let mut joins = String::new();
    for (dep, field) in &t.deps_used {
        let table = dep_table(dep, field);
        if !uploaded.contains(&table) {
            let outcomes = done.iter().find(|(n, _)| n == dep).map(|(_, o)| *o).ok_or("dependency not evaluated")?;
            let started = std::time::Instant::now();
            upload_field(conn, &table, field, outcomes).map_err(err)?;
            tracing::debug!(rule_set = %dep, field = %field, seconds = started.elapsed().as_secs_f64(), "Results uploaded for the sets that read them.");
            uploaded.insert(table.clone());
        }
        joins.push_str(&format!(" POSITIONAL JOIN {}", ident(&table)));
    }
    // Conditions travel 64 to a column, as the bits of a mask (one column each took longer
    // to sort and read back than to evaluate); the other values one column each.
    let (conditions, values): (Vec<_>, Vec<_>) =
        selected.iter().partition(|(_, want, _)| matches!(want, Want::Condition));
    let masks: Vec<&[&(&Expr, Want, String)]> = conditions.chunks(64).collect();
    let mut select: Vec<String> = masks
        .iter()
        .map(|group| {
            let bits: Vec<String> = group
                .iter()
                .enumerate()
                .map(|(bit, (_, _, sql))| {
                    format!("(CASE WHEN {sql} THEN {}::UBIGINT ELSE 0::UBIGINT END)", 1u64 << bit)
                })
                .collect();
            bits.join(" | ")
        })
        .collect();
    select.extend(values.iter().map(|(_, _, sql)| sql.clone()));
    if let Some(s) = script {
        select.extend(s.score.iter().chain(&s.grade).cloned());
        select.extend(s.lists.iter().map(|(_, sql)| sql.clone()));
    }
    let results = select.len();
    // The overflow checks as one column: `least` evaluates every argument on every row.
    if !t.checks.is_empty() {
        select.push(format!("least({})", t.checks.join(", ")));
    }
    let select: Vec<String> = select.iter().enumerate().map(|(i, sql)| format!("{sql} AS c{i}")).collect();
    // Sorted by row even without joined tables: DuckDB documents a single table's order as
    // kept through SELECT, but at 1M accounts the results of a set that joins nothing came
    // back out of order without it (the bench's check against the SQL baseline caught it).
    let sql = format!("SELECT {} FROM kw_entity e{joins} ORDER BY e.rowid", select.join(", "));
    tracing::trace!(sql = %sql, "Rule set query.");
    let mut stmt = conn.prepare(&sql).map_err(err)?;
    let mut batches = Vec::new();
    crate::warehouse::for_each_batch(&mut stmt, [], |batch| batches.push(batch)).map_err(err)?;
    let mut columns = (0..results).map(|i| {
        let mut column = None;
        for batch in &batches {
            append(&mut column, batch.column(i).as_ref())?;
        }
        let column = column.unwrap_or(Column::Bool(Vec::new()));
        match column.len() {
            len if len == rows => Ok(column),
            len => Err(format!("{len} rows instead of {rows}")),
        }
    });
    let mut by_expr = Vec::with_capacity(selected.len());
    for group in &masks {
        let words = match columns.next().ok_or("missing column")?? {
            Column::Masks(words) => Arc::new(words),
            empty if empty.len() == 0 => Arc::new(Vec::new()),
            _ => return Err("a column of masks expected".into()),
        };
        for (bit, (e, _, _)) in group.iter().enumerate() {
            by_expr.push((key(e), Column::Bit(words.clone(), bit as u32)));
        }
    }
    for (e, _, _) in values {
        by_expr.push((key(e), columns.next().ok_or("missing column")??));
    }
    let script = match script {
        Some(s) => Some(ScriptColumns {
            score: s.score.as_ref().map(|_| columns.next().ok_or("missing column")).transpose()?.transpose()?,
            grade: s.grade.as_ref().map(|_| columns.next().ok_or("missing column")).transpose()?.transpose()?,
            lists: s
                .lists
                .iter()
                .map(|(field, _)| Ok((*field, columns.next().ok_or("missing column")??)))
                .collect::<Result<_, String>>()?,
        }),
        None => None,
    };
    Ok(Columns { by_expr, script })
}

fn append(column: &mut Option<Column>, a: &dyn Array) -> Result<(), String> {
    match a.data_type() {
        DataType::Boolean => {
            let a = a.as_boolean();
            let Column::Bool(v) = column.get_or_insert_with(|| Column::Bool(Vec::new())) else {
                return Err("mixed".into());
            };
            v.extend((0..a.len()).map(|i| a.is_valid(i) && a.value(i)));
        }
        DataType::UInt64 => {
            let a = a.as_primitive::<duckdb::arrow::datatypes::UInt64Type>();
            let Column::Masks(v) = column.get_or_insert_with(|| Column::Masks(Vec::new())) else {
                return Err("mixed".into());
            };
            v.extend((0..a.len()).map(|i| if a.is_valid(i) { a.value(i) } else { 0 }));
        }
        DataType::Float64 => {
            let a = a.as_primitive::<duckdb::arrow::datatypes::Float64Type>();
            let Column::Number(v) = column.get_or_insert_with(|| Column::Number(Vec::new())) else {
                return Err("mixed".into());
            };
            v.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))));
        }
        DataType::Utf8 => {
            let a = a.as_string::<i32>();
            let Column::Text(v) = column.get_or_insert_with(|| Column::Text(Vec::new())) else {
                return Err("mixed".into());
            };
            v.extend((0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i).to_string())));
        }
        DataType::List(_) => {
            let a = a.as_list::<i32>();
            let Column::List(v) = column.get_or_insert_with(|| Column::List(Vec::new())) else {
                return Err("mixed".into());
            };
            // Read through the offsets: slicing each row's list allocates.
            let items = a.values().as_string_opt::<i32>().ok_or("a list of text expected")?;
            let offsets = a.value_offsets();
            v.reserve(a.len());
            for i in 0..a.len() {
                let (from, to) = (offsets[i] as usize, offsets[i + 1] as usize);
                let list = if a.is_valid(i) { from..to } else { 0..0 };
                v.push(
                    list.map(|j| if items.is_valid(j) { items.value(j).to_string() } else { String::new() }).collect(),
                );
            }
        }
        DataType::Null => {
            // An all-NULL column (`CAST(NULL AS ..)` folded away): missing everywhere.
            let Column::Number(v) = column.get_or_insert_with(|| Column::Number(Vec::new())) else {
                return Err("mixed".into());
            };
            v.extend((0..a.len()).map(|_| None));
        }
        other => return Err(format!("unexpected result type {other}")),
    }
    Ok(())
}

/// Drops the tables of rule-set results uploaded during a run's rules stage.
pub fn drop_uploaded(conn: &Connection, uploaded: &BTreeSet<String>) {
    for table in uploaded {
        let _ = conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", ident(table)));
    }
}

/// The table holding one field of a rule set's results, row by row.
fn dep_table(set: &str, field: &str) -> String {
    format!("d_{set}__{field}")
}

/// One field of a rule set's results (`grade`, `score`, `tags` or `fired`) as a one-column
/// table in row order, for the sets that read it: only what they read is uploaded.
fn upload_field(conn: &Connection, table: &str, field: &str, outcomes: &SetOutcomes) -> duckdb::Result<()> {
    use duckdb::arrow::array::{ArrayRef, Float64Builder, StringBuilder};
    use std::sync::Arc;
    let (column, ty, sql_type): (ArrayRef, DataType, &str) = match field {
        "grade" => {
            let mut b = StringBuilder::with_capacity(outcomes.len(), outcomes.len() * 8);
            outcomes.iter().for_each(|o| b.append_option(o.grade()));
            (Arc::new(b.finish()), DataType::Utf8, "VARCHAR")
        }
        "score" => {
            let mut b = Float64Builder::with_capacity(outcomes.len());
            outcomes.iter().for_each(|o| b.append_option(o.score()));
            (Arc::new(b.finish()), DataType::Float64, "DOUBLE")
        }
        _ => {
            // Lists travel as text joined by a separator no tag or rule id holds.
            let mut b = StringBuilder::new();
            for o in outcomes.iter() {
                let list = if field == "tags" { o.tags() } else { o.fired() };
                b.append_value(list.iter().collect::<Vec<_>>().join("\u{1f}"));
            }
            (Arc::new(b.finish()), DataType::Utf8, "VARCHAR")
        }
    };
    let name = ident(table);
    let staged = matches!(field, "grade" | "score");
    let target = if staged { name.clone() } else { "kw_dep".to_string() };
    conn.execute_batch(&format!("CREATE OR REPLACE TEMP TABLE {target} (v {sql_type})"))?;
    let schema = duckdb::arrow::datatypes::Schema::new(vec![duckdb::arrow::datatypes::Field::new("v", ty, true)]);
    let batch = duckdb::arrow::record_batch::RecordBatch::try_new(Arc::new(schema), vec![column])
        .map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))?;
    {
        let mut appender = conn.appender(if staged { table } else { "kw_dep" })?;
        appender.append_record_batch(batch)?;
        appender.flush()?;
    }
    if staged {
        return conn.execute_batch(&format!("ALTER TABLE {name} RENAME COLUMN v TO {}", ident(field)));
    }
    conn.execute_batch(&format!(
        "CREATE OR REPLACE TEMP TABLE {name} AS SELECT CASE WHEN v = '' THEN []::VARCHAR[] ELSE string_split(v, chr(31)) END AS {} FROM kw_dep; \
         DROP TABLE kw_dep;",
        ident(field)
    ))
}

/// The warehouse connection and what translation needs, for the rules stage.
pub struct Vectorise<'a> {
    pub conn: &'a Connection,
    pub schema: &'a Schema,
    pub lookups: &'a Lookups,
}

/// Compiles `source` as a rule expression over `schema` and the rule sets `names`, as a rule
/// file would be (for tests).
pub fn compile_for_test(engine: &rhai::Engine, schema: &Schema, names: &[&str], source: &str) -> Option<Expr> {
    let (file, src) = test_source("test.yaml", source);
    super::compile::compile_expr(engine, &file, &src, schema, names, "a test expression").ok().map(|(e, _)| e)
}

/// Compiles `source` as a rule set's script (for tests).
pub fn script_for_test(engine: &rhai::Engine, schema: &Schema, names: &[&str], source: &str) -> Option<Expr> {
    let (file, src) = test_source("test.rhai", source);
    super::compile::compile_script(engine, &file, &src, schema, names, "a test script").ok()
}

/// `source` as if read from a file named `name`, without a location in it.
fn test_source(name: &str, source: &str) -> (crate::config::diagnostic::SourceFile, serde_saphyr::Spanned<String>) {
    let file =
        crate::config::diagnostic::SourceFile::new(name.to_string(), std::path::Path::new(name), source.to_string());
    let src = serde_saphyr::Spanned {
        value: source.to_string(),
        referenced: serde_saphyr::Location::UNKNOWN,
        defined: serde_saphyr::Location::UNKNOWN,
    };
    (file, src)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns test expressions read: one of each kind.
    pub(super) fn schema() -> Schema {
        Schema {
            columns: vec![
                ("i".into(), ColumnType::Integer),
                ("f".into(), ColumnType::Float),
                ("s".into(), ColumnType::Text),
                ("b".into(), ColumnType::Bool),
                ("d".into(), ColumnType::Date),
                ("country".into(), ColumnType::Text),
            ],
        }
    }

    fn translate(src: &str, want: Want) -> Option<String> {
        let lookups = Lookups::default();
        let engine = super::super::engine::build(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), Default::default());
        let schema = schema();
        let deps = vec!["risk".to_string()];
        let e = compile_for_test(&engine, &schema, &["risk", "prev"], src).expect("compiles");
        let mut t = Translator::new(&schema, &deps, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), &lookups);
        match want {
            Want::Condition => t.condition(&e),
            Want::Number => t.number(&e),
            Want::Text => t.text(&e),
        }
    }

    /// The lookup table scripts in these tests read.
    pub(super) fn rates() -> Lookups {
        // A folder of its own for each call: tests run on several threads at once.
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        std::fs::write(dir.join("rates.csv"), "segment,rate\nx_a,75\nx_b,40\n_a,5\n").unwrap();
        let (lookups, diags) = Lookups::load(dir, dir);
        assert!(diags.is_empty());
        lookups
    }

    const SCRIPT: &str = r#"
        let marked = b == true;
        let key = coalesce(s, "a");
        let rate = if marked { 0 } else { lookup("rates", `${risk.grade}_${key}`, "rate") };
        let rate = coalesce(rate, 100);
        let kept = coalesce(f, 0.0) * rate / 100;
        let note = if marked { ": marked" } else { "" };
        #{
            score: rate,
            reasons: [`keeps ${money(kept)} of ${money(f)} (${rate}%)${note} on ${d} ${i} ${b}`],
            tags: if rate < 100 { ["churn_risk"] } else { ["growth"] },
        }
    "#;

    #[test]
    fn a_script_of_lets_and_a_map_translates() {
        let engine = super::super::engine::build(NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), Default::default());
        let schema = schema();
        let deps = vec!["risk".to_string()];
        let e = script_for_test(&engine, &schema, &["risk"], SCRIPT).expect("compiles");
        let lookups = rates();
        let mut t = Translator::new(&schema, &deps, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(), &lookups);
        let sql = t.script(&e).expect("translates");
        assert!(sql.score.is_some() && sql.grade.is_none());
        assert_eq!(sql.lists.iter().map(|(f, _)| *f).collect::<Vec<_>>(), [ListField::Reasons, ListField::Tags]);
    }

    #[test]
    fn the_subset_translates() {
        let cases = [
            ("i > 3", Want::Condition, Some("CAST(e.\"i\" AS BIGINT) > CAST(3 AS BIGINT)")),
            ("s in [\"a\", \"b\"]", Want::Condition, Some("CAST(e.\"s\" AS VARCHAR) IN ('a', 'b')")),
            ("\"cash\" in risk.tags", Want::Condition, Some("list_contains(\"d_risk__tags\".\"tags\", 'cash')")),
            ("b", Want::Condition, Some("e.\"b\"")),
            (
                "i > 3 && (s == \"a\" || !(i < 9))",
                Want::Condition,
                Some(
                    "(CAST(e.\"i\" AS BIGINT) > CAST(3 AS BIGINT) AND (CAST(e.\"s\" AS VARCHAR) = 'a' OR \
                     (NOT (CAST(e.\"i\" AS BIGINT) < CAST(9 AS BIGINT)) IS TRUE)))",
                ),
            ),
            // rhai's tolerance, worked out once: the doubles `f > 2.5` accepts start 2 ulps up.
            (
                "f > 2.5",
                Want::Condition,
                Some(
                    "(CAST(CAST(e.\"f\" AS DOUBLE) AS DOUBLE) BETWEEN CAST('2.500000000000001' AS DOUBLE) \
                     AND CAST('1.7976931348623157e308' AS DOUBLE))",
                ),
            ),
            ("b && i > 3", Want::Condition, None),
            (
                "i / 0",
                Want::Number,
                Some(
                    "CAST((CAST(CAST(e.\"i\" AS BIGINT) AS DOUBLE) / nullif(CAST(CAST(0 AS BIGINT) AS DOUBLE), 0)) AS DOUBLE)",
                ),
            ),
            ("prev.score > 1", Want::Condition, None),
            ("i % 2 == 0", Want::Condition, None),
            ("i", Want::Condition, None),
        ];
        for (src, want, expected) in cases {
            assert_eq!(translate(src, want).as_deref(), expected, "{src}");
        }
    }
}

/// The differential test the vectorised path answers to: random expressions over random
/// rows, through rhai and through DuckDB, must agree on every row, or the SQL must fail (and
/// the rule set then runs in rhai).
#[cfg(test)]
mod differential {
    use super::*;
    use proptest::prelude::*;
    use rhai::Scope;

    const AS_OF: (i32, u32, u32) = (2026, 11, 23);

    #[derive(Debug, Clone)]
    struct Row {
        i: Option<i64>,
        f: Option<f64>,
        s: Option<&'static str>,
        b: Option<bool>,
        d: Option<NaiveDate>,
    }

    fn row() -> impl Strategy<Value = Row> {
        let int = prop_oneof![-20i64..20, Just(i64::MAX / 2), Just(i64::MIN / 2), Just(0)];
        // The constants of `num()` and the doubles next to them, where rhai's tolerance decides.
        let near = prop::sample::select(vec![0.5, 2.25, 3.0, -1.5, 1.0]).prop_flat_map(|c: f64| {
            (-4i32..5).prop_map(move |ulps| {
                let step = if ulps < 0 { f64::next_down } else { f64::next_up };
                (0..ulps.abs()).fold(c, |v, _| step(v))
            })
        });
        // And the values DuckDB and Rust treat differently: infinities, NaN, and one that
        // overflows when doubled.
        let float = prop_oneof![
            Just(0.0),
            Just(-0.0),
            Just(-1.5),
            Just(1e10),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::NAN),
            Just(1e308),
            near,
            -100.0f64..100.0,
        ];
        let text = prop::sample::select(vec!["a", "b", "B", "ab", "", "Zürich"]);
        let day = (0i64..800).prop_map(|n| NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Duration::days(n));
        (
            prop::option::weighted(0.8, int),
            prop::option::weighted(0.8, float),
            prop::option::weighted(0.8, text),
            prop::option::weighted(0.8, any::<bool>()),
            prop::option::weighted(0.8, day),
        )
            .prop_map(|(i, f, s, b, d)| Row { i, f, s, b, d })
    }

    fn num() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("i".to_string()),
            Just("f".to_string()),
            (-5i64..6).prop_map(|n| n.to_string()),
            prop::sample::select(vec!["0.5", "2.25", "0.0", "3.0", "0.9312243053344349", "(1.0 / 3.0)"])
                .prop_map(String::from),
            Just("4611686018427387904".to_string()),
            Just("days_since(d)".to_string()),
            Just("days_until(d)".to_string()),
            Just("quarter(d)".to_string()),
            Just("coalesce(i, 7)".to_string()),
            Just("round(f, 1)".to_string()),
        ];
        leaf.prop_recursive(3, 16, 2, |inner| {
            prop_oneof![
                (inner.clone(), prop::sample::select(vec!["+", "-", "*", "/"]), inner.clone())
                    .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
                inner.clone().prop_map(|a| format!("(-{a})")),
                inner.clone().prop_map(|a| format!("clamp({a}, 0, 10)")),
                inner.clone().prop_map(|a| format!("abs({a})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("min({a}, {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("max({a}, {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("pct({a}, {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("coalesce({a}, {b})")),
            ]
        })
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("s".to_string()),
            Just("\"a\"".to_string()),
            Just("lower(s)".to_string()),
            Just("upper(s)".to_string()),
            Just("(s + \"x\")".to_string()),
        ]
    }

    fn condition() -> impl Strategy<Value = String> {
        let cmp = prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]);
        let leaf = prop_oneof![
            Just("b".to_string()),
            Just("true".to_string()),
            Just("is_missing(i)".to_string()),
            Just("present(s)".to_string()),
            Just("same_quarter(d, as_of)".to_string()),
            Just("(b == true)".to_string()),
            Just("(d < date(\"2026-01-01\"))".to_string()),
            Just("(d >= as_of)".to_string()),
            Just("(s in [\"a\", \"B\"])".to_string()),
            Just("(i in [1, 2, 3])".to_string()),
            (num(), cmp.clone(), num()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (text(), cmp, text()).prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        ];
        leaf.prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
                inner.prop_map(|a| format!("(!{a})")),
            ]
        })
    }

    use super::tests::schema;

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(AS_OF.0, AS_OF.1, AS_OF.2).unwrap()
    }

    fn table(rows: &[Row]) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE kw_entity (i BIGINT, f DOUBLE, s VARCHAR, b BOOLEAN, d DATE)").unwrap();
        let mut appender = conn.appender("kw_entity").unwrap();
        for r in rows {
            appender.append_row(duckdb::params![r.i, r.f, r.s, r.b, r.d]).unwrap();
        }
        appender.flush().unwrap();
        drop(appender);
        conn
    }

    fn scope(r: &Row) -> Scope<'static> {
        let mut scope = Scope::new();
        scope.push_dynamic(super::super::compile::AS_OF, Dynamic::from(as_of()));
        scope.push_dynamic("i", r.i.map_or(Dynamic::UNIT, Dynamic::from_int));
        scope.push_dynamic("f", r.f.map_or(Dynamic::UNIT, Dynamic::from_float));
        scope.push_dynamic("s", r.s.map_or(Dynamic::UNIT, |s| Dynamic::from(s.to_string())));
        scope.push_dynamic("b", r.b.map_or(Dynamic::UNIT, Dynamic::from_bool));
        scope.push_dynamic("d", r.d.map_or(Dynamic::UNIT, Dynamic::from));
        scope
    }

    /// Conditions come back 64 to a column: with more than 64, and numbers among them, each
    /// expression still reads its own results.
    #[test]
    fn many_conditions_share_masks_and_keep_their_own_results() {
        let engine = super::super::engine::build(as_of(), Default::default());
        let schema = schema();
        let lookups = Lookups::default();
        let mut t = Translator::new(&schema, &[], as_of(), &lookups);
        let rows: Vec<Row> = (-3..140)
            .map(|n| Row { i: (n % 7 != 0).then_some(n), f: Some(n as f64 / 2.0), s: None, b: None, d: None })
            .collect();
        let conditions: Vec<Expr> =
            (0..130).map(|k| compile_for_test(&engine, &schema, &[], &format!("i > {k}")).unwrap()).collect();
        let number = compile_for_test(&engine, &schema, &[], "f * 2").unwrap();
        let mut selected: Vec<(&Expr, Want, String)> =
            conditions.iter().map(|e| (e, Want::Condition, t.condition(e).unwrap())).collect();
        selected.insert(70, (&number, Want::Number, t.number(&number).unwrap()));
        let columns = run(&table(&rows), &t, &selected, None, &[], rows.len(), &mut BTreeSet::new()).unwrap();
        for (n, r) in rows.iter().enumerate() {
            for (k, e) in conditions.iter().enumerate() {
                let expected = r.i.is_some_and(|i| i > k as i64);
                assert_eq!(columns.condition(e, n), Some(expected), "i > {k} on {r:?}");
                assert_eq!(columns.flags(e).map(|f| f.get(n)), Some(expected), "i > {k} on {r:?}");
            }
            let got = columns.value(&number, n).and_then(|v| v.as_float().ok());
            assert_eq!(got, r.f.map(|f| f * 2.0));
        }
    }

    /// A float compared with a number literal is one `BETWEEN` worked out from rhai's
    /// tolerance; with anything else, rhai's formula row by row. Both must accept exactly the
    /// doubles rhai accepts: around each constant ulp by ulp, far from it, and infinities and
    /// NaN (which rhai's formula rejects, and DuckDB orders above every number).
    #[test]
    fn float_comparisons_accept_what_rhai_accepts() {
        let engine = super::super::engine::build(as_of(), Default::default());
        let schema = schema();
        let lookups = Lookups::default();
        let constants = [
            "0.5",
            "2.25",
            "3.0",
            "-1.5",
            "59.5",
            "0.1",
            "0.3333333333333333",
            "123456.789",
            "1e-10",
            "-7e-10",
            "1e300",
            "7",
            "-3",
            "0.0",
            "1e-300",
        ];
        let mut values = vec![0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MAX, f64::MIN, 5e-324, 1e-20];
        for c in constants {
            let c: f64 = c.parse().unwrap();
            values.extend([c / 2.0, c * 2.0, -c, c * (1.0 + 1e-15), c * (1.0 - 1e-15)]);
            let (mut down, mut up) = (c, c);
            values.push(c);
            for _ in 0..8 {
                (down, up) = (down.next_down(), up.next_up());
                values.extend([down, up]);
            }
        }
        let rows: Vec<Row> = values
            .iter()
            .enumerate()
            .map(|(n, f)| Row { i: Some(n as i64 % 5), f: Some(*f), s: None, b: None, d: None })
            .collect();
        let mut sources = Vec::new();
        for op in ["<", "<=", ">", ">=", "==", "!="] {
            sources.push(format!("f {op} i"));
            for c in constants {
                sources.extend([format!("f {op} {c}"), format!("{c} {op} f")]);
            }
        }
        let exprs: Vec<Expr> =
            sources.iter().map(|src| compile_for_test(&engine, &schema, &[], src).unwrap()).collect();
        let mut t = Translator::new(&schema, &[], as_of(), &lookups);
        let selected: Vec<(&Expr, Want, String)> =
            exprs.iter().map(|e| (e, Want::Condition, t.condition(e).expect("translates"))).collect();
        let between = selected.iter().filter(|(_, _, sql)| sql.contains("BETWEEN")).count();
        assert!(between > sources.len() * 3 / 4, "most comparisons with a constant are one range: {between}");
        let columns = run(&table(&rows), &t, &selected, None, &[], rows.len(), &mut BTreeSet::new()).unwrap();
        for (e, _, sql) in &selected {
            for (n, r) in rows.iter().enumerate() {
                let rhai = engine.eval_ast_with_scope::<Dynamic>(&mut scope(r), &e.ast).unwrap().as_bool().unwrap();
                assert_eq!(columns.condition(e, n), Some(rhai), "`{}` with f = {:?}\nSQL: {sql}", e.source, r.f);
            }
        }
    }

    /// Both paths for one expression; `Err` from SQL means "falls back", which is always fine.
    fn check(source: &str, rows: &[Row], want: Want) -> Result<(), TestCaseError> {
        let engine = super::super::engine::build(as_of(), Default::default());
        let schema = schema();
        let Some(e) = compile_for_test(&engine, &schema, &[], source) else { return Ok(()) };
        let lookups = Lookups::default();
        let mut t = Translator::new(&schema, &[], as_of(), &lookups);
        let sql = match want {
            Want::Condition => t.condition(&e),
            _ => t.number(&e),
        };
        let Some(sql) = sql else { return Ok(()) };
        let conn = table(rows);
        let Ok(columns) = run(&conn, &t, &[(&e, want, sql.clone())], None, &[], rows.len(), &mut BTreeSet::new())
        else {
            return Ok(());
        };
        for (n, r) in rows.iter().enumerate() {
            let rhai = engine.eval_ast_with_scope::<Dynamic>(&mut scope(r), &e.ast);
            match want {
                Want::Condition => {
                    let expected = match &rhai {
                        Ok(v) if v.is_unit() => Some(false),
                        Ok(v) => v.as_bool().ok(),
                        Err(_) => None,
                    };
                    let got = columns.condition(&e, n);
                    prop_assert_eq!(got, expected, "`{}` on {:?}\nSQL: {}\nrhai: {:?}", source, r, sql, rhai);
                }
                _ => {
                    let expected = match &rhai {
                        Ok(v) if v.is_unit() => Some(None),
                        Ok(v) => super::super::engine::number(v).map(Some),
                        Err(_) => None,
                    };
                    let got = columns.value(&e, n).map(|v| super::super::engine::number(&v));
                    let same = match (got, expected) {
                        (Some(Some(a)), Some(Some(b))) => a == b || (a.is_nan() && b.is_nan()),
                        (a, b) => a == b,
                    };
                    prop_assert!(same, "`{}` on {:?}\nSQL: {}\nrhai: {:?}\ngot {:?}", source, r, sql, rhai, got);
                }
            }
        }
        Ok(())
    }

    /// A script in the translatable shape, from random parts: a let-bound number, an `if`,
    /// interpolation of every kind, `money`, list literals, a lookup with a built key.
    fn script() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec!["s", "i", "b", "d", "k", "risk.grade", "n", "a"]);
        let int = prop::sample::select(vec!["coalesce(i, 3)", "(i + 1)", "days_since(d)", "quarter(d)", "i", "7"]);
        (num(), int, condition(), condition(), text(), text(), piece.clone(), piece).prop_map(
            |(num, int, c1, c2, t1, t2, p1, p2)| {
                format!(
                    "let a = {num};\nlet n = {int};\nlet k = if {c1} {{ {t1} }} else {{ {t2} }};\n\
                     let r = coalesce(lookup(\"rates\", `${{risk.grade}}_${{k}}`, \"rate\"), n);\n\
                     #{{ score: a, grade: k, reasons: [`${{{p1}}} and ${{{p2}}}: ${{r}}`, money(a), k],\n\
                     tags: if {c2} {{ [\"x\", k] }} else {{ [] }} }}"
                )
            },
        )
    }

    /// Both paths for one script over `rows`, with `grades` as the results of `risk`.
    fn check_script(source: &str, rows: &[Row], grades: &[Option<&str>]) -> Result<(), TestCaseError> {
        let engine = super::super::engine::build(as_of(), Default::default());
        let schema = schema();
        let deps = vec!["risk".to_string()];
        let Some(e) = super::script_for_test(&engine, &schema, &["risk"], source) else { return Ok(()) };
        let lookups = super::tests::rates();
        let mut t = Translator::new(&schema, &deps, as_of(), &lookups);
        let Some(sql) = t.script(&e) else { return Ok(()) };
        let risk: Vec<crate::rules::Outcome> = (0..rows.len())
            .map(|n| crate::rules::Outcome {
                grade: grades[n % grades.len()].map(std::sync::Arc::from),
                ..Default::default()
            })
            .collect();
        let conn = table(rows);
        let stored = SetOutcomes::from_outcomes(&risk);
        let Ok(columns) = run(&conn, &t, &[], Some(&sql), &[("risk", &stored)], rows.len(), &mut BTreeSet::new())
        else {
            return Ok(());
        };
        let engine = super::super::engine::build(as_of(), std::sync::Arc::new(lookups.clone()));
        for (n, r) in rows.iter().enumerate() {
            let mut scope = scope(r);
            let mut risk_map = rhai::Map::new();
            risk_map.insert(
                "grade".into(),
                risk[n].grade.as_deref().map_or(Dynamic::UNIT, |g| Dynamic::from(g.to_string())),
            );
            scope.push_dynamic("risk", Dynamic::from_map(risk_map));
            let rhai = engine.eval_ast_with_scope::<rhai::Map>(&mut scope, &e.ast);
            let expected = rhai.as_ref().ok().map(super::super::outcomes::ScriptResult::of);
            let got = columns.script_result(n);
            prop_assert_eq!(&got, &expected, "script:\n{}\non {:?}\nrhai: {:?}\nSQL: {:?}", source, r, rhai, sql);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn scripts_agree(
            source in script(),
            rows in prop::collection::vec(row(), 1..12),
            grades in prop::collection::vec(prop::option::weighted(0.8, prop::sample::select(vec!["x", "y", ""])), 1..4),
        ) {
            check_script(&source, &rows, &grades)?;
        }

        #[test]
        fn conditions_agree(source in condition(), rows in prop::collection::vec(row(), 1..12)) {
            check(&source, &rows, Want::Condition)?;
        }

        #[test]
        fn numbers_agree(source in num(), rows in prop::collection::vec(row(), 1..12)) {
            check(&source, &rows, Want::Number)?;
        }
    }
}
