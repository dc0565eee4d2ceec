//! One expression or script compiled in the sandboxed engine and checked against the
//! entity's columns: parse errors, type mismatches and unknown lookups, located in the file.

use rhai::{ASTNode, Engine, Expr as RhaiExpr, ParseErrorType, Position, Scope};
use serde_saphyr::Spanned;

use crate::config::diagnostic::Code;
use crate::config::diagnostic::{Diagnostic, SourceFile, did_you_mean};
use crate::config::yaml::TextMap;
use crate::entity::{ColumnType, Schema};
use crate::rules::Expr;

use crate::rules::reads::{names_read, shows_of};

pub(super) fn position(pos: Position) -> (usize, usize) {
    (pos.line().unwrap_or(1), pos.position().unwrap_or(1))
}

/// Compiles one expression against the entity's columns and `names` (rule sets and the
/// like), returning it with any type problems found, or the located parse error.
pub fn compile_expr(
    engine: &Engine,
    file: &SourceFile,
    src: &Spanned<String>,
    schema: &Schema,
    names: &[&str],
    what: &str,
) -> Result<(Expr, Vec<Diagnostic>), Box<Diagnostic>> {
    compile_source(engine, file, src, schema, names, what, false)
}

/// Compiles a whole script (statements, loops, functions) rather than one expression.
pub fn compile_script(
    engine: &Engine,
    file: &SourceFile,
    src: &Spanned<String>,
    schema: &Schema,
    names: &[&str],
    what: &str,
) -> Result<Expr, Box<Diagnostic>> {
    // A call to a function that does not exist fails on every account: refused here.
    let (expr, problems) = compile_source(engine, file, src, schema, names, what, true)?;
    match problems.into_iter().find(|p| p.code == Code::UnknownFunction) {
        Some(p) => Err(Box::new(p)),
        None => Ok(expr),
    }
}

pub(super) fn compile_source(
    engine: &Engine,
    file: &SourceFile,
    src: &Spanned<String>,
    schema: &Schema,
    names: &[&str],
    what: &str,
    script: bool,
) -> Result<(Expr, Vec<Diagnostic>), Box<Diagnostic>> {
    let map = TextMap::new(file, src);
    let mut scope = Scope::new();
    for (name, _) in &schema.columns {
        scope.push_dynamic(name.clone(), rhai::Dynamic::UNIT);
    }
    for name in names {
        scope.push_dynamic(name.to_string(), rhai::Dynamic::UNIT);
    }
    let compiled = if script {
        engine.compile_with_scope(&scope, &src.value)
    } else {
        engine.compile_expression_with_scope(&scope, &src.value)
    };
    match compiled {
        Ok(ast) => {
            let reads = names_read(&ast);
            let shows = shows_of(&ast);
            let mut problems = function_problems(engine, &ast, &map, what);
            problems.extend(type_problems(&ast, &map, schema, what));
            problems.extend(lookup_problems(engine, &ast, &map, what));
            Ok((Expr { source: src.value.clone(), ast, reads, shows, map }, problems))
        }
        Err(e) => {
            let (line, col) = position(e.position());
            Err(Box::new(match e.err_type() {
                ParseErrorType::VariableUndefined(name) => {
                    let candidates: Vec<&str> = schema.names().chain(names.iter().copied()).collect();
                    Diagnostic::error(
                        Code::UnknownColumn,
                        map.span(line, col, name.len()),
                        format!("unknown column `{name}` in {what}"),
                    )
                    .with_hint_opt(did_you_mean(name, candidates).or_else(|| Some(unknown_name_hint(name))))
                }
                other => {
                    Diagnostic::error(Code::Syntax, map.span(line, col, 1), format!("{what} does not parse: {other}"))
                        .with_hint_opt(syntax_hint(&src.value))
                }
            }))
        }
    }
}

/// What a name that is no column may have meant: a YAML-style true/false, or a column the
/// feature SQL does not select.
fn unknown_name_hint(name: &str) -> String {
    match name {
        "yes" | "no" | "on" | "off" | "True" | "False" | "TRUE" | "FALSE" => {
            format!("write `true` or `false` for a yes/no value, or quote `\"{name}\"` for text")
        }
        _ => "the entity view has no such column: select it in the feature SQL (a rule set's results are read by \
              listing it in `depends_on`)"
            .into(),
    }
}

