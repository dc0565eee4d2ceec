//! What expressions read: the names (columns, rule sets, `as_of`) and of each rule set the
//! fields. One analysis for rules (which results a dependent set needs) and for outputs
//! (what each account's scope must hold).

use std::collections::{HashMap, HashSet};

use super::Expr;

/// What a group of output expressions reads: the names, and of each rule set the fields
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
                    if let Some(Some(fields)) =
                        Some(reads.fields.entry(set).or_insert_with(|| Some(HashSet::new())).as_mut())
                    {
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
