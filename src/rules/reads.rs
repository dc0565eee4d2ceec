//! What expressions read: the names (columns, rule sets, `as_of`) and of each rule set the
//! fields. One analysis for rules (which results a dependent set needs) and for outputs
//! (what each account's scope must hold).

use std::collections::{HashMap, HashSet};

use rhai::{ASTNode, Expr as RhaiExpr, Position};

use super::Expr;

/// What a group of expressions reads: the names, and of each rule set the fields
/// (`None`: the whole result, when an expression uses the set as a value).
pub struct Reads<'a> {
    pub names: HashSet<&'a str>,
    pub fields: HashMap<&'a str, Option<HashSet<&'a str>>>,
}

/// Every variable the expressions read.
pub fn reads_of<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Reads<'a> {
    let mut reads = Reads { names: HashSet::new(), fields: HashMap::new() };
    for e in exprs {
        reads.names.extend(e.reads.iter().map(String::as_str));
        for shown in &e.shows {
            match shown.split_once('.') {
                Some((set, field)) => {
                    if let Some(fields) = reads.fields.entry(set).or_insert_with(|| Some(HashSet::new())) {
                        fields.insert(field);
                    }
                }
                None => {
                    reads.fields.insert(shown.as_str(), None);
                }
            }
        }
    }
    reads
}

impl Reads<'_> {
    /// The fields read of each rule set, owned (`None`: the whole result).
    pub fn owned_fields(&self) -> HashMap<String, Option<HashSet<String>>> {
        self.fields
            .iter()
            .map(|(set, fields)| (set.to_string(), fields.as_ref().map(|f| f.iter().map(|s| s.to_string()).collect())))
            .collect()
    }
}

/// What an expression reads as people name it: `risk.grade` for a field of a rule set's
/// result, plain names otherwise; in order of first use.
pub fn shows_of(ast: &rhai::AST) -> Vec<String> {
    let mut found: Vec<((usize, usize), String)> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(RhaiExpr::Dot(x, ..))) => {
                if let (RhaiExpr::Variable(v, _, pos), RhaiExpr::Property(p, _)) = (&x.lhs, &x.rhs) {
                    found.push((position(*pos), format!("{}.{}", v.1, p.2)));
                }
            }
            Some(ASTNode::Expr(RhaiExpr::Variable(v, _, pos))) => {
                let under_dot = matches!(path.iter().rev().nth(1), Some(ASTNode::Expr(RhaiExpr::Dot(x, ..)))
                    if matches!((&x.lhs, &x.rhs), (RhaiExpr::Variable(l, ..), RhaiExpr::Property(..)) if l.1 == v.1));
                if !under_dot {
                    found.push((position(*pos), v.1.to_string()));
                }
            }
            _ => {}
        }
        true
    });
    // In reading order, whatever order the tree is walked in.
    found.sort();
    let mut shows: Vec<String> = Vec::new();
    for (_, name) in found {
        if !shows.contains(&name) {
            shows.push(name);
        }
    }
    shows
}

/// Every variable an expression reads, in order of first use.
pub fn names_read(ast: &rhai::AST) -> Vec<String> {
    let mut reads: Vec<String> = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Expr(RhaiExpr::Variable(v, ..))) = path.last() {
            let name = v.1.to_string();
            if !reads.contains(&name) {
                reads.push(name);
            }
        }
        true
    });
    reads
}

fn position(pos: Position) -> (usize, usize) {
    (pos.line().unwrap_or(1), pos.position().unwrap_or(1))
}