/// The habits of SQL and spreadsheets that do not parse as rules: `=` to compare, the words
/// `and`, `or`, `not`, `<>`.
fn syntax_hint(source: &str) -> Option<String> {
    let words: Vec<&str> = source.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').collect();
    let bytes = source.as_bytes();
    let lone_equals = (0..bytes.len()).any(|i| {
        bytes[i] == b'='
            && !matches!(bytes.get(i + 1), Some(b'=' | b'>'))
            && !matches!(i.checked_sub(1).map(|j| bytes[j]), Some(b'=' | b'!' | b'<' | b'>'))
    });
    if lone_equals {
        Some("compare with `==` (a single `=` assigns)".into())
    } else if source.contains("<>") {
        Some("write `!=` for \"not equal\"".into())
    } else if words.iter().any(|w| matches!(w.to_ascii_lowercase().as_str(), "and" | "or" | "not")) {
        Some("write `&&` for and, `||` for or, `!` for not".into())
    } else {
        None
    }
}

/// Calls to functions rules do not have, or with another number of arguments than the
/// function takes: either fails on every account at run time.
pub(super) fn function_problems(engine: &Engine, ast: &rhai::AST, map: &TextMap, what: &str) -> Vec<Diagnostic> {
    let known = crate::rules::engine::functions(engine);
    let scripted: Vec<(String, usize)> = ast.iter_functions().map(|f| (f.name.to_string(), f.params.len())).collect();
    let mut calls = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let (call, pos, method) = match path.last() {
            Some(ASTNode::Expr(RhaiExpr::FnCall(call, pos))) => (&**call, *pos, false),
            Some(ASTNode::Stmt(rhai::Stmt::FnCall(call, pos))) => (&**call, *pos, false),
            Some(ASTNode::Expr(RhaiExpr::MethodCall(call, pos))) => (&**call, *pos, true),
            _ => return true,
        };
        if call.op_token.is_none() && call.name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            calls.push((call.name.to_string(), call.args.len() + usize::from(method), pos));
        }
        true
    });
    let mut problems = Vec::new();
    for (name, arity, pos) in calls {
        if scripted.iter().any(|(n, a)| *n == name && *a == arity) {
            continue;
        }
        let (line, col) = position(pos);
        let span = map.span(line, col, name.len());
        match known.get(&name) {
            Some(arities) if arities.contains(&arity) => {}
            Some(arities) => {
                let takes: Vec<String> = arities.iter().map(|a| a.to_string()).collect();
                let n = if takes.len() > 1 {
                    format!("{} or {}", takes[..takes.len() - 1].join(", "), takes[takes.len() - 1])
                } else {
                    takes[0].clone()
                };
                problems.push(Diagnostic::error(
                    Code::UnknownFunction,
                    span,
                    format!("`{name}` takes {n} argument{}, not {arity}, in {what}", if n == "1" { "" } else { "s" }),
                ));
            }
            None => {
                let names = known.keys().map(String::as_str).chain(scripted.iter().map(|(n, _)| n.as_str()));
                problems.push(
                    Diagnostic::error(Code::UnknownFunction, span, format!("unknown function `{name}` in {what}"))
                        .with_hint(
                            did_you_mean(&name, names)
                                .unwrap_or_else(|| "docs/rules.md lists the functions rules can call".to_string()),
                        ),
                );
            }
        }
    }
    problems
}

