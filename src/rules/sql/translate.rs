//! Rule expressions translated to DuckDB SQL: [`Translator`] walks rhai's AST and gives
//! SQL with its type, or `None` where the expression is outside the subset.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use rhai::{Dynamic, Expr as RhaiExpr, Stmt};

use crate::entity::{ColumnType, Schema};
use crate::rules::Expr;
use crate::rules::lookup::Lookups;

use super::dep_table;
use super::semantics::*;

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
    pub(super) bindings: Vec<(String, Sql)>,
    /// How `as_of` is written: its date literal, unless compiled SQL reads it from a
    /// variable (`getvariable('as_of')`), so one script serves every day.
    pub as_of_sql: Option<String>,
    /// Where other rule sets' results are read: the run's one-column tables in row order
    /// (`None`), or the compiled job's views of each set by key (`kw_rs_<set>`).
    pub dep_views: bool,
}

/// A script translated: the SQL of each field of the map it returns (`None`: absent).
#[derive(Debug, Default, Clone)]
pub struct ScriptSql {
    pub(super) score: Option<String>,
    pub(super) grade: Option<String>,
    pub(super) lists: Vec<(ListField, String)>,
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
            as_of_sql: None,
            dep_views: false,
        }
    }

    /// `as_of` as SQL of type DATE.
    pub(super) fn as_of_date(&self) -> Sql {
        match &self.as_of_sql {
            Some(sql) => Sql::new(format!("CAST({sql} AS DATE)"), Ty::Date, false),
            None => date_literal(self.as_of),
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
    pub(super) fn lax(&mut self, e: &RhaiExpr) -> Option<Sql> {
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

    pub(super) fn lax_block(&mut self, statements: &[Stmt]) -> Option<Sql> {
        match statements {
            [Stmt::Expr(x)] => self.lax(x),
            [Stmt::FnCall(f, _)] if lax_call(&f.name, f.args.len()) => self.lax_call(f),
            _ => self.block(statements),
        }
    }

    /// A comparison or an `in` list (see [`lax_call`]), NULL when a side is missing.
    pub(super) fn lax_call(&mut self, f: &rhai::FnCallExpr) -> Option<Sql> {
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
    pub(super) fn lax_operand(&mut self, e: &RhaiExpr) -> Option<String> {
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

    pub(super) fn root(&mut self, e: &Expr) -> Option<Sql> {
        match e.ast.statements() {
            [] => None,
            statements => self.block(statements),
        }
    }

    pub(super) fn expr(&mut self, e: &RhaiExpr) -> Option<Sql> {
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
    pub(super) fn block(&mut self, statements: &[Stmt]) -> Option<Sql> {
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
    pub(super) fn piece(&mut self, e: &RhaiExpr) -> Option<String> {
        let s = self.expr(e)?;
        let text = match s.ty {
            Ty::Text => s.text,
            Ty::Int | Ty::Bool => format!("CAST({} AS VARCHAR)", s.text),
            Ty::Date => format!("strftime({}, '%Y-%m-%d')", s.text),
            // DuckDB writes a timestamp as `format_timestamp` does.
            Ty::Timestamp => format!("CAST({} AS VARCHAR)", s.text),
            Ty::Null => return Some("''".into()),
            Ty::Float | Ty::TextList => return None,
        };
        Some(format!("coalesce({text}, '')"))
    }

    /// The operand of `!`: false when rhai's is false, so not NULL. A missing one is an error
    /// in rhai (see [`Translator::lax_operand`]), so a bare boolean column is not translated.
    pub(super) fn strict_bool(&mut self, e: &RhaiExpr) -> Option<String> {
        let s = self.expr(e)?;
        (s.ty == Ty::Bool && !s.nullable).then_some(s.text)
    }

    pub(super) fn constant(&mut self, d: &Dynamic) -> Option<Sql> {
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
        if let Some(t) = d.read_lock::<chrono::NaiveDateTime>() {
            return Some(timestamp_literal(*t));
        }
        if let Some(items) = d.read_lock::<rhai::Array>() {
            let items: Option<Vec<Sql>> = items.iter().map(|i| self.constant(i)).collect();
            return text_list(items?);
        }
        None
    }

    pub(super) fn variable(&mut self, name: &str) -> Option<Sql> {
        if let Some((_, bound)) = self.bindings.iter().rev().find(|(n, _)| n == name) {
            return Some(Sql::new(format!("({})", bound.text), bound.ty, bound.nullable));
        }
        if name == crate::rules::compile::AS_OF {
            return Some(self.as_of_date());
        }
        let col = format!("e.{}", ident(name));
        match self.schema.get(name)? {
            ColumnType::Integer => Some(Sql::new(format!("CAST({col} AS BIGINT)"), Ty::Int, true)),
            ColumnType::Float => Some(Sql::new(format!("CAST({col} AS DOUBLE)"), Ty::Float, true)),
            ColumnType::Text => Some(Sql::new(format!("CAST({col} AS VARCHAR)"), Ty::Text, true)),
            ColumnType::Bool => Some(Sql::new(col, Ty::Bool, true)),
            ColumnType::Date => Some(Sql::new(format!("CAST({col} AS DATE)"), Ty::Date, true)),
            // TIMESTAMPTZ in UTC: the warehouse's time zone is UTC.
            ColumnType::Timestamp => Some(Sql::new(format!("CAST({col} AS TIMESTAMP)"), Ty::Timestamp, true)),
            _ => None,
        }
    }

    /// `risk.grade`, `risk.score`, `risk.tags`, `risk.fired` of a rule set this one depends on.
    pub(super) fn field(&mut self, set: &str, field: &str) -> Option<Sql> {
        if !self.depends_on.iter().any(|d| d == set) {
            return None;
        }
        let table = if self.dep_views { super::dep_view(set) } else { dep_table(set, field) };
        let col = format!("{}.{}", ident(&table), ident(field));
        let sql = match field {
            "grade" => Sql::new(col, Ty::Text, true),
            "score" => Sql::new(col, Ty::Float, true),
            "tags" | "fired" => Sql::new(col, Ty::TextList, false),
            _ => return None,
        };
        self.deps_used.insert((set.to_string(), field.to_string()));
        Some(sql)
    }

    pub(super) fn call(&mut self, name: &str, args: &[RhaiExpr]) -> Option<Sql> {
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
            ("datetime", [RhaiExpr::StringConstant(s, _)]) => {
                return Some(match crate::rules::time::parse_timestamp(s) {
                    Some(t) => timestamp_literal(t),
                    None => Sql::new("NULL", Ty::Null, true),
                });
            }
            ("today", []) => return Some(self.as_of_date()),
            _ => {}
        }
        if let ("contains" | "in_list", [first, second]) = (name, args) {
            let (list, x) = if name == "contains" { (first, second) } else { (second, first) };
            let x = self.expr(x)?;
            return Some(Sql::new(format!("({}) IS TRUE", self.contains(list, &x)?), Ty::Bool, false));
        }
        let a: Vec<Sql> = args.iter().map(|x| self.expr(x)).collect::<Option<_>>()?;
        if let Some(sql) = self.time_call(name, &a) {
            return Some(sql);
        }
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
    pub(super) fn comparison(
        &mut self,
        name: &str,
        x: &Sql,
        y: &Sql,
        constants: (Option<f64>, Option<f64>),
    ) -> Option<String> {
        let op = comparison_op(name)?;
        let comparable = (x.ty.numeric() && y.ty.numeric())
            || x.ty == y.ty && matches!(x.ty, Ty::Text | Ty::Date | Ty::Bool)
            || is_moment(x.ty) && is_moment(y.ty)
            || (x.ty == Ty::Null || y.ty == Ty::Null) && !matches!(x.ty, Ty::TextList) && !matches!(y.ty, Ty::TextList);
        let ordered = !matches!(op, "=" | "<>");
        if !comparable || (ordered && (x.ty == Ty::Bool || y.ty == Ty::Bool)) {
            return None;
        }
        if x.ty == Ty::Float || y.ty == Ty::Float {
            return Some(float_comparison(name, x, y, constants));
        }
        if x.ty != y.ty && is_moment(x.ty) && is_moment(y.ty) {
            return Some(format!("{} {op} {}", moment(x)?, moment(y)?));
        }
        Some(format!("{} {op} {}", x.text, y.text))
    }

    pub(super) fn checked(&mut self, sql: Sql) -> Sql {
        if sql.ty == Ty::Int {
            self.checks.push(sql.text.clone());
        }
        sql
    }

    /// `x in [..]` and `in_list(x, [..])` with literals of `x`'s kind; `"t" in set.tags`.
    /// NULL when `x` is missing (see [`Translator::lax`]).
    pub(super) fn contains(&mut self, list_expr: &RhaiExpr, x: &Sql) -> Option<String> {
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
    pub(super) fn lookup(&mut self, table: &str, key: &RhaiExpr, column: &str) -> Option<Sql> {
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