/// Comparing a text column with a number (or a number column with text) is always false
/// at run time, so it is almost certainly a mistake: report it now.
pub(super) fn type_problems(ast: &rhai::AST, map: &TextMap, schema: &Schema, what: &str) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        // A call at the top of an expression is a statement node, deeper ones expressions.
        let call = match path.last() {
            Some(ASTNode::Expr(RhaiExpr::FnCall(call, _))) => Some(&**call),
            Some(ASTNode::Stmt(rhai::Stmt::FnCall(call, _))) => Some(&**call),
            _ => None,
        };
        let ops = ["<", "<=", ">", ">=", "==", "!=", "+", "-", "*", "/", "%"];
        if let Some(call) = call
            && ops.contains(&call.name.as_str())
            && call.args.len() == 2
        {
            for (a, b) in [(&call.args[0], &call.args[1]), (&call.args[1], &call.args[0])] {
                if let RhaiExpr::Variable(v, _, vpos) = a {
                    let literal = match b {
                        RhaiExpr::IntegerConstant(..) | RhaiExpr::FloatConstant(..) => Some(true),
                        RhaiExpr::StringConstant(..) => Some(false),
                        _ => None,
                    };
                    if let Some(is_number) = literal {
                        found.push((v.1.to_string(), is_number, *vpos, call.name.to_string()));
                    }
                }
            }
        }
        true
    });
    let mut problems = Vec::new();
    for (column, literal_is_number, vpos, op) in found {
        let Some(t) = schema.get(&column) else {
            continue;
        };
        let arithmetic = matches!(op.as_str(), "+" | "-" | "*" | "/" | "%");
        let (kind, hint) = match (t, literal_is_number) {
            // `name + 1` joins text and a number in rhai: only comparisons are wrong.
            (ColumnType::Text, true) if op == "+" => continue,
            (ColumnType::Text, true) if arithmetic => (
                "a text column, in arithmetic with a number",
                "cast the column to a number in the feature SQL".to_string(),
            ),
            (ColumnType::Integer | ColumnType::Float, false) if arithmetic => {
                ("a number column, in arithmetic with text", "remove the quotes around the number".to_string())
            }
            (ColumnType::Date | ColumnType::Timestamp, true) => (
                "a date column, with a number",
                format!(
                    "a date is compared with a date: `{column} {op} add_days(as_of, 30)`, or count days with `days_until({column})`"
                ),
            ),
            (ColumnType::Text, true) => (
                "a text column, with a number",
                format!("quote the value (`{column} {op} \"...\"`) or cast the column to a number in the feature SQL"),
            ),
            (ColumnType::Integer | ColumnType::Float, false) => {
                ("a number column, with text", "remove the quotes around the number".to_string())
            }
            (ColumnType::Date | ColumnType::Timestamp, false) => (
                "a date column, with text",
                "compare with `date(\"2025-01-31\")`, or use `days_since(...)`".to_string(),
            ),
            _ => continue,
        };
        let (line, col) = position(vpos);
        problems.push(
            Diagnostic::error(
                Code::Type,
                map.span(line, col, column.len()),
                format!("{what} {} `{column}`, {kind}", if arithmetic { "uses" } else { "compares" }),
            )
            .with_hint(hint),
        );
    }
    problems
}

/// `lookup("table", key, "column")` with literal names: the table and column must exist.
pub(super) fn lookup_problems(engine: &Engine, ast: &rhai::AST, map: &TextMap, what: &str) -> Vec<Diagnostic> {
    let Some(lookups) = crate::rules::lookup::registry(engine) else {
        return Vec::new();
    };
    let mut calls = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let call = match path.last() {
            Some(ASTNode::Expr(RhaiExpr::FnCall(call, pos))) => Some((&**call, *pos)),
            Some(ASTNode::Stmt(rhai::Stmt::FnCall(call, pos))) => Some((&**call, *pos)),
            _ => None,
        };
        if let Some((call, _)) = call
            && call.name == "lookup"
            && call.args.len() == 3
        {
            let text = |e: &RhaiExpr| match e {
                RhaiExpr::StringConstant(s, pos) => Some((s.to_string(), *pos)),
                _ => None,
            };
            calls.push((text(&call.args[0]), text(&call.args[2])));
        }
        true
    });
    let mut problems = Vec::new();
    for (table, column) in calls {
        let Some((table, pos)) = table else { continue };
        let (line, col) = position(pos);
        let Some(t) = lookups.table(&table) else {
            problems.push(
                Diagnostic::error(
                    Code::Lookup,
                    map.span(line, col, table.len() + 2),
                    format!("unknown lookup table `{table}` in {what}"),
                )
                .with_hint_opt(
                    did_you_mean(&table, lookups.names())
                        .or_else(|| Some("lookup tables are the CSV files in rules/lookups/".into())),
                ),
            );
            continue;
        };
        if let Some((column, pos)) = column
            && !t.columns.iter().skip(1).any(|c| *c == column)
        {
            let (line, col) = position(pos);
            problems.push(
                Diagnostic::error(
                    Code::Lookup,
                    map.span(line, col, column.len() + 2),
                    format!("lookup table `{table}` has no column `{column}`"),
                )
                .with_hint_opt(
                    did_you_mean(&column, t.columns.iter().skip(1).map(String::as_str)).or_else(|| {
                        Some(format!(
                            "its columns are {}",
                            t.columns.iter().skip(1).map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
                        ))
                    }),
                ),
            );
        }
    }
    problems
}
